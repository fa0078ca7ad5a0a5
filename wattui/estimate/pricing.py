"""Which predictor prices which op kind, and how (the documented mapping).

Every traced aten op is one or more :class:`~wattui.estimate.ops.OpCall` items of a kind
(``conv2d``, ``conv2d_depthwise``, ``conv2d_grouped``, ``linear``, ``matmul``, ``maxpool2d``,
``reduce``, ``batch_norm``, ``layer_norm``, ``group_norm``, ``relu``, ``gelu``, ``silu``,
``sigmoid``, ``tanh``, ``softmax``, ``unary``, ``add``, ``mul``, ``copy``, ``embedding``,
``lstm``).
A kind is priced by the set's model of the same name. Where a set lacks it, a documented
stand-in is used (``FALLBACK``): ``matmul`` by ``linear`` on its MACs, elementwise kinds by
the ``relu`` model on their element count; depthwise and grouped convolutions have **no**
stand-in (the dense cost per MAC is ~30x too low for them). Anything else is *unpriced*: it
is counted, listed, and makes the total a lower bound (``partial``).
"""

from __future__ import annotations

from wattui.estimate.ops import UNPRICED, OpCall
from wattui.estimate.predictors import PredictorSet

ELEMENTWISE = ("reduce", "batch_norm", "layer_norm", "group_norm", "relu", "gelu", "silu",
               "sigmoid", "tanh", "softmax", "unary", "add", "mul", "copy", "embedding")
FALLBACK = {"matmul": "linear", "group_norm": "layer_norm",
            **{k: "relu" for k in ELEMENTWISE if k != "relu"}}


def _elementwise_cfg(cfg: dict) -> dict:
    n = int(cfg.get("elements", 0))
    b = int(cfg.get("batch_size", 1)) or 1
    return {"macs": n, "elements": n, "batch_size": b, "input_size": max(n // b, 1)}


def model_for(kind: str, pset: PredictorSet) -> str | None:
    """The set's model key that prices ``kind`` (itself, a stand-in, or None)."""
    if kind in pset.models:
        return kind
    seen = {kind}
    while kind in FALLBACK:
        kind = FALLBACK[kind]
        if kind in seen:
            return None
        seen.add(kind)
        if kind in pset.models:
            return kind
    return None


def price_op(op: OpCall, pset: PredictorSet) -> tuple[float | None, str]:
    """(cost of one op item in the set's unit, or None if unpriced; what priced it)."""
    if op.kind == UNPRICED:
        return None, f"unpriced (aten.{op.aten})"
    key = model_for(op.kind, pset)
    if key is None:
        return None, f"unpriced ({op.kind}: set '{pset.name}' lacks a model for it)"
    cfg = op.cfg
    if key != op.kind and key in ELEMENTWISE:
        cfg = _elementwise_cfg(cfg)
    cost = max(pset.models[key].predict(cfg), 0.0) * op.times
    label = key if key == op.kind else f"{key} (stand-in for {op.kind})"
    return cost, label
