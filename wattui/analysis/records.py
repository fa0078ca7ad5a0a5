"""Loading the record of a session for the comparison: ``session_record`` with its
metric results (stored in meta.json at the end of a run, else computed from its events),
a multi-node group's merged record, and every record of a store."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from wattui.groups.merge import merge_group
from wattui.groups.refs import group_sessions
from wattui.metrics.intake import validate_accuracy
from wattui.model.group import GroupRef
from wattui.sessions import clean_record, session_record
from wattui.store.reader import Session, list_sessions

METRIC_KEYS = (
    "accuracy",
    "best_accuracy",
    "model",
    "epochs_done",
    "total_epochs",
    "projected_energy_j",
    "co2_g",
    "cost",
    "currency",
    "carbon_g_per_kwh",
    "carbon_source",
    "pue",
    "sam",
    "sam_alpha",
    "sam_beta",
    "sam_unit",
)


def _meta_metrics(meta: dict) -> dict | None:
    """Metric results stored in meta.json at the end of a run (top level or under
    ``metrics``), or None when the session stored none."""
    src = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else meta
    found = {k: src[k] for k in METRIC_KEYS if k in src}
    return found if ("accuracy" in found or "sam" in found) else None


def _events_metrics(session: Session, energy_j) -> dict:
    """Fallback: metric fields from the session's events (used only when neither
    meta.json nor the metrics module supplied them)."""
    try:
        ev = session.events()
        rows = ev.filter(pl.col("kind") == "metric").to_dicts()
    except Exception:  # noqa: BLE001 - a torn events file must not break the listing
        return {}
    if not rows:
        return {}
    accs = [r["accuracy"] for r in rows if r.get("accuracy") is not None]
    accs = [a for a in (validate_accuracy(x) for x in accs) if a is not None]
    if not accs:
        return {}
    return {"accuracy": accs[-1], "best_accuracy": max(accs)}


def load_record(session: Session) -> dict:
    """The ``session_record`` of one session, with its metric fields."""
    stored = _meta_metrics(session.meta) if session.status != "running" else None
    if stored is not None:
        rec = session_record(session, metrics=False)
        rec.update(clean_record(stored))
        return rec
    try:
        rec = session_record(session)
    except Exception:  # noqa: BLE001 - a metrics bug must not hide the session
        rec = session_record(session, metrics=False)
    if "accuracy" not in rec:
        rec.update(_events_metrics(session, rec.get("energy_j")))
    return rec


def load_group_record(root: Path, group_id: str) -> dict | None:
    """The merged record (``group:<ID>``) of the sessions of one group, or None when the
    store holds none of them."""
    gid = GroupRef.of(group_id).id
    parts = []
    for s in group_sessions(root, gid):
        try:
            parts.append(load_record(s))
        except Exception:  # noqa: BLE001 - one unreadable node never hides the others
            continue
    return merge_group(gid, parts) if parts else None


def load_records(root: Path) -> tuple[list[dict], list[str]]:
    """``session_record`` of every readable session and one line per skipped one."""
    sessions, problems = list_sessions(Path(root))
    recs = []
    for s in sessions:
        try:
            recs.append(load_record(s))
        except Exception as e:  # noqa: BLE001 - one bad session never breaks the table
            problems.append(f"{s.dir.name}: cannot read ({type(e).__name__}: {e}) (skipped)")
            continue
        problems.extend(f"{s.id}: {p}" for p in recs[-1].get("problems", ()))
    return recs, problems
