"""The corpus of captured training output loads, its truth is complete, and it replays exactly."""

from __future__ import annotations

import base64
import importlib.util
import json
import math
import subprocess
import sys
import time

import pytest
from conftest import REPO, run_wattui
from corpus_replay import TRUTH_KEYS, list_captures, load_capture, replay_argv


def _capture_specs() -> dict:
    spec = importlib.util.spec_from_file_location(
        "capture_corpus", REPO / "scripts" / "capture_corpus.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.CAPTURES


def test_every_capture_the_script_makes_is_committed():
    assert set(_capture_specs()) == set(list_captures())


@pytest.mark.parametrize("name", list_captures())
def test_capture_loads_and_its_truth_is_complete(name):
    cap = load_capture(name)
    t = cap.truth
    assert [k for k in TRUTH_KEYS if k not in t] == []
    assert cap.chunks, "no output"
    times = [c.t for c in cap.chunks]
    assert times == sorted(times) and times[0] >= 0
    assert all(c.data for c in cap.chunks)

    hist = t["history"]
    assert hist and all(isinstance(a, float) and 0.0 <= a <= 1.0 for a in hist)
    assert t["final_accuracy"] == hist[-1]
    assert math.isclose(t["best_accuracy"], max(hist))
    # One accuracy per epoch, per evaluation ("eval": every N steps), or ("run") one test
    # accuracy after the last epoch.
    unit = t.get("history_unit", "epoch")
    assert unit in ("epoch", "eval", "run")
    if unit == "eval":
        assert len(hist) >= t["epochs_done"]
    else:
        assert len(hist) == (t["epochs_done"] if unit == "epoch" else 1)
    assert isinstance(t["total_epochs"], int) and 1 <= t["epochs_done"] <= t["total_epochs"]
    assert t["epoch_base"] in (0, 1, None)
    assert t["accuracy_scale"] in ("fraction", "percent")
    assert t["accuracy_stream"] in ("stdout", "stderr")
    assert t["source"]

    meta = cap.meta
    assert meta["name"] == name and meta["mode"] in ("pipe", "pty")
    assert meta["exit_code"] == t.get("expected_exit_code", 0)
    for stream in ("stdout", "stderr"):
        assert len(cap.stream_bytes(stream)) == meta["bytes"][stream]
    # The accuracy is printed where the truth says, under the name it gives.
    text = cap.stream_bytes(t["accuracy_stream"]).decode("utf-8", "replace")
    assert t["accuracy_key"] in text
    assert len(json.dumps(t)) < 20_000
    assert (cap.path / "output.jsonl").stat().st_size < 200_000


@pytest.mark.parametrize("name", ["plain_print_buffered", "keras_verbose2_pipe"])
def test_replay_child_emits_the_captured_bytes(name):
    cap = load_capture(name)
    r = subprocess.run(replay_argv(name, speed=0), capture_output=True, timeout=60)
    assert r.returncode == cap.meta["exit_code"]
    assert r.stdout == cap.stdout_bytes()
    assert r.stderr == cap.stderr_bytes()


@pytest.mark.slow
def test_replay_keeps_the_recorded_timing():
    cap = load_capture("plain_print_unbuffered")
    speed = 4.0
    t0 = time.monotonic()
    r = subprocess.run(replay_argv(cap.name, speed=speed), capture_output=True, timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0
    assert r.stdout == cap.stdout_bytes()
    # The child cannot end before its last chunk was due.
    assert cap.duration / speed > 0.5
    assert elapsed >= cap.duration / speed


def test_replay_under_wattui_record_stores_the_output(store):
    cap = load_capture("summary_line")
    r = run_wattui(store, "record", "--simulate", "--", *replay_argv(cap.name, speed=0))
    assert r.returncode == 0, r.stderr
    (session,) = (store / "sessions").iterdir()
    out = (session / "output.log").read_bytes()
    for line in cap.stdout_bytes().splitlines():
        assert line in out


def test_unknown_capture_is_a_one_line_error():
    r = subprocess.run(
        [sys.executable, str(REPO / "tests" / "corpus_replay.py"), "no-such-capture"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no-such-capture" in r.stderr


def test_bytes_that_are_not_utf8_round_trip(tmp_path):
    raw = b"epoch 1 \xff\xfe val_acc 0.5\r"
    d = tmp_path / "odd"
    d.mkdir()
    recs = [
        {"t": 0.0, "stream": "stderr", "b64": base64.b64encode(raw).decode()},
        {"t": 0.25, "stream": "stdout", "data": "done\n"},
    ]
    (d / "output.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (d / "truth.json").write_text("{}")
    assert list_captures(tmp_path) == ["odd"]
    cap = load_capture("odd", tmp_path)
    assert cap.stderr_bytes() == raw and cap.stdout_bytes() == b"done\n"
    assert cap.duration == 0.25
