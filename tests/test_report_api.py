"""wattui.report: the channel, real subprocesses, attach-later, unsafe directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import wait_until

from wattui import _report
from wattui.metrics.channel import ReportChannel, UnsafeChannelDir, child_env, ensure_channel_dir

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTUI_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _poll_until(ch: ReportChannel, pred, timeout: float = 10.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got.extend(ch.poll())
        if pred(got):
            return got
        time.sleep(0.05)
    return got


@pytest.fixture
def fresh_state(monkeypatch, tmp_path):
    """Reset the in-process reporter around a test."""
    for k in ("WATTUI_CHANNEL_DIR", "WATTUI_SESSION"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    _report._close()
    _report._st.reset()
    yield tmp_path
    _report._close()
    _report._st.reset()


def test_launched_script_events_reach_the_channel(tmp_path):
    d = tmp_path / "chan"
    env = _env(**child_env(d, session="s1", base={}))
    script = textwrap.dedent(
        """
        import wattui
        for ep in range(1, 4):
            wattui.report(epoch=ep, step=ep * 100, total_epochs=3, accuracy=0.5 + ep / 10,
                          loss=1.0 / ep, model="resnet18")
        wattui.report(accuracy=float("nan"), bogus=object(), flag=True)  # all dropped
        import wattui._report as r
        print(r.stats()["dropped_values"])
        """
    )
    t0 = time.time()
    p = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "3"
    assert (d.stat().st_mode & 0o777) == 0o700
    files = list(d.glob("*.ndjson"))
    assert len(files) == 1 and (files[0].stat().st_mode & 0o777) == 0o600
    pid = int(files[0].stem)
    line = json.loads(files[0].read_text().splitlines()[0])
    assert set(line) >= {"t", "pid", "seq", "values"} and line["session"] == "s1"
    ch = ReportChannel(lambda: [pid], d, mark=False)
    evs = ch.poll()
    assert [e.epoch for e in evs] == [1, 2, 3]
    assert [e.step for e in evs] == [100, 200, 300]
    assert [e.total_epochs for e in evs] == [3, 3, 3]
    assert evs[-1].accuracy == pytest.approx(0.8)
    assert evs[0].text == {"model": "resnet18"}
    assert all(e.source == "report" and e.pid == pid for e in evs)
    assert all(t0 - 1 <= e.t_wall <= time.time() + 1 for e in evs)
    assert ch.poll() == []  # nothing new


REFUSED_SCRIPT = (
    "import wattui, wattui._report as r; wattui.report(accuracy=0.9); print(r.stats()['refused'])"
)

ATTACH_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import wattui
    stop = sys.argv[1]
    for i in range(5):
        wattui.report(step=i, epoch=0, accuracy=0.1 * i)   # before anyone watches
    print("ready", flush=True)
    i = 5
    deadline = time.time() + 30
    while not os.path.exists(stop) and time.time() < deadline:
        wattui.report(step=i, epoch=1, accuracy=0.5)
        i += 1
        time.sleep(0.02)
    """
)


def test_attach_later_picks_up_earlier_events(tmp_path):
    xdg = tmp_path / "run"
    xdg.mkdir(mode=0o700)
    stop = tmp_path / "stop"
    p = subprocess.Popen(
        [sys.executable, "-c", ATTACH_SCRIPT, str(stop)],
        env=_env(XDG_RUNTIME_DIR=str(xdg)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout.readline().strip() == "ready"
        d = xdg / "wattui"
        time.sleep(0.3)  # a while with nobody watching: this sleep is the test
        assert not d.exists() or not list(d.glob("*.ndjson"))  # still buffering, no file
        ch = ReportChannel(lambda: [], d)
        ch.start_watching(p.pid)
        assert (d / f"{p.pid}.watch").exists()
        evs = _poll_until(ch, lambda got: any(e.step is not None and e.step >= 8 for e in got))
        steps = [e.step for e in evs]
        assert steps[:5] == [0, 1, 2, 3, 4], steps  # the events from before the attach
        assert steps == sorted(steps) and len(set(steps)) == len(steps)
        assert all(e.pid == p.pid for e in evs)
        ch.close()
        assert not (d / f"{p.pid}.watch").exists()
    finally:
        stop.touch()
        p.wait(timeout=30)


def test_unwatched_report_is_buffered_and_bounded(fresh_state):
    for i in range(_report.BUFFER_MAX + 50):
        _report.report(step=i)
    s = _report.stats()
    assert s["buffered"] == _report.BUFFER_MAX and s["buffer_overflow"] == 50
    assert not s["attached"]
    assert not (fresh_state / "wattui").exists()  # report() never creates the directory


def test_report_never_raises(fresh_state):
    class Bad:
        def __float__(self):
            raise RuntimeError("boom")

    _report.report(a=Bad(), b=float("inf"), c="text", d=None, e=[1], f=10**400)
    _report.report(**{f"k{i}": i for i in range(1000)})
    assert _report.stats()["dropped_values"] >= 6


@pytest.mark.parametrize("mode", [0o777, 0o750, 0o701])
def test_world_or_group_accessible_dir_is_refused(tmp_path, mode):
    d = tmp_path / "chan"
    d.mkdir()
    os.chmod(d, mode)
    script = REFUSED_SCRIPT
    p = subprocess.run(
        [sys.executable, "-c", script],
        env=_env(WATTUI_CHANNEL_DIR=str(d)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert int(p.stdout) >= 1
    assert list(d.iterdir()) == []
    with pytest.raises(UnsafeChannelDir):
        ensure_channel_dir(d)


def test_dir_owned_by_someone_else_is_refused(fresh_state, monkeypatch):
    d = fresh_state / "wattui"
    d.mkdir(mode=0o700)
    (d / f"{os.getpid()}.watch").touch()
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1)  # we are now "someone else"
    _report._st.reset()
    _report.report(accuracy=0.5)
    assert _report.stats()["refused"] == 1 and not _report.stats()["attached"]
    assert not list(d.glob("*.ndjson"))
    with pytest.raises(UnsafeChannelDir):
        ensure_channel_dir(d)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_dir_chowned_to_another_user_is_refused(tmp_path):
    d = tmp_path / "chan"
    d.mkdir(mode=0o700)
    os.chown(d, 65534, 65534)
    script = REFUSED_SCRIPT
    p = subprocess.run(
        [sys.executable, "-c", script],
        env=_env(WATTUI_CHANNEL_DIR=str(d)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert int(p.stdout) >= 1 and list(d.iterdir()) == []


def test_marker_detach_goes_back_to_buffering(fresh_state, monkeypatch):
    d = ensure_channel_dir(fresh_state / "wattui")
    ch = ReportChannel(lambda: [], d)
    ch.start_watching(os.getpid())
    _report.report(step=1)
    assert _report.stats()["attached"]
    assert [e.step for e in ch.poll()] == [1]
    ch.close()
    monkeypatch.setattr(_report, "_mono", lambda: time.monotonic() + 5)  # past the next check
    _report.report(step=2)
    assert not _report.stats()["attached"] and _report.stats()["buffered"] == 1


def test_channel_tolerates_torn_lines_junk_and_foreign_pids(tmp_path):
    d = ensure_channel_dir(tmp_path / "chan")
    me, other = 4242, 4343
    good = json.dumps({"t": 1.0, "pid": me, "seq": 1, "values": {"accuracy": 0.7, "epoch": 1}})
    wrong = json.dumps({"t": 1.0, "pid": other, "seq": 2, "values": {"accuracy": 0.99}})
    torn = json.dumps({"t": 2.0, "pid": me, "seq": 3, "values": {"accuracy": 0.8}})
    path = d / f"{me}.ndjson"
    with open(path, "wb") as f:
        f.write(good.encode() + b"\n" + b"\xff\x00junk{{\n" + wrong.encode() + b"\n")
        f.write(b'{"t": 1e999, "pid": 4242, "seq": 9, "values": {}}\n' + b"[1,2]\n")
        f.write(torn.encode()[:20])
    (d / f"{other}.ndjson").write_text(wrong + "\n")
    ch = ReportChannel(lambda: [me], d, mark=False)
    evs = ch.poll()
    assert [(e.accuracy, e.epoch) for e in evs] == [(0.7, 1)]
    assert ch.rejections.counts["wrong_pid"] >= 2 and ch.rejections.counts["bad_json_line"] == 1
    with open(path, "ab") as f:
        f.write(torn.encode()[20:] + b"\n")
    evs = ch.poll()
    assert [e.accuracy for e in evs] == [0.8]  # the torn line, once complete


def test_import_is_light():
    code = (
        "import sys, wattui; "
        "mods = ('polars', 'numpy', 'textual', 'wattui.metrics'); "
        "print(sorted(m for m in mods if m in sys.modules))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_watch_never_raises_for_a_model_it_cannot_estimate(fresh_state):
    _report.watch(object(), None)  # estimate module missing or failing: nothing raised


def test_watch_emits_a_watch_event(fresh_state, monkeypatch):
    import types

    class Est:  # the shape of wattui.estimate.EstimateResult
        total_energy_j = 12.5
        batch_size = 32
        by_type = {"Conv2d": 10.0, "Linear": 2.5}

    calls = []
    fake = types.ModuleType("wattui.estimate")
    fake.estimate_model = lambda model, x, mode="inference": calls.append(mode) or Est()
    monkeypatch.setitem(sys.modules, "wattui.estimate", fake)
    d = ensure_channel_dir(fresh_state / "wattui")
    ch = ReportChannel(lambda: [], d)
    ch.start_watching(os.getpid())

    class ResNet:
        pass

    _report.watch(ResNet(), None)
    (ev,) = ch.poll()
    assert ev.kind == "watch" and ev.values["est_step_energy_j"] == 12.5
    assert ev.values["layer_Conv2d_j"] == 10.0 and ev.text["model"] == "ResNet"
    assert ev.to_row()["kind"] == "watch" and ev.values["est_batch_size"] == 32
    assert calls == ["training"]
    ch.close()


@pytest.mark.slow
def test_watch_with_the_real_estimator(tmp_path):
    pytest.importorskip("torch")
    d = ensure_channel_dir(tmp_path / "chan")
    script = textwrap.dedent(
        """
        import torch, wattui
        m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 30 * 30, 10))
        wattui.watch(m, torch.zeros(4, 3, 32, 32))
        """
    )
    p = subprocess.run(
        [sys.executable, "-c", script],
        env=_env(WATTUI_CHANNEL_DIR=str(d)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    (f,) = d.glob("*.ndjson")
    (ev,) = ReportChannel(lambda: [int(f.stem)], d, mark=False).poll()
    assert ev.kind == "watch" and ev.values["est_step_energy_j"] > 0
    assert "layer_Conv2d_j" in ev.values and ev.text["model"] == "Sequential"


def test_threads_and_a_mid_run_attach_lose_and_repeat_nothing(fresh_state, monkeypatch):
    import threading

    monkeypatch.setattr(_report, "CHECK_INTERVAL_S", 0.01)
    d = ensure_channel_dir(fresh_state / "wattui")
    ch = ReportChannel(lambda: [], d)
    n_threads, per_thread = 8, 1500

    attached = threading.Event()

    def work(k):
        for i in range(per_thread):
            if i == 200:
                attached.wait(30)
            _report.report(thread=k, i=i)
            if i % 100 == 0:
                time.sleep(0.002)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    wait_until(lambda: _report.stats()["buffered"] >= n_threads * 200, step=0.001,
               what="every thread's first 200 reports in the buffer")
    ch.start_watching(os.getpid())  # attach while the threads report
    attached.set()
    for t in threads:
        t.join()
    _report.report(done=1)  # flushes anything a contended call left in the buffer
    evs = _poll_until(ch, lambda got: len(got) >= n_threads * per_thread + 1, timeout=5)
    seen = [(e.values.get("thread"), e.values.get("i")) for e in evs if "thread" in e.values]
    assert len(seen) == n_threads * per_thread and len(set(seen)) == len(seen)
    assert _report.stats()["buffer_overflow"] == 0
    ch.close()


def test_two_watchers_and_file_cleanup(fresh_state, monkeypatch):
    monkeypatch.setattr(_report, "CHECK_INTERVAL_S", 0.0)
    d = ensure_channel_dir(fresh_state / "wattui")
    a, b = ReportChannel(lambda: [], d), ReportChannel(lambda: [], d)
    a.start_watching(os.getpid())
    b.start_watching(os.getpid())
    _report.report(step=1)
    assert [e.step for e in a.poll()] == [1] and [e.step for e in b.poll()] == [1]
    a.close()  # removes the shared marker; b's next poll puts it back
    _report.report(step=2)
    assert [e.step for e in b.poll()] == []  # detached for a moment: step 2 is buffered
    _report.report(step=3)  # b's marker is back: flushes 2, writes 3
    assert [e.step for e in b.poll()] == [2, 3]
    b.close()
    assert not list(d.iterdir())  # markers and the event file are gone
    _report.report(step=4)  # detached: buffered, no file
    assert not list(d.iterdir()) and _report.stats()["buffered"] == 1
