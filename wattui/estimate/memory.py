"""Weights that do not stay in cache: the memory-bound floor of a weighted layer.

Op predictors are calibrated by repeating one layer, so its weights sit in the last-level
cache after the first pass. In a whole model whose weights together exceed that cache, each
weighted layer reads its weights from memory on every pass instead. A layer then costs at
least the time (or energy) of streaming its weights: the roofline's memory side, priced by
the set's own ``copy`` model on a tensor far past any cache. The floor applies only where
calibration could not have seen it: the model's weights exceed the cache while the layer's
own weights fit in it (a layer bigger than the cache was calibrated streaming already).

Activations get the same treatment (:class:`ActivationFloor`): calibration repeats one op on
one input and reuses its output's memory, while inside a model with an activation larger than
the cache the allocator keeps handing out fresh pages (on Linux, new memory the kernel
zero-fills page by page: on random architectures at batch 8 the kernel took 18-50 % of the
CPU time where the largest activation was 28-72 MiB, 0-8 % under 21 MiB). Each op of such a
model whose own activations fit the cache then costs at least moving them (inputs and
outputs, not weights) at the same ``copy`` cost per byte, measured under those conditions:
tensors past any cache, outputs in fresh pages.

The cache size is that of the device the set describes, in its provenance (``cache_bytes``,
with ``cache_source``). A set without it gets no floor.
"""

from __future__ import annotations

from dataclasses import dataclass

from wattui.estimate import pricing
from wattui.estimate.macs import FLOAT_BYTES
from wattui.estimate.ops import OpCall
from wattui.estimate.predictors import PredictorSet

WEIGHTED_KINDS = ("linear", "matmul", "conv2d", "conv2d_grouped", "conv2d_depthwise", "lstm")
KIND = "weights from memory"  # what the floor added, in by_kind and the priced-by column
ACT_KIND = "activations from memory"  # the same for the activation floor
STREAM_ELEMENTS = 1 << 25  # 128 MiB of float32 copied: far past any last-level cache
READ_WRITE_BYTES = 8  # a copy reads 4 bytes and writes 4 per float32 element


def cache_bytes(pset: PredictorSet) -> int | None:
    value = pset.provenance.get("cache_bytes")
    try:
        return int(value) if value else None
    except (TypeError, ValueError):
        return None


def _copy_cost(pset: PredictorSet, n: int) -> float | None:
    cfg = {"elements": n, "macs": n, "batch_size": 1, "input_size": n,
           "bytes": n * READ_WRITE_BYTES}
    cost, _ = pricing.price_op(OpCall("copy", cfg), pset)
    return cost


def cost_per_byte(pset: PredictorSet) -> float | None:
    """The set's marginal cost of moving one byte through memory (its unit per byte), from
    its ``copy`` model between two sizes far past any cache; None without one."""
    n = STREAM_ELEMENTS
    small, big = _copy_cost(pset, n), _copy_cost(pset, 2 * n)
    if small is None or big is None or big <= small:
        return None
    return (big - small) / (n * READ_WRITE_BYTES)


@dataclass(frozen=True)
class WeightFloor:
    """The floor of one model's weighted layers: its set's cache and cost per byte."""

    cache_bytes: int
    per_byte: float

    def of(self, layer_weight_bytes: int, ops: list[OpCall]) -> float | None:
        """Least cost of one weighted layer's ops when its weights come from memory each
        pass, or None where the floor does not apply. Backward passes read the weights
        again and write their gradients: two more streams."""
        if (not 0 < layer_weight_bytes <= self.cache_bytes
                or not any(o.kind in WEIGHTED_KINDS for o in ops)):
            return None
        streams = 1 + (2 if any(o.backward for o in ops) else 0)
        return streams * layer_weight_bytes * self.per_byte


def weight_floor(pset: PredictorSet, model_weight_bytes: int) -> WeightFloor | None:
    """The floor for a model with ``model_weight_bytes`` of weights priced by ``pset``, or
    None when its weights fit the set's cache (or the set lacks a cache size or a copy
    model)."""
    return _floor(WeightFloor, pset, model_weight_bytes)


def _floor(cls, pset: PredictorSet, model_bytes: int):
    """``cls(cache, cost per byte)`` where ``model_bytes`` exceed the set's cache and the set
    has a cache size and a copy model, else None."""
    llc = cache_bytes(pset)
    if not llc or model_bytes <= llc:
        return None
    per_byte = cost_per_byte(pset)
    return None if per_byte is None else cls(llc, per_byte)


def activation_bytes(op: OpCall) -> int:
    """Bytes of activations one op item reads and writes (weights excluded), times its
    multiplier."""
    cfg = op.cfg
    return int(cfg.get("act_bytes", cfg.get("bytes", 0)) * op.times)


@dataclass(frozen=True)
class ActivationFloor:
    """The floor of one model's ops whose activations come from and go to memory."""

    cache_bytes: int
    per_byte: float

    def of(self, op: OpCall) -> float | None:
        """Least cost of one op item, or None where the floor does not apply: an op whose
        activations exceed the cache was calibrated streaming them already."""
        n = activation_bytes(op)
        if not 0 < n <= self.cache_bytes * op.times:
            return None
        return n * self.per_byte


def largest_activation(ops: list[OpCall]) -> int:
    """Bytes of the largest tensor the ops write (float32: 4 bytes per output element)."""
    return max((int(o.cfg.get("elements", 0)) * FLOAT_BYTES for o in ops), default=0)


def activation_floor(pset: PredictorSet, largest_bytes: int) -> ActivationFloor | None:
    """The floor for a model whose largest activation is ``largest_bytes``, or None when it
    fits the set's cache (or the set lacks a cache size or a copy model)."""
    return _floor(ActivationFloor, pset, largest_bytes)
