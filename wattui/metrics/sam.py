"""The Sustainable Accuracy Metric (Gowda et al., "Watt for What", arXiv 2310.06522)::

    SAM = beta * accuracy**alpha / log10(electricity)

accuracy is a fraction in [0, 1]; electricity is in kWh by default (``unit="Wh"`` or ``"J"``
for short runs). The formula is undefined at 1 unit of electricity and negative below it, so
there the result carries no value and a reason instead. Just above 1 unit (under
``NEAR_SINGULARITY`` units) 1/log10 explodes: the value is given with a ``flag`` saying that
the log dominates it and which unit would make a comparison meaningful. The published alpha/beta could not be found;
wattui defaults to alpha = beta = 5 ("SAM5") and always prints what it used.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from wattui.metrics.intake import validate_accuracy

__all__ = [
    "SamResult",
    "sam",
    "format_sam",
    "energy_in_unit",
    "UNITS",
    "check_params",
    "meaningful_unit",
    "alpha_arg",
    "beta_arg",
    "unit_arg",
]

UNITS = {"kWh": 3.6e6, "Wh": 3600.0, "J": 1.0}  # joules per unit, largest first
NEAR_SINGULARITY = 2.0  # units: below this, 1/log10(energy) dominates SAM (1/log10(2) = 3.3)
MEANINGFUL_UNITS = 10.0  # a unit in which every energy is at least this is a fair scale
DEFAULT_ALPHA = 5.0
DEFAULT_BETA = 5.0
DEFAULT_UNIT = "kWh"


@dataclass(frozen=True)
class SamResult:
    value: float | None
    undefined_reason: str | None
    alpha: float
    beta: float
    unit: str
    accuracy: float | None = None  # the fraction used
    electricity: float | None = None  # energy in ``unit``
    flag: str | None = None  # a value dominated by the log (energy just above 1 unit)

    def to_dict(self) -> dict:
        return {
            "sam": self.value,
            "sam_undefined_reason": self.undefined_reason,
            "sam_flag": self.flag,
            "sam_alpha": self.alpha,
            "sam_beta": self.beta,
            "sam_unit": self.unit,
        }


def _unit(unit: str) -> str:
    for u in UNITS:
        if unit.lower() == u.lower():
            return u
    raise ValueError(f"SAM unit must be one of {', '.join(UNITS)}, not {unit!r}")


def _number(name: str, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"SAM {name} must be a number, not {value!r}") from None


def check_params(alpha: float, beta: float, unit: str) -> tuple[float, float, str]:
    """Validate ``--sam-alpha/--sam-beta/--sam-unit``; ValueError (one line) when bad."""
    a, b = _number("alpha", alpha), _number("beta", beta)
    if not (math.isfinite(a) and 0 <= a <= 100):
        raise ValueError(f"SAM alpha must be between 0 and 100, not {alpha!r}")
    if not (math.isfinite(b) and 0 < b <= 1e6):
        raise ValueError(f"SAM beta must be a positive number, not {beta!r}")
    return a, b, _unit(unit)


def _arg(check):
    def parse(value: str):
        try:
            return check(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


# argparse types for --alpha/--beta/--sam-unit: every command checks them the same way
alpha_arg = _arg(lambda v: check_params(v, DEFAULT_BETA, DEFAULT_UNIT)[0])
beta_arg = _arg(lambda v: check_params(DEFAULT_ALPHA, v, DEFAULT_UNIT)[1])
unit_arg = _arg(lambda v: check_params(DEFAULT_ALPHA, DEFAULT_BETA, v)[2])


def energy_in_unit(energy_j: float, unit: str = DEFAULT_UNIT) -> float:
    return float(energy_j) / UNITS[_unit(unit)]


def meaningful_unit(energies_j) -> str:
    """The largest unit in which every energy given is at least 10 units (log10 >= 1, far
    from the singularity at 1 unit), else the smallest unit."""
    vals = [float(e) for e in energies_j if isinstance(e, (int, float)) and math.isfinite(e) and e > 0]
    for u, j in UNITS.items():
        if vals and min(vals) / j >= MEANINGFUL_UNITS:
            return u
    return list(UNITS)[-1]


def _fmt_energy(x: float) -> str:
    return f"{x:.3g}" if x < 10 else f"{x:,.1f}"


def sam(
    accuracy: float | None,
    energy_j: float | None,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    unit: str = DEFAULT_UNIT,
) -> SamResult:
    """SAM for ``accuracy`` (fraction; a percentage 1 < x <= 100 is converted) and
    ``energy_j`` joules. ``value`` is None with ``undefined_reason`` when it cannot be given;
    it is never negative or infinite. Raises ValueError only for bad alpha/beta/unit."""
    a, b, u = check_params(alpha, beta, unit)

    def undefined(reason: str, acc=None, el=None) -> SamResult:
        return SamResult(None, reason, a, b, u, acc, el)

    if accuracy is None:
        return undefined("no accuracy reported yet")
    acc = validate_accuracy(accuracy)
    if acc is None:
        return undefined(f"accuracy {accuracy!r} is not a fraction or percentage in [0, 100]")
    if (
        energy_j is None
        or isinstance(energy_j, bool)
        or not isinstance(energy_j, (int, float))
        or not math.isfinite(energy_j)
        or energy_j < 0
    ):
        return undefined(f"no valid energy figure ({energy_j!r})", acc)
    el = energy_j / UNITS[u]
    better = meaningful_unit([energy_j])
    if el <= 1.0:
        hint = f"; try --sam-unit {better}" if better != u and energy_j > UNITS[better] else ""
        return undefined(
            f"energy {_fmt_energy(el)} {u} is at or below 1 {u}: log10 <= 0, "
            f"SAM is undefined{hint}",
            acc,
            el,
        )
    lg = math.log10(el)
    if lg <= 0:  # 1 < el but log10 rounds to 0
        return undefined(f"energy {el!r} {u} is too close to 1 {u}: log10 is 0", acc, el)
    value = b * acc**a / lg
    if not math.isfinite(value) or value < 0:
        return undefined(f"SAM overflowed for energy {el!r} {u}", acc, el)
    flag = None
    if el < NEAR_SINGULARITY:
        flag = (
            f"energy {_fmt_energy(el)} {u} is under {NEAR_SINGULARITY:g} {u}: SAM is dominated "
            f"by 1/log10(energy), not by accuracy"
            + (f"; compare in {better} (--sam-unit {better})" if better != u else "")
        )
    return SamResult(value, None, a, b, u, acc, el, flag)


def _num(x: float) -> str:
    return f"{x:g}"


def format_sam(result: SamResult, digits: int = 3) -> str:
    """One line for display that always states alpha, beta and unit, e.g.
    ``SAM 4.21 (alpha=5, beta=5, kWh)`` or ``SAM n/a (alpha=5, beta=5, kWh): <reason>``."""
    params = f"(alpha={_num(result.alpha)}, beta={_num(result.beta)}, {result.unit})"
    if result.value is None:
        return f"SAM n/a {params}: {result.undefined_reason}"
    flag = f" (near the singularity: {result.flag})" if result.flag else ""
    return f"SAM {result.value:.{digits}g} {params}{flag}"
