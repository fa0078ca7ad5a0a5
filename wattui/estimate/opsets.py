"""Predictors for the op kinds the seed never measured, from this project's own calibration.

The data (``calibration_amd_epyc_cpu_time.parquet``) is the output of two runs (``CALIBRATE``)
of ``wattui calibrate --method time``, concatenated, on a shared 2-core AMD EPYC VM without RAPL: single-threaded process CPU time per pass, a
*time-proportional proxy*, never energy. Two sets are built from it:

- ``amd-epyc-cpu-time``: every kind fitted on that data (unit: seconds);
- the op kinds missing from the Getzner-fitted ``getzner-xeon-cpu`` set, *transferred* into
  it: this machine's seconds times one factor ``k`` (J per second), the median ratio of that
  set's own ``conv2d``/``linear`` predictions to the seconds measured here on the same
  configurations. This assumes energy ~ time x a constant power, which the seed's data show
  on a CPU; the transferred models say so in their ``info``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from wattui.estimate import calibrate as C
from wattui.estimate.predictors import PACKAGE_DIR, Predictor, PredictorSet

TIME_SET = "amd-epyc-cpu-time"
TIME_DATA = PACKAGE_DIR / "calibration_amd_epyc_cpu_time.parquet"
ANCHORS = ("conv2d", "linear")
LLC_BYTES = 32 * 1024 ** 2  # dense work: the kinds that tie the two sets' scales
LARGE_KINDS = ("batch_norm", "conv2d_depthwise", "conv2d", "silu", "unary", "relu", "add",
               "mul", "maxpool2d", "reduce", "layer_norm", "gelu", "copy")
_CAL = "wattui calibrate --device cpu --method time --ranges models --window 0.15 --reps 3"
CALIBRATE = (f"{_CAL} --layers all --configs 20 --seed 17",
             f"{_CAL} --layers lstm,linear,matmul,conv2d_depthwise,conv2d,conv2d_grouped "
             "--configs 20 --seed 18",
             f"{_CAL.replace('models', 'large')} --layers {','.join(LARGE_KINDS)} "
             "--configs 12 --seed 19")
CALIBRATE_COMMAND = "; ".join(CALIBRATE)


def load_rows(path: str | Path = TIME_DATA) -> list[dict]:
    """The measured rows, with the features recomputed from each config (``bytes`` too)."""
    import polars as pl

    rows = pl.read_parquet(path).to_dicts()
    for r in rows:
        cfg = {k: v for k, v in r.items() if v is not None}
        r.update(C.features(r["layer"], cfg))
        # the first two runs predate the cache_bytes column: same VM, 32 MiB L3 (lscpu)
        r["cache_bytes"] = r.get("cache_bytes") or LLC_BYTES
    return rows


def time_set(rows: list[dict], date: str | None = None) -> PredictorSet:
    """Fit every kind of the time data (the calibrate fit: power law or rate form by CV)."""
    models: dict[str, Predictor] = {}
    for kind in C.ALL_KINDS:
        sub = [r for r in rows if r["layer"] == kind and r["time_s"] > 0]
        if len(sub) < 5:
            continue
        y = np.array([r["time_s"] for r in sub], float)
        models[kind], cv = C.fit_rows(kind, sub, y)
        models[kind].info.update({"rows": len(sub), "cv": cv})
    device = rows[0]["device"] if rows else "?"
    prov = {"dataset": f"wattui/estimate/{TIME_DATA.name}", "measured":
            f"{CALIBRATE_COMMAND}: {C.TIME_PROXY}; 2-core VM shared with other jobs "
            "(load average ~8), so absolute times are inflated and noisy",
            "method": "time", "time_proportional_proxy": True, "ranges": "models",
            "fit_date": date or "", "fit_command": "python scripts/fit_predictors.py",
            "recipe": "cost = a + b*X^c, or c0 + X*(c1 + sum ci log p_i) where 5-fold CV "
                      "prefers it; relative loss"}
    llc = max((int(r["cache_bytes"]) for r in rows if r.get("cache_bytes")), default=None)
    if llc:
        prov.update(cache_bytes=llc, cache_source=C.CACHE_SOURCE)
    return PredictorSet(TIME_SET, device, "inference", models, prov, unit="s")


def scaled(pred: Predictor, k: float) -> Predictor:
    """The same predictor with its output multiplied by ``k``."""
    p = copy.deepcopy(pred)
    if p.form == "power":
        p.coef = [p.coef[0] * k, p.coef[1] * k, p.coef[2]]
    elif p.form == "poly" and not p.mean:
        p.coef = [c * k for c in p.coef]
    else:
        raise ValueError(f"cannot scale a {p.form} predictor")
    return p


def transfer_factor(target: PredictorSet, rows: list[dict]) -> float:
    """Median of target-set prediction / measured seconds over the anchor kinds' configs."""
    ratios = [target.models[r["layer"]].predict(r) / r["time_s"] for r in rows
              if r["layer"] in ANCHORS and r["layer"] in target.models and r["time_s"] > 0]
    if not ratios:
        raise ValueError("no anchor rows to transfer with")
    return float(np.median(ratios))


def transfer(target: PredictorSet, source: PredictorSet, rows: list[dict]) -> float:
    """Add ``source``'s kinds that ``target`` lacks, scaled into ``target``'s unit."""
    k = transfer_factor(target, rows)
    added = []
    for kind, pred in sorted(source.models.items()):
        if kind in target.models:
            continue
        p = scaled(pred, k)
        p.info = {**pred.info, "transferred_from": source.name, "k_j_per_s": round(k, 6),
                  "note": f"{source.name} seconds x k: time-proportional, not measured energy"}
        target.models[kind] = p
        added.append(kind)
    target.provenance["op_models"] = {
        "kinds": added, "source": source.name, "source_device": source.device,
        "source_measured": source.provenance.get("measured", ""),
        "k_j_per_s": round(k, 6),
        "k_from": f"median of this set's {'/'.join(ANCHORS)} prediction over the seconds "
                  f"measured on {source.device} for the same configs",
        "assumption": "energy ~ time x constant power (CPU); op kinds' relative costs as on "
                      f"{source.device}"}
    return k
