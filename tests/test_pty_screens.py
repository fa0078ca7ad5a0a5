"""In a real pseudo-terminal, as a user meets them: a launch that cannot start says why on
the live screen (and `record --detach` of it fails with the reason); the quit dialog
shows its keys, and Ctrl+C opens it instead of Textual's "press ctrl+q"."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import show_json

pexpect = pytest.importorskip("pexpect")

LOOP = "import time\nfor i in range(400):\n    print('step', i, flush=True)\n    time.sleep(0.25)\n"


def spawn(store: Path, *command: str, dims=(24, 80)):
    env = dict(os.environ, WATTUI_HOME=str(store), TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    return pexpect.spawn(
        sys.executable,
        ["-m", "wattui", "--simulate", "--", *command],
        env=env,
        dimensions=dims,
        encoding="utf-8",
        timeout=30,
    )


@pytest.mark.slow
def test_a_launch_that_cannot_start_says_why_on_the_screen(tmp_path):
    store = tmp_path / "store"
    child = spawn(store, "pythn-no-such-program", "x.py")
    try:
        child.expect("failed")
        # the reason, where the user looks (notes line and output pane), not in a log file
        child.expect("cannot start pythn-no-such-program: No such file or directory")
        child.send("q")  # nothing runs: q closes at once
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 127  # the run's exit code, as the shell would give it
    rec = show_json(store)
    assert rec["status"] == "failed" and rec["exit_code"] == 127
    assert "No such file or directory" in rec["reason"]


def test_record_detach_of_a_launch_that_cannot_start_fails_with_the_reason(tmp_path):
    store = tmp_path / "store"
    p = subprocess.run(
        [sys.executable, "-m", "wattui", "record", "--detach", "--simulate", "--", "pythn-nope"],
        env=dict(os.environ, WATTUI_HOME=str(store)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 127  # as a shell says "command not found"
    assert p.stdout == ""  # no session id as if all were well
    assert "cannot start pythn-nope: No such file or directory" in p.stderr
    assert "wattui show" in p.stderr and "Traceback" not in p.stderr
    text = subprocess.run(
        [sys.executable, "-m", "wattui", "show"],
        env=dict(os.environ, WATTUI_HOME=str(store)),
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert re.search(r"^reason +cannot start pythn-nope: No such file", text, re.M), text


@pytest.mark.slow
def test_quit_dialog_shows_its_keys_and_ctrl_c_opens_it(tmp_path):
    store = tmp_path / "store"
    child = spawn(store, sys.executable, "-c", LOOP)
    try:
        child.expect("running")
        child.expect("step")
        child.send("q")
        # "[s]" and "[l]" as Textual markup were strikethrough and nothing: they must show
        child.expect(r"\[s\]")
        child.expect("stop the run")
        child.expect(r"\[l\]")
        child.expect("leave it running")
        child.expect(r"\[Esc\]")
        child.send("\x1b")  # cancel: back to the screen, the run goes on
        # the panel under the dialog is drawn again only once the dialog has gone (a key
        # sent sooner would reach Textual inside its escape-sequence wait)
        child.expect("no metrics reported yet")
        child.send("\x03")  # Ctrl+C: the same question, not "press ctrl+q to quit"
        child.expect("leave it running")
        child.send("l")
        child.expect("goes on in the background")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    rec = show_json(store)
    try:
        assert rec["status"] == "running"  # left running, as chosen
    finally:
        import signal

        pid = rec.get("pid")
        if pid:
            try:
                os.killpg(pid, signal.SIGINT)
            except ProcessLookupError:
                pass
