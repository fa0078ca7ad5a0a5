"""Metric fields of a stored session (``wattui.sessions.session_record`` calls this).

Recomputed from the stored events (``metric`` and ``epoch_end`` rows), so any session's SAM,
projection, CO2 and cost can be given again under other alpha, beta, unit, accuracy key,
carbon intensity or price. Options not given fall back to the ones the session was recorded
with (``meta["metric_settings"]``), then to the defaults.
"""

from __future__ import annotations

import json

from wattui.metrics.carbon import make_settings
from wattui.metrics.summary import summarize_metrics
from wattui.model.values import finite_float

__all__ = ["metrics_for_session", "metrics_from_rows", "epoch_marks_from_rows", "accuracy_points"]


def epoch_marks_from_rows(rows: list[dict]) -> list[tuple[float, float, float]]:
    """``(epoch, t_wall, energy_j)`` from ``epoch_end`` rows (the latest per epoch)."""
    by_epoch: dict[float, tuple[float, float, float]] = {}
    for r in rows:
        if r.get("kind") != "epoch_end":
            continue
        k, t, e = finite_float(r.get("epoch")), finite_float(r.get("t_wall")), finite_float(r.get("energy_j"))
        if k is None or t is None or e is None:
            continue
        if k not in by_epoch or t >= by_epoch[k][1]:
            by_epoch[k] = (k, t, e)
    return [by_epoch[k] for k in sorted(by_epoch)]


def eval_parts_from_rows(rows: list[dict]) -> list[float]:
    """Each epoch's evaluation energy, where the recorder saw where evaluation began."""
    out = []
    for r in rows:
        if r.get("kind") != "epoch_end" or not isinstance(r.get("values_json"), str):
            continue
        try:
            v = json.loads(r["values_json"]).get("eval_j")
        except (ValueError, AttributeError):
            continue
        if finite_float(v) is not None and v >= 0:
            out.append(float(v))
    return out


def metrics_from_rows(
    rows: list[dict],
    energy_j: float | None,
    started_at: float | None = None,
    stored: dict | None = None,
    **opts,
) -> dict:
    """Summary fields from event rows; ``opts`` override ``stored`` settings."""
    s = {**(stored or {}), **{k: v for k, v in opts.items() if v is not None}}
    g = opts.get("carbon_g_per_kwh")
    if g is None and opts.get("country") is None:  # a country given now replaces a stored figure
        g = (stored or {}).get("carbon_g_per_kwh")
    try:
        settings = make_settings(
            g_per_kwh=g,
            country=s.get("country"),
            price_per_kwh=s.get("price_per_kwh"),
            currency=s.get("currency") or "USD",
            pue=s.get("pue", 1.0),
        )
    except ValueError:
        settings = make_settings()
    metric_rows = [r for r in rows if r.get("kind") == "metric"]
    out = summarize_metrics(
        metric_rows,
        energy_j,
        epoch_marks_from_rows(rows),
        settings,
        s.get("sam_alpha", 5.0),
        s.get("sam_beta", 5.0),
        s.get("sam_unit", "kWh"),
        s.get("total_epochs"),
        accuracy_key=s.get("accuracy_key"),
        data_fraction=s.get("data_fraction", 1.0),
        start=(started_at, 0.0),
        eval_parts=eval_parts_from_rows(rows),
    )
    out.pop("energy_j", None)
    out["price_per_kwh"] = settings.price_per_kwh
    return out


def metrics_for_session(session, rec: dict, rows: list[dict] | None = None, **opts) -> dict:
    """Fields to merge into a session record. Never raises for a damaged session: returns
    what it can (an empty dict when the events cannot be read). ``rows``: the session's
    event rows when the caller has them (as ``session.events().to_dicts()``)."""
    if rows is None:
        try:
            ev = session.events()
            rows = ev.to_dicts() if hasattr(ev, "to_dicts") else list(ev or [])
        except Exception:  # noqa: BLE001 - a torn events file must not break the listing
            return {}
    meta = getattr(session, "meta", {}) or {}
    stored = meta.get("metric_settings") if isinstance(meta.get("metric_settings"), dict) else {}
    # how many wattui.measure() windows the run recorded: `show` reads them (events and
    # samples) only when there are some, so a cached record answers it without polars
    n_windows = sum(1 for r in rows if r.get("kind") == "measure")
    try:
        out = metrics_from_rows(rows, rec.get("energy_j"), rec.get("started_at"), stored, **opts)
    except ValueError:  # bad alpha/beta/unit given by the caller
        raise
    except Exception:  # noqa: BLE001
        out = {}
    out["measure_windows"] = n_windows
    return out


def accuracy_points(rows: list[dict]) -> list[tuple[float, float]]:
    """(cumulative energy at an epoch end, the run's accuracy for that epoch)."""
    from wattui.metrics.intake import event_from_row
    from wattui.metrics.summary import pick_accuracies

    evs = sorted(
        (event_from_row(r) for r in rows if r.get("kind") == "metric"), key=lambda e: e.t_wall
    )
    acc_by_epoch: dict[float, float] = {}
    for ev in pick_accuracies(evs)[0]:
        if ev.epoch is not None:
            acc_by_epoch[ev.epoch] = ev.accuracy
    return [(e, acc_by_epoch[k]) for k, _t, e in epoch_marks_from_rows(rows) if k in acc_by_epoch]
