"""Per-layer-type energy predictors: evaluation, (de)serialisation and the shipped sets.

A predictor maps one layer's features (a dict: ``macs``, ``batch_size``, ``elements``,
configuration values) to joules per forward pass. Two forms:

- ``loglinear``: ``log E = c0 + sum(ci * fi)``, features such as ``log_macs``;
- ``power``: ``E = a + b * x^c`` on one feature (what ``wattui calibrate`` fits);
- ``poly``: ``E = c0 + sum(ci * zi)`` on degree-d polynomial features of the named
  features, optionally standardised with the stored mean and scale. The seed's models are
  of this form; so are the shipped ones, whose features are products such as
  ``macs*log_kernel_size`` (energy = overhead + MACs x a per-MAC cost that depends on the
  configuration).

Configuration values used inside ``log_`` features are clamped to the range seen in fitting
(``info["ranges"]``), so extrapolation keeps the per-MAC cost of the nearest fitted config.

A :class:`PredictorSet` is a JSON file with the models and their provenance (device, mode,
data set, fit date). No torch, no numpy needed to evaluate.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from itertools import combinations_with_replacement
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED = {
    "getzner-xeon-cpu": PACKAGE_DIR / "predictors_getzner_xeon_cpu.json",
    "getzner-seed-method": PACKAGE_DIR / "predictors_getzner_seed_method.json",
    # every op kind, measured on this project's CPU by time: a time-proportional proxy
    "amd-epyc-cpu-time": PACKAGE_DIR / "predictors_amd_epyc_cpu_time.json",
}
DEFAULT_SHIPPED = "getzner-xeon-cpu"


def base_feature(name: str, cfg: dict[str, Any]) -> float:
    """Value of one named feature: ``key``, ``log_key``, ``log1p_key`` or a product ``a*b``."""
    if "*" in name:
        return math.prod(base_feature(part, cfg) for part in name.split("*"))
    if name.startswith("log1p_"):
        return math.log1p(max(float(cfg[name[6:]]), 0.0))
    if name.startswith("log_"):
        key = {"batch": "batch_size"}.get(name[4:], name[4:])
        return math.log(max(float(cfg[key]), 1.0))
    return float(cfg[name])


def poly_terms(n: int, degree: int) -> list[tuple[int, ...]]:
    """Index tuples of all monomials of degree 1..d (sklearn PolynomialFeatures order)."""
    return [t for d in range(1, degree + 1) for t in combinations_with_replacement(range(n), d)]


def expand(values: list[float], degree: int) -> list[float]:
    return [math.prod(values[i] for i in t) for t in poly_terms(len(values), degree)]


@dataclass
class Predictor:
    """One layer type's model."""

    form: str  # "loglinear" | "poly" | "power"
    features: list[str]
    coef: list[float]  # intercept first
    degree: int = 1
    mean: list[float] = field(default_factory=list)  # poly: scaler on expanded features
    scale: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # fit rows, errors, ranges

    def predict(self, cfg: dict[str, Any]) -> float:
        ranges = self.info.get("ranges")
        if ranges:
            cfg = dict(cfg)
            for key, (lo, hi) in ranges.items():
                if key in cfg:
                    cfg[key] = min(max(float(cfg[key]), lo), hi)
        cache = self.info.get("cache_bytes")
        if cache:  # memory traffic past the last-level cache (the "cache" form)
            cfg = {**cfg, "dram_bytes": max(0.0, float(cfg.get("bytes", 0)) - cache)}
        x = [base_feature(f, cfg) for f in self.features]
        if self.form == "power":  # E = a + b * x^c (calibrated sets)
            a, b, c = self.coef
            return a + b * max(x[0], 0.0) ** c
        if self.form == "loglinear":
            return math.exp(self.coef[0] + sum(c * v for c, v in zip(self.coef[1:], x)))
        z = expand(x, self.degree)
        if self.mean:
            z = [(v - m) / s for v, m, s in zip(z, self.mean, self.scale)]
        return self.coef[0] + sum(c * v for c, v in zip(self.coef[1:], z))

    def to_dict(self) -> dict[str, Any]:
        d = {"form": self.form, "features": self.features, "degree": self.degree,
             "coef": self.coef}
        if self.mean:
            d["mean"], d["scale"] = self.mean, self.scale
        d["info"] = self.info
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Predictor:
        return cls(d["form"], list(d["features"]), [float(c) for c in d["coef"]],
                   int(d.get("degree", 1)), list(d.get("mean", [])), list(d.get("scale", [])),
                   dict(d.get("info", {})))


@dataclass
class PredictorSet:
    """Models per layer type plus where they come from."""

    name: str
    device: str
    mode: str  # "inference" | "training"
    models: dict[str, Predictor]
    provenance: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    # "J": energy; "s": CPU/GPU time, a time-proportional proxy where no counter exists
    unit: str = "J"

    def to_dict(self) -> dict[str, Any]:
        per = "forward pass" if self.mode == "inference" else "forward+backward pass"
        what = "J" if self.unit == "J" else \
            "s of time (time-proportional proxy for energy, NOT measured energy)"
        return {"name": self.name, "device": self.device, "mode": self.mode,
                "unit": self.unit, "energy_unit": f"{what} per {per}",
                "provenance": self.provenance,
                "models": {k: m.to_dict() for k, m in sorted(self.models.items())}}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: str = "") -> PredictorSet:
        for key in ("name", "device", "mode", "models"):
            if key not in d:
                raise ValueError(f"predictor file {path or '?'} has no '{key}'")
        models = {k: Predictor.from_dict(v) for k, v in d["models"].items()}
        unit = d.get("unit", "J")
        if unit not in ("J", "s"):
            raise ValueError(f"predictor file {path or '?'} has unknown unit {unit!r}")
        return cls(d["name"], d["device"], d["mode"], models, dict(d.get("provenance", {})),
                   path, unit)

    @classmethod
    def load(cls, path: str | Path) -> PredictorSet:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read predictor file {path}: {exc}") from None
        return cls.from_dict(data, str(path))


def user_dir() -> Path:
    """Where calibrated predictor sets live: ``$WATTUI_HOME/predictors`` or the XDG data dir."""
    home = os.environ.get("WATTUI_HOME")
    if home:
        return Path(home) / "predictors"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "wattui" / "predictors"


def device_slug(device: str) -> str:
    """File-name form of a device name: ``cuda:0 NVIDIA H100`` -> ``cuda-0-nvidia-h100``."""
    out = "".join(c.lower() if c.isalnum() else "-" for c in device)
    return "-".join(p for p in out.split("-") if p) or "device"


def calibrated_path(device: str, mode: str) -> Path:
    """Default file of a calibrated set: ``<user_dir>/<device-slug>-<mode>.json``."""
    return user_dir() / f"{device_slug(device)}-{mode}.json"


def resolve(name_or_path: str | None, devices: list[str] | tuple[str, ...] = (),
            mode: str = "inference") -> PredictorSet:
    """Find a predictor set: a path, a shipped name or a calibrated name in :func:`user_dir`;
    with no name, the calibrated set of the first of ``devices`` that has one (same mode
    first, then inference), else the shipped default."""
    if name_or_path:
        p = Path(name_or_path)
        if p.suffix == ".json" or p.exists() or "/" in name_or_path:
            if not p.exists():
                raise ValueError(f"predictor file not found: {p}")
            return PredictorSet.load(p)
        if name_or_path in SHIPPED:
            return PredictorSet.load(SHIPPED[name_or_path])
        for cand in (user_dir() / f"{name_or_path}.json",
                     user_dir() / f"{device_slug(name_or_path)}-{mode}.json",
                     user_dir() / f"{device_slug(name_or_path)}-inference.json"):
            if cand.exists():
                return PredictorSet.load(cand)
        known = sorted(SHIPPED) + sorted(p.stem for p in user_dir().glob("*.json"))
        raise ValueError(f"unknown predictor set '{name_or_path}' (known: {', '.join(known)})")
    for dev in devices:
        for m in dict.fromkeys((mode, "inference")):
            cand = calibrated_path(dev, m)
            if cand.exists():
                return PredictorSet.load(cand)
    return PredictorSet.load(SHIPPED[DEFAULT_SHIPPED])
