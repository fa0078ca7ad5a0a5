"""The run's output is drained in full and parsing never holds the run up: real children
under the real recorder, plus the two parts (OutputLog, IntakeWorker) on their own.
Speed targets live in bench/bench_output.py, not here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import wattui_env

from wattui.record.output_drain import IntakeWorker, OutputLog

FLOOD = r"""
import sys
n, kind = int(sys.argv[1]), sys.argv[2]
w = sys.stdout.write
for i in range(n):
    if kind == "accuracy":
        w(f"epoch {i // 1000} step {i} val_accuracy: {(i % 1000) / 1000:.4f}\n")
    else:
        w(f"line {i} loss {1.0 / (i + 1):.6f}\n")
w(f"epoch {n // 1000 + 1} val_accuracy: 0.9321\n")  # an epoch's line, not a summary
"""


def _session(store: Path) -> Path:
    (sdir,) = (store / "sessions").iterdir()
    return sdir


def _record(store: Path, tmp_path: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the real recorder; the result also carries ``peak_rss`` (bytes, sampled)."""
    import psutil

    env = wattui_env(store)
    env.pop("PYTHONUNBUFFERED", None)  # a real flood: the child writes in blocks
    argv = [sys.executable, "-m", "wattui", "record", "--simulate", *args]
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    peak = 0

    def watch() -> None:
        nonlocal peak
        try:
            proc = psutil.Process(p.pid)
            while p.poll() is None:
                peak = max(peak, proc.memory_info().rss)
                time.sleep(0.02)
        except psutil.Error:
            pass

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
    t.join()
    r = subprocess.CompletedProcess(argv, p.returncode, out, err)
    r.peak_rss = peak
    return r


@pytest.mark.parametrize("kind", ["plain", "accuracy"])
@pytest.mark.slow
def test_300k_lines_reach_output_log_and_the_terminal_in_full(store, tmp_path, kind):
    child = tmp_path / "flood.py"
    child.write_text(FLOOD)
    n = 300_000
    r = _record(store, tmp_path, "--", sys.executable, str(child), str(n), kind)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    expected_last = b"epoch %d val_accuracy: 0.9321\n" % (n // 1000 + 1)
    for data in (r.stdout, (_session(store) / "output.log").read_bytes()):
        lines = data.splitlines(keepends=True)
        assert len(lines) == n + 1
        assert lines[0].startswith(b"line 0 ") or lines[0].startswith(b"epoch 0 step 0 ")
        assert lines[n // 2].split()[1 if kind == "plain" else 3] == str(n // 2).encode()
        assert lines[-1] == expected_last
    meta = json.loads((_session(store) / "meta.json").read_text())
    assert meta["status"] == "finished"
    assert not meta.get("output_dropped_bytes")
    # Parsing ran behind and shed what it could not do, counted, and still saw the last
    # line (the newest output is kept).
    assert meta.get("output_lines_not_parsed", 0) > 0
    assert meta["output_lines_not_parsed"] < n + 1
    assert "not searched for metrics" in r.stderr.decode()
    assert any("not searched for metrics" in n for n in meta["notes"])  # `wattui show` lists it
    assert meta["accuracy"] == pytest.approx(0.9321)
    # Accuracy-looking floods once took the recorder to 750 MB; everything is bounded now.
    assert 0 < r.peak_rss < 300e6


class _SlowIntake:
    """An intake whose parsing takes 1 ms a line (a stand-in for a slow parser)."""

    parser = object()

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.polls = 0
        self.closed = False

    def feed_line(self, line: bytes, t_wall: float) -> None:
        time.sleep(0.001)
        self.lines.append(line)

    def poll(self, t_wall: float) -> None:
        self.polls += 1

    def close(self) -> None:
        self.closed = True


def test_put_never_waits_for_a_slow_parser_and_every_line_is_fed_or_counted():
    intake = _SlowIntake()
    w = IntakeWorker(intake, backlog_bytes=4096)
    n = 20_000
    data = b"".join(b"line %d\n" % i for i in range(n))
    t0 = time.perf_counter()
    for i in range(0, len(data), 1000):  # chunks that cut lines in two
        w.put(0, data[i : i + 1000], time.time())
    took = time.perf_counter() - t0
    assert w.finish(drain_s=5.0)
    assert intake.closed
    assert took < 2.0  # parsing 20,000 lines takes 20 s here: put did not wait for it
    assert w.shed_lines > 0
    fed = [ln for ln in intake.lines if ln]
    assert len(fed) + w.shed_lines == n
    # Whatever was fed is whole lines, in order, and the newest output was kept.
    nums = [int(ln.split()[1]) for ln in fed]
    assert all(ln == b"line %d" % k for ln, k in zip(fed, nums, strict=True))
    assert nums == sorted(nums) and nums[-1] == n - 1


@pytest.mark.slow
def test_an_intake_that_hangs_does_not_hold_up_the_end():
    stuck = threading.Event()

    class Hanging(_SlowIntake):
        def poll(self, t_wall):
            stuck.set()
            threading.Event().wait(60)

    w = IntakeWorker(Hanging())
    assert stuck.wait(30)  # the worker is inside the hanging poll()
    t0 = time.monotonic()
    assert w.finish(drain_s=0.5) is False
    assert time.monotonic() - t0 < 5


def test_output_log_on_a_refusing_disk_counts_what_it_drops():
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full is needed to simulate a full disk")
    log = OutputLog("/dev/full", backlog_bytes=10_000)
    for _ in range(50):
        log.write(b"x" * 999 + b"\n")  # 50 kB: more than the backlog holds
    log.close(timeout=2)
    assert log.written_bytes == 0
    assert log.dropped_bytes == 50_000
    assert log.write_errors >= 1 and log.last_error


def test_output_log_keeps_order_and_writes_everything(tmp_path):
    path = tmp_path / "output.log"
    log = OutputLog(path)
    chunks = [b"chunk %d\n" % i for i in range(10_000)]
    for c in chunks:
        log.write(c)
    log.close()
    assert path.read_bytes() == b"".join(chunks)
    assert log.dropped_bytes == 0


def _fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "metrics.csv"
    os.mkfifo(fifo)
    return fifo


@pytest.mark.slow
def test_a_fifo_as_metrics_file_does_not_hang_the_recorder(store, tmp_path):
    fifo = _fifo(tmp_path)
    r = _record(store, tmp_path, "--metrics-file", str(fifo), "--", sys.executable, "-c",
                "import time; time.sleep(0.5); print('done')", timeout=60)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    meta = json.loads((_session(store) / "meta.json").read_text())
    assert meta["status"] == "finished"
    assert meta["metric_rejections"].get("file_not_regular", 0) >= 1


def test_the_recorder_answers_sigterm_with_a_fifo_metrics_file(store, tmp_path):
    fifo = _fifo(tmp_path)
    p = subprocess.Popen(
        [sys.executable, "-m", "wattui", "record", "--simulate", "--metrics-file", str(fifo),
         "--", sys.executable, "-c", "import time; print('up', flush=True); time.sleep(120)"],
        env=wattui_env(store), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert p.stdout.readline() == b"up\n"
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode != 0
    meta = json.loads((_session(store) / "meta.json").read_text())
    assert meta["status"] == "interrupted"


def test_attach_answers_sigterm_with_a_fifo_metrics_file(store, tmp_path):
    fifo = _fifo(tmp_path)
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    p = subprocess.Popen(
        [sys.executable, "-m", "wattui", "record", "--simulate", "--metrics-file", str(fifo),
         "--pid", str(target.pid)],
        env=wattui_env(store), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        end = time.monotonic() + 30
        while not list(store.glob("sessions/*/live.json")):
            assert time.monotonic() < end and p.poll() is None, p.stderr.read()
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        for proc in (p, target):
            if proc.poll() is None:
                proc.kill()
    meta = json.loads((_session(store) / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    assert meta["metric_rejections"].get("file_not_regular", 0) >= 1


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.6, 1.0, 1.5])
@pytest.mark.slow
def test_sigterm_at_any_moment_of_the_start_ends_the_recording_cleanly(store, tmp_path, delay):
    """From the moment a session exists, a SIGTERM is answered: the recorder ends within
    seconds, the session says interrupted (never left running) and no run is left behind."""
    marker = tmp_path / "child-pid"
    child = (f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); "
             "time.sleep(120)")
    p = subprocess.Popen(
        [sys.executable, "-m", "wattui", "record", "--simulate", "--", sys.executable, "-c", child],
        env=wattui_env(store), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        time.sleep(delay)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode != 0
    for meta in store.glob("sessions/*/meta.json"):
        assert json.loads(meta.read_text())["status"] == "interrupted"
    if marker.exists() and marker.read_text():
        pid = int(marker.read_text())
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the run outlived its recorder's SIGTERM")


def test_a_slow_parser_at_the_end_is_cut_short_and_the_intake_still_closed():
    intake = _SlowIntake()  # 1 ms a line
    w = IntakeWorker(intake, backlog_bytes=1 << 20)
    w.put(0, b"".join(b"line %d\n" % i for i in range(8000)), time.time())  # 8 s of parsing
    t0 = time.monotonic()
    assert w.finish(drain_s=0.5) is True
    assert time.monotonic() - t0 < 5
    assert intake.closed
    assert w.shed_lines > 0 and w.fed_lines + w.shed_lines == 8000
