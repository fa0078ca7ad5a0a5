"""Score a predictor set on whole architectures (AlexNet, VGG11, VGG13) and their layers.

Each measured (architecture, batch size) is rebuilt on the meta device, estimated with
:func:`estimate_model`, and compared with the measured energy per forward pass.
"""

from __future__ import annotations

import numpy as np

from wattui.estimate import archs, seed_data
from wattui.estimate.estimate import estimate_model
from wattui.estimate.predictors import PredictorSet

ARCHS = ("alexnet", "vgg11", "vgg13")


def _estimate(arch: str, batch: int, pset: PredictorSet, cache: dict):
    key = (arch, batch, pset.name)
    if key not in cache:
        import torch

        with torch.device("meta"):
            model = archs.build(arch)
        cache[key] = estimate_model(model, (3, 224, 224), batch, pset)
    return cache[key]


def whole_model(pset: PredictorSet, data_path=None, cache: dict | None = None) -> dict:
    """Per architecture: n, median and mean absolute relative error, R^2; plus pooled R^2."""
    cache = {} if cache is None else cache
    df = seed_data.load_architectures(data_path)
    out: dict = {}
    ys, ps = [], []
    for arch in ARCHS:
        sub = df.filter(df["architecture"] == arch)
        y = sub["energy_j"].to_numpy()
        p = np.array([_estimate(arch, b, pset, cache).total_energy_j
                      for b in sub["batch_size"].to_list()])
        rel = np.abs(p - y) / y
        out[arch] = {"n": int(len(y)), "median_rel_err": float(np.median(rel)),
                     "mean_rel_err": float(np.mean(rel)),
                     "median_signed_rel_err": float(np.median((p - y) / y)),
                     "r2": float(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))}
        ys.append(y)
        ps.append(p)
    y, p = np.concatenate(ys), np.concatenate(ps)
    out["pooled_r2"] = float(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))
    return out


def layers_in_architectures(pset: PredictorSet, data_path=None,
                            cache: dict | None = None) -> dict:
    """Per layer type, on layers measured inside the architectures: median/mean rel. error."""
    cache = {} if cache is None else cache
    df = seed_data.load_architectures(data_path, layer_idx=None)
    df = df.filter(df["layer_idx"] > 0)
    errs: dict[str, list[float]] = {}
    for row in df.iter_rows(named=True):
        res = _estimate(row["architecture"], row["batch_size"], pset, cache)
        layer = res.layers[row["layer_idx"] - 1]
        if layer.type != row["module"]:
            raise RuntimeError(f"layer order mismatch in {row['architecture']}: "
                               f"{layer.type} vs {row['module']}")
        if layer.energy_j is None or layer.type not in ("Conv2d", "Linear", "MaxPool2d", "ReLU"):
            continue
        errs.setdefault(layer.type, []).append(abs(layer.energy_j - row["energy_j"])
                                               / row["energy_j"])
    return {k: {"n": len(v), "median_rel_err": float(np.median(v)),
                "mean_rel_err": float(np.mean(v))} for k, v in sorted(errs.items())}
