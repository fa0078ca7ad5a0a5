"""The memory floors (wattui/estimate/memory.py): weighted layers of a model whose weights
exceed the device's cache are priced at least at streaming their weights; ops of a model whose
activations exceed it, at least at moving their activations through memory."""

import json

import pytest

from wattui.estimate import memory
from wattui.estimate.estimate import estimate_model
from wattui.estimate.predictors import SHIPPED, Predictor, PredictorSet
from wattui.estimate.result import format_table

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

PER_BYTE = 1e-10  # the test set's copy: 1e-10 per byte of traffic, 8 bytes per element


def pset(cache_bytes: int | None, per_mac: float = 1e-15) -> PredictorSet:
    prov = {"cache_bytes": cache_bytes} if cache_bytes else {}
    return PredictorSet("t", "dev", "inference", {
        "linear": Predictor("power", ["macs"], [0.0, per_mac, 1.0]),
        "copy": Predictor("power", ["elements"], [0.0, 8 * PER_BYTE, 1.0]),
        "relu": Predictor("power", ["elements"], [0.0, 1e-12, 1.0]),
    }, prov, unit="s")


def mlp(width: int, depth: int):
    return nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])


def linears(res):
    return [la for la in res.layers if la.type == "Linear"]


def test_cost_per_byte_is_the_copy_model_marginal_cost():
    assert memory.cost_per_byte(pset(1 << 20)) == pytest.approx(PER_BYTE)
    no_copy = PredictorSet("t", "dev", "inference", {}, {"cache_bytes": 1 << 20})
    assert memory.cost_per_byte(no_copy) is None


def test_weights_past_the_cache_are_priced_at_streaming_them():
    width, depth = 512, 8  # 1 MiB of weights per layer, 8 MiB in all
    model = mlp(width, depth)
    res = estimate_model(model, (width,), batch_size=4, predictors=pset(4 << 20))
    layer_bytes = (width * width + width) * 4
    for la in linears(res):
        assert la.energy_j == pytest.approx(layer_bytes * PER_BYTE)
        assert memory.KIND in la.predictor
    assert res.memory_floor["layers"] == depth
    assert res.memory_floor["weight_bytes"] == depth * layer_bytes
    compute = depth * 4 * width * width * 1e-15
    assert res.memory_floor["added"] == pytest.approx(depth * layer_bytes * PER_BYTE - compute)
    assert res.by_kind[memory.KIND] == pytest.approx(res.memory_floor["added"])
    assert "streaming their weights" in format_table(res)
    assert json.loads(json.dumps(res.to_dict()))["memory_floor"]["layers"] == depth


def test_no_floor_when_the_weights_fit_or_a_layer_alone_does_not():
    model = mlp(512, 8)
    plain = [la.energy_j for la in linears(estimate_model(model, (512,), batch_size=4,
                                                          predictors=pset(None)))]
    assert plain and max(plain) < 512 * 512 * 4 * PER_BYTE / 10  # far below the floor
    fits = estimate_model(model, (512,), batch_size=4, predictors=pset(64 << 20))
    assert fits.memory_floor is None
    assert [la.energy_j for la in linears(fits)] == plain
    # every layer bigger than the cache: calibration streamed such layers already
    big = estimate_model(model, (512,), batch_size=4, predictors=pset(512 << 10))
    assert big.memory_floor is None
    # no cache size known for the set's device: no floor
    assert estimate_model(model, (512,), batch_size=4, predictors=pset(None)).memory_floor is None


def test_compute_above_the_floor_is_kept():
    model = mlp(512, 8)
    res = estimate_model(model, (512,), batch_size=4096, predictors=pset(4 << 20, 1e-12))
    assert res.memory_floor is None  # 4096 rows: every layer is compute-bound
    assert linears(res)[0].energy_j == pytest.approx(4096 * 512 * 512 * 1e-12, rel=0.01)


def test_shipped_sets_say_which_cache_they_describe():
    for name in SHIPPED:
        prov = json.loads(SHIPPED[name].read_text())["provenance"]
        assert prov["cache_bytes"] > 1 << 20 and prov["cache_source"]


def relus(depth: int, pool: bool = False):
    return nn.Sequential(*([nn.ReLU(), nn.MaxPool2d(2)] if pool else []),
                         *[nn.ReLU() for _ in range(depth)])


SHAPE = (32, 128, 128)  # 2 MiB a tensor; after the pool 512 KiB


def test_ops_of_a_model_with_an_activation_past_the_cache_are_priced_at_moving_theirs():
    depth, n = 8, 32 * 64 * 64
    res = estimate_model(relus(depth, pool=True), SHAPE, batch_size=1,
                         predictors=pset(1 << 20))
    rows = [la for la in res.layers if la.type == "ReLU"]
    assert len(rows) == depth + 1
    # the first ReLU moves 4 MiB, more than the cache: calibrated streaming, no floor
    assert rows[0].energy_j == pytest.approx(4 * n * 1e-12)
    assert memory.ACT_KIND not in rows[0].predictor
    for la in rows[1:]:  # 512 KiB in and out: the relu model's 1e-12 per element is far
        assert la.energy_j == pytest.approx(8 * n * PER_BYTE)  # below 8 bytes x 1e-10
        assert la.predictor == f"relu, {memory.ACT_KIND}"
    assert res.activation_floor["ops"] == depth
    assert res.activation_floor["added"] == pytest.approx(depth * n * (8 * PER_BYTE - 1e-12))
    assert res.by_kind[memory.ACT_KIND] == pytest.approx(res.activation_floor["added"])
    assert sum(res.by_kind.values()) == pytest.approx(res.total_energy_j)  # no double count
    assert "moving their activations" in format_table(res)
    assert json.loads(json.dumps(res.to_dict()))["activation_floor"]["ops"] == depth


def test_no_activation_floor_where_every_activation_fits_the_cache():
    depth, n = 64, 32 * 1024  # 128 KiB tensors: 16 MiB of traffic, each under 1 MiB
    plain = estimate_model(relus(depth), (n,), batch_size=1, predictors=pset(None))
    assert plain.activation_floor is None
    assert plain.total_energy_j == pytest.approx(depth * n * 1e-12)
    fits = estimate_model(relus(depth), (n,), batch_size=1, predictors=pset(1 << 20))
    assert fits.activation_floor is None and fits.total_energy_j == plain.total_energy_j
    pooled = estimate_model(relus(4, pool=True), SHAPE, batch_size=1, predictors=pset(4 << 20))
    assert pooled.activation_floor is None  # 2 MiB, the largest, fits a 4 MiB cache


def test_activation_floor_counts_activations_not_weights():
    width = 1024  # 4 MiB of weights, one row of activations
    model = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(8), nn.Flatten(),
                          nn.Linear(16 * 64, width))
    res = estimate_model(model, (16, 64, 64), batch_size=1, predictors=pset(128 << 10))
    lin = linears(res)[0]
    # weights (4 MiB) exceed the 128 KiB cache: not the floors' business; activations:
    # 1 row x (1024 in + 1024 out) x 4 bytes
    assert lin.energy_j == pytest.approx(2 * width * 4 * PER_BYTE)
    assert res.memory_floor is None
