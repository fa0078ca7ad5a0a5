"""Shipped predictor files: provenance, and the fit script reproduces them and the docs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wattui.estimate.predictors import SHIPPED, PredictorSet, resolve

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "wattui" / "data" / "getzner"


SEED_KINDS = {"conv2d", "maxpool2d", "linear", "relu", "sigmoid", "tanh", "softmax"}
GETZNER = [n for n in sorted(SHIPPED) if n.startswith("getzner")]


@pytest.mark.parametrize("name", GETZNER)
def test_shipped_sets_carry_provenance(name):
    doc = json.loads(SHIPPED[name].read_text())
    assert doc["name"] == name and doc["mode"] == "inference" and doc["unit"] == "J"
    assert "Xeon" in doc["device"]
    prov = doc["provenance"]
    for key in ("dataset", "device", "measured", "fit_date", "fit_command", "attribution"):
        assert prov.get(key), key
    assert "idle NOT subtracted" in prov["measured"]
    assert SEED_KINDS <= set(doc["models"])
    for kind in SEED_KINDS:
        m = doc["models"][kind]
        assert m["info"]["rows"] > 400 and "test" in m["info"]


def test_op_kinds_in_the_default_set_are_transferred_time_proxies():
    """Kinds the seed never measured come from this project's time calibration, scaled by
    one factor, and say so; the seed kinds are untouched."""
    from wattui.estimate.calibrate import OP_KINDS

    doc = json.loads(SHIPPED["getzner-xeon-cpu"].read_text())
    ops = doc["provenance"]["op_models"]
    assert set(ops["kinds"]) == set(OP_KINDS) == set(doc["models"]) - SEED_KINDS
    assert ops["source"] == "amd-epyc-cpu-time" and ops["k_j_per_s"] > 0
    assert "proxy" in ops["source_measured"] and "NOT measured energy" in ops["source_measured"]
    for kind in OP_KINDS:
        info = doc["models"][kind]["info"]
        assert info["transferred_from"] == "amd-epyc-cpu-time"
        assert "not measured energy" in info["note"]


def test_time_set_is_a_proxy_in_seconds_with_its_device_and_method():
    from wattui.estimate.calibrate import ALL_KINDS

    doc = json.loads(SHIPPED["amd-epyc-cpu-time"].read_text())
    assert doc["unit"] == "s" and "NOT measured energy" in doc["energy_unit"]
    assert "EPYC" in doc["device"]
    prov = doc["provenance"]
    assert prov["method"] == "time" and prov["time_proportional_proxy"] is True
    assert "--method time" in prov["measured"] and "NOT measured energy" in prov["measured"]
    assert set(doc["models"]) == set(ALL_KINDS)
    for kind, m in doc["models"].items():
        assert m["info"]["rows"] >= 15, kind
        assert m["info"]["cv"]["median_rel_err"] < 0.5, kind


def test_shipped_set_meets_the_architecture_target():
    prov = json.loads(SHIPPED["getzner-xeon-cpu"].read_text())["provenance"]
    for arch in ("alexnet", "vgg11", "vgg13"):
        assert prov["architectures"][arch]["median_rel_err"] < 0.15, arch


def test_default_is_the_shipped_cpu_set():
    assert resolve(None, ["no device with a calibrated set"]).name == "getzner-xeon-cpu"


@pytest.mark.skipif(not (DATA / "layers_conv2d.csv").exists(), reason="data copy removed")
@pytest.mark.slow
def test_fit_script_reproduces_shipped_json_and_docs(tmp_path):
    pytest.importorskip("torch")
    from wattui.estimate import refit

    docs = tmp_path / "estimation.md"
    docs.write_text((REPO / "docs" / "estimation.md").read_text())
    assert refit.main(["--out-dir", str(tmp_path), "--docs", str(docs)]) == 0
    for path in SHIPPED.values():
        new, old = PredictorSet.load(tmp_path / path.name), PredictorSet.load(path)
        for kind, m in old.models.items():
            assert new.models[kind].features == m.features
            assert new.models[kind].coef == pytest.approx(m.coef, rel=1e-6, abs=1e-12), kind
        assert new.provenance.get("architectures") == old.provenance.get("architectures")
        assert new.unit == old.unit
    assert docs.read_text() == (REPO / "docs" / "estimation.md").read_text(), \
        "docs/estimation.md is stale: run python scripts/fit_predictors.py"


def _py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_without_torch_estimate_says_how_to_install():
    p = _py("import sys; sys.modules['torch'] = None\n"
            "from wattui.estimate.cli import run_estimate\n"
            "sys.exit(run_estimate(['tests/test_estimate_models.py:small', "
            "'--input-shape', '3,32,32', '--batch-size', '2']))")
    assert p.returncode == 4, p.stderr
    assert p.stderr.strip() == ("wattui estimate needs PyTorch, which is not installed: "
                                "pip install 'wattui[torch]'")


def test_import_does_not_pull_torch_or_textual():
    p = _py("import sys\n"
            "import wattui.estimate, wattui.estimate.cli, wattui.estimate.predictors\n"
            "import wattui.estimate.calibrate, wattui.estimate.result, wattui.estimate.pricing\n"
            "import wattui.estimate.trace, wattui.estimate.macs\n"
            "print('torch' in sys.modules, any(m.startswith('textual') for m in sys.modules))")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "False"]
