"""Every capture of real training output (tests/corpus), replayed as a real child process
under ``wattui record``: the session's final accuracy, best accuracy and epochs are the
framework's own (truth.json)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_replay import list_captures, load_capture, replay_argv  # noqa: E402

CAPTURES = list_captures()

# Figures a capture's output never shows whole, so nothing reading the output can have them;
# for these the figure the output does show is expected (and the test checks that the truth's
# figure is really absent from the output, so the exception cannot hide a parsing error).
NOT_PRINTED = {
    ("lightning_rich_pipe", "best_accuracy"): "Rich on a pipe draws once, at exit: only the "
    "last epoch's figures are printed",
    ("lightning_tqdm_pty", "final_accuracy"): "tqdm cuts the bar's postfix at the terminal's "
    "width: the last val_acc is never printed whole",
}


def printed(cap, key: str) -> list[float]:
    """The figures printed as ``key=0.59`` / ``key: 0.590``, in order."""
    text = (cap.stdout_bytes() + cap.stderr_bytes()).decode("utf-8", "replace")
    return [float(x) for x in re.findall(rf"{re.escape(key)}[=:]\s*([0-9]+\.[0-9]+)", text)]


# Half a unit of the last printed digit: 3 decimals at worst (Lightning's .3f, a percentage
# printed with one decimal); the truth is the framework's unrounded figure.
TOL = 5.1e-4


@pytest.mark.parametrize("name", CAPTURES)
@pytest.mark.slow
def test_capture_replayed_under_record(tmp_path, name):
    cap = load_capture(name)
    truth = cap.truth
    store = tmp_path / "store"
    speed = max(1.0, cap.duration / 3.0)  # keep its rhythm, in about 3 s
    p = subprocess.run(
        [sys.executable, "-m", "wattui", "record", "--simulate", "1", "--store", str(store),
         "--", *replay_argv(name, speed=speed)],
        capture_output=True, timeout=300,
    )
    assert p.returncode == (cap.meta.get("exit_code") or 0), p.stderr[-2000:]
    show = subprocess.run(
        [sys.executable, "-m", "wattui", "show", "--store", str(store), "--format", "json"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    rec = json.loads(show.stdout)
    tol = TOL
    want = {"final_accuracy": truth["final_accuracy"], "best_accuracy": truth["best_accuracy"]}
    for figure in want:
        if (name, figure) in NOT_PRINTED:
            shown = printed(cap, truth["accuracy_key"])
            assert shown and all(abs(x - want[figure]) > tol for x in shown), shown
            want[figure] = shown[-1] if figure == "final_accuracy" else max(shown)
    got = {k: rec.get(k) for k in ("accuracy", "best_accuracy", "epochs_done", "total_epochs")}
    msg = f"{name}: got {got}, want {want}, epochs {truth['epochs_done']}"
    assert rec["accuracy"] == pytest.approx(want["final_accuracy"], abs=tol), msg
    assert rec["best_accuracy"] == pytest.approx(want["best_accuracy"], abs=tol), msg
    assert rec["epochs_done"] == truth["epochs_done"], msg
    if rec["total_epochs"] is not None:  # when the output says it, it is right
        assert rec["total_epochs"] == truth["total_epochs"], msg


def test_the_corpus_is_there():
    assert len(CAPTURES) >= 5
