"""wattui estimate: tracing, pricing, output, CLI behaviour (real torch, meta device)."""

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import test_estimate_models as models  # noqa: E402

from wattui.estimate import estimate_model  # noqa: E402
from wattui.estimate.cli import run_estimate  # noqa: E402
from wattui.estimate.predictors import SHIPPED, PredictorSet, calibrated_path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODELS = "tests/test_estimate_models.py"
SHIPPED_SET = PredictorSet.load(SHIPPED["getzner-xeon-cpu"])


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("WATTUI_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(REPO)


def test_small_model_rows_macs_and_shares():
    res = estimate_model(models.small(), (3, 32, 32), 4)
    assert [la.type for la in res.layers] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
                                              "Flatten", "Linear", "Softmax"]
    conv, bn, relu, pool, flat, lin, soft = res.layers
    assert conv.macs == 4 * 30 * 30 * 8 * (9 * 3 + 1)
    assert pool.macs == 4 * 8 * 4 * 15 * 15 // 2
    assert lin.macs == 4 * (1800 * 10 + 10)
    assert relu.macs == 4 * 8 * 30 * 30
    assert bn.energy_j == 0 and flat.energy_j == 0 and "no energy" in bn.predictor
    assert conv.energy_j > 0 and lin.energy_j > 0 and pool.energy_j > 0
    assert res.total_energy_j == pytest.approx(sum(la.energy_j for la in res.layers))
    assert sum(la.share for la in res.layers) == pytest.approx(1.0)
    assert res.per_sample_j == pytest.approx(res.total_energy_j / 4)
    assert res.predictors["name"] == "getzner-xeon-cpu" and not res.unsupported


def test_alexnet_like_macs_match_the_seed_data_and_energy_is_close():
    res = estimate_model(models.alexnet_like(), (3, 224, 224), 154)
    # per-layer MACs recorded in the Getzner data for AlexNet at batch 154
    recorded = [10852441600, 29814400, 32332608, 34509670272, 21555072, 22486464,
                17279598336, 9993984, 23032801792, 6662656, 15357422080, 6662656, 6386688]
    assert [la.macs for la in res.layers[:13]] == recorded
    lin = [la.macs for la in res.layers if la.type == "Linear"]
    assert lin == [5813936128, 2584322048, 630938000]
    # measured whole model at batch 154 (run 00, median of 3 windows): 220.35 J
    assert res.total_energy_j == pytest.approx(220.35, rel=0.2)
    assert res.by_type["Conv2d"] / res.total_energy_j > 0.7


def test_vgg_like_estimate_scales_with_batch_and_epoch():
    with torch.device("meta"):  # as the CLI builds it: no weights allocated
        vgg = models.vgg_like()
    r8 = estimate_model(vgg, (3, 224, 224), 8, SHIPPED_SET, samples=1000)
    r64 = estimate_model(vgg, (3, 224, 224), 64, SHIPPED_SET)
    assert len([la for la in r8.layers if la.type == "Conv2d"]) == 8
    assert r64.total_energy_j > 6 * r8.total_energy_j
    assert r8.per_epoch_j == pytest.approx(r8.per_sample_j * 1000)
    assert r8.total_macs * 8 == r64.total_macs


def test_transformer_block_attention_is_decomposed():
    res = estimate_model(models.block(), (16, 64), 2)
    by_name = {la.name: la for la in res.layers}
    attn = by_name["attn"]
    assert attn.type == "MultiheadAttention" and attn.predictor.startswith("linear+softmax")
    rows, d, t, h = 2 * 16, 64, 16, 4
    assert attn.macs == 4 * rows * (d * d + d) + 2 * (2 * h * t * t * (d // h))
    assert by_name["mlp.1"].type == "GELU" and "relu" in by_name["mlp.1"].predictor
    assert by_name["ln1"].energy_j is not None and by_name["ln1"].energy_j > 0
    assert "attn.out_proj" not in by_name  # priced inside attention, not twice
    assert not res.unsupported and res.total_energy_j > 0


def test_functional_sdpa_and_embedding_with_token_ids():
    ids = torch.zeros(2, 12, dtype=torch.long)
    res = estimate_model(models.tokens(), ids, None)
    types = [la.type for la in res.layers]
    assert types == ["Embedding", "Linear", "scaled_dot_product_attention", "Linear"]
    sdpa = res.layers[2]
    assert sdpa.macs == 2 * (2 * 4 * 12 * 12 * 8) and sdpa.energy_j > 0
    assert res.batch_size == 2


def test_unsupported_layers_are_listed_not_dropped(capsys):
    res = estimate_model(models.odd(), (5, 10), 2)
    assert [la.type for la in res.unsupported] == ["Doubler", "LSTM"]
    assert all(la.energy_j is None for la in res.unsupported)
    assert run_estimate([f"{MODELS}:odd", "--input-shape", "5,10", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "UNSUPPORTED" in out and "LSTM" in out and "Doubler" in out


def test_json_schema(capsys):
    rc = run_estimate([f"{MODELS}:small", "--input-shape", "3,32,32", "--batch-size", "4",
                       "--format", "json", "--samples", "100"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["estimated"] is True and doc["total_energy_j"] > 0
    assert doc["per_epoch_j"] == pytest.approx(doc["per_sample_j"] * 100)
    assert {"name", "device", "mode"} <= set(doc["predictors"])
    assert doc["predictors"]["mode"] == "inference"
    assert doc["unsupported"] == []
    for layer in doc["layers"]:
        assert {"type", "macs", "energy_j", "predictor", "share"} <= set(layer)
    assert sum(la["energy_j"] for la in doc["layers"]) == pytest.approx(doc["total_energy_j"])


def test_meta_tracing_of_a_model_too_big_to_allocate(capsys):
    rc = run_estimate([f"{MODELS}:huge", "--input-shape", "200000", "--batch-size", "8",
                       "--format", "json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["layers"][0]["macs"] == 8 * (200_000 * 200_000 + 200_000)
    assert doc["layers"][0]["params"] == 200_000 * 200_000 + 200_000
    assert doc["total_energy_j"] > 0


def test_real_model_is_left_untouched():
    m = models.small()
    before = [p.detach().clone() for p in m.parameters()]
    m.train()
    estimate_model(m, (3, 32, 32), 2)
    assert m.training and all(p.device.type == "cpu" for p in m.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))


def test_training_mode_scales_inference_predictors(capsys):
    inf = estimate_model(models.small(), (3, 32, 32), 4, mode="inference")
    tr = estimate_model(models.small(), (3, 32, 32), 4, mode="training")
    assert tr.training_factor == 3.0
    assert tr.layers[0].energy_j == pytest.approx(3 * inf.layers[0].energy_j)
    run_estimate([f"{MODELS}:small", "--input-shape", "3,32,32", "--batch-size", "4",
                  "--mode", "training"])
    out = capsys.readouterr().out
    assert "ESTIMATED" in out and "training step" in out and "3 x inference" in out


@pytest.mark.parametrize("spec", [f"{MODELS}:small", "test_estimate_models:small"])
def test_table_says_estimated_and_for_which_device(capsys, spec):
    assert run_estimate([spec, "--input-shape", "3,32,32", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ESTIMATED energy (inference) for device: Intel Xeon Gold 5120")
    assert "getzner-xeon-cpu" in out and "estimated total per forward pass" in out


def test_calibrated_set_for_this_device_is_the_default(capsys):
    from wattui.estimate.devices import current_devices

    pset = PredictorSet.load(SHIPPED["getzner-seed-method"])
    pset.name, pset.device = "my-box", current_devices()[0]
    pset.save(calibrated_path(current_devices()[0], "inference"))
    res = estimate_model(models.small(), (3, 32, 32), 4)
    assert res.predictors["name"] == "my-box"
    res = estimate_model(models.small(), (3, 32, 32), 4, predictors="getzner-xeon-cpu")
    assert res.predictors["name"] == "getzner-xeon-cpu"


@pytest.mark.parametrize("args, needle", [
    (["nope"], "MODEL must be"),
    (["missing.py:f"], "model file not found"),
    ([f"{MODELS}:absent"], "no callable 'absent'"),
    ([f"{MODELS}:not_a_module"], "not a torch.nn.Module"),
    (["no_such_pkg_xyz.mod:f"], "cannot import"),
    ([f"{MODELS}:small", "--predictors", "nonexistent-set"], "unknown predictor set"),
    ([f"{MODELS}:small", "--predictors", "/tmp/none.json"], "not found"),
])
def test_bad_input_one_line_no_traceback(capsys, args, needle):
    argv = [*args, "--input-shape", "3,32,32", "--batch-size", "2"]
    assert run_estimate(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and err.count("\n") == 1


def test_wrong_input_shape_is_reported(capsys):
    assert run_estimate([f"{MODELS}:small", "--input-shape", "3,8,8", "--batch-size", "2"]) == 2
    err = capsys.readouterr().err
    assert "tracing the model" in err and "Traceback" not in err


def test_bad_shape_argument_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        run_estimate([f"{MODELS}:small", "--input-shape", "3,a", "--batch-size", "2"])
    assert exc.value.code == 2
