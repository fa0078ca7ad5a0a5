"""Projecting a run's final electricity from its first epochs, and the energy to a target.

The seed paper ("Watt for What", "How do we scale up?") observed electricity growing linearly
with epochs and with the fraction of the training data. :func:`project` uses exactly that,
with the care its reviewers asked for (a warm-up epoch is not representative):

Method
    1. ``epoch_marks`` are ``(epoch_index, t_wall_end, energy_j_at_end)``: cumulative energy
       since the session started (at 0 J) at the end of each epoch; ``epoch_index`` counts
       completed epochs from 1 (0-based indices, as Lightning prints them, are shifted).
    2. Per-epoch energy/time = differences between consecutive marks divided by the number of
       epochs between them; the first epoch's energy is its mark minus ``start`` energy.
    3. With 3 or more per-epoch figures the first (warm-up) one is left out of the fit.
    4. The fit is linear in epochs: cumulative energy E(k) = E_last + m * (k - k_last), where
       m is the mean of the steady per-epoch energies (the least-squares slope of a line
       through per-epoch increments), anchored at the last measured cumulative energy.
    5. Band: a 95 % t-based prediction interval for the sum of the R remaining epochs,
       half-width = t(0.975, n-1) * s * sqrt(R + R^2 / n), where s is the sample standard
       deviation of the n steady per-epoch energies (epoch-to-epoch scatter plus the
       uncertainty of the mean). With n = 1 there is no spread to measure; the band is then
       a heuristic +-20 % of the remaining energy, and the note says so.
    6. ``data_fraction`` F < 1 means the measured epochs ran on F of the data. Only the part
       of the run that grows with the data is divided by F: the start-up (the first epoch's
       excess over the steady ones), each epoch's evaluation (``fixed_per_epoch_j``, when
       the output showed where evaluation starts) and what follows the last epoch are not.
    7. Edges: a run at or past its total projects what it has spent (``energy_now``), never
       less; for a run still going, the band's top adds one evaluation's energy (or, when
       that is unknown, the start-up) for what usually follows the last epoch (a final test).

:func:`energy_to_target` goes beyond the seed: it fits a saturating curve
``acc = a - b * exp(-c * E)`` to (energy, accuracy) points and solves for the energy at
which the curve reaches a target accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wattui.model.values import is_finite_number

__all__ = [
    "Projection",
    "project",
    "t975",
    "TargetFit",
    "fit_saturating",
    "energy_to_target",
    "energy_to_target_detail",
]

_T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    11: 2.201,
    12: 2.179,
    13: 2.160,
    14: 2.145,
    15: 2.131,
    16: 2.120,
    17: 2.110,
    18: 2.101,
    19: 2.093,
    20: 2.086,
    21: 2.080,
    22: 2.074,
    23: 2.069,
    24: 2.064,
    25: 2.060,
    26: 2.056,
    27: 2.052,
    28: 2.048,
    29: 2.045,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}


def t975(df: int) -> float:
    """Two-sided 95 % Student-t quantile for ``df`` degrees of freedom (table, no scipy)."""
    if df < 1:
        return math.inf
    if df in _T975:
        return _T975[df]
    keys = sorted(_T975)
    for lo, hi in zip(keys, keys[1:], strict=False):
        if lo < df < hi:  # interpolate in 1/df, which is close to linear
            w = (1 / df - 1 / hi) / (1 / lo - 1 / hi)
            return _T975[hi] + w * (_T975[lo] - _T975[hi])
    return 1.960


@dataclass(frozen=True)
class Projection:
    final_energy_j: float
    low_j: float
    high_j: float
    end_time: float | None  # projected wall time of the last epoch's end (F == 1 only)
    per_epoch_j: float  # steady per-epoch energy (full data when F < 1)
    per_epoch_s: float | None  # steady per-epoch seconds on the measured data fraction
    epochs_used: int  # per-epoch figures in the fit
    method_note: str
    epochs_done: int = 0
    total_epochs: int = 0
    data_fraction: float = 1.0
    duration_s: float | None = None  # projected full run duration (from the start)

    def to_dict(self) -> dict:
        return {
            "projected_energy_j": self.final_energy_j,
            "projected_energy_low_j": self.low_j,
            "projected_energy_high_j": self.high_j,
            "projected_end_time": self.end_time,
            "projected_per_epoch_j": self.per_epoch_j,
            "projected_per_epoch_s": self.per_epoch_s,
            "projection_epochs_used": self.epochs_used,
            "projection_note": self.method_note,
        }


def project(
    epoch_marks: list[tuple[float, float, float]],
    total_epochs: int,
    data_fraction: float = 1.0,
    start: tuple[float | None, float] | None = None,
    *,
    energy_now: float | None = None,
    fixed_per_epoch_j: float | None = None,
) -> Projection:
    """Project the final energy of a ``total_epochs`` run (see the module doc for the method).

    ``start`` is ``(t_wall_start, energy_j_start)`` of the session, default ``(None, 0.0)``:
    without a start time the first epoch's duration is unknown. Raises ValueError when there
    is nothing to project from (no usable marks, bad total or fraction).
    """
    if not is_finite_number(total_epochs) or total_epochs < 1:
        raise ValueError(f"total_epochs must be a positive number, not {total_epochs!r}")
    total = int(round(total_epochs))
    if not is_finite_number(data_fraction) or not 0 < data_fraction <= 1:
        raise ValueError(f"data fraction must be in (0, 1], not {data_fraction!r}")
    t0, e0 = start if start is not None else (None, 0.0)
    marks = []
    for m in epoch_marks:
        try:
            k, t, e = m
        except (TypeError, ValueError):
            continue
        if is_finite_number(k) and is_finite_number(t) and is_finite_number(e) and e >= 0:
            marks.append((float(k), float(t), float(e)))
    if not marks:
        raise ValueError("no epoch has ended yet: nothing to project from")
    # one mark per epoch index (the latest), in order
    by_k: dict[float, tuple[float, float, float]] = {}
    for m in sorted(marks, key=lambda m: (m[0], m[1])):
        by_k[m[0]] = m
    marks = [by_k[k] for k in sorted(by_k)]
    if marks[0][0] == 0:  # 0-based epoch indices
        marks = [(k + 1, t, e) for k, t, e in marks]
    marks = [m for m in marks if m[0] >= 1]
    if not marks:
        raise ValueError("epoch indices must count completed epochs (1, 2, ...)")

    per_e: list[float] = []
    per_s: list[float] = []
    k1, tt1, e1 = marks[0]
    per_e.append((e1 - (e0 if is_finite_number(e0) else 0.0)) / k1)
    first_s = (tt1 - t0) / k1 if t0 is not None and is_finite_number(t0) and tt1 >= t0 else None
    for (ka, ta, ea), (kb, tb, eb) in zip(marks, marks[1:], strict=False):
        dk = kb - ka
        per_e.append(max(eb - ea, 0.0) / dk)
        per_s.append(max(tb - ta, 0.0) / dk)
    notes = []
    steady_e = per_e
    steady_s = per_s if first_s is None else [first_s] + per_s
    if len(per_e) >= 3:
        steady_e = per_e[1:]
        steady_s = per_s  # the intervals after the first epoch
        notes.append("first (warm-up) epoch left out of the fit")
    n = len(steady_e)
    m = sum(steady_e) / n
    k_last, t_last, e_last = marks[-1]
    done = int(k_last)
    remaining = max(total - done, 0)
    if n >= 2:
        s = math.sqrt(sum((x - m) ** 2 for x in steady_e) / (n - 1))
        half = t975(n - 1) * s * math.sqrt(remaining + remaining**2 / n)
        notes.append(f"95% t-interval from the spread of {n} per-epoch energies")
    else:
        half = 0.2 * m * remaining
        notes.append("one epoch measured: band is a +-20% heuristic, not a statistic")
    f = float(data_fraction)
    # the parts that do not grow with the data
    startup = 0.0
    if len(per_e) >= 2:
        rest = per_e[1:]
        startup = max(0.0, (e1 - (e0 if is_finite_number(e0) else 0.0)) - k1 * sum(rest) / len(rest))
    fixed = fixed_per_epoch_j if is_finite_number(fixed_per_epoch_j) and fixed_per_epoch_j > 0 else 0.0
    fixed = min(fixed, m)
    now = energy_now if is_finite_number(energy_now) and energy_now >= 0 else None
    past_total = done >= total
    tail = max(0.0, now - e_last) if (now is not None and past_total) else 0.0
    if f < 1:
        data_done = max(e_last - startup - done * fixed, 0.0)
        per_data = m - fixed
        proj_full = startup + data_done / f + done * fixed + remaining * (per_data / f + fixed)
        half_full = half * ((per_data / f + fixed) / m if m > 0 else 1.0 / f)
        what = "start-up" + (", each epoch's evaluation" if fixed else "")
        notes.append(f"measured on {f:g} of the data: the data part scaled by 1/{f:g}, "
                     f"not the {what}")
    else:
        proj_full, half_full = e_last + m * remaining, half
    per_epoch_full = (m - fixed) / f + fixed
    final = proj_full + tail
    low = max(proj_full - half_full, e_last + tail)
    high = proj_full + half_full + tail
    if now is not None:
        if past_total:
            notes.append("all epochs done: what it has spent")
        final, low = max(final, now), max(low, now)
        high = max(high, final)
    if not past_total:
        high += fixed if fixed else startup  # what follows the last epoch (a final test)
    spd = sum(steady_s) / len(steady_s) if steady_s else None
    end_time = t_last + spd * remaining if spd is not None and f == 1 else None
    duration = None
    if spd is not None:
        duration = spd * total / f
    note = f"linear in epochs ({done} of {total} done); " + "; ".join(notes)
    return Projection(
        final_energy_j=final,
        low_j=low,
        high_j=high,
        end_time=end_time,
        per_epoch_j=per_epoch_full,
        per_epoch_s=spd,
        epochs_used=n,
        method_note=note,
        epochs_done=done,
        total_epochs=total,
        data_fraction=f,
        duration_s=duration,
    )


# ---------------------------------------------------------------------------- energy to target


@dataclass(frozen=True)
class TargetFit:
    energy_j: float | None
    reason: str | None
    a: float | None = None  # plateau accuracy
    b: float | None = None
    c: float | None = None  # per joule
    measured: bool = False  # True when a measured point already reached the target


def fit_saturating(points: list[tuple[float, float]]) -> tuple[float, float, float, float] | None:
    """Least-squares fit of ``acc = a - b * exp(-c * E)`` (b > 0, c > 0).

    For each c on a log grid (relative to the energy span) a and b follow in closed form; the
    best c is refined by golden-section search. Returns ``(a, b, c, rmse)`` or None."""
    pts = [(float(e), float(y)) for e, y in points if is_finite_number(e) and is_finite_number(y) and e >= 0]
    if len({e for e, _ in pts}) < 3:
        return None
    emax = max(e for e, _ in pts)
    if emax <= 0:
        return None
    n = len(pts)

    def solve(c: float):
        xs = [math.exp(-c * e) for e, _ in pts]
        ys = [y for _, y in pts]
        mx, my = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx <= 1e-300:
            return None
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=False)) / sxx  # = -b
        a = my - slope * mx
        sse = sum((a + slope * x - y) ** 2 for x, y in zip(xs, ys, strict=False))
        return a, -slope, sse

    best = None
    grid = [10 ** (i / 8) / emax for i in range(-16, 25)]  # c * emax from 0.01 to 1000
    for c in grid:
        r = solve(c)
        if r is not None and r[1] > 0 and (best is None or r[2] < best[3]):
            best = (r[0], r[1], c, r[2])
    if best is None:
        return None
    lo, hi = best[2] / 10 ** (1 / 8), best[2] * 10 ** (1 / 8)
    g = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        c1, c2 = hi - g * (hi - lo), lo + g * (hi - lo)
        r1, r2 = solve(c1), solve(c2)
        s1 = r1[2] if r1 and r1[1] > 0 else math.inf
        s2 = r2[2] if r2 and r2[1] > 0 else math.inf
        if s1 < s2:
            hi = c2
        else:
            lo = c1
    c = (lo + hi) / 2
    r = solve(c)
    if r is not None and r[1] > 0 and r[2] <= best[3]:
        best = (r[0], r[1], c, r[2])
    a, b, c, sse = best
    return a, b, c, math.sqrt(sse / n)


def energy_to_target_detail(points: list[tuple[float, float]], target: float) -> TargetFit:
    """Energy (J, cumulative) at which accuracy reaches ``target`` (fraction), with a reason
    when it cannot be said: too few points, a curve that does not rise, or a plateau below
    the target."""
    if not is_finite_number(target) or not 0 < target <= 1:
        return TargetFit(None, f"target {target!r} must be a fraction in (0, 1]")
    pts = sorted((float(e), float(y)) for e, y in points if is_finite_number(e) and is_finite_number(y))
    for e, y in pts:
        if y >= target:
            return TargetFit(e, None, measured=True)
    fit = fit_saturating(pts)
    if fit is None:
        return TargetFit(None, "need at least 3 points at different energies on a rising curve")
    a, b, c, _rmse = fit
    if a <= target:
        return TargetFit(
            None, f"accuracy levels off near {a:.3f}, below the target {target:.3f}", a, b, c
        )
    e = -math.log((a - target) / b) / c
    if not math.isfinite(e) or e < 0:
        return TargetFit(None, "the fitted curve gives no finite energy for the target", a, b, c)
    return TargetFit(e, None, a, b, c)


def energy_to_target(points: list[tuple[float, float]], target: float) -> float | None:
    """Cumulative energy (J) at which accuracy is projected to reach ``target``; None when the
    curve does not allow it (see :func:`energy_to_target_detail` for the reason)."""
    return energy_to_target_detail(points, target).energy_j
