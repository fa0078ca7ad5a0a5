"""Every capture of real training output (tests/corpus), replayed as a real child process
under ``wattui record``: the session's final accuracy, best accuracy and epochs are the
framework's own (truth.json)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_replay import list_captures, load_capture, replay_argv  # noqa: E402

CAPTURES = list_captures()


# Half a unit of the last printed digit: 3 decimals at worst (Lightning's .3f, a percentage
# printed with one decimal); the truth is the framework's unrounded figure.
TOL = 5.1e-4


@pytest.mark.parametrize("name", CAPTURES)
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
    got = {k: rec.get(k) for k in ("accuracy", "best_accuracy", "epochs_done", "total_epochs")}
    want = {
        "accuracy": truth["final_accuracy"],
        "best_accuracy": truth["best_accuracy"],
        "epochs_done": truth["epochs_done"],
    }
    msg = f"{name}: got {got}, truth {want}"
    assert rec["accuracy"] == pytest.approx(truth["final_accuracy"], abs=tol), msg
    assert rec["best_accuracy"] == pytest.approx(truth["best_accuracy"], abs=tol), msg
    assert rec["epochs_done"] == truth["epochs_done"], msg
    if rec["total_epochs"] is not None:  # when the output says it, it is right
        assert rec["total_epochs"] == truth["total_epochs"], msg


def test_the_corpus_is_there():
    assert len(CAPTURES) >= 5
