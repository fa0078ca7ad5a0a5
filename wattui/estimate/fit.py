"""Fit per-layer predictors with numpy least squares, and score them on held-out layers.

Three recipes on the same layer data (``SPECS``):

- ``seed``: reproduces Getzner et al.: squared-error regression on a linear scale (degree 2
  where they use it), split 70/20/10, R^2 on the 10% test part;
- ``loglog``: ``log E = a + b log(MACs)`` (elements for activations), the field notes' first try;
- ``shipped``: ``E = c0 + MACs * (c1 + sum ci log(param_i))`` fitted to minimise squared
  *relative* error: a fixed overhead plus a per-MAC cost that depends on every configuration
  parameter. This is the set wattui ships.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattui.estimate.predictors import Predictor, base_feature, poly_terms

CONV = ["batch_size", "image_size", "kernel_size", "in_channels", "out_channels", "stride"]
POOL = ["batch_size", "image_size", "kernel_size", "in_channels", "stride"]
LINEAR = ["batch_size", "input_size", "output_size"]
ACT = ["batch_size", "input_size"]
POOL_SEED = [*POOL, "padding"]
KINDS = ("conv2d", "maxpool2d", "linear", "relu", "sigmoid", "tanh", "softmax")


@dataclass(frozen=True)
class Spec:
    form: str  # "poly" | "loglinear"
    features: tuple[str, ...]
    degree: int = 1
    scale: bool = False
    loss: str = "squared"  # "squared" | "relative" (weights 1/E)


def _rate(base: str, params: list[str], degree: int = 1) -> Spec:
    """``base * (c1 + linear (or quadratic) terms in log(params))`` plus an intercept."""
    logs = [f"log_{p}" for p in params]
    terms = [base, *(f"{base}*{lg}" for lg in logs)]
    if degree == 2:
        terms += [f"{base}*{a}*{b}" for i, a in enumerate(logs) for b in logs[i:]]
    return Spec("poly", tuple(terms), loss="relative")


SPECS: dict[str, dict[str, Spec]] = {
    "seed": {
        "conv2d": Spec("poly", ("macs",)),
        "linear": Spec("poly", ("macs",)),
        "relu": Spec("poly", ("macs",)),
        "maxpool2d": Spec("poly", (*POOL_SEED, *(f"log1p_{p}" for p in POOL_SEED), "macs"),
                          2, True),
        "sigmoid": Spec("poly", ("batch_size", "input_size"), 2, True),
        "tanh": Spec("poly", ("batch_size", "input_size"), 2, True),
        "softmax": Spec("poly", ("batch_size", "input_size"), 2, True),
    },
    "loglog": {
        **{k: Spec("loglinear", ("log_macs",)) for k in ("conv2d", "maxpool2d", "linear")},
        **{k: Spec("loglinear", ("log_elements",)) for k in ("relu", "sigmoid", "tanh",
                                                             "softmax")},
    },
    "shipped": {
        "conv2d": _rate("macs", CONV),
        "maxpool2d": _rate("macs", POOL),
        "linear": _rate("macs", LINEAR),
        **{k: _rate("elements", ACT, 2) for k in ("relu", "sigmoid", "tanh", "softmax")},
    },
}


def rows_of(df) -> list[dict]:
    """Polars frame to feature dicts; ``elements`` is batch x input size for activations."""
    rows = df.to_dicts()
    for r in rows:
        if "input_size" in r and "output_size" not in r:
            r["elements"] = r["batch_size"] * r["input_size"]
        else:
            r.setdefault("elements", r.get("macs", 0))
    return rows


def _log_keys(features) -> list[str]:
    keys = []
    for f in features:
        for part in f.split("*"):
            if part.startswith("log_") and part not in ("log_macs", "log_elements"):
                keys.append(part[4:])
    return sorted(set(keys))


def fit(spec: Spec, rows: list[dict], y: np.ndarray) -> Predictor:
    """Least-squares fit of one spec (``y`` in J per forward pass)."""
    x = np.array([[base_feature(f, r) for f in spec.features] for r in rows], dtype=float)
    info = {"rows": len(rows), "loss": spec.loss}
    keys = _log_keys(spec.features)
    if keys:
        info["ranges"] = {k: [float(min(r[k] for r in rows)), float(max(r[k] for r in rows))]
                          for k in keys}
    if spec.form == "loglinear":
        a = np.column_stack([np.ones(len(x)), x])
        coef, *_ = np.linalg.lstsq(a, np.log(y), rcond=None)
        return Predictor("loglinear", list(spec.features), [float(c) for c in coef], info=info)
    terms = poly_terms(x.shape[1], spec.degree)
    z = np.column_stack([np.prod(x[:, list(t)], axis=1) for t in terms])
    mean, scale = [], []
    if spec.scale:
        mu, sd = z.mean(axis=0), z.std(axis=0)
        sd[sd == 0] = 1.0
        z = (z - mu) / sd
        mean, scale = [float(v) for v in mu], [float(v) for v in sd]
    a = np.column_stack([np.ones(len(z)), z])
    w = 1.0 / y if spec.loss == "relative" else np.ones_like(y)
    coef, *_ = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)
    if spec.loss == "relative" and coef[0] < 0:
        # a negative fixed cost would make small layers cost less than nothing: pin it at 0
        rest, *_ = np.linalg.lstsq(a[:, 1:] * w[:, None], y * w, rcond=None)
        coef = np.concatenate([[0.0], rest])
        info["intercept"] = "pinned at 0 (the free fit was negative)"
    return Predictor("poly", list(spec.features), [float(c) for c in coef], spec.degree,
                     mean, scale, info)


def predict_rows(p: Predictor, rows: list[dict]) -> np.ndarray:
    return np.array([p.predict(r) for r in rows], dtype=float)


def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(1.0 - np.sum((y - yhat) ** 2) / np.sum((y - y.mean()) ** 2))


def rel_errors(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    return np.abs(yhat - y) / np.abs(y)


def split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled 70/20/10 train/validation/test indices."""
    idx = np.random.default_rng(seed).permutation(n)
    a, b = int(round(0.7 * n)), int(round(0.9 * n))
    return idx[:a], idx[a:b], idx[b:]


def evaluate(spec: Spec, rows: list[dict], y: np.ndarray, seeds=range(10)) -> dict:
    """Fit on the 70% part, score on the 10% test part; mean over several random splits
    (split 0 alone is also kept, as the seed reports one split)."""
    r2s, med, mean = [], [], []
    for s in seeds:
        tr, _va, te = split(len(rows), s)
        p = fit(spec, [rows[i] for i in tr], y[tr])
        yhat = predict_rows(p, [rows[i] for i in te])
        e = rel_errors(y[te], yhat)
        r2s.append(r2(y[te], yhat))
        med.append(float(np.median(e)))
        mean.append(float(np.mean(e)))
    return {"r2_test": float(np.mean(r2s)), "r2_test_split0": r2s[0],
            "r2_test_sd": float(np.std(r2s)), "median_rel_err": float(np.mean(med)),
            "mean_rel_err": float(np.mean(mean)), "splits": len(r2s)}


def fit_kind(recipe: str, kind: str, data_path=None) -> tuple[Predictor, dict]:
    """Fit one layer type of one recipe on all its rows; also return its split scores."""
    from wattui.estimate import seed_data

    df = seed_data.load_layers(kind, data_path)
    rows, y = rows_of(df), df["energy_j"].to_numpy()
    spec = SPECS[recipe][kind]
    scores = evaluate(spec, rows, y)
    p = fit(spec, rows, y)
    p.info["test"] = {k: round(v, 6) if isinstance(v, float) else v for k, v in scores.items()}
    return p, scores
