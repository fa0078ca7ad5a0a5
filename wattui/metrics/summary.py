"""The per-session metric fields the recorder exposes (JSON), computed from events or stored rows.

Because it works from stored rows (``MetricEvent.to_row()`` dicts), any session's SAM can be
recomputed later under another alpha, beta, unit or accuracy key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from wattui.metrics.carbon import CarbonSettings, co2_g, cost
from wattui.metrics.intake import ACCURACY_KINDS, MetricEvent, accuracy_rank, event_from_row
from wattui.metrics.projection import project
from wattui.metrics.sam import DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_UNIT, sam

__all__ = ["summarize_metrics", "epoch_marks_from_events", "pick_accuracies"]


def _percent_seen_later(accs: list[MetricEvent]) -> list[MetricEvent]:
    """A key that showed a value above 1 is a percentage from its first value on: its early
    figures at or below 1 (0.78 printed before 12.5) were taken as fractions when they came."""
    pct = set()
    for e in accs:
        raw = e.values.get(e.accuracy_key)
        if isinstance(raw, (int, float)) and raw > 1:
            pct.add((e.source, e.accuracy_key))
    if not pct:
        return accs
    out = []
    for e in accs:
        raw = e.values.get(e.accuracy_key)
        if (e.source, e.accuracy_key) in pct and isinstance(raw, (int, float)) and (
            0 <= raw <= 1 and abs(e.accuracy - raw) < 1e-12
        ):
            e = dataclasses.replace(e, accuracy=raw / 100.0)
        out.append(e)
    return out


def pick_accuracies(evs: list[MetricEvent], accuracy_key: str | None = None):
    """The run's accuracy stream, in time order, and what kind it is.

    Epoch-level validation/eval/test accuracies when the run ever showed one; otherwise
    training ones (labelled so); per-batch ones only when there is nothing else. For the
    same epoch a report or metrics file wins over parsed output. With ``accuracy_key``
    every value of that key counts. Of a parsed key only the last figure of each epoch
    counts."""
    accs = _percent_seen_later([e for e in evs if e.accuracy is not None])
    if accuracy_key is not None or not accs:
        return accs, (ACCURACY_KINDS[0] if accs and accuracy_key is None else None)
    ranks = [accuracy_rank(e.accuracy_key) for e in accs]
    best = min(ranks)
    accs = [e for e, r in zip(accs, ranks, strict=True) if r == best]
    reported = {e.epoch for e in accs if e.source != "log" and e.epoch is not None}
    accs = [e for e in accs if not (e.source == "log" and e.epoch in reported)]
    # a parsed key's last figure of an epoch: a progress bar shows the previous
    # validation's figure until the epoch's own validation replaces it
    last = {}
    for i, e in enumerate(accs):
        if e.source == "log" and e.epoch is not None:
            last[(e.epoch, e.accuracy_key)] = i
    accs = [
        e
        for i, e in enumerate(accs)
        if e.source != "log" or e.epoch is None or last[(e.epoch, e.accuracy_key)] == i
    ]
    return accs, ACCURACY_KINDS[best]


def _events(items: Iterable, accuracy_key: str | None) -> list[MetricEvent]:
    out = []
    for it in items or ():
        if isinstance(it, MetricEvent):
            if accuracy_key is not None:
                it = event_from_row(it.to_row(), accuracy_key)
            out.append(it)
        elif isinstance(it, dict):
            try:
                out.append(event_from_row(it, accuracy_key))
            except Exception:  # noqa: BLE001 - a bad stored row is skipped, not fatal
                continue
    out = [e for e in out if e.kind == "metric"]
    out.sort(key=lambda e: e.t_wall)
    return out


def epoch_marks_from_events(
    events: list[MetricEvent], energy_at: callable
) -> list[tuple[float, float, float]]:
    """Epoch marks from events: the last event carrying each epoch value marks that epoch's
    end; ``energy_at(t_wall) -> joules`` gives the cumulative energy then. A convenience for
    recorders that do not track epoch boundaries themselves."""
    last: dict[float, float] = {}
    for e in events:
        if e.epoch is not None:
            last[e.epoch] = e.t_wall
    return [(k, t, float(energy_at(t))) for k, t in sorted(last.items())]


def _mean(xs: list[float] | None) -> float | None:
    xs = [x for x in xs or () if isinstance(x, (int, float)) and math.isfinite(x) and x >= 0]
    return sum(xs) / len(xs) if xs else None


def summarize_metrics(
    events: list,
    energy_j: float | None,
    epoch_marks: list[tuple[float, float, float]] | None,
    settings: CarbonSettings | None = None,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    unit: str = DEFAULT_UNIT,
    total_epochs: int | None = None,
    *,
    accuracy_key: str | None = None,
    data_fraction: float = 1.0,
    start: tuple[float | None, float] | None = None,
    eval_parts: list[float] | None = None,
) -> dict:
    """Fields for one session. ``events`` are MetricEvents or stored row dicts; ``energy_j``
    the session's measured energy so far; ``epoch_marks`` as for :func:`project`.

    SAM uses the latest reported accuracy (``sam_accuracy``); ``best_accuracy`` is the
    maximum seen. ``total_epochs`` defaults to the latest reported one.
    """
    settings = settings or CarbonSettings()
    evs = _events(events, accuracy_key)
    accs, accuracy_kind = pick_accuracies(evs, accuracy_key)
    latest = accs[-1] if accs else None
    accuracy = latest.accuracy if latest else None
    best = max((e.accuracy for e in accs), default=None)
    if total_epochs is None:  # totals only grow: a late "Epoch 3/3" does not shrink it
        total_epochs = max((e.total_epochs for e in evs if e.total_epochs), default=None)
    epochs_seen = [e.epoch for e in evs if e.epoch is not None]
    marks = list(epoch_marks or [])
    epochs_done = None
    if marks:
        ks = [m[0] for m in marks]
        epochs_done = int(max(ks) + (1 if min(ks) == 0 else 0))
    elif epochs_seen:
        epochs_done = max(epochs_seen)
        epochs_done = int(epochs_done) if float(epochs_done).is_integer() else epochs_done
    epochs_note = None
    if epochs_done is not None and total_epochs and epochs_done > total_epochs:
        epochs_note = (
            f"{epochs_done:g} epochs seen, more than the {total_epochs} the run announced"
        )
    model = None
    for e in reversed(evs):
        if e.text.get("model") or e.text.get("name"):
            model = e.text.get("model") or e.text.get("name")
            break

    s = sam(accuracy, energy_j, alpha, beta, unit)
    out: dict = {
        "accuracy": accuracy,
        "accuracy_key": latest.accuracy_key if latest else accuracy_key,
        "best_accuracy": best,
        "accuracy_reports": len(accs),
        "accuracy_kind": accuracy_kind,
        "epochs_done": epochs_done,
        "epochs_note": epochs_note,
        "total_epochs": total_epochs,
        "model": model,
        "energy_j": energy_j,
        "sam": s.value,
        "sam_undefined_reason": s.undefined_reason,
        "sam_flag": s.flag,
        "sam_alpha": s.alpha,
        "sam_beta": s.beta,
        "sam_unit": s.unit,
        "sam_accuracy": "latest",
        "projected_energy_j": None,
        "projected_energy_low_j": None,
        "projected_energy_high_j": None,
        "projected_end_time": None,
        "projection_note": None,
        "projected_sam": None,
        "projected_sam_undefined_reason": None,
        "projected_co2_g": None,
        "projected_cost": None,
        "co2_g": co2_g(energy_j, settings),
        "cost": cost(energy_j, settings),
        "currency": settings.currency if settings.price_per_kwh is not None else None,
        "carbon_g_per_kwh": settings.g_per_kwh,
        "carbon_source": settings.source_note,
        "pue": settings.pue,
    }
    if marks and total_epochs:
        try:
            p = project(
                marks,
                total_epochs,
                data_fraction,
                start,
                energy_now=energy_j,
                fixed_per_epoch_j=_mean(eval_parts),
            )
        except ValueError as e:
            out["projection_note"] = str(e)
        else:
            out.update(p.to_dict())
            ps = sam(accuracy, p.final_energy_j, alpha, beta, unit)
            out["projected_sam"] = ps.value
            out["projected_sam_undefined_reason"] = ps.undefined_reason
            out["projected_co2_g"] = co2_g(p.final_energy_j, settings)
            out["projected_cost"] = cost(p.final_energy_j, settings)
    elif not total_epochs:
        out["projection_note"] = "total epochs unknown: report total_epochs= or pass --epochs"
    else:
        out["projection_note"] = "no epoch has ended yet"
    for k, v in out.items():  # JSON-safe: no NaN/inf anywhere
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None
    return out
