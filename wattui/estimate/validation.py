"""Validate estimates on held-out architectures against measured single-thread CPU time.

For each model of :data:`wattui.estimate.heldout.MODELS`: estimate one forward pass (batch 8)
with each predictor set, and measure it for real: ``torch.set_num_threads(1)``, ``eval()``,
``no_grad``, one warm-up pass, then the median process CPU time (``time.process_time``) over
repeated passes. Estimates and measurements are compared after normalising by the dense
reference models (``ratio / geometric mean of the dense models' ratios``), because a set
fitted on another machine (or in joules) differs from this CPU's seconds by a constant; the
seed's data show energy ~ time x a near-constant package power on a CPU.
"""

from __future__ import annotations

import math
import os
import statistics
import time

from wattui.estimate import heldout
from wattui.estimate.estimate import estimate_model


def build(name: str, device: str = "cpu"):
    import torch

    fn = heldout.MODELS[name][0]
    if device == "meta":
        with torch.device("meta"):
            return fn()
    torch.manual_seed(0)
    return fn()


def example(name: str, batch: int, device: str = "cpu"):
    import torch

    _, shape, dtype, _ = heldout.MODELS[name]
    if dtype == "int64":
        return torch.randint(0, 1000, (batch, *shape), device=device)
    return torch.randn(batch, *shape, device=device)


def pass_fn(model, x, mode: str):
    """One pass of ``model`` on ``x``: a forward, or in ``training`` mode a forward, a
    ``sum()`` and a backward (gradients cleared first)."""

    def step():
        if mode == "training":
            model.zero_grad(set_to_none=True)
            out = model(x)
            (out[0] if isinstance(out, tuple) else out).float().sum().backward()
        else:
            model(x)

    return step


def measure_cpu_time(name: str, batch: int = 8, reps: int = 7, budget_s: float = 20.0,
                     mode: str = "inference") -> dict:
    """Median process CPU time of one forward pass (``training``: forward, ``sum()`` and
    backward, in train mode), single-threaded (seconds)."""
    import torch

    torch.set_num_threads(1)
    model = build(name).train(mode == "training")
    x = example(name, batch)
    times = []
    step = pass_fn(model, x, mode)

    with torch.set_grad_enabled(mode == "training"):
        step()  # warm-up
        start = time.monotonic()
        for _ in range(reps):
            t0 = time.process_time()
            step()
            times.append(time.process_time() - t0)
            if time.monotonic() - start > budget_s and len(times) >= 3:
                break
    return {"median_s": statistics.median(times), "n": len(times),
            "spread": (max(times) - min(times)) / statistics.median(times)}


def estimate(name: str, pset, batch: int = 8, mode: str = "inference"):
    import torch

    _, shape, dtype, _ = heldout.MODELS[name]
    model = build(name, "meta")
    dt = torch.int64 if dtype == "int64" else None
    if dtype == "int64":
        return estimate_model(model, torch.zeros((batch, *shape), dtype=torch.long), None,
                              pset, mode)
    return estimate_model(model, shape, batch, pset, mode, dtype=dt)


def normalise(est: dict[str, float], meas: dict[str, float], dense: list[str]) -> dict:
    """est/meas per model divided by the geometric mean of the dense models' est/meas."""
    ratios = {k: est[k] / meas[k] for k in est if k in meas and meas[k] > 0}
    dense = [k for k in dense if k in ratios]
    ref = math.exp(sum(math.log(ratios[k]) for k in dense) / len(dense)) if dense else 1.0
    return {k: r / ref for k, r in ratios.items()}


def run(names=None, psets=(), batch: int = 8, reps: int = 7, progress=None,
        measured: dict | None = None, mode: str = "inference") -> dict:
    """Measure (unless ``measured`` holds a previous run's rows) and estimate; returns per
    model: measured seconds, estimates, partial flags, normalised ratios per set, and the
    load average before/after."""
    names = list(names or heldout.MODELS)
    load0 = os.getloadavg()
    meas, out = {}, {"models": {}, "sets": [p.name for p in psets]}
    for n in names:
        old = (measured or {}).get("models", {}).get(n)
        m = {"median_s": old["measured_s"], "n": old["reps"], "spread": old["spread"]} \
            if old else measure_cpu_time(n, batch, reps, mode=mode)
        meas[n] = m["median_s"]
        row = {"measured_s": m["median_s"], "reps": m["n"], "spread": m["spread"],
               "estimates": {}, "partial": {}}
        for p in psets:
            r = estimate(n, p, batch, mode)
            row["estimates"][p.name] = r.total_energy_j
            row["partial"][p.name] = r.partial
        out["models"][n] = row
        if progress:
            progress(n, row)
    dense = [n for n in names if heldout.MODELS[n][3]]
    for p in psets:
        est = {n: out["models"][n]["estimates"][p.name] for n in names}
        for n, v in normalise(est, meas, dense).items():
            out["models"][n].setdefault("normalised", {})[p.name] = v
    out["load"] = measured["load"] if measured else (load0, os.getloadavg())
    out["dense"] = dense
    out["batch"] = batch
    out["mode"] = mode
    return out
