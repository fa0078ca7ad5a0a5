"""Every formatter of figures shown to a user: energy, power, bytes, percent, duration,
numbers, accuracy, cost, times, measurement methods. One home, so one session reads the
same everywhere.

Three energies, each where it has always been shown (the screenshots keep them):
:func:`fmt_energy` on the live screen (``n/a``; 2 decimals under 100 Wh),
:func:`fmt_energy_cell` in the comparison table, its exports and the details screen
(blank; 2 decimals under 10 Wh) and :func:`fmt_energy_precise` in the recorder's summary
and ``wattui sessions``/``show`` (3 decimals). Two durations: :func:`fmt_duration`
(``hh:mm:ss``, days) on the live screen, :func:`fmt_clock` (``m:ss``) in the table."""

from __future__ import annotations

import math
import time


# -- formatting (shared by the widgets; no Textual) ---------------------------------------
def fmt_energy(j: float | None) -> str:
    """Energy on the live screen: Wh to 2 decimals, 1 from 100 Wh, kWh to 3 from 1 kWh."""
    if j is None or not math.isfinite(j):
        return "n/a"
    wh = j / 3600.0
    if abs(wh) >= 1000:
        return f"{wh / 1000:.3f} kWh"
    if abs(wh) >= 100:
        return f"{wh:.1f} Wh"
    return f"{wh:.2f} Wh"


def fmt_watts(w: float | None) -> str:
    if w is None or not math.isfinite(w):
        return "n/a"
    if abs(w) >= 10000:
        return f"{w / 1000:.1f} kW"
    return f"{w:.0f} W"


def fmt_bytes(b: float | None) -> str:
    if b is None or not math.isfinite(b):
        return "n/a"
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= div:
            return f"{b / div:.1f} {unit}"
    return f"{b:.0f} B"


def fmt_pct(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.0f}%"


def fmt_duration(s: float | None) -> str:
    if s is None or not math.isfinite(s) or s < 0:
        return "n/a"
    s = int(s)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    return f"{d}d {h:02d}:{m:02d}:{sec:02d}" if d else f"{h:02d}:{m:02d}:{sec:02d}"


def fmt_num(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(x):
        return "n/a"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 10 ** -(digits - 1)):
        return f"{x:.{max(1, digits - 1)}e}"
    return f"{x:.{digits}g}" if abs(x) >= 1000 else f"{x:.{digits}f}".rstrip("0").rstrip(".")


def method_label(m: str | None) -> str:
    """How a figure was obtained, as shown next to it. Simulated is shouted."""
    if not m or m == "none":
        return "n/a"
    return "SIMULATED" if m == "simulated" else m


def fmt_acc(x: float | None, missing: str = "n/a") -> str:
    """Accuracy as everywhere (sessions, show, compare, live): a fraction to 4 decimals."""
    return missing if x is None or not math.isfinite(x) else f"{x:.4f}"


# -- table cells: blank when missing, so an empty cell reads as "nothing recorded" ------
def fmt_energy_cell(j: float | None, unit: str | None = None) -> str:
    """Energy in a table cell: Wh to 2 decimals under 10 Wh, 1 decimal from there, kWh
    to 3 decimals from 1 kWh (or always, with ``unit="kWh"``); blank for None.

    Unlike :func:`fmt_energy` (the live screen: 2 decimals up to 100 Wh, ``n/a``), as
    the comparison table, its exports and the details screen have always shown it."""
    if j is None:
        return ""
    wh = j / 3600.0
    if unit == "kWh" or (unit is None and wh >= 1000):
        return f"{wh / 1000:.3f} kWh"
    return f"{wh:.1f} Wh" if wh >= 10 else f"{wh:.2f} Wh"


def fmt_clock(s: float | None) -> str:
    """A duration as a clock, ``m:ss`` or ``h:mm:ss`` (hours unbounded); blank for None.
    :func:`fmt_duration` is the live screen's zero-padded ``hh:mm:ss`` with days."""
    if s is None:
        return ""
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def fmt_opt(x: float | None, spec: str) -> str:
    """``format(x, spec)``, blank for None."""
    return "" if x is None else format(x, spec)


def fmt_cost(cost: float | None, currency: str | None) -> str:
    """``12.34 EUR``; blank for None."""
    if cost is None:
        return ""
    return f"{cost:.2f} {currency or ''}".strip()


def fmt_utc(t: float | None) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM`` in UTC; blank for None."""
    if t is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))


def fmt_energy_precise(j: float | None) -> str:
    """Energy to the Wh's third decimal (``0.532 Wh``), kWh from 1 kWh up; ``n/a`` for
    None: the recorder's closing summary and ``wattui sessions``/``show``, where a short
    CPU run's figure would read 0.00 in the screens' two decimals."""
    if j is None:
        return "n/a"
    wh = j / 3600.0
    if wh >= 1000:
        return f"{wh / 1000:.3f} kWh"
    return f"{wh:.3f} Wh"


def fmt_joules(j: float | None) -> str:
    """Small energies (per training step) in J, mJ or kJ, 3 significant digits."""
    if j is None or not math.isfinite(j):
        return "n/a"
    if abs(j) >= 1000:
        return f"{j / 1000:.3g} kJ"
    if abs(j) >= 1:
        return f"{j:.3g} J"
    return f"{j * 1000:.3g} mJ"


def fmt_si(x: float | None, unit: str = "J") -> str:
    """``x`` with an SI prefix (k, none, m, u) and ``unit``, 3 significant digits; the
    estimator's figures, which go down to microjoules (or seconds of CPU time)."""
    if x is None:
        return "n/a"
    for prefix, f in (("k", 1e3), ("", 1.0), ("m", 1e-3), ("u", 1e-6)):
        if abs(x) >= f:
            return f"{x / f:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def fmt_count(n: int) -> str:
    """A count with k, M, G or T (``25.6M`` parameters, ``4.1G`` MACs)."""
    for unit, f in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= f:
            return f"{n / f:.3g}{unit}"
    return str(n)


def fmt_local_time(t: float | None, missing: str = "-") -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS`` in local time (the CLI's listings)."""
    if not t:
        return missing
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def fmt_sam_record(rec: dict) -> str:
    """A record's SAM with its unit, ``*`` when the log dominates it, ``n/a`` when
    undefined, blank when not computed (``wattui sessions``/``show``)."""
    if "sam" not in rec:
        return ""
    sam = rec.get("sam")
    if sam is None:
        return "n/a" if rec.get("accuracy") is not None else ""
    return f"{sam:.3f} {rec.get('sam_unit') or ''}".rstrip() + ("*" if rec.get("sam_flag") else "")

