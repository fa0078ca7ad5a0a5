"""Calibrate predictors on this machine: sample layer configs, measure, fit, save.

Measurement uses wattui's own energy counters (NVML for ``cuda:N``, RAPL for ``cpu``):
an idle baseline window first, then per config repeated windows of forward passes (forward
and backward in training mode), each at least ``window_s`` long; the median of the windows
is kept. ``simulate=True`` swaps the counter and the layer runs for a simulated device
whose energy per pass is ``a + b * X**c`` per layer type (X: MACs, or elements for
activations), so the whole pipeline can be checked against known coefficients.

The fitted form is the same power law, by relative-error least squares (variable projection:
for each exponent c the offset and slope are linear; c is found by a bounded 1-D search).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wattui.estimate import macs as M
from wattui.estimate.predictors import Predictor, PredictorSet

LAYERS = ("conv2d", "maxpool2d", "linear", "relu", "sigmoid", "tanh", "softmax")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax")

# Known truth of the simulated device: (a [J], b [J per unit], c)
SIMULATED_TRUTH: dict[str, tuple[float, float, float]] = {
    # offsets ~ the energy of a 10th-percentile config, so all three are identifiable
    "conv2d": (3.0, 4e-9, 0.97),
    "maxpool2d": (0.04, 3e-8, 0.92),
    "linear": (0.2, 2e-9, 1.02),
    "relu": (0.04, 1.5e-9, 0.95),
    "sigmoid": (0.06, 4e-9, 0.93),
    "tanh": (0.05, 5e-9, 0.91),
    "softmax": (0.1, 6e-9, 0.94),
}


class CalibrationRefused(Exception):
    """No energy can be measured on the requested device (message: one line, why)."""


def sample_config(kind: str, rng: random.Random, scale: float = 1.0) -> dict[str, int]:
    """One random config in the seed's ranges (``scale`` < 1 shrinks sizes for quick runs)."""
    def r(lo: int, hi: int) -> int:
        return rng.randint(lo, max(lo, int(lo + (hi - lo) * scale)))

    if kind in ("conv2d", "maxpool2d"):
        while True:
            cfg = {"batch_size": r(1, 256), "image_size": r(4, 224), "kernel_size": r(1, 11),
                   "in_channels": r(1, 512), "stride": r(1, 5), "padding": r(0, 3)}
            if kind == "conv2d":
                cfg["out_channels"] = r(1, 512)
            if kind == "maxpool2d":
                cfg["padding"] = min(cfg["padding"], cfg["kernel_size"] // 2)
            if cfg["image_size"] + 2 * cfg["padding"] >= cfg["kernel_size"]:
                return cfg
    if kind == "linear":
        return {"batch_size": r(1, 512), "input_size": r(1, 5000), "output_size": r(1, 5000)}
    return {"batch_size": r(1, 512), "input_size": r(50_000, 5_000_000)}


def features(kind: str, cfg: dict[str, int]) -> dict[str, Any]:
    """MACs (seed formulas) and element count of one config; ``x`` is the fitted variable."""
    b = cfg["batch_size"]
    if kind in ("conv2d", "maxpool2d"):
        h = M.out_size(cfg["image_size"], cfg["kernel_size"], cfg["stride"], cfg["padding"])
        k = (cfg["kernel_size"],) * 2
        if kind == "conv2d":
            macs = M.conv2d_macs(b, cfg["in_channels"], cfg["out_channels"], k, (h, h))
            elements = b * cfg["out_channels"] * h * h
        else:
            macs = M.maxpool2d_macs(b, cfg["in_channels"], k, (h, h))
            elements = b * cfg["in_channels"] * h * h
    elif kind == "linear":
        macs = M.linear_macs(b, cfg["input_size"], cfg["output_size"])
        elements = b * cfg["output_size"]
    else:
        elements = b * cfg["input_size"]
        macs = elements if kind == "relu" else 0
    x = elements if kind in ACTIVATIONS else macs
    return {"macs": macs, "elements": elements, "x": x}


def _base(kind: str) -> str:
    return "elements" if kind in ACTIVATIONS else "macs"


# --- counters -------------------------------------------------------------------------------


class SimulatedDevice:
    """A device whose energy counter advances by a known function per layer pass, plus a
    constant idle power over (simulated) idle time. Noise is multiplicative, seeded."""

    name = "simulated device (E = a + b*X^c per layer type)"

    def __init__(self, truth=None, noise: float = 0.002, idle_w: float = 20.0, seed: int = 0):
        self.truth = dict(truth or SIMULATED_TRUTH)
        self.noise, self.idle_w = noise, idle_w
        self.rng = np.random.default_rng(seed)
        self.energy_j = 0.0
        self.t = 0.0

    def read(self) -> float:
        return self.energy_j

    def idle(self, seconds: float) -> None:
        self.energy_j += self.idle_w * seconds
        self.t += seconds

    def run(self, kind: str, x: float, passes: int) -> None:
        a, b, c = self.truth[kind]
        per = (a + b * x ** c) * float(np.exp(self.rng.normal(0.0, self.noise)))
        self.energy_j += per * passes
        self.t += 1e-3 * passes


class SourceCounter:
    """Cumulative energy (J) of one device of a wattui PowerSource."""

    def __init__(self, source, keys: list[str], name: str):
        self.source, self.keys, self.name = source, keys, name

    def read(self) -> float:
        readings = {r.key: r for r in self.source.read(time.monotonic())}
        vals = [readings[k].energy_j if k in readings else None for k in self.keys]
        if any(v is None for v in vals):
            raise CalibrationRefused(f"{self.name}: energy counter not readable")
        return float(sum(vals))


def open_counter(device: str, rapl_root: str = "/sys/class/powercap") -> SourceCounter:
    """An energy counter for ``cpu`` (RAPL package) or ``cuda:N`` (NVML), else refuse."""
    try:
        from wattui.sources.base import SourceUnavailable
    except ImportError as exc:  # pragma: no cover - base.py ships with wattui
        raise CalibrationRefused(f"wattui.sources unavailable: {exc}") from None
    try:
        if device.startswith("cuda"):
            from wattui.sources.nvml import NvmlSource

            src = NvmlSource()
            idx = int(device.split(":", 1)[1]) if ":" in device else 0
            gpus = [d for d in src.devices() if d.kind == "gpu"]  # in CUDA-visible order
            devs = gpus[idx:idx + 1]
        elif device == "cpu":
            from wattui.sources.rapl import RaplSource

            src = RaplSource(root=rapl_root)
            devs = [d for d in src.devices() if d.kind == "cpu"]
        else:
            raise CalibrationRefused(f"unknown device '{device}' (use cpu or cuda:N)")
    except SourceUnavailable as exc:
        raise CalibrationRefused(f"no energy can be measured on {device}: {exc}") from None
    except ImportError as exc:
        raise CalibrationRefused(f"no energy can be measured on {device}: energy source not "
                                 f"available ({exc})") from None
    devs = [d for d in devs if d.energy_method == "counter"]
    if not devs:
        raise CalibrationRefused(f"no energy can be measured on {device}: no hardware energy "
                                 "counter found")
    return SourceCounter(src, [d.key for d in devs], ", ".join(d.name for d in devs))


# --- real layer runs --------------------------------------------------------------------------


def make_runner(kind: str, cfg: dict[str, int], device: str, mode: str):
    """A function ``run(passes)`` that runs the real layer on ``device``."""
    import torch
    from torch import nn

    b = cfg["batch_size"]
    if kind == "conv2d":
        layer = nn.Conv2d(cfg["in_channels"], cfg["out_channels"], cfg["kernel_size"],
                          cfg["stride"], cfg["padding"])
        shape = (b, cfg["in_channels"], cfg["image_size"], cfg["image_size"])
    elif kind == "maxpool2d":
        layer = nn.MaxPool2d(cfg["kernel_size"], cfg["stride"], cfg["padding"])
        shape = (b, cfg["in_channels"], cfg["image_size"], cfg["image_size"])
    elif kind == "linear":
        layer = nn.Linear(cfg["input_size"], cfg["output_size"])
        shape = (b, cfg["input_size"])
    else:
        layer = {"relu": nn.ReLU(), "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(),
                 "softmax": nn.Softmax(dim=1)}[kind]
        shape = (b, cfg["input_size"])
    layer = layer.to(device)
    x = torch.randn(shape, device=device, requires_grad=(mode == "training"))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def run(passes: int) -> None:
        for _ in range(passes):
            if mode == "training":
                layer.zero_grad(set_to_none=True)
                layer(x).sum().backward()
            else:
                with torch.no_grad():
                    layer.eval()(x)
        sync()

    return run


def measure(counter, run, window_s: float, reps: int,
            clock=time.perf_counter) -> tuple[float, list[int], list[float]]:
    """Energy per pass (J): the median over ``reps`` windows, each running passes until at
    least ``window_s`` has elapsed. Returns (median, passes per window, J/pass per window)."""
    run(1)  # warm-up
    t0 = clock()
    run(1)  # times one pass, to size the chunks between clock checks
    chunk = max(1, int(0.1 * window_s / max(clock() - t0, 1e-9)))
    per, counts = [], []
    for _ in range(reps):
        e0, t0, passes = counter.read(), clock(), 0
        while clock() - t0 < window_s:
            run(chunk)
            passes += chunk
        per.append((counter.read() - e0) / passes)
        counts.append(passes)
    return float(np.median(per)), counts, per


# --- fitting ---------------------------------------------------------------------------------


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


def power_predictor(kind: str, a: float, b: float, c: float, info=None) -> Predictor:
    """``E = a + b * X^c`` as a Predictor of form ``power``."""
    return Predictor("power", [_base(kind)], [a, b, c], info=dict(info or {}))


def cross_validate(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> dict:
    """K-fold relative errors of the power-law fit."""
    idx = np.random.default_rng(seed).permutation(len(x))
    errs = []
    for k in range(folds):
        te = idx[k::folds]
        tr = np.setdiff1d(idx, te)
        a, b, c = fit_power(x[tr], y[tr])
        errs.extend(np.abs(a + b * x[te] ** c - y[te]) / y[te])
    e = np.array(errs)
    return {"folds": folds, "median_rel_err": float(np.median(e)),
            "mean_rel_err": float(np.mean(e))}


@dataclass
class Calibration:
    device: str
    mode: str
    simulated: bool
    rows: list[dict] = field(default_factory=list)
    idle_w: float | None = None
    fits: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    cv: dict[str, dict] = field(default_factory=dict)

    def predictor_set(self, name: str, parquet: str = "") -> PredictorSet:
        models = {k: power_predictor(k, *abc, {"rows": sum(r["layer"] == k for r in self.rows),
                                              "cv": self.cv.get(k, {})})
                  for k, abc in self.fits.items()}
        prov = {"dataset": parquet or "in memory", "measured": "wattui calibrate: "
                + ("SIMULATED device" if self.simulated else "hardware energy counter")
                + ", idle NOT subtracted (idle power recorded)",
                "idle_w": self.idle_w, "simulated": self.simulated,
                "fit_date": dt.datetime.now(dt.timezone.utc).date().isoformat(),
                "fit_command": "wattui calibrate", "recipe": "E = a + b*X^c, relative loss"}
        return PredictorSet(name, self.device, self.mode, models, prov)


def run_calibration(device: str, layers=LAYERS, configs: int = 20, mode: str = "inference",
                    simulate: bool = False, window_s: float = 2.0, reps: int = 3,
                    idle_s: float = 5.0, seed: int = 0, scale: float = 1.0,
                    progress=None) -> Calibration:
    """Sample, measure and fit. Raises :class:`CalibrationRefused` where nothing can be
    measured."""
    if simulate:
        counter: Any = SimulatedDevice(seed=seed)
        dev_name = SimulatedDevice.name
    else:
        counter = open_counter(device)
        from wattui.estimate.devices import device_name

        dev_name = device_name(device)
    cal = Calibration(dev_name, mode, simulate)
    # idle baseline
    e0 = counter.read()
    if simulate:
        counter.idle(idle_s)
        cal.idle_w = (counter.read() - e0) / idle_s
    else:
        t0 = time.monotonic()
        time.sleep(idle_s)
        cal.idle_w = (counter.read() - e0) / (time.monotonic() - t0)
    rng = random.Random(seed)
    for kind in layers:
        for i in range(configs):
            cfg = sample_config(kind, rng, scale)
            feat = features(kind, cfg)
            if simulate:
                def run(passes, kind=kind, x=feat["x"]):
                    counter.run(kind, x, passes)
            else:
                run = make_runner(kind, cfg, device, mode)
            clock = (lambda: counter.t) if simulate else time.perf_counter
            energy, passes, per = measure(counter, run, window_s, reps, clock)
            cal.rows.append({"layer": kind, **cfg, **feat, "energy_j": energy,
                             "passes": int(np.median(passes)), "reps": reps, "rep_spread": float(
                                 (max(per) - min(per)) / energy) if energy else 0.0,
                             "idle_w": cal.idle_w, "mode": mode, "device": dev_name,
                             "simulated": simulate})
            if progress:
                progress(kind, i + 1, configs)
    for kind in layers:
        rows = [r for r in cal.rows if r["layer"] == kind and r["energy_j"] > 0]
        if len(rows) < 5:
            continue
        x = np.array([r["x"] for r in rows], float)
        y = np.array([r["energy_j"] for r in rows], float)
        cal.fits[kind] = fit_power(x, y)
        cal.cv[kind] = cross_validate(x, y)
    return cal


def write_parquet(rows: list[dict], path: str | Path) -> Path:
    """The measured data set, one row per config (polars)."""
    import polars as pl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows, infer_schema_length=None).write_parquet(path)
    return path
