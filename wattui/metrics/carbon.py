"""CO2 and cost of electricity.

Carbon intensity comes from an explicit ``--carbon-intensity G_PER_KWH`` or an ISO3 country
code looked up in the shipped table ``wattui/data/carbon_intensity.csv`` (national annual
averages derived from CodeCarbon's ``global_energy_mix.json``, itself from Our World in Data /
Ember; see ``carbon_intensity.SOURCE.md``). ``pue`` (power usage effectiveness, >= 1)
multiplies the measured energy for both CO2 and cost: it accounts for cooling and power
delivery outside the measured devices.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = [
    "CarbonSettings",
    "CountryIntensity",
    "co2_g",
    "cost",
    "lookup_country",
    "countries",
    "make_settings",
    "DATA_PATH",
]

DATA_PATH = Path(__file__).resolve().parent.parent / "data" / "carbon_intensity.csv"
J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class CountryIntensity:
    iso3: str
    country: str
    g_per_kwh: float
    year: int


@dataclass(frozen=True)
class CarbonSettings:
    g_per_kwh: float | None = None
    source_note: str = "no carbon intensity given"
    price_per_kwh: float | None = None
    currency: str = "USD"
    pue: float = 1.0

    def to_dict(self) -> dict:
        return {
            "carbon_g_per_kwh": self.g_per_kwh,
            "carbon_source": self.source_note,
            "price_per_kwh": self.price_per_kwh,
            "currency": self.currency,
            "pue": self.pue,
        }


@lru_cache(maxsize=1)
def _table() -> dict[str, CountryIntensity]:
    out: dict[str, CountryIntensity] = {}
    with open(DATA_PATH, encoding="utf-8", newline="") as f:
        rows = (line for line in f if not line.startswith("#"))
        for r in csv.DictReader(rows):
            iso = r["iso3"].strip().upper()
            out[iso] = CountryIntensity(iso, r["country"], float(r["g_per_kwh"]), int(r["year"]))
    return out


def countries() -> list[CountryIntensity]:
    return sorted(_table().values(), key=lambda c: c.iso3)


def lookup_country(iso3: str) -> CountryIntensity:
    """The national average for an ISO 3166-1 alpha-3 code (``FRA``, ``usa``).

    Unknown codes raise ValueError with a one-line message."""
    code = str(iso3).strip().upper()
    t = _table()
    if code in t:
        return t[code]
    hint = ""
    if len(code) == 2:
        hint = " (use the three-letter ISO code, e.g. FRA, USA, DEU)"
    else:
        close = [c for c in t if c[:2] == code[:2]][:5]
        if close:
            hint = f" (did you mean {', '.join(close)}?)"
    raise ValueError(f"unknown country code {iso3!r}{hint}; see {DATA_PATH.name}")


def _positive(x, what: str, allow_zero: bool = True) -> float:
    try:
        f = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, not {x!r}") from None
    if not math.isfinite(f) or f < 0 or (f == 0 and not allow_zero):
        raise ValueError(f"{what} must be a finite non-negative number, not {x!r}")
    return f


def make_settings(
    g_per_kwh: float | None = None,
    country: str | None = None,
    price_per_kwh: float | None = None,
    currency: str = "USD",
    pue: float = 1.0,
) -> CarbonSettings:
    """Settings from CLI-style options. An explicit intensity wins over a country."""
    p = _positive(pue, "--pue")
    if p < 1.0:
        raise ValueError(f"--pue must be at least 1.0 (it multiplies measured energy), not {pue!r}")
    price = None if price_per_kwh is None else _positive(price_per_kwh, "--price")
    cur = (currency or "USD").strip()[:8] or "USD"
    if g_per_kwh is not None:
        g = _positive(g_per_kwh, "--carbon-intensity")
        return CarbonSettings(g, f"{g:g} g/kWh (given)", price, cur, p)
    if country:
        c = lookup_country(country)
        note = (
            f"{c.country} national average {c.g_per_kwh:g} g/kWh ({c.year}; Our World in Data"
            " / Ember via CodeCarbon)"
        )
        return CarbonSettings(c.g_per_kwh, note, price, cur, p)
    return CarbonSettings(None, "no carbon intensity given", price, cur, p)


def _energy_ok(energy_j) -> bool:
    return (
        energy_j is not None
        and not isinstance(energy_j, bool)
        and isinstance(energy_j, (int, float))
        and math.isfinite(energy_j)
        and energy_j >= 0
    )


def co2_g(energy_j: float | None, settings: CarbonSettings) -> float | None:
    """Grams of CO2 for ``energy_j`` joules (times PUE), or None without an intensity."""
    if settings.g_per_kwh is None or not _energy_ok(energy_j):
        return None
    return energy_j / J_PER_KWH * settings.pue * settings.g_per_kwh


def cost(energy_j: float | None, settings: CarbonSettings) -> float | None:
    """Cost in ``settings.currency`` for ``energy_j`` joules (times PUE), or None without a
    price."""
    if settings.price_per_kwh is None or not _energy_ok(energy_j):
        return None
    return energy_j / J_PER_KWH * settings.pue * settings.price_per_kwh
