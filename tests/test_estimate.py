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
    # eager-mode BatchNorm is real work (not folded): priced by its own model
    assert bn.energy_j > 0 and bn.ops == {"batch_norm": 1} and bn.predictor == "batch_norm"
    assert flat.energy_j == 0 and flat.ops == {} and "no compute" in flat.predictor
    assert conv.energy_j > 0 and lin.energy_j > 0 and pool.energy_j > 0
    assert conv.ops == {"conv2d": 1} and pool.ops == {"maxpool2d": 1}
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
    assert attn.type == "MultiheadAttention"
    assert {"linear", "matmul", "softmax"} <= set(attn.ops) and attn.ops["softmax"] == 1
    rows, d, t, h = 2 * 16, 64, 16, 4
    # Q/K/V/out projections (the out projection's bias counted as MACs, the packed in-proj
    # bias is a separate add), then QK^T and scores@V
    assert attn.macs == 4 * rows * d * d + rows * d + 2 * (2 * h * t * t * (d // h))
    assert by_name["mlp.1"].type == "GELU" and by_name["mlp.1"].predictor == "gelu"
    adds = [la for la in res.layers if la.type == "add"]
    assert [la.name for la in adds] == ["Block", "Block"]  # the residual adds, functional
    assert by_name["ln1"].energy_j is not None and by_name["ln1"].energy_j > 0
    assert "attn.out_proj" not in by_name  # priced inside attention, not twice
    assert not res.unsupported and res.total_energy_j > 0


def test_functional_sdpa_and_embedding_with_token_ids():
    ids = torch.zeros(2, 12, dtype=torch.long)
    res = estimate_model(models.tokens(), ids, None)
    types = [la.type for la in res.layers]
    # the reshape of the transposed attention output is a real copy
    assert types == ["Embedding", "Linear", "scaled_dot_product_attention", "copy", "Linear"]
    sdpa = res.layers[2]
    assert sdpa.name == "TokenModel.scaled_dot_product_attention"
    assert sdpa.macs == 2 * (2 * 4 * 12 * 12 * 8) and sdpa.energy_j > 0
    assert sdpa.ops["matmul"] == 2 and sdpa.ops["softmax"] == 1
    assert res.layers[0].predictor == "embedding"
    assert res.batch_size == 2


def test_unpriced_ops_make_the_total_a_lower_bound(capsys):
    res = estimate_model(models.odd(), (5, 10), 2)
    by_type = {la.type: la for la in res.layers}
    assert by_type["Doubler"].energy_j > 0 and by_type["Doubler"].ops == {"mul": 1}
    lstm = by_type["LSTM"]  # one fused kernel on a CPU, priced by the lstm model
    assert lstm.energy_j > 0 and not lstm.unpriced and lstm.ops == {"lstm": 1}
    assert lstm.macs == 2 * 5 * 4 * 10 * (12 + 10)  # seq x batch x 4H x (input + H)
    assert [la.type for la in res.unsupported] == ["RunningSum", "RunningSum", "ConvTranspose1d"]
    assert all(la.energy_j is None for la in res.unsupported)
    assert res.partial and res.unpriced_ops == {"aten.cumsum": 2, "aten.convolution": 1}
    assert res.total_energy_j == pytest.approx(sum(la.energy_j or 0 for la in res.layers))
    assert run_estimate([f"{MODELS}:odd", "--input-shape", "5,10", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "estimated total per forward pass: LOWER BOUND" in out
    assert "PARTIAL" in out and "aten.cumsum x2" in out and "aten.convolution x1" in out
    assert run_estimate([f"{MODELS}:odd", "--input-shape", "5,10", "--batch-size", "2",
                         "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["partial"] is True and doc["total_is"].startswith("lower bound")
    assert doc["unpriced"] == [{"op": "aten.convolution", "count": 1},
                               {"op": "aten.cumsum", "count": 2}]
    assert [la["partial"] for la in doc["layers"]].count(True) == 3


def test_lstm_without_an_lstm_model_is_priced_by_its_cell_ops():
    """A set with no lstm model prices the per-step ops the meta device decomposes it into."""
    seed = PredictorSet.load(SHIPPED["getzner-seed-method"])
    assert "lstm" not in seed.models
    res = estimate_model(models.odd(), (5, 10), 2, seed)
    lstm = {la.type: la for la in res.layers}["LSTM"]
    steps = 2  # seq length (not batch_first)
    assert lstm.ops["linear"] == 2 * steps and lstm.ops["sigmoid"] == 3 * steps
    assert lstm.ops["tanh"] == 2 * steps and lstm.energy_j > 0 and not lstm.unpriced


def test_names_from_the_model_are_sanitised_in_the_table():
    from torch import nn

    from wattui.estimate.result import format_table

    m = nn.Sequential()
    m.add_module("evil\x1b]0;pwned\x07\x1b[2J", nn.Linear(4, 4))
    res = estimate_model(m, (4,), 2, SHIPPED_SET)
    assert res.layers[0].name.startswith("evil\x1b")  # kept as is in the data
    text = format_table(res)
    assert "\x1b" not in text and "\x07" not in text and "evil" in text


def test_complete_estimate_is_not_partial(capsys):
    assert run_estimate([f"{MODELS}:small", "--input-shape", "3,32,32", "--batch-size", "2",
                         "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["partial"] is False and doc["unpriced"] == [] and doc["total_is"] == "complete"


def test_functional_calls_are_priced_like_modules():
    """F.relu / F.max_pool2d / x + y cost what nn.ReLU / nn.MaxPool2d / an add module do."""
    import torch.nn.functional as F
    from torch import nn

    class Mod(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.relu, self.pool = nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2)

        def forward(self, x):
            y = self.conv(x)
            return self.pool(self.relu(y) + y)

    class Fun(Mod):
        def forward(self, x):
            y = self.conv(x)
            return F.max_pool2d(F.relu(y) + y, 2)

    a = estimate_model(Mod(), (3, 32, 32), 4, SHIPPED_SET)
    b = estimate_model(Fun(), (3, 32, 32), 4, SHIPPED_SET)
    assert [la.type for la in b.layers] == ["Conv2d", "relu", "add", "maxpool2d"]
    assert [la.name for la in b.layers[1:]] == ["Fun"] * 3
    assert b.total_energy_j == pytest.approx(a.total_energy_j, rel=1e-9)
    assert not b.partial and b.total_energy_j > b.layers[0].energy_j


def test_convolutions_are_split_by_groups():
    from torch import nn

    m = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1, groups=4),
                      nn.Conv2d(32, 32, 3, padding=1, groups=32))
    res = estimate_model(m, (32, 28, 28), 8, SHIPPED_SET)
    dense, grouped, dw = res.layers
    assert (dense.ops, grouped.ops, dw.ops) == ({"conv2d": 1}, {"conv2d_grouped": 1},
                                                {"conv2d_depthwise": 1})
    assert dense.macs == 8 * 28 * 28 * 32 * (9 * 32 + 1)
    assert dw.macs == 8 * 28 * 28 * 32 * (9 + 1)
    # a depthwise conv runs far slower per MAC than a dense one: never the dense rate
    per_mac = {la.type: la.energy_j / la.macs for la in res.layers}
    assert dw.energy_j / dw.macs > 5 * dense.energy_j / dense.macs, per_mac
    assert dw.predictor == "conv2d_depthwise" and grouped.predictor == "conv2d_grouped"


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


def test_training_mode_prices_forward_and_backward_ops(capsys):
    inf = estimate_model(models.small(), (3, 32, 32), 4, SHIPPED_SET, mode="inference")
    tr = estimate_model(models.small(), (3, 32, 32), 4, SHIPPED_SET, mode="training")
    conv, bn, relu, pool, flat, lin, soft = tr.layers[:7]
    # each layer's backward ops join its row; the first conv needs no input gradient: one
    # conv's worth (weights) plus the bias sum
    assert conv.ops == {"conv2d": 2, "reduce": 1} and conv.macs == 2 * inf.layers[0].macs
    assert lin.ops == {"linear": 3, "reduce": 1}
    assert lin.macs == inf.layers[5].macs + 2 * 4 * 1800 * 10  # two mm, no bias MACs
    # train-mode BatchNorm: the batch statistics pass, the step counter add_, backward x2
    assert bn.ops == {"add": 1, "batch_norm": 2} and bn.energy_j > 3 * inf.layers[1].energy_j
    assert relu.energy_j == pytest.approx(2 * inf.layers[2].energy_j)
    assert {"conv2d_backward", "batch_norm_backward", "relu_backward",
            "maxpool2d_backward", "linear_backward"} <= set(tr.by_kind)
    # what belongs to no layer (the loss's sum and its gradient seed) is grouped apart
    assert {la.type for la in tr.layers[7:]} == {"reduce_backward", "copy_backward"}
    assert all(la.name == "(backward)" for la in tr.layers[7:])
    assert not tr.partial and "backward" in tr.training_method
    assert 1.5 * inf.total_energy_j < tr.total_energy_j < 5 * inf.total_energy_j
    run_estimate([f"{MODELS}:small", "--input-shape", "3,32,32", "--batch-size", "4",
                  "--mode", "training"])
    out = capsys.readouterr().out
    assert "ESTIMATED" in out and "training step" in out and "convolution_backward" in out


def test_lstm_training_backward_is_its_fused_kernel():
    """The CPU runs an LSTM's backward as one fused kernel: the decomposed per-step backward
    ops go to the LSTM row and are priced as two forward kernels, not as (backward) rows."""
    from torch import nn

    class Clf(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.lstm, self.fc = nn.Embedding(50, 8), nn.LSTM(8, 16), nn.Linear(16, 3)

        def forward(self, ids):
            return self.fc(self.lstm(self.emb(ids))[0][-1])

    ids = torch.zeros(6, 4, dtype=torch.long)
    inf = estimate_model(Clf(), ids, None, SHIPPED_SET)
    tr = estimate_model(Clf(), ids, None, SHIPPED_SET, mode="training")
    lstm_inf = {la.type: la for la in inf.layers}["LSTM"]
    lstm_tr = {la.type: la for la in tr.layers}["LSTM"]
    assert lstm_inf.ops == {"lstm": 1} and lstm_tr.ops == {"lstm": 2}
    assert lstm_tr.energy_j == pytest.approx(3 * lstm_inf.energy_j)
    emb = {la.type: la for la in tr.layers}["Embedding"]
    assert emb.ops == {"embedding": 2}  # the gradient still flows below the LSTM
    assert not set(tr.by_kind) & {"sigmoid_backward", "tanh_backward", "mul_backward"}
    assert tr.by_kind["lstm_backward"] == pytest.approx(2 * tr.by_kind["lstm"])
    seed = PredictorSet.load(SHIPPED["getzner-seed-method"])  # no lstm model: decomposed
    lstm_seed = {la.type: la for la in estimate_model(Clf(), ids, None, seed,
                                                      mode="training").layers}["LSTM"]
    assert lstm_seed.ops["linear"] > 2 * 6 and "lstm" not in lstm_seed.ops


def test_training_with_a_training_calibrated_set_prices_forward_only(tmp_path):
    pset = PredictorSet.load(SHIPPED["getzner-xeon-cpu"])
    pset.mode = "training"
    tr = estimate_model(models.small(), (3, 32, 32), 4, pset, mode="training")
    assert not any(la.name == "(backward)" for la in tr.layers)
    assert "calibrated in training mode" in tr.training_method


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
