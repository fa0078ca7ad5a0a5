"""Time calibration (a proxy where no energy counter exists), op kinds beyond the seed's, and
the transfer of their predictors into an energy set."""

import json

import numpy as np
import pytest

from wattui.estimate import calibrate as C
from wattui.estimate import opsets
from wattui.estimate.cli import run_calibrate
from wattui.estimate.predictors import SHIPPED, Predictor, PredictorSet


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("WATTUI_HOME", str(tmp_path / "home"))


def test_cpu_without_counter_refuses_energy_and_points_to_time(monkeypatch, capsys, tmp_path):
    def no_counter(device, rapl_root="/sys/class/powercap"):
        raise C.CalibrationRefused("no energy can be measured on cpu: no RAPL")

    monkeypatch.setattr(C, "open_counter", no_counter)
    pytest.importorskip("torch")
    assert run_calibrate(["--device", "cpu", "--configs", "5", "--layers", "relu"]) == 3
    err = capsys.readouterr().err
    assert "refused" in err and "--method time" in err and err.count("\n") == 1


def test_time_calibration_is_stored_as_a_proxy_in_seconds(tmp_path, capsys):
    """A real (tiny) time calibration of two new op kinds on this CPU."""
    pytest.importorskip("torch")
    out = tmp_path / "t.json"
    rc = run_calibrate(["--device", "cpu", "--method", "time", "--layers", "add,silu",
                        "--configs", "6", "--window", "0.01", "--reps", "1",
                        "--scale", "0.01", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "time-proportional proxy" in text and "NOT measured energy" in text
    assert "a [s]" in text and "idle power" not in text
    doc = json.loads(out.read_text())
    assert doc["unit"] == "s" and doc["provenance"]["method"] == "time"
    assert doc["provenance"]["time_proportional_proxy"] is True
    assert set(doc["models"]) == {"add", "silu"}
    import polars as pl

    data = pl.read_parquet(out.with_suffix(".parquet"))
    assert "time_s" in data.columns and "energy_j" not in data.columns
    assert (data["time_s"] > 0).all() and set(data["unit"]) == {"s"}


def test_estimate_with_a_time_set_says_it_is_not_energy(tmp_path, capsys):
    pytest.importorskip("torch")
    from wattui.estimate.cli import run_estimate

    rc = run_estimate(["tests/test_estimate_models.py:small", "--input-shape", "3,32,32",
                       "--batch-size", "2", "--predictors", "amd-epyc-cpu-time"])
    assert rc == 0
    out = capsys.readouterr().out
    assert out.startswith("ESTIMATED CPU time (a time-proportional proxy for energy, NOT "
                          "energy)")
    assert "est. s/forward pass" in out and "J" not in out and "kWh" not in out
    assert "estimated total per forward pass: " in out and " us" in out
    rc = run_estimate(["tests/test_estimate_models.py:small", "--input-shape", "3,32,32",
                       "--batch-size", "2", "--predictors", "amd-epyc-cpu-time",
                       "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert "NOT energy" in doc["energy_unit"] and doc["predictors"]["unit"] == "s"


@pytest.mark.parametrize("kind", C.OP_KINDS)
def test_new_op_kinds_run_for_real(kind):
    """Each op kind's calibration layer runs on the CPU, forward and forward+backward."""
    pytest.importorskip("torch")
    import random

    rng = random.Random(3)
    cfg = C.sample_config(kind, rng, scale=0.001)
    feat = C.features(kind, cfg)
    assert feat["x"] > 0
    for mode in ("inference", "training"):
        C.make_runner(kind, cfg, "cpu", mode)(2)


def test_sampled_configs_have_consistent_macs():
    import random

    rng = random.Random(0)
    for _ in range(20):
        cfg = C.sample_config("conv2d_depthwise", rng, 0.1)
        f = C.features("conv2d_depthwise", cfg)
        h = (cfg["image_size"] + 2 * cfg["padding"] - cfg["kernel_size"]) // cfg["stride"] + 1
        assert f["macs"] == cfg["batch_size"] * h * h * cfg["in_channels"] * (
            cfg["kernel_size"] ** 2 + 1)


def test_rate_form_is_kept_only_when_cross_validation_prefers_it():
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(40):  # cost per MAC doubles with each doubling of the kernel size
        k = int(rng.choice([1, 3, 5, 7]))
        macs = float(rng.uniform(1e6, 1e9))
        rows.append({"x": macs, "macs": macs, "kernel_size": k, "batch_size": 8,
                     "image_size": 56, "in_channels": 64, "stride": 1})
    y = np.array([1e-5 + 1e-10 * r["macs"] * r["kernel_size"] for r in rows])
    pred, cv = C.fit_rows("conv2d_depthwise", rows, y)
    assert cv["form"] == "rate" and pred.form == "poly" and cv["median_rel_err"] < 0.1
    y = np.array([1e-5 + 1e-10 * r["macs"] ** 0.95 for r in rows])
    pred, cv = C.fit_rows("conv2d_depthwise", rows, y)
    assert cv["form"] == "power" and pred.coef[2] == pytest.approx(0.95, rel=0.01)


def test_transfer_scales_by_the_median_anchor_ratio():
    target = PredictorSet("t", "dev", "inference", {
        "conv2d": Predictor("power", ["macs"], [0.0, 3.0, 1.0]),
        "linear": Predictor("power", ["macs"], [0.0, 3.0, 1.0])}, {})
    source = PredictorSet("s", "here", "inference", {
        "add": Predictor("power", ["elements"], [1e-6, 2e-9, 0.9]),
        "linear": Predictor("power", ["macs"], [0.0, 1.0, 1.0])}, {"measured": "time"},
        unit="s")
    rows = [{"layer": "conv2d", "macs": m, "time_s": m / 50.0} for m in (1e6, 2e6, 3e6)]
    rows += [{"layer": "linear", "macs": 1e6, "time_s": 1e6 / 25.0}]
    k = opsets.transfer(target, source, rows)
    assert k == pytest.approx(150.0)  # median of (150, 150, 150, 75)
    assert target.models["add"].coef == pytest.approx([1.5e-4, 3e-7, 0.9])
    assert target.models["linear"].coef == [0.0, 3.0, 1.0]  # its own model is kept
    assert target.provenance["op_models"]["kinds"] == ["add"]
    assert target.models["add"].info["transferred_from"] == "s"


@pytest.mark.slow
def test_shipped_time_set_matches_its_data():
    """The shipped time set is what its committed data fits to."""
    rows = opsets.load_rows()
    fitted = opsets.time_set(rows)
    shipped = PredictorSet.load(SHIPPED["amd-epyc-cpu-time"])
    assert set(fitted.models) == set(shipped.models)
    for kind, m in shipped.models.items():
        assert fitted.models[kind].coef == pytest.approx(m.coef, rel=1e-6, abs=1e-15), kind


def test_cache_form_captures_the_last_level_cache_cliff():
    """Past the cache, a memory-bound op costs several times more per element: the fit keeps
    the form with memory traffic beyond the cache, and prediction derives that traffic."""
    rng = np.random.default_rng(1)
    cache = 32 * 1024 ** 2
    rows = []
    for _ in range(40):
        n = float(np.exp(rng.uniform(np.log(1e4), np.log(6e7))))
        rows.append({"x": n, "elements": n, "bytes": 8 * n, "batch_size": 8,
                     "input_size": n / 8, "cache_bytes": cache})
    y = np.array([5e-6 + 3e-10 * r["elements"] + 3e-10 * max(0.0, r["bytes"] - cache)
                  for r in rows])
    pred, cv = C.fit_rows("batch_norm", rows, y)
    assert cv["form"] == "cache" and cv["median_rel_err"] < 0.02
    assert pred.info["cache_bytes"] == cache
    big = {"elements": 5e7, "bytes": 4e8}
    assert pred.predict(big) == pytest.approx(5e-6 + 3e-10 * 5e7 + 3e-10 * (4e8 - cache),
                                              rel=0.02)
