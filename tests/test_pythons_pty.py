"""The real app in a real pseudo-terminal under every Python 3.10+ on this machine.

`run_test()` never showed the Textual bug that killed the screens on 3.12/3.13 as they
opened; a real terminal does. For each Python version this finds an interpreter with
wattui's dependencies (this test's own, a venv that ``scripts/pythons`` set up in
``.venvs/X.Y``, or pyenv's/PATH's ``pythonX.Y`` if it has them) and starts the replay,
comparison and live screens in a pty. A version with no interpreter, or none with the
dependencies, is skipped with the reason, unless ``$WATTUI_REQUIRE_PYTHONS`` names it
(``scripts/test`` does, for every version it set up): then it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pythons import ROOT, VERSIONS, interpreter

pexpect = pytest.importorskip("pexpect")

SAMPLE_STORE = ROOT / "sample_runs" / "store"


def spawn(py: str, args: list[str], store: Path, width: int = 100):
    env = dict(os.environ, TERM="xterm-256color", WATTUI_HOME=str(store))
    env["PYTHONPATH"] = str(ROOT)  # this checkout's wattui, whatever the venv holds
    env.pop("NO_COLOR", None)
    return pexpect.spawn(
        py, ["-m", "wattui", *args], env=env, dimensions=(30, width), encoding="utf-8", timeout=60
    )


def quit_cleanly(child, *answers: str) -> None:
    child.send("q")
    for a in answers:
        child.send(a)
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 0, child.before


def expect_screen(child, marker: str) -> None:
    """Wait for ``marker`` on the screen; fail at once if the app died with a traceback."""
    expect_all(child, [marker])


def expect_all(child, markers: list[str]) -> None:
    """Wait until every marker has been drawn, in any order (the header and the table
    repaint apart); fail at once if the app died with a traceback."""
    left = list(markers)
    while left:
        i = child.expect(["Traceback", "ScreenStackError", *left])
        if i < 2:
            try:
                rest = child.read()  # up to EOF: the rest of the traceback
            except pexpect.ExceptionPexpect:
                rest = ""
            pytest.fail(f"the app died as it started: {child.after}{rest[-3000:]}")
        left.pop(i - 2)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.slow
def test_replay_screen_starts_and_quits(version, tmp_path):
    py = interpreter(version)
    first = sorted(p.name for p in (SAMPLE_STORE / "sessions").iterdir())[0]  # re-recorded at times
    child = spawn(py, ["view", "--store", str(SAMPLE_STORE), first], tmp_path)
    try:
        # the GPU table's header, the sample session's simulated GPU row and its status, in
        # whatever order the terminal is painted
        expect_all(child, ["Util", "SIMULATED GPU", "finished"])
        quit_cleanly(child)
    finally:
        child.close(force=True)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.slow
def test_compare_screen_starts_and_quits(version, tmp_path):
    py = interpreter(version)
    child = spawn(py, ["compare", "--store", str(SAMPLE_STORE)], tmp_path, width=160)
    try:
        expect_screen(child, "SAM")
        child.expect("cnn")  # a sample session's name in the table
        quit_cleanly(child)
    finally:
        child.close(force=True)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.slow
def test_live_screen_launches_a_run(version, tmp_path):
    py = interpreter(version)
    script = (
        "import time\nfor i in range(8):\n    print('epoch', i, flush=True)\n    time.sleep(0.25)\n"
    )
    child = spawn(py, ["--simulate", "--", py, "-c", script], tmp_path / "store")
    try:
        expect_screen(child, "Util")
        child.expect("epoch")  # the run's output pane
        child.expect("finished")
        quit_cleanly(child)  # the viewer exits with the run's exit code
    finally:
        child.close(force=True)
