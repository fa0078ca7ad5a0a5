"""End to end in a pseudo-terminal: `wattui --simulate -- python -c ...` shows the live
screen, the user quits (leaving the run going, or stopping it), and the session is
complete on disk as `wattui show --format json` reports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import show_json, wait_until

pexpect = pytest.importorskip("pexpect")

SCRIPT = (
    "import time\n"
    "for i in range({n}):\n"
    "    print('epoch', i, 'accuracy', 0.5 + i / 100, flush=True)\n"
    "    time.sleep(0.25)\n"
)


def spawn(store: Path, n: int):
    env = dict(os.environ, WATTUI_HOME=str(store), TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    return pexpect.spawn(
        sys.executable,
        ["-m", "wattui", "--simulate", "--", sys.executable, "-c", SCRIPT.format(n=n)],
        env=env,
        dimensions=(24, 80),
        encoding="utf-8",
        timeout=30,
    )


def wait_status(store: Path, want: set[str], timeout: float = 30.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        rec = show_json(store)
        if rec["status"] in want or time.monotonic() > end:
            return rec
        time.sleep(0.5)


@pytest.mark.slow
def test_launch_watch_leave_running_then_complete(tmp_path):
    store = tmp_path / "store"
    child = spawn(store, n=12)  # about 3 s of "training"
    try:
        child.expect("SIMULATED")
        child.expect("running")
        child.expect("epoch")  # the run's output, tail-followed from output.log
        child.send("q")
        child.expect("leave it running")
        child.send("l")
        child.expect("goes on in the background")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    # the viewer is gone; the detached recorder finishes the run and the session
    rec = wait_status(store, {"finished", "failed", "interrupted"})
    assert rec["status"] == "finished" and rec["exit_code"] == 0
    assert rec["simulated"] and rec["energy_j"] > 0 and rec["ended_at"]
    sdir = store / "sessions" / rec["id"]
    assert (sdir / "samples.parquet").exists()
    assert b"epoch 11" in (sdir / "output.log").read_bytes()


@pytest.mark.slow
def test_launch_watch_stop(tmp_path):
    store = tmp_path / "store"
    child = spawn(store, n=400)  # would run 100 s
    try:
        child.expect("running")
        child.expect("epoch")  # the run is under way
        child.send("q")
        child.expect("stop the run")
        child.send("s")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
    rec = show_json(store)
    assert rec["status"] in ("interrupted", "failed")  # Ctrl+C reached the run
    assert rec["ended_at"] and rec["duration_s"] < 60
    assert (store / "sessions" / rec["id"] / "samples.parquet").exists()


@pytest.mark.slow
def test_attach_watch_stop(tmp_path):
    """`wattui attach PID`: a background recorder follows a process we started; stopping
    from the viewer sends Ctrl+C to that process and the session ends."""
    store = tmp_path / "store"
    target = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.1)"])
    env = dict(os.environ, WATTUI_HOME=str(store), TERM="xterm-256color")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "wattui", "attach", "--simulate", "2", str(target.pid)],
        env=env,
        dimensions=(24, 100),
        encoding="utf-8",
        timeout=30,
    )
    try:
        child.expect(f"PID {target.pid}")
        child.expect("running")
        child.send("q")
        child.expect("Ctrl\\+C to the process")
        child.send("s")
        child.expect(pexpect.EOF, timeout=30)
        assert target.wait(timeout=10) != 0  # KeyboardInterrupt
    finally:
        child.close(force=True)
        if target.poll() is None:
            target.kill()
    rec = show_json(store)
    assert rec["mode"] == "attach" and rec["pid"] == target.pid
    assert rec["status"] == "finished" and len(rec["gpus"]) == 2 and rec["ended_at"]


@pytest.mark.slow
def test_terminal_hangup_leaves_the_run_recording(tmp_path):
    """Losing the terminal (SSH drop: SIGHUP, then the pty closes) ends only the viewer."""
    import signal

    import psutil

    store = tmp_path / "store"
    child = spawn(store, n=400)
    try:
        child.expect("running")
        child.kill(signal.SIGHUP)
        child.close(force=True)
        (d,) = (store / "sessions").iterdir()
        meta = json.loads((d / "meta.json").read_text())
        size = (d / "samples.csv").stat().st_size
        wait_until(lambda: (d / "samples.csv").stat().st_size > size, what="a flush after the hangup")
        assert psutil.pid_exists(meta["recorder_pid"]) and psutil.pid_exists(meta["pid"])
        assert show_json(store)["status"] == "running"
    finally:
        for d in (store / "sessions").iterdir():
            pid = json.loads((d / "meta.json").read_text()).get("recorder_pid")
            try:
                os.kill(pid, signal.SIGINT)
                psutil.Process(pid).wait(20)
            except (ProcessLookupError, psutil.NoSuchProcess, TypeError):
                pass
    assert show_json(store)["status"] in ("interrupted", "failed")
