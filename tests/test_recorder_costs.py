"""The recorder's fixed costs follow what changed, not a timer: the process tree is
followed through the children of known processes (a full scan of the machine only
rarely), the metrics intake sleeps until a watched file changes, and live.json (a hint for
viewers, rewritten every second) is not fsynced while meta.json still is. Real processes,
real files, real inotify; CPU figures live in bench/bench_recorder.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wattui.record.output_drain import IDLE_POLL_S, LINKED_POLL_S, POLL_EVERY_S, IntakeWorker
from wattui.sources.process import ProcessTreeSource, _kernel_lists_children
from wattui.store.writer import SessionWriter

linux_children = pytest.mark.skipif(
    not _kernel_lists_children(), reason="the kernel lists no /proc/PID/task/TID/children"
)

# The parent forks a child from its main thread; the child forks a grandchild; later the
# parent forks one more from another thread (not in its main thread's children file).
TREE = r"""
import subprocess, sys, threading, time, pathlib
out = pathlib.Path(sys.argv[1])
sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
child = subprocess.Popen([sys.executable, "-c",
    "import subprocess, sys, time; p = subprocess.Popen(%r); print(p.pid, flush=True); time.sleep(60)"
    % (sleeper,)], stdout=subprocess.PIPE, text=True)
grandchild = int(child.stdout.readline())
(out / "tree").write_text(f"{child.pid} {grandchild}")
while not (out / "go").exists():
    time.sleep(0.02)
box = []
t = threading.Thread(target=lambda: box.append(subprocess.Popen(sleeper)))
t.start(); t.join()
(out / "threaded").write_text(str(box[0].pid))
time.sleep(60)
"""


def _wait(cond, timeout: float = 20.0):
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


class _NoMachineWalk:
    """Stands in for psutil: any use (its walk of every process on the machine) fails."""

    def __getattr__(self, name):
        raise AssertionError(f"psutil.{name} used: the machine's processes were walked")


@linux_children
def test_the_tree_is_followed_through_children_and_scanned_whole_only_rarely(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", TREE, str(tmp_path)], start_new_session=True)
    try:
        src = ProcessTreeSource(p.pid, refresh_s=0.0, rescan_s=3600)
        src._psutil = _NoMachineWalk()  # the tree's own files only: never every process
        src.read(0.0)
        assert src.full_scans == 1  # the start
        child, grandchild = map(int, _wait(lambda: (tmp_path / "tree").exists()
                                           and (tmp_path / "tree").read_text().split()))

        def sees(*pids):
            src.read(0.0)
            return set(pids) <= set(src.pids)

        _wait(lambda: sees(p.pid, child, grandchild))
        assert src.full_scans == 1  # found through the children files alone
        (reading,) = src.read(0.0)
        assert reading.mem_used_b > 3 * 5_000_000  # three Python processes' RSS
        assert reading.util_pct is not None and reading.util_pct >= 0

        (tmp_path / "go").write_text("")
        threaded = int(_wait(lambda: (tmp_path / "threaded").exists()
                             and (tmp_path / "threaded").read_text()))
        for _ in range(5):  # forked by a non-main thread: the children file cannot show it
            src.read(0.0)
        assert src.full_scans == 1
        src.rescan_s = 0.0  # ... the rare thorough scan (every thread's children) finds it
        assert sees(threaded) and src.full_scans >= 2

        os.kill(grandchild, 9)
        src.rescan_s = 3600
        _wait(lambda: (src.read(0.0), grandchild not in src.pids)[1])
    finally:
        os.killpg(p.pid, 9)
        p.wait()


@linux_children
def test_cpu_of_the_tree_is_measured_from_proc(tmp_path):
    busy = [sys.executable, "-c", "import time\nend = time.time() + 30\nwhile time.time() < end: pass"]
    p = subprocess.Popen(busy)
    try:
        src = ProcessTreeSource(p.pid, refresh_s=0.0)
        src.read(0.0)
        time.sleep(1.0)  # the measuring window: this sleep is the test
        (r,) = src.read(0.0)
        assert 20.0 < r.util_pct <= 105.0  # one busy loop: up to one core (shared machine)
    finally:
        p.kill()
        p.wait()


class _ChannelIntake:
    """An intake whose input is a directory: poll() counts, and reads what is new."""

    parser = None

    def __init__(self, d: Path):
        self.d = d
        self.polls: list[float] = []
        self.seen: list[str] = []

    def watch_dirs(self):
        return [str(self.d)]

    def follow_pid(self, pid):
        pass

    def poll(self, t_wall):
        self.polls.append(time.monotonic())
        self.seen = sorted(p.name for p in self.d.iterdir())

    def close(self):
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_the_intake_sleeps_until_a_watched_file_changes(tmp_path):
    intake = _ChannelIntake(tmp_path)
    w = IntakeWorker(intake)
    try:
        assert w.poll_every_s == IDLE_POLL_S > POLL_EVERY_S
        _wait(lambda: intake.polls)  # the first poll, at once
        time.sleep(1.0)  # a quiet second: this sleep is the test
        # a 5 Hz timer would have polled 5 more times; without changes at most one idle poll
        assert len(intake.polls) <= 2, intake.polls
        t0 = time.monotonic()
        (tmp_path / "123.ndjson").write_text('{"x": 1}\n')
        _wait(lambda: "123.ndjson" in intake.seen, timeout=IDLE_POLL_S * 0.9)
        assert time.monotonic() - t0 < IDLE_POLL_S  # woken by the change, not by the timer
    finally:
        assert w.finish()


def test_an_intake_without_watchable_files_keeps_its_timer(tmp_path):
    intake = _ChannelIntake(tmp_path / "not-yet")
    w = IntakeWorker(intake)
    try:
        assert w.poll_every_s == POLL_EVERY_S
        _wait(lambda: len(intake.polls) >= 3, timeout=10)
    finally:
        assert w.finish()


def test_live_json_is_rewritten_without_fsync_and_meta_json_with_it(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else "?")
        return real_fsync(fd)

    w = SessionWriter(tmp_path, "s1", {"name": "x"})
    monkeypatch.setattr(os, "fsync", spy)
    live = {"t_wall": 1.5, "devices": {"gpu0": {"energy_j": 2.0}}, "energy_j": 2.0}
    for _ in range(3):
        w.flush(fsync=False, live=live)
    assert json.loads((w.dir / "live.json").read_text()) == live
    assert not [p for p in synced if "live" in p], synced
    w.update_meta(name="y")
    assert any("meta" in p for p in synced), synced
    assert json.loads((w.dir / "meta.json").read_text())["name"] == "y"


def test_the_process_tree_gives_its_reading_on_full_ticks_only():
    """Its figures are refreshed about once a second: light ticks carry no row that would
    only repeat them; full ticks do, refreshed when most of a second has passed."""
    src = ProcessTreeSource(os.getpid())
    first = src.capture(0.0, True)
    assert [r.key for r in first] == ["proc"] and first[0].mem_used_b > 0
    assert src.capture(0.2, False) == []
    assert src.capture(0.4, True) == first  # too soon to refresh: the same reading
    src._last_t -= 0.95  # most of a second later
    assert src.capture(1.0, True)[0] is not first[0]


def test_a_new_process_in_the_run_is_read_without_waiting_for_the_idle_timer(store):
    """A report file that appears before its process is in the run's tree (the recorder
    reads the tree once a second) and never changes again is read within a second or
    two, because the tree's refresh tells the intake about the new process; the intake's
    idle timer is a 30 s safety net, and the end of the run would read it only at the
    end. The run writes the file itself, in the report API's format, the moment it
    starts the process, so the order is certain; the metric event's energy (the energy
    when it was read) tells when it was read."""
    from conftest import run_wattui, show_json

    script = (
        "import json, os, subprocess, sys, time\n"
        "time.sleep(1.5)\n"  # the recorder follows the run; it reads the tree once a second
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "line = {'t': time.time(), 'pid': p.pid, 'seq': 0, 'values': {'accuracy': 0.625}}\n"
        "path = os.path.join(os.environ['WATTUI_CHANNEL_DIR'], f'{p.pid}.ndjson')\n"
        "fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)\n"
        "os.write(fd, (json.dumps(line) + '\\n').encode()); os.close(fd)\n"
        "time.sleep(6)\n"
        "p.kill(); p.wait()\n"
    )
    assert IDLE_POLL_S > 10  # longer than this run: the timer cannot be what reads it
    r = run_wattui(store, "record", "--simulate", "1", "--", sys.executable, "-c", script)
    assert r.returncode == 0, r.stderr
    rec = show_json(store)
    assert rec["accuracy"] == pytest.approx(0.625)
    (ev,) = [e for e in _events(store) if e["kind"] == "metric" and e["accuracy"] is not None]
    # read 1.5 s + up to ~2 s into a 7.5 s run of steady power: well before its end
    assert ev["energy_j"] < 0.6 * rec["energy_j"], (ev["energy_j"], rec["energy_j"])


def _events(store: Path) -> list[dict]:
    import polars as pl

    (d,) = (store / "sessions").iterdir()
    return pl.read_parquet(d / "events.parquet").to_dicts()


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="pidfd is Linux's (Python 3.9+)")
def test_attached_the_main_thread_sleeps_until_the_process_ends(store):
    """`wattui record --pid` waits on a descriptor of the process, not a 4 Hz timer: its
    main thread makes no wake-ups while the process runs, and the process's end still ends
    the recording at once."""
    from conftest import wattui_env

    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    rec = subprocess.Popen([sys.executable, "-m", "wattui", "record", "--simulate", "--pid",
                            str(target.pid)], env=wattui_env(store),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: any((store / "sessions").glob("*/samples.csv")), timeout=30)
        time.sleep(1.0)  # past the start

        def switches() -> int:
            status = Path(f"/proc/{rec.pid}/task/{rec.pid}/status").read_text()
            return int(status.split("voluntary_ctxt_switches:")[1].split()[0])

        before = switches()
        time.sleep(3.0)  # this sleep is the test: a 4 Hz loop wakes 12 times in it
        assert switches() - before <= 2
        target.kill()
        target.wait()
        t0 = time.monotonic()
        assert rec.wait(timeout=30) == 0, rec.stderr.read()
        assert time.monotonic() - t0 < 10
    finally:
        target.kill()
        rec.kill()
        target.wait()
        rec.wait()


@pytest.mark.skipif(not _kernel_lists_children(), reason="needs /proc/PID/task/TID/children")
def test_the_trees_proc_files_stay_open_between_refreshes_and_close_when_a_process_leaves():
    """Each refresh re-reads the same open /proc files (no open and close per file each
    second); a process that leaves the tree has its files closed, and close() closes all."""
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(c.pid, flush=True)\n"
        "sys.stdin.readline(); c.kill(); c.wait(); time.sleep(60)\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        src = ProcessTreeSource(parent.pid, refresh_s=0.0, rescan_s=3600)
        _wait(lambda: src.read(0.0)[0].pids == (parent.pid, child))  # a thorough scan first
        src.read(0.0)  # then the incremental refresh, through the open files
        fds = dict(src._files._fds)
        assert len(fds) == 4  # stat and children of both
        first = src.read(0.0)[0]
        assert src._files._fds == fds  # the same descriptors, read again
        assert first.mem_used_b > 0
        parent.stdin.write("\n")
        parent.stdin.flush()
        _wait(lambda: src.read(0.0)[0].pids == (parent.pid,))
        assert set(src._files._fds) == {p for p in fds if p.startswith(f"/proc/{parent.pid}/")}
        src.close()
        assert not src._files._fds
        for fd in fds.values():
            with pytest.raises(OSError):
                os.fstat(fd)
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_a_watched_directory_made_again_falls_back_to_polling(tmp_path):
    """A training script that removes its log directory and makes it again drops the
    watch: the intake notices (the kernel says so) and polls 5 times a second, so what is
    then written there is read within a second, not at the 30 s safety poll."""
    import shutil

    d = tmp_path / "logs"
    d.mkdir()
    intake = _ChannelIntake(d)
    w = IntakeWorker(intake)
    try:
        assert w.poll_every_s == IDLE_POLL_S
        _wait(lambda: intake.polls)
        shutil.rmtree(d)
        d.mkdir()
        _wait(lambda: w.poll_every_s == POLL_EVERY_S, timeout=5)
        (d / "metrics.jsonl").write_text('{"acc": 1}\n')
        _wait(lambda: "metrics.jsonl" in intake.seen, timeout=5)
    finally:
        assert w.finish()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_a_directory_reached_through_a_symbolic_link_is_polled_every_2_s(tmp_path):
    """A link may be pointed elsewhere, out of the watch (a `latest-run` link): there the
    idle poll stays at 2 s."""
    (tmp_path / "run-1").mkdir()
    (tmp_path / "latest").symlink_to(tmp_path / "run-1")
    w = IntakeWorker(_ChannelIntake(tmp_path / "latest"))
    try:
        assert w.poll_every_s == LINKED_POLL_S < IDLE_POLL_S
    finally:
        assert w.finish()
