"""The recorder-facing intake: options, epoch marks, events, final meta, recompute."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import FakeRecorder, wait_until

from wattui.metrics.session_metrics import metrics_from_rows
from wattui.record.intake import EpochTracker, RecorderIntake
from wattui.record.options import MetricOptions, add_metric_options, metric_options_from_args

ROOT = Path(__file__).resolve().parent.parent


def parser():
    p = argparse.ArgumentParser()
    add_metric_options(p)
    return p


def test_options_roundtrip_and_validation(capsys):
    args = parser().parse_args(
        [
            "--metric",
            "top1=Top-1: ([0-9.]+)",
            "--accuracy-key",
            "top1",
            "--sam-unit",
            "wh",
            "--country",
            "fra",
            "--price",
            "0.3",
            "--pue",
            "1.2",
            "--epochs",
            "90",
        ]
    )
    o = metric_options_from_args(args).given()
    assert o["metric_patterns"] == {"top1": "Top-1: ([0-9.]+)"}
    assert o["sam_unit"] == "Wh" and o["country"] == "FRA" and o["total_epochs"] == 90
    assert "sam_alpha" not in o  # not given: defaults apply later
    assert metric_options_from_args(parser().parse_args([])) == MetricOptions()
    for bad in (
        ["--metric", "acc=([0-9"],
        ["--metric", "acc"],
        ["--country", "XX"],
        ["--pue", "0.5"],
        ["--sam-unit", "MJ"],
        ["--data-fraction", "0"],
    ):
        with pytest.raises(SystemExit):
            parser().parse_args(bad)
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "error: argument" in err


def test_epoch_tracker():
    tr = EpochTracker()
    assert tr.add(1, 10.0, 100.0, False) is None
    assert tr.add(1, 12.0, 120.0, True) is None
    assert tr.marks() == [(1, 12.0, 120.0)]  # validated: counts as ended
    assert tr.add(2, 13.0, 130.0, False) == (1, 12.0, 120.0)
    assert tr.marks() == [(1, 12.0, 120.0)]  # epoch 2 still running
    assert tr.add(1.5, 14.0, 140.0, True) is None  # fractional: ignored
    assert tr.add(1, 15.0, 150.0, True) is None  # a late line: ignored
    assert tr.finish() == (2, 13.0, 130.0)
    assert tr.marks() == [(1, 12.0, 120.0), (2, 13.0, 130.0)]


def test_intake_from_output_lines_and_final_meta():
    rec = FakeRecorder()
    it = RecorderIntake(rec, MetricOptions(sam_unit="Wh", carbon_g_per_kwh=400, total_epochs=4))
    for ep in range(1, 4):
        rec.energy = ep * 3600.0 * 10  # 10 Wh per epoch
        it.feed_line(f"Epoch {ep}/4".encode(), 100.0 + ep)
        it.feed_line(f"- loss: 0.3 - val_accuracy: 0.{6 + ep}".encode(), 100.5 + ep)
    it.close()
    kinds = [r["kind"] for r in rec.rows]
    assert kinds.count("epoch_end") == 3 and kinds.count("metric") == 6
    m = it.final_meta()
    assert m["accuracy"] == pytest.approx(0.9) and m["epochs_done"] == 3
    assert m["sam"] == pytest.approx(5 * 0.9**5 / 1.4771212547, rel=1e-6)  # 30 Wh
    assert m["projected_energy_j"] == pytest.approx(4 * 36000.0)
    assert m["co2_g"] == pytest.approx(0.03 * 400) and m["sam_unit"] == "Wh"
    assert "energy_j" not in m
    # the stored rows alone give the same answer, and another unit on demand
    again = metrics_from_rows(rec.rows, 30 * 3600.0, 100.0, {"sam_unit": "Wh"})
    assert again["sam"] == pytest.approx(m["sam"])
    assert again["projected_energy_j"] == pytest.approx(m["projected_energy_j"])
    assert metrics_from_rows(rec.rows, 30 * 3600.0, sam_unit="kWh")["sam"] is None


def test_intake_follows_a_launched_script(tmp_path):
    rec = FakeRecorder()
    chan = tmp_path / "chan"
    it = RecorderIntake(rec, MetricOptions(metrics_file=str(tmp_path / "m.jsonl")))
    it.channel.directory = chan
    env = {**os.environ, **it.child_env(), "PYTHONPATH": str(ROOT)}
    assert env["WATTUI_CHANNEL_DIR"] == str(chan)
    script = textwrap.dedent(
        """
        import json, sys, wattui
        with open(sys.argv[1], "a") as f:
            f.write(json.dumps({"epoch": 1, "val_acc": 0.5}) + "\\n")
        wattui.report(epoch=1, accuracy=0.55, step=10)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "m.jsonl")], env=env)
    it.follow_pid(p.pid)
    p.wait(timeout=60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(rec.rows) < 2:
        it.poll(time.time())
        time.sleep(0.05)
    srcs = sorted(r["source"] for r in rec.rows if r["kind"] == "metric")
    assert srcs == ["file", "report"]
    it.close()
    assert not list(chan.glob("*.watch"))


def test_bad_settings_refused_at_construction():
    with pytest.raises(ValueError):
        RecorderIntake(FakeRecorder(), MetricOptions(sam_beta=-1))
    with pytest.raises(ValueError):
        RecorderIntake(FakeRecorder(), MetricOptions(country="ZZZ"))


@pytest.mark.slow
def test_record_then_project_end_to_end(tmp_path):
    """The real CLI: record a script that reports, then `wattui project` from the store."""
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import time, wattui
            for ep in range(1, 5):
                time.sleep(0.4)
                print(f"Epoch {ep}/8 - loss: {1 / ep:.3f}", flush=True)
                wattui.report(epoch=ep, accuracy=0.5 + ep / 20, total_epochs=8, model="mlp")
            """
        )
    )
    env = {**os.environ, "WATTUI_HOME": str(tmp_path / "store"), "PYTHONPATH": str(ROOT)}
    env.pop("WATTUI_CHANNEL_DIR", None)
    env["XDG_RUNTIME_DIR"] = str(tmp_path)
    run = [sys.executable, "-m", "wattui"]
    p = subprocess.run(
        [
            *run,
            "record",
            "--simulate",
            "1",
            "--sam-unit",
            "Wh",
            "--carbon-intensity",
            "300",
            "--",
            sys.executable,
            str(script),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    p = subprocess.run(
        [*run, "project", "--format", "json", "--price", "0.5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    m = json.loads(p.stdout)
    assert m["accuracy"] == pytest.approx(0.7) and m["epochs_done"] == 4
    assert m["total_epochs"] == 8 and m["model"] == "mlp" and m["sam_unit"] == "Wh"
    assert m["projected_energy_low_j"] <= m["projected_energy_j"] <= m["projected_energy_high_j"]
    assert m["projected_energy_j"] > m["energy_j"]
    assert m["carbon_g_per_kwh"] == 300 and m["cost"] == pytest.approx(m["energy_j"] / 3.6e6 * 0.5)
    meta = json.loads(next((tmp_path / "store").rglob("meta.json")).read_text())
    assert meta["accuracy"] == pytest.approx(0.7) and meta["sam_unit"] == "Wh"
    p = subprocess.run(
        [*run, "project", "--sam-alpha", "2"], env=env, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0 and "alpha=2, beta=5, Wh" in p.stdout, p.stdout + p.stderr


@pytest.mark.slow
def test_record_pid_attach_picks_up_reports_from_before(tmp_path):
    """`wattui record --pid`: a script that reported before the attach; those events arrive."""
    env = {
        **os.environ,
        "WATTUI_HOME": str(tmp_path / "store"),
        "PYTHONPATH": str(ROOT),
        "XDG_RUNTIME_DIR": str(tmp_path),
    }
    env.pop("WATTUI_CHANNEL_DIR", None)
    stop = tmp_path / "stop"
    script = textwrap.dedent(
        """
        import os, sys, time, wattui
        wattui.report(epoch=1, accuracy=0.61, total_epochs=5)   # before any recorder
        print("ready", flush=True)
        deadline = time.time() + 60
        while not os.path.exists(sys.argv[1]) and time.time() < deadline:
            wattui.report(step=1)
            time.sleep(0.05)
        wattui.report(epoch=2, accuracy=0.72)
        time.sleep(1.5)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(stop)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        rec = subprocess.Popen(
            [sys.executable, "-m", "wattui", "record", "--simulate", "1", "--pid", str(child.pid)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # attached: the client saw the .watch marker and flushed its earlier report to its file
        events = tmp_path / "wattui" / f"{child.pid}.ndjson"
        wait_until(lambda: events.exists() and "0.61" in events.read_text(), what="the attach")
        stop.touch()
        child.wait(timeout=60)
        out, err = rec.communicate(timeout=60)
        assert rec.returncode == 0, err
    finally:
        stop.touch()
        child.kill()
    p = subprocess.run(
        [sys.executable, "-m", "wattui", "project", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = json.loads(p.stdout)
    assert m["accuracy"] == pytest.approx(0.72) and m["best_accuracy"] == pytest.approx(0.72)
    assert m["accuracy_reports"] == 2 and m["total_epochs"] == 5  # epoch 1 came from before


def test_progress_bars_are_throttled_and_train_accuracy_does_not_replace_val():
    rec = FakeRecorder()
    it = RecorderIntake(rec)
    it.feed_line(b"Epoch 1/3", 1.0)
    for i in range(50):  # Keras redraws: training accuracy only
        it.feed_line(f"{i}/50 [==>...] - loss: {1 - i / 100:.3f} - accuracy: 0.{10 + i}", 1.0)
    it.feed_line(b"50/50 - loss: 0.5 - accuracy: 0.7 - val_loss: 0.6 - val_accuracy: 0.65", 2.0)
    for i in range(50):
        it.feed_line(f"{i}/50 [==>...] - loss: 0.4 - accuracy: 0.{80 + i % 10}", 2.0 + i / 100)
    for i in range(20):
        it.feed_line(f"{i}/50 [==>...] - loss: 0.{40 + i}", 3.0 + i / 100)
    rows = [r for r in rec.rows if r["kind"] == "metric"]
    accs = [r["accuracy"] for r in rows if r["accuracy"] is not None]
    assert accs[-1] == pytest.approx(0.65)  # later training accuracies are not accuracy
    assert it.summary()["accuracy"] == pytest.approx(0.65)
    assert len(rows) < 110 and it.rejections.counts["log_throttled"] >= 15
