"""Fitting calibration data: the power law, and the alternative forms chosen by
cross-validation (rate, roofline, cache), per op kind. numpy only (no torch)."""

from __future__ import annotations

import math

import numpy as np

from wattui.estimate import fit as F
from wattui.estimate.predictors import Predictor


def _ab_for(c: float, x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    a_mat = np.column_stack([np.ones_like(x), x ** c]) / y[:, None]
    (a, b), *_ = np.linalg.lstsq(a_mat, np.ones_like(y), rcond=None)
    resid = float(np.sum((a_mat @ np.array([a, b]) - 1.0) ** 2))
    return float(a), float(b), resid


def fit_power(x: np.ndarray, y: np.ndarray, lo: float = 0.3, hi: float = 1.7) -> tuple:
    """Fit ``y = a + b x^c`` minimising squared relative error. Returns (a, b, c)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    grid = np.linspace(lo, hi, 57)
    best = min(grid, key=lambda c: _ab_for(c, x, y)[2])
    step = grid[1] - grid[0]
    a_, b_ = best - step, best + step  # golden-section refinement
    g = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        c1, c2 = b_ - g * (b_ - a_), a_ + g * (b_ - a_)
        if _ab_for(c1, x, y)[2] < _ab_for(c2, x, y)[2]:
            b_ = c2
        else:
            a_ = c1
    c = (a_ + b_) / 2
    a, b, _ = _ab_for(c, x, y)
    return a, b, c


def power_predictor(base: str, a: float, b: float, c: float, info=None) -> Predictor:
    """``E = a + b * X^c`` as a Predictor of form ``power`` (X: the feature ``base``)."""
    return Predictor("power", [base], [a, b, c], info=dict(info or {}))


# configuration values whose logs may change the cost per unit (the "rate" form)
RATE_PARAMS = {
    "conv2d": ["batch_size", "image_size", "kernel_size", "in_channels", "out_channels",
               "stride"],
    "conv2d_depthwise": ["batch_size", "image_size", "kernel_size", "in_channels", "stride"],
    "conv2d_grouped": ["batch_size", "image_size", "kernel_size", "in_channels", "stride",
                       "groups"],
    "maxpool2d": ["batch_size", "image_size", "kernel_size", "in_channels", "stride"],
    "linear": ["batch_size", "input_size", "output_size"],
    "matmul": ["batch_size", "input_size", "output_size"],
    "lstm": ["batch_size", "seq_len", "input_size", "hidden_size"],
}


def _cache_of(rows: list[dict]) -> float | None:
    """The last-level cache size the rows were measured with, if all agree and it is known."""
    sizes = {r.get("cache_bytes") for r in rows}
    if len(sizes) == 1 and all(r.get("bytes") is not None for r in rows):
        size = sizes.pop()
        return float(size) if size else None
    return None


# kinds that may be memory-bound (small batches, depthwise): also try a roofline-like sum
ROOFLINE = ("conv2d", "conv2d_depthwise", "conv2d_grouped", "linear", "matmul", "lstm")


def _rate_spec(kind: str, base: str):
    params = RATE_PARAMS.get(kind, ["batch_size", "input_size"])
    return F._rate(base, params)


def _cv_errors(rows: list[dict], y: np.ndarray, fit_predict, folds: int = 5,
               seed: int = 0) -> np.ndarray:
    idx = np.random.default_rng(seed).permutation(len(rows))
    errs = []
    for k in range(folds):
        te = idx[k::folds]
        tr = np.setdiff1d(idx, te)
        pred = fit_predict([rows[i] for i in tr], y[tr], [rows[i] for i in te])
        errs.extend(np.abs(pred - y[te]) / y[te])
    return np.array(errs)


def fit_rows(kind: str, rows: list[dict], y: np.ndarray, base: str) -> tuple[Predictor, dict]:
    """The power law ``a + b X^c``; or, where its 5-fold cross-validated median relative error
    is at least 20% lower, the rate form ``c0 + X (c1 + sum ci log p_i)`` or (compute and
    memory-traffic kinds) the roofline-like ``c0 + c1 MACs + c2 bytes``."""
    x = np.array([r["x"] for r in rows], float)

    def power(tr, ytr, te):
        a, b, c = fit_power(np.array([r["x"] for r in tr], float), ytr)
        return a + b * np.array([r["x"] for r in te], float) ** c

    e_pow = _cv_errors(rows, y, power)
    cv = {"folds": 5, "median_rel_err": float(np.median(e_pow)),
          "mean_rel_err": float(np.mean(e_pow)), "form": "power"}
    best = power_predictor(base, *fit_power(x, y))
    if len(rows) < 10:
        return best, cv
    specs = {"rate": _rate_spec(kind, base)}
    if kind in ROOFLINE and all("bytes" in r for r in rows):
        specs["roofline"] = F.Spec("poly", ("macs", "bytes"), loss="relative")
    cache = _cache_of(rows)
    if cache:
        rows = [{**r, "dram_bytes": max(0.0, r["bytes"] - cache)} for r in rows]
        feats = ("macs", "bytes", "dram_bytes") if kind in ROOFLINE else \
            (base, "dram_bytes")
        specs["cache"] = F.Spec("poly", feats, loss="relative")
    for form, spec in specs.items():
        try:
            e = _cv_errors(rows, y, lambda tr, ytr, te, spec=spec:
                           F.predict_rows(F.fit(spec, tr, ytr), te))
        except (np.linalg.LinAlgError, ValueError):
            continue
        if np.median(e) < 0.8 * np.median(e_pow) and np.median(e) < cv["median_rel_err"]:
            best = F.fit(spec, rows, y)
            if form == "cache":
                best.info["cache_bytes"] = cache
            cv = {"folds": 5, "median_rel_err": float(np.median(e)),
                  "mean_rel_err": float(np.mean(e)), "form": form,
                  "power_median_rel_err": float(np.median(e_pow))}
    return best, cv
