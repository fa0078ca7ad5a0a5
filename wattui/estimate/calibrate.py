"""Calibrate predictors on this machine: sample layer configs, measure, fit, save.

Measurement uses wattui's own energy counters (NVML for ``cuda:N``, RAPL for ``cpu``):
an idle baseline window first, then per config repeated windows of forward passes (forward
and backward in training mode), each at least ``window_s`` long; the median of the windows
is kept. ``simulate=True`` swaps the counter and the layer runs for a simulated device
whose energy per pass is ``a + b * X**c`` per layer type (X: MACs, or elements for
activations), so the whole pipeline can be checked against known coefficients.

The fitted form is the same power law, by relative-error least squares (variable projection:
for each exponent c the offset and slope are linear; c is found by a bounded 1-D search), or
an alternative form where cross-validation prefers it (:mod:`wattui.estimate.calfit`).
``method="time"`` measures process CPU time instead of energy where no counter exists.
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

from wattui.estimate import calfit
from wattui.estimate import macs as M
from wattui.estimate.calfit import fit_power
from wattui.estimate.predictors import Predictor, PredictorSet

LAYERS = ("conv2d", "maxpool2d", "linear", "relu", "sigmoid", "tanh", "softmax")
# op kinds beyond the seed's (see wattui.estimate.ops): calibrated on request (--layers)
OP_KINDS = ("conv2d_depthwise", "conv2d_grouped", "matmul", "reduce", "batch_norm",
            "layer_norm", "group_norm", "gelu", "silu", "unary", "add", "mul", "copy",
            "embedding", "lstm")
ALL_KINDS = LAYERS + OP_KINDS
ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax")
ELEMENTWISE = ACTIVATIONS + ("reduce", "batch_norm", "layer_norm", "group_norm", "gelu", "silu",
                             "unary", "add", "mul", "copy", "embedding")
METHODS = ("energy", "time")
TIME_PROXY = ("time-proportional proxy: process CPU time per pass (time.process_time, "
              "torch.set_num_threads(1)), NOT measured energy")

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
# ... and of the op kinds beyond the seed's
SIMULATED_TRUTH_OPS: dict[str, tuple[float, float, float]] = {
    **{k: (0.03, 3e-9, 0.95) for k in OP_KINDS if k not in ("conv2d_depthwise",
                                                           "conv2d_grouped", "matmul")},
    "conv2d_depthwise": (0.05, 1e-7, 0.95),
    "conv2d_grouped": (0.1, 2e-8, 0.97),
    "matmul": (0.05, 3e-9, 1.0),
    "lstm": (0.1, 3e-9, 1.0),
}


class CalibrationRefused(Exception):
    """No energy can be measured on the requested device (message: one line, why)."""


def _log_uniform(rng: random.Random, lo: float, hi: float) -> int:
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def sample_model_config(kind: str, rng: random.Random, scale: float = 1.0,
                        large: bool = False) -> dict[str, int]:
    """One random config in ranges typical of real networks' layers (``--ranges models``):
    tensor sizes log-uniform, at most ~``2e7 * scale`` elements per tensor. Used for the
    op kinds beyond the seed's, and for the seed's kinds on request. ``large``
    (``--ranges large``): tensors of 2e6-6e7 elements, past the last-level cache, where
    memory-bound ops slow down several-fold."""
    cap = 6e7 * scale if large else max(2e7 * scale, 2e4)
    low = min(2e6, cap / 2) if large else 1e3
    while True:
        b = rng.choice((1, 2, 4, 8, 16, 32, 64))
        c = _log_uniform(rng, 8, 1024)
        h = _log_uniform(rng, 4, 112)
        if kind in ("conv2d", "conv2d_depthwise", "conv2d_grouped", "maxpool2d"):
            k = rng.choice((1, 3, 3, 5, 7)) if kind != "maxpool2d" else rng.choice((2, 3))
            s = rng.choice((1, 1, 2)) if kind != "maxpool2d" else 2
            cfg = {"batch_size": b, "image_size": h, "kernel_size": k, "in_channels": c,
                   "stride": s, "padding": k // 2 if kind != "maxpool2d" else 0}
            if kind == "conv2d":
                cfg["out_channels"] = _log_uniform(rng, 8, 1024)
            elif kind == "conv2d_depthwise":
                cfg["out_channels"] = c
            elif kind == "conv2d_grouped":
                g = rng.choice((2, 4, 8, 32))
                cfg["in_channels"] = cfg["out_channels"] = g * max(2, c // g)
                cfg["groups"] = g
            size = b * cfg["in_channels"] * h * h
            work = size * k * k * (cfg.get("out_channels", 1) // cfg.get("groups", 1)
                                   if kind in ("conv2d", "conv2d_grouped") else 1)
            big = size >= low if large else True
            out = b * cfg.get("out_channels", c) * (h // cfg["stride"]) ** 2
            if size <= cap and out <= cap and work <= (3e9 if large else 300 * cap) \
                    and h >= k and big:
                return cfg
        elif kind == "lstm":
            cfg = {"batch_size": rng.choice((1, 2, 4, 8, 16, 32, 64)),
                   "seq_len": _log_uniform(rng, 4, 128), "input_size": _log_uniform(rng, 16, 512),
                   "hidden_size": _log_uniform(rng, 16, 512)}
            if _lstm_macs(cfg) <= 30 * cap:
                return cfg
        elif kind in ("linear", "matmul"):
            cfg = {"batch_size": _log_uniform(rng, 1, 2048), "input_size": _log_uniform(rng, 8, 4096),
                   "output_size": _log_uniform(rng, 8, 4096)}
            if kind == "matmul":
                cfg["matrices"] = _log_uniform(rng, 1, 256)
                cfg["batch_size"] = _log_uniform(rng, 8, 512)
                cfg["input_size"] = _log_uniform(rng, 8, 256)
                cfg["output_size"] = _log_uniform(rng, 8, 512)
            m = cfg.get("matrices", 1)
            if m * cfg["batch_size"] * cfg["input_size"] * cfg["output_size"] <= 300 * cap:
                return cfg
        else:
            n = _log_uniform(rng, low, cap)
            if kind in ("batch_norm", "group_norm", "reduce"):
                c = rng.choice((8, 16, 32, 64, 128, 256, 512, 1024))
                hw = max(1, int(math.sqrt(n / (b * c))))
                return {"batch_size": b, "channels": c, "image_size": hw,
                        "input_size": c * hw * hw}
            if kind == "embedding":
                d = rng.choice((32, 64, 128, 256, 512))
                return {"batch_size": b, "input_size": max(1, n // (b * d)) * d,
                        "embedding_dim": d, "vocab": _log_uniform(rng, 100, 50000)}
            if kind == "layer_norm":
                d = rng.choice((64, 128, 192, 256, 384, 512, 768, 1024))
                return {"batch_size": b, "input_size": max(1, n // (b * d)) * d,
                        "features": d}
            return {"batch_size": b, "input_size": max(1, n // b)}


def _lstm_macs(cfg: dict[str, int]) -> int:
    from wattui.estimate.ops import lstm_cfg

    return lstm_cfg(cfg["batch_size"], cfg["seq_len"], cfg["input_size"],
                    cfg["hidden_size"])["macs"]


def sample_config(kind: str, rng: random.Random, scale: float = 1.0,
                  ranges: str = "seed") -> dict[str, int]:
    """One random config in the seed's ranges (``scale`` < 1 shrinks sizes for quick runs);
    op kinds the seed did not measure, and ``ranges="models"``, use
    :func:`sample_model_config`."""
    if ranges in ("models", "large") or kind not in LAYERS:
        return sample_model_config(kind, rng, scale, ranges == "large")

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
    if kind in ("conv2d", "maxpool2d", "conv2d_depthwise", "conv2d_grouped"):
        h = M.out_size(cfg["image_size"], cfg["kernel_size"], cfg["stride"], cfg["padding"])
        k = (cfg["kernel_size"],) * 2
        x_el = b * cfg["in_channels"] * cfg["image_size"] ** 2
        if kind != "maxpool2d":
            groups = cfg["in_channels"] if kind == "conv2d_depthwise" else cfg.get("groups", 1)
            macs = M.conv2d_macs(b, cfg["in_channels"], cfg["out_channels"], k, (h, h), groups)
            elements = b * cfg["out_channels"] * h * h
            w_el = cfg["out_channels"] * cfg["in_channels"] // groups * k[0] * k[1]
            nbytes = M.FLOAT_BYTES * (x_el + w_el + elements)
        else:
            macs = M.maxpool2d_macs(b, cfg["in_channels"], k, (h, h))
            elements = b * cfg["in_channels"] * h * h
            nbytes = M.FLOAT_BYTES * (x_el + elements)
    elif kind == "linear":
        macs = M.linear_macs(b, cfg["input_size"], cfg["output_size"])
        elements = b * cfg["output_size"]
        nbytes = M.matmul_bytes(1, b, cfg["input_size"], cfg["output_size"])
    elif kind == "matmul":
        m = cfg["matrices"]
        macs = m * b * cfg["input_size"] * cfg["output_size"]
        elements = m * b * cfg["output_size"]
        nbytes = M.matmul_bytes(m, b, cfg["input_size"], cfg["output_size"])
    elif kind == "lstm":
        from wattui.estimate.ops import lstm_cfg

        f = lstm_cfg(b, cfg["seq_len"], cfg["input_size"], cfg["hidden_size"])
        macs, elements, nbytes = f["macs"], f["elements"], f["bytes"]
    else:
        elements = b * cfg["input_size"]
        macs = elements if kind == "relu" else 0
        nbytes = M.FLOAT_BYTES * 2 * elements
    x = elements if kind in ELEMENTWISE else macs
    return {"macs": macs, "elements": elements, "x": x, "bytes": nbytes}


def _base(kind: str) -> str:
    return "elements" if kind in ELEMENTWISE else "macs"


# --- counters -------------------------------------------------------------------------------


class SimulatedDevice:
    """A device whose energy counter advances by a known function per layer pass, plus a
    constant idle power over (simulated) idle time. Noise is multiplicative, seeded."""

    name = "simulated device (E = a + b*X^c per layer type)"

    def __init__(self, truth=None, noise: float = 0.002, idle_w: float = 20.0, seed: int = 0):
        self.truth = dict(truth or {**SIMULATED_TRUTH, **SIMULATED_TRUTH_OPS})
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
    from wattui.sources.base import SourceUnavailable

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
    devs = [d for d in devs if d.energy_method == "counter"]
    if not devs:
        raise CalibrationRefused(f"no energy can be measured on {device}: no hardware energy "
                                 "counter found")
    return SourceCounter(src, [d.key for d in devs], ", ".join(d.name for d in devs))


# --- real layer runs --------------------------------------------------------------------------


def _module_and_input(kind: str, cfg: dict[str, int], operand=None):
    """The real layer (a module or a function) and its input shape and dtype for one config.
    ``operand(shape)`` gives the second input of ``add``/``mul`` on each call (default: one
    fixed random tensor)."""
    import torch
    from torch import nn

    b = cfg["batch_size"]
    img = (b, cfg.get("in_channels", 1), cfg.get("image_size", 1), cfg.get("image_size", 1))
    if kind in ("conv2d", "conv2d_depthwise", "conv2d_grouped"):
        groups = cfg["in_channels"] if kind == "conv2d_depthwise" else cfg.get("groups", 1)
        return nn.Conv2d(cfg["in_channels"], cfg["out_channels"], cfg["kernel_size"],
                         cfg["stride"], cfg["padding"], groups=groups), img, None
    if kind == "maxpool2d":
        return nn.MaxPool2d(cfg["kernel_size"], cfg["stride"], cfg["padding"]), img, None
    if kind == "linear":
        return nn.Linear(cfg["input_size"], cfg["output_size"]), (b, cfg["input_size"]), None
    if kind == "matmul":
        m = cfg["matrices"]
        w = torch.randn(m, cfg["input_size"], cfg["output_size"])
        return (lambda x: torch.bmm(x, w)), (m, b, cfg["input_size"]), None
    if kind in ("batch_norm", "group_norm", "reduce"):
        c, hw = cfg["channels"], cfg["image_size"]
        layer = {"batch_norm": lambda: nn.BatchNorm2d(c),
                 "group_norm": lambda: nn.GroupNorm(min(32, c), c),
                 "reduce": lambda: nn.AdaptiveAvgPool2d(1)}[kind]()
        return layer, (b, c, hw, hw), None
    if kind == "layer_norm":
        d = cfg["features"]
        return nn.LayerNorm(d), (b, cfg["input_size"] // d, d), None
    if kind == "embedding":
        d = cfg["embedding_dim"]
        return nn.Embedding(cfg["vocab"], d), (b, cfg["input_size"] // d), torch.long
    if kind == "lstm":
        layer = nn.LSTM(cfg["input_size"], cfg["hidden_size"], batch_first=True)
        return (lambda x: layer(x)[0]), (b, cfg["seq_len"], cfg["input_size"]), layer
    shape = (b, cfg["input_size"])
    if kind in ("add", "mul", "copy"):
        if operand is None:
            fixed = torch.randn(shape)
            operand = lambda _shape: fixed  # noqa: E731
        fn = {"add": lambda x: x + operand(shape), "mul": lambda x: x * operand(shape),
              "copy": lambda x: x.clone()}[kind]
        return fn, shape, None
    layer = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
             "softmax": lambda: nn.Softmax(dim=1), "gelu": nn.GELU, "silu": nn.SiLU,
             "unary": nn.ReLU6}[kind]()
    return layer, shape, None


class ColdInputs:
    """Inputs that are not in cache, as inside a model: each call takes the next slice of a
    flat buffer of at least ``3 * cache`` bytes, so a slice was last touched two cache-fulls
    ago. Slices of one buffer, not separate tensors, so the bookkeeping costs nothing."""

    def __init__(self, shape, cache: int, device: str, make):
        from math import prod

        n = max(prod(shape), 1)
        slots = max(2, -(-3 * cache // (4 * n)))
        self.buf = make((slots * n,), device)
        self.shape, self.n, self.slots, self.i = tuple(shape), n, slots, 0

    def __call__(self, _shape=None):
        self.i = (self.i + 1) % self.slots
        return self.buf[self.i * self.n:(self.i + 1) * self.n].view(self.shape)


def make_runner(kind: str, cfg: dict[str, int], device: str, mode: str,
                inputs: str = "hot"):
    """A function ``run(passes)`` that runs the real layer on ``device``. ``inputs="cold"``
    feeds each pass an input (and ``add``/``mul`` operand) from memory, not cache
    (:class:`ColdInputs`; the last-level cache size from sysfs, else 32 MiB)."""
    import torch

    def randn(shape, dev):
        return torch.randn(shape, device=dev)

    cold = inputs == "cold"
    llc = (cache_bytes() or 32 * 1024 ** 2) if cold else 0
    operand = None
    if cold and kind in ("add", "mul"):
        operand = ColdInputs((cfg["batch_size"], cfg["input_size"]), llc, device, randn)
    layer, shape, dtype = _module_and_input(kind, cfg, operand)
    owner = dtype if isinstance(dtype, torch.nn.Module) else layer
    dtype = None if isinstance(dtype, torch.nn.Module) else dtype
    if isinstance(owner, torch.nn.Module):
        owner.to(device).train(mode == "training")
    if dtype == torch.long:
        def make(shp, dev):
            return torch.randint(0, cfg["vocab"], shp, device=dev)
    else:
        make = randn
    next_x = ColdInputs(shape, llc, device, make) if cold else \
        (lambda x0: lambda: x0)(make(shape, device))
    grad = mode == "training" and dtype != torch.long
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    params = list(owner.parameters()) if isinstance(owner, torch.nn.Module) else []

    def run(passes: int) -> None:
        for _ in range(passes):
            x = next_x()
            if grad:  # a leaf of its own, so no gradient flows into a shared buffer
                x = x.detach().requires_grad_(True)
            if mode == "training":
                for p in params:
                    p.grad = None
                y = layer(x)
                if y.requires_grad:
                    y.sum().backward()
            else:
                with torch.no_grad():
                    layer(x)
        sync()

    return run


class TimeCounter:
    """Process CPU time as the "counter" of ``--method time``: a time-proportional proxy
    where no energy counter exists, never energy. Single-threaded torch while in use."""

    name = "process CPU time (time-proportional proxy)"

    def __init__(self):
        import torch

        torch.set_num_threads(1)

    def read(self) -> float:
        return time.process_time()


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


# --- fitting (wattui.estimate.calfit) ----------------------------------------------------------


CACHE_SOURCE = "last-level cache size read from sysfs at calibration"


def cache_bytes() -> int | None:
    """Size of this CPU's last-level cache (Linux sysfs), or None."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    best = None
    for d in sorted(base.glob("index*")) if base.exists() else ():
        try:
            text = (d / "size").read_text().strip().upper()
            level = int((d / "level").read_text())
        except (OSError, ValueError):
            continue
        mult = {"K": 1024, "M": 1024 ** 2}.get(text[-1:], 1)
        size = int(text.rstrip("KM")) * mult
        if best is None or level > best[0]:
            best = (level, size)
    return best[1] if best else None


def fit_rows(kind: str, rows: list[dict], y: np.ndarray) -> tuple[Predictor, dict]:
    """:func:`wattui.estimate.calfit.fit_rows` on this kind's fitted variable."""
    return calfit.fit_rows(kind, rows, y, _base(kind))


def power_predictor(kind: str, a: float, b: float, c: float, info=None) -> Predictor:
    return calfit.power_predictor(_base(kind), a, b, c, info)


@dataclass
class Calibration:
    device: str
    mode: str
    simulated: bool
    rows: list[dict] = field(default_factory=list)
    idle_w: float | None = None
    fits: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    cv: dict[str, dict] = field(default_factory=dict)
    chosen: dict[str, Predictor] = field(default_factory=dict)  # the form kept per kind
    method: str = "energy"  # "energy" (a hardware counter) or "time" (a proxy)
    ranges: str = "seed"
    inputs: str = "hot"  # "cold": each pass's inputs from memory (make_runner)

    @property
    def unit(self) -> str:
        return "s" if self.method == "time" else "J"

    @property
    def column(self) -> str:
        """Data-set column of the measured cost per pass."""
        return "time_s" if self.method == "time" else "energy_j"

    def predictor_set(self, name: str, parquet: str = "") -> PredictorSet:
        models = {}
        for k, abc in self.fits.items():
            info = {"rows": sum(r["layer"] == k for r in self.rows), "cv": self.cv.get(k, {})}
            models[k] = self.chosen.get(k) or power_predictor(k, *abc)
            models[k].info.update(info)
        if self.method == "time":
            measured = f"wattui calibrate --method time: {TIME_PROXY}"
        else:
            measured = ("wattui calibrate: " + ("SIMULATED device" if self.simulated
                                                else "hardware energy counter")
                        + ", idle NOT subtracted (idle power recorded)")
        prov = {"dataset": parquet or "in memory", "measured": measured,
                "method": self.method, "time_proportional_proxy": self.method == "time",
                "idle_w": self.idle_w, "simulated": self.simulated, "ranges": self.ranges,
                "inputs": self.inputs,
                "fit_date": dt.datetime.now(dt.timezone.utc).date().isoformat(),
                "fit_command": "wattui calibrate",
                "recipe": f"cost = a + b*X^c per op kind ({self.unit}), relative loss"}
        llc = max((r["cache_bytes"] for r in self.rows if r.get("cache_bytes")), default=None)
        if llc:  # memory.py: the floor for weights that do not stay in this cache
            prov.update(cache_bytes=llc, cache_source=CACHE_SOURCE)
        return PredictorSet(name, self.device, self.mode, models, prov, unit=self.unit)


def run_calibration(device: str, layers=LAYERS, configs: int = 20, mode: str = "inference",
                    simulate: bool = False, window_s: float = 2.0, reps: int = 3,
                    idle_s: float = 5.0, seed: int = 0, scale: float = 1.0,
                    progress=None, method: str = "energy",
                    ranges: str = "seed", inputs: str = "hot") -> Calibration:
    """Sample, measure and fit. Raises :class:`CalibrationRefused` where nothing can be
    measured. ``method="time"`` measures process CPU time instead of energy (CPU only):
    the set is then a time-proportional proxy, in seconds. ``inputs="cold"`` feeds every
    pass inputs that are not in cache (:func:`make_runner`)."""
    if simulate:
        counter: Any = SimulatedDevice(seed=seed)
        dev_name = SimulatedDevice.name
    elif method == "time":
        if device != "cpu":
            raise CalibrationRefused("--method time measures CPU time: use --device cpu")
        counter = TimeCounter()
        from wattui.estimate.devices import device_name

        dev_name = device_name(device)
        idle_s = 0.0
    else:
        counter = open_counter(device)
        from wattui.estimate.devices import device_name

        dev_name = device_name(device)
    cal = Calibration(dev_name, mode, simulate, method="energy" if simulate else method,
                      ranges=ranges, inputs=inputs)
    # idle baseline
    e0 = counter.read()
    if simulate:
        counter.idle(idle_s)
        cal.idle_w = (counter.read() - e0) / idle_s
    elif method == "time":
        cal.idle_w = None
    else:
        t0 = time.monotonic()
        time.sleep(idle_s)
        cal.idle_w = (counter.read() - e0) / (time.monotonic() - t0)
    rng = random.Random(seed)
    llc = None if simulate or device != "cpu" else cache_bytes()
    for kind in layers:
        for i in range(configs):
            cfg = sample_config(kind, rng, scale, ranges)
            feat = features(kind, cfg)
            if simulate:
                def run(passes, kind=kind, x=feat["x"]):
                    counter.run(kind, x, passes)
            else:
                run = make_runner(kind, cfg, device, mode, inputs)
            clock = (lambda: counter.t) if simulate else \
                time.process_time if method == "time" else time.perf_counter
            energy, passes, per = measure(counter, run, window_s, reps, clock)
            cal.rows.append({"layer": kind, **cfg, **feat, cal.column: energy,
                             "unit": cal.unit, "method": cal.method, "cache_bytes": llc,
                             "inputs": inputs,
                             "passes": int(np.median(passes)), "reps": reps, "rep_spread": float(
                                 (max(per) - min(per)) / energy) if energy else 0.0,
                             "idle_w": cal.idle_w, "mode": mode, "device": dev_name,
                             "simulated": simulate})
            if progress:
                progress(kind, i + 1, configs)
    for kind in layers:
        rows = [r for r in cal.rows if r["layer"] == kind and r[cal.column] > 0]
        if len(rows) < 5:
            continue
        x = np.array([r["x"] for r in rows], float)
        y = np.array([r[cal.column] for r in rows], float)
        cal.fits[kind] = fit_power(x, y)
        cal.chosen[kind], cal.cv[kind] = fit_rows(kind, rows, y)
    return cal


def write_parquet(rows: list[dict], path: str | Path) -> Path:
    """The measured data set, one row per config (polars)."""
    import polars as pl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows, infer_schema_length=None).write_parquet(path)
    return path
