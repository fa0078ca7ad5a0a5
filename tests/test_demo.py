"""`wattui demo` and the sample training run, end to end as real subprocesses (CPU only)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "sample_runs" / "train.py"
SAMPLE_STORE = ROOT / "sample_runs" / "store"
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+) loss (\d+\.\d+) val_accuracy (0\.\d+|1\.0+)$", re.M)
TINY = ["--train-size", "400", "--val-size", "100", "--batch-size", "50"]

pytest.importorskip("torch")


def _env() -> dict:
    env = dict(os.environ)
    env.pop("WATTUI_CHANNEL_DIR", None)  # not under a recorder of the test run
    env.pop("WATTUI_SESSION", None)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _run(cmd: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT, **kw
    )


@pytest.mark.slow
def test_train_script_prints_epoch_lines():
    p = _run([sys.executable, str(TRAIN), "--model", "mlp", "--epochs", "2", *TINY])
    assert p.returncode == 0, p.stderr
    lines = EPOCH_LINE.findall(p.stdout)
    assert [(e, n) for e, n, _, _ in lines] == [("1", "2"), ("2", "2")], p.stdout
    for _, _, loss, acc in lines:
        assert float(loss) > 0
        assert 0.0 <= float(acc) <= 1.0


@pytest.mark.parametrize("model", ["cnn", "wide-cnn"])
@pytest.mark.slow
def test_train_models_run(model):
    p = _run(
        [
            sys.executable,
            str(TRAIN),
            "--model",
            model,
            "--epochs",
            "1",
            "--train-size",
            "100",
            "--val-size",
            "50",
        ]
    )
    assert p.returncode == 0, p.stderr
    assert len(EPOCH_LINE.findall(p.stdout)) == 1, p.stdout
    assert f"model {model}" in p.stdout


@pytest.mark.slow
def test_train_runs_without_wattui(tmp_path):
    """The training module is copy-pasteable: with wattui unimportable it still trains."""
    copy = tmp_path / "demo_train.py"
    shutil.copy(ROOT / "wattui" / "demo_train.py", copy)
    code = (
        "import sys, runpy; sys.modules['wattui'] = None; "
        f"sys.argv = ['demo_train.py', '--model', 'mlp', '--epochs', '1', {', '.join(map(repr, TINY))}]; "
        f"runpy.run_path({str(copy)!r}, run_name='__main__')"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert len(EPOCH_LINE.findall(p.stdout)) == 1, p.stdout


def test_data_is_seeded_and_split():
    from wattui import demo_train

    x1, y1 = demo_train.make_data(64, seed=3)
    x2, y2 = demo_train.make_data(64, seed=3)
    x3, _ = demo_train.make_data(64, seed=4)
    assert x1.shape == (64, 3, 16, 16)
    assert (x1 == x2).all() and (y1 == y2).all()
    assert not (x1 == x3).all()
    assert len(set(y1.tolist())) > 1


def test_demo_parser_and_command(monkeypatch):
    from wattui.cli import build_parser, demo

    args = build_parser().parse_args(
        ["demo", "--headless", "--simulate", "--model", "mlp", "--epochs", "3"]
    )
    assert args.cmd == "demo" and args.headless and args.simulate == 1
    cmd = demo.train_command(args)
    assert cmd[:2] == [sys.executable, str(TRAIN)]
    assert cmd[2:] == ["--model", "mlp", "--epochs", "3"]
    # A non-editable install has no sample_runs/: the copy inside the package is used.
    monkeypatch.setattr(demo, "train_script", lambda: None)
    assert demo.train_command(args)[:3] == [sys.executable, "-m", "wattui.demo_train"]
    assert demo.choose_simulate(2)[0] == 2


def test_demo_without_gpu_simulates(tmp_path):
    """No NVML here (or a stubbed-out one): the demo falls back to a simulated GPU."""
    from wattui.cli import demo

    simulate, why = demo.choose_simulate(None, rapl_root=str(tmp_path))
    if simulate is None:
        pytest.skip("this machine has a real GPU")
    assert simulate == 1 and why.startswith("SIMULATED")


@pytest.mark.slow
def test_demo_headless_end_to_end(tmp_path):
    store = tmp_path / "store"
    p = _run(
        [
            sys.executable,
            "-m",
            "wattui",
            "demo",
            "--headless",
            "--simulate",
            "1",
            "--epochs",
            "2",
            "--model",
            "mlp",
            "--train-size",
            "400",
            "--store",
            str(store),
        ]
    )
    assert p.returncode == 0, p.stderr
    assert "SIMULATED" in p.stderr
    assert "wattui demo: ok: session" in p.stderr, p.stderr
    assert len(EPOCH_LINE.findall(p.stdout)) == 2, p.stdout
    show = _run([sys.executable, "-m", "wattui", "show", "--store", str(store), "--format", "json"])
    assert show.returncode == 0, show.stderr
    rec = json.loads(show.stdout)
    assert rec["status"] == "finished"
    assert rec["simulated"] is True
    assert rec["energy_j"] is not None and rec["energy_j"] > 0
    assert rec["accuracy"] is not None and 0.0 <= rec["accuracy"] <= 1.0
    # the final epoch's accuracy is the final one (not the "best val_accuracy" summary line),
    # and each epoch's accuracy is stored once although it is both reported and printed
    last = EPOCH_LINE.findall(p.stdout)[-1]
    assert rec["accuracy"] == pytest.approx(float(last[3]), abs=6e-5)
    assert rec["accuracy_reports"] == 2 and rec["epochs_done"] == 2
    from wattui.store.reader import find_session

    ev = find_session(store, rec["id"]).events()
    stored = ev.filter((ev["kind"] == "metric") & ev["accuracy"].is_not_null())
    assert stored["source"].to_list() == ["report", "report"]  # the printed copy is not
    assert rec["name"] == "demo mlp"
    assert any("train.py" in part for part in rec["command"])
    # a demo run uses a few Wh: it picks a unit in which SAM is defined, and says so
    assert "SAM in J" in p.stderr
    assert rec["sam_unit"] == "J" and rec["sam"] is not None and not rec["sam_flag"]


def test_sample_sessions_are_readable():
    """The recorded sample sessions open at once: finished, simulated, with energy and accuracy."""
    if not SAMPLE_STORE.is_dir():
        pytest.skip("sample_runs/store not recorded")
    p = _run(
        [
            sys.executable,
            "-m",
            "wattui",
            "sessions",
            "--store",
            str(SAMPLE_STORE),
            "--format",
            "json",
        ]
    )
    assert p.returncode == 0, p.stderr
    recs = json.loads(p.stdout)
    assert len(recs) >= 3
    assert {r["name"].split()[0] for r in recs} >= {"mlp", "cnn", "wide-cnn"}
    for r in recs:
        assert r["status"] == "finished", r["id"]
        assert r["simulated"] is True, r["id"]
        assert r["energy_j"] and r["energy_j"] > 0, r["id"]
        assert r.get("accuracy") is not None, r["id"]
        # re-recorded so that the last epoch's accuracy is the final one, not the best
        out = (SAMPLE_STORE / "sessions" / r["id"] / "output.log").read_text()
        epochs = EPOCH_LINE.findall(out)
        assert r["accuracy"] == pytest.approx(float(epochs[-1][3]), abs=6e-5), r["id"]
        best = max(float(e[3]) for e in epochs)
        assert r["best_accuracy"] == pytest.approx(best, abs=6e-5), r["id"]
        assert r["epochs_done"] == len(epochs) == r["total_epochs"], r["id"]
        assert r["accuracy_reports"] == len(epochs), r["id"]
        ev = pl.read_parquet(SAMPLE_STORE / "sessions" / r["id"] / "events.parquet")
        stored = ev.filter((pl.col("kind") == "metric") & pl.col("accuracy").is_not_null())
        assert stored.height == len(epochs), r["id"]  # reported and printed: stored once
    size = sum(f.stat().st_size for f in SAMPLE_STORE.rglob("*") if f.is_file())
    assert size < 2_000_000
