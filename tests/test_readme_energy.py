"""The README's "Energy where you already look" snippets, run as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import run_wattui, show_json

ROOT = Path(__file__).resolve().parent.parent
SECTION = "### Energy where you already look"


def _block(lang: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    start = section.index(f"```{lang}\n") + len(f"```{lang}\n")
    return section[start : section.index("```", start)]


def test_measure_snippet_runs_on_simulated_gpus(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTUI_")}
    env.update(PYTHONPATH=str(ROOT), WATTUI_SIMULATE="2", WATTUI_RAPL_ROOT=str(tmp_path / "none"))
    p = subprocess.run(
        [sys.executable, "-c", _block("python")], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("so far ") and float(lines[0].split()[2]) > 0
    energy, duration, simulated = lines[1].split()
    assert float(energy) > 0 and float(duration) > 0 and simulated == "True"
    gpus = [ln.split() for ln in lines[2:]]
    assert [g[0] for g in gpus] == ["0", "1"] and all(g[3] == "simulated" for g in gpus)
    assert sum(float(g[2]) for g in gpus) == pytest.approx(float(energy))


@pytest.mark.slow
def test_export_commands_run_as_written(tmp_path):
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    pytest.importorskip("tensorboard")
    store = tmp_path / "store"
    store.mkdir()
    (tmp_path / "train.py").write_text(
        textwrap.dedent(
            """
            import time, wattui
            for ep in range(1, 4):
                time.sleep(0.3)
                wattui.report(epoch=ep, total_epochs=3, val_acc=0.6 + ep / 10)
            """
        )
    )
    r = run_wattui(store, "record", "--simulate", "--", sys.executable, str(tmp_path / "train.py"))
    assert r.returncode == 0, r.stderr
    env = {"MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true", "WANDB_SILENT": "true"}
    lines = [ln.split("#")[0].strip() for ln in _block("sh").splitlines()]
    lines = [ln for ln in lines if ln]
    assert len(lines) == 5
    for line in lines:
        args = shlex.split(line)
        assert args[0] == "wattui"
        args = [sys.executable if a == "python" else a for a in args[1:]]
        p = subprocess.run(
            [sys.executable, "-m", "wattui", *args],
            env={**os.environ, "WATTUI_HOME": str(store), **env},
            cwd=tmp_path, capture_output=True, text=True, timeout=180,
        )
        assert p.returncode == 0, (line, p.stderr)
    rec = show_json(store)
    assert rec["status"] == "finished"
    csv_text = (tmp_path / "emissions.csv").read_text()
    assert csv_text.startswith("timestamp,project_name,run_id,experiment_id,duration,emissions")
    assert list(tmp_path.glob("mlruns/*/*/metrics/energy_j"))
    assert list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(list((tmp_path / "runs").glob("events.out.tfevents.*"))) == 2  # export + live
    assert re.search(r"2 x SIMULATED GPU|1 x SIMULATED GPU", csv_text)
