"""Which predictor prices which layer type, and how (the documented mapping).

Seed types use their own fitted model. Types without seed data are mapped:

- elementwise work (GELU, SiLU, LeakyReLU, ELU, Hardswish, LayerNorm, GroupNorm, Embedding
  lookups) is priced by the ReLU model on the element count (ReLU's MACs are its elements);
- matmuls (functional, and inside attention) by the Linear model on their MACs;
- attention (``nn.MultiheadAttention``, ``scaled_dot_product_attention``) as the sum of its
  parts: Q/K/V/out projections (Linear), QK^T and scores@V (Linear on MACs), softmax (Softmax);
- BatchNorm2d, AvgPool2d, AdaptiveAvgPool2d and Dropout cost nothing of their own in inference
  (folded or identity); in training they are priced as elementwise work;
- Flatten, Unflatten and Identity never cost anything.

Anything else is *unsupported*: listed, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from wattui.estimate.predictors import PredictorSet

SEED = {"Conv2d": "conv2d", "Linear": "linear", "MaxPool2d": "maxpool2d", "ReLU": "relu",
        "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax"}
ELEMENTWISE = {"GELU", "SiLU", "LeakyReLU", "ELU", "Hardswish", "Hardsigmoid", "Mish",
               "ReLU6", "LayerNorm", "GroupNorm", "Embedding", "Softplus"}
FREE_IN_INFERENCE = {"BatchNorm2d", "BatchNorm1d", "AvgPool2d", "AdaptiveAvgPool2d", "Dropout"}
ALWAYS_FREE = {"Flatten", "Unflatten", "Identity"}
MATMUL_TYPES = {"matmul"}
ATTENTION_TYPES = {"MultiheadAttention", "scaled_dot_product_attention"}
# rule of thumb when only inference predictors exist: backward ~ 2 x forward
TRAINING_FACTOR = 3.0


@dataclass
class Priced:
    energy_j: float | None  # None: unsupported
    predictor: str  # which model priced it, or why it costs nothing / is unsupported


def _elementwise_cfg(cfg: dict) -> dict:
    n = int(cfg.get("elements", 0))
    b = int(cfg.get("batch_size", 1)) or 1
    return {"macs": n, "elements": n, "batch_size": b, "input_size": n // b}


def _run(pset: PredictorSet, key: str, cfg: dict) -> float:
    return max(pset.models[key].predict(cfg), 0.0)


def price(layer_type: str, cfg: dict, parts: list, pset: PredictorSet, mode: str) -> Priced:
    """Energy of one traced layer call in J (per forward pass, or per training step)."""
    factor = TRAINING_FACTOR if mode == "training" and pset.mode == "inference" else 1.0
    models = pset.models
    if layer_type in ALWAYS_FREE:
        return Priced(0.0, "none (no compute)")
    if layer_type in FREE_IN_INFERENCE:
        if mode == "inference":
            return Priced(0.0, "none (no energy of its own in inference)")
        if "relu" in models:
            return Priced(factor * _run(pset, "relu", _elementwise_cfg(cfg)), "relu (elements)")
    if layer_type in SEED and SEED[layer_type] in models:
        key = SEED[layer_type]
        return Priced(factor * _run(pset, key, cfg), key)
    if layer_type in ELEMENTWISE and "relu" in models:
        return Priced(factor * _run(pset, "relu", _elementwise_cfg(cfg)), "relu (elements)")
    if layer_type in MATMUL_TYPES and "linear" in models:
        return Priced(factor * _run(pset, "linear", cfg), "linear (macs)")
    if layer_type in ATTENTION_TYPES and parts and {"linear", "softmax"} <= set(models):
        total = 0.0
        for key, pcfg in parts:
            model = "linear" if key in ("linear", "matmul") else key
            total += _run(pset, model, pcfg)
        return Priced(factor * total, "linear+softmax (decomposed)")
    if layer_type in SEED or layer_type in ELEMENTWISE or layer_type in MATMUL_TYPES \
            or layer_type in ATTENTION_TYPES:
        return Priced(None, f"unsupported (set '{pset.name}' lacks the model for it)")
    return Priced(None, "unsupported")
