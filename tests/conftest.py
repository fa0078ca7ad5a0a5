import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """An empty session store, also set as WATTUI_HOME for in-process calls."""
    root = tmp_path / "store"
    root.mkdir()
    monkeypatch.setenv("WATTUI_HOME", str(root))
    return root


def wattui_env(store: Path, **extra) -> dict:
    env = dict(os.environ)
    env["WATTUI_HOME"] = str(store)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_wattui(store: Path, *args, timeout=60, input=None, **extra_env) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "wattui", *args],
        env=wattui_env(store, **extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def show_json(store: Path, ref: str | None = None) -> dict:
    args = ["show", "--format", "json"] + ([ref] if ref else [])
    r = run_wattui(store, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def wait_until(cond, timeout: float = 30.0, step: float = 0.05, what: str = "the condition"):
    """Poll ``cond()`` until it returns something truthy and return that; fail after ``timeout``
    seconds. The deadline is generous on purpose: a loaded machine is slow, not wrong."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


async def pilot_wait_until(pilot, cond, timeout: float = 30.0, step: float = 0.05,
                           what: str = "the condition"):
    """``wait_until`` for a Textual Pilot: the app keeps running between polls."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(step)


class FakeRecorder:
    """The host a RecorderIntake writes to (``add_event``, ``energy_now``), in memory: the
    events as the session file would hold them (JSON, no NaN), the energy set by the test."""

    def __init__(self):
        self.rows: list[dict] = []
        self.energy = 0.0

    def add_event(self, ev: dict) -> None:
        self.rows.append(json.loads(json.dumps(ev, allow_nan=False)))

    def energy_now(self):
        return self.energy


def kill_run_group(session_dir: Path) -> None:
    """SIGKILL the process group of the run a session recorded (meta.json's pid), if any."""
    try:
        pid = json.loads((session_dir / "meta.json").read_text()).get("pid")
        if pid:
            os.killpg(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass
