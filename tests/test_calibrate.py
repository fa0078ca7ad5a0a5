"""wattui calibrate: the simulated pipeline recovers known coefficients; refusal is clear."""

import json

import numpy as np
import polars as pl
import pytest

from wattui.estimate import calibrate as C
from wattui.estimate.cli import run_calibrate
from wattui.estimate.predictors import PredictorSet, calibrated_path


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("WATTUI_HOME", str(tmp_path / "home"))


def test_simulated_calibration_recovers_coefficients_within_5pct(tmp_path, capsys):
    out = tmp_path / "sim.json"
    rc = run_calibrate(["--simulate", "--configs", "40", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "SIMULATED" in text and "CV median rel err" in text
    doc = json.loads(out.read_text())
    assert doc["mode"] == "inference" and doc["provenance"]["simulated"] is True
    assert set(doc["models"]) == set(C.LAYERS)
    for kind, (a, b, c) in C.SIMULATED_TRUTH.items():
        fa, fb, fc = doc["models"][kind]["coef"]
        assert fa == pytest.approx(a, rel=0.05), kind
        assert fb == pytest.approx(b, rel=0.05), kind
        assert fc == pytest.approx(c, rel=0.05), kind
        assert doc["models"][kind]["info"]["cv"]["median_rel_err"] < 0.05
    data = pl.read_parquet(out.with_suffix(".parquet"))
    assert data.height == 40 * len(C.LAYERS)
    assert {"layer", "macs", "elements", "energy_j", "passes", "idle_w"} <= set(data.columns)
    assert data["idle_w"][0] == pytest.approx(20.0)
    # the fitted set prices a layer like the truth does
    pset = PredictorSet.load(out)
    a, b, c = C.SIMULATED_TRUTH["conv2d"]
    assert pset.models["conv2d"].predict({"macs": 1e10}) == pytest.approx(a + b * 1e10 ** c,
                                                                          rel=0.02)


def test_default_location_and_training_mode(tmp_path, capsys):
    rc = run_calibrate(["--simulate", "--configs", "8", "--layers", "linear,relu",
                        "--mode", "training"])
    assert rc == 0
    path = calibrated_path("simulated", "training")
    assert path.exists() and path.with_suffix(".parquet").exists()
    assert str(tmp_path / "home" / "predictors") in str(path)
    assert PredictorSet.load(path).mode == "training"


def test_fit_power_exact():
    x = np.logspace(3, 11, 30)
    a, b, c = C.fit_power(x, 0.5 + 3e-9 * x ** 0.9)
    assert (a, b, c) == pytest.approx((0.5, 3e-9, 0.9), rel=1e-3)


def test_refuses_where_no_energy_can_be_measured(tmp_path):
    with pytest.raises(C.CalibrationRefused, match="no energy can be measured on cpu"):
        C.open_counter("cpu", rapl_root=str(tmp_path))


def test_bad_arguments(capsys):
    assert run_calibrate(["--device", "tpu0", "--simulate"]) == 2
    assert "unknown device" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_calibrate(["--simulate", "--layers", "conv3d"])


@pytest.mark.parametrize("mode", ["inference", "training"])
@pytest.mark.slow
def test_real_layer_runs_and_windows(mode):
    """The real measurement path (real layers on the CPU), read through a constant-power
    counter: energy per pass must be power x time per pass, and windows long enough."""
    pytest.importorskip("torch")
    import time

    class ConstantPower:  # a 100 W device, read from the clock
        def read(self):
            return 100.0 * time.perf_counter()

    rng = __import__("random").Random(1)
    for kind in C.LAYERS:
        cfg = C.sample_config(kind, rng, scale=0.02)
        run = C.make_runner(kind, cfg, "cpu", mode)
        energy, passes, per = C.measure(ConstantPower(), run, window_s=0.02, reps=2)
        assert energy > 0 and len(per) == 2
        # every window ran at least window_s: its energy is at least 100 W x 0.02 s
        assert all(j * n >= 100.0 * 0.02 for j, n in zip(per, passes))


def test_estimate_reports_missing_models_of_a_partial_set(tmp_path, capsys):
    pytest.importorskip("torch")
    from wattui.estimate import estimate_model

    out = tmp_path / "lin.json"
    assert run_calibrate(["--simulate", "--configs", "8", "--layers", "linear",
                          "--out", str(out)]) == 0
    import test_estimate_models as models

    res = estimate_model(models.small(), (3, 32, 32), 2, str(out))
    assert res.predictors["device"].startswith("simulated device")
    kinds = {la.type: la for la in res.layers}
    assert kinds["Linear"].energy_j > 0
    assert kinds["Conv2d"].energy_j is None and "lacks" in kinds["Conv2d"].predictor


def test_cold_inputs_cycle_through_more_than_the_cache():
    torch = pytest.importorskip("torch")
    cache = 1 << 20
    src = C.ColdInputs((4, 1000), cache, "cpu", lambda shape, dev: torch.randn(shape))
    assert src.buf.numel() * 4 >= 3 * cache
    seen = [src().data_ptr() for _ in range(src.slots)]
    assert len(set(seen)) == src.slots  # no slice reused before the buffer is gone through
    assert src().data_ptr() == seen[0] and src().shape == (4, 1000)


@pytest.mark.parametrize("mode", ["inference", "training"])
def test_cold_runner_feeds_each_pass_another_input(mode, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(C, "cache_bytes", lambda: 1 << 20)
    seen = []
    real = C._module_and_input

    def spy(kind, cfg, operand=None):
        layer, shape, dtype = real(kind, cfg, operand)

        def fn(x):
            seen.append((x.data_ptr(), x.requires_grad))
            return layer(x)
        return fn, shape, dtype

    monkeypatch.setattr(C, "_module_and_input", spy)
    cfg = {"batch_size": 2, "input_size": 1000}
    C.make_runner("add", cfg, "cpu", mode, inputs="cold")(5)
    assert len({p for p, _ in seen}) == 5
    assert all(g == (mode == "training") for _, g in seen)
    seen.clear()
    C.make_runner("add", cfg, "cpu", mode)(3)  # hot: one input for every pass
    assert len({p for p, _ in seen}) == 1
    assert torch.is_grad_enabled()
