"""Merging the sessions of one multi-node group into one record.

Each node's recorder (``wattui record --group ID``) writes its own session into a shared
store. :func:`merge_group` turns the :func:`wattui.sessions.session_record` dicts of one
group into one record that looks like a session record (so listings and the comparison
table show it like any other run), with a ``nodes`` list of the per-node parts;
:func:`group_records` does so for every group in a list of records; :func:`held_sum` adds
nodes' power or energy over time. Never imports Textual.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from wattui.metrics.sam import sam
from wattui.model.group import GroupRef
from wattui.model.kinds import group_status  # the one order, GROUP_STATUS_ORDER
from wattui.model.values import finite_float

__all__ = ["group_records", "group_status", "held_sum", "held_sum_points", "merge_group"]

# Per-part fields that add up across nodes (None unless every part has a number).
ADDITIVE = (
    "energy_above_idle_j",
    "co2_g",
    "cost",
    "projected_energy_j",
    "projected_energy_low_j",
    "projected_energy_high_j",
    "projected_co2_g",
    "projected_cost",
)
# Accuracy fields copied from the part that reported the accuracy.
ACCURACY_FIELDS = (
    "accuracy",
    "accuracy_key",
    "best_accuracy",
    "accuracy_reports",
    "epochs_done",
    "total_epochs",
    "model",
    "sam_accuracy",
)
# Fields that only make sense when every node agrees on them.
COMMON = ("currency", "carbon_g_per_kwh", "carbon_source", "pue", "mode")

def _sum_all(values: list) -> float | None:
    """Sum when every value is a number; None when any part lacks it."""
    nums = [finite_float(v) for v in values]
    if not nums or any(v is None for v in nums):
        return None
    return sum(nums)


def _sum_present(values: list) -> float | None:
    """Sum of the numbers present; None when there are none."""
    nums = [v for v in (finite_float(x) for x in values) if v is not None]
    return sum(nums) if nums else None


def _rank(rec: dict):
    for k in ("rank", "node_rank", "group_rank"):
        v = rec.get(k)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


def _accuracy_part(parts: list[dict]) -> dict | None:
    """The part whose accuracy stands for the group: usually only rank 0 reports it. When
    several did, the lowest rank wins, then the most reports, then the latest to end."""
    have = [p for p in parts if finite_float(p.get("accuracy")) is not None]
    if not have:
        return None

    def key(p):
        r = _rank(p)
        return (
            r is None,
            r if r is not None else 0,
            -(p.get("accuracy_reports") or 0),
            -(finite_float(p.get("ended_at")) or finite_float(p.get("started_at")) or 0.0),
        )

    return sorted(have, key=key)[0]


def _labels(parts: list[dict]) -> list[str]:
    """One label per part: its host, or ``host/<session id>`` when a host holds several parts
    (several recorders on one machine, or a host name that says nothing)."""
    hosts = [p.get("host") or "?" for p in parts]
    return [h if hosts.count(h) == 1 else f"{h}/{p.get('id')}" for h, p in zip(hosts, parts)]


def _sam(accuracy, energy_j, alpha, beta, unit) -> dict:
    kw = {}
    if alpha is not None:
        kw["alpha"] = alpha
    if beta is not None:
        kw["beta"] = beta
    if unit is not None:
        kw["unit"] = unit
    try:
        return sam(accuracy, energy_j, **kw).to_dict()
    except ValueError as e:
        return {"sam": None, "sam_undefined_reason": str(e)}


def merge_group(group_id: str, parts: list[dict]) -> dict:
    """One record for the sessions of one group (see :func:`group_records`)."""
    parts = sorted(
        parts,
        key=lambda p: (
            _rank(p) is None,
            _rank(p) or 0,
            p.get("host") or "",
            finite_float(p.get("started_at")) or 0.0,
            p.get("id") or "",
        ),
    )
    labels = _labels(parts)
    status = group_status(p.get("status") for p in parts)
    starts = [s for s in (finite_float(p.get("started_at")) for p in parts) if s is not None]
    ends = [e for e in (finite_float(p.get("ended_at")) for p in parts) if e is not None]
    started = min(starts) if starts else None
    ended = max(ends) if ends and status != "running" else None
    duration = None
    if started is not None:
        last = [
            (finite_float(p.get("started_at")) or started) + (finite_float(p.get("duration_s")) or 0.0)
            for p in parts
        ]
        end = ended if ended is not None else max(last)
        duration = max(0.0, end - started)

    gpus: list[dict] = []
    cpu: list[dict] = []
    nodes: list[dict] = []
    notes: list[str] = []
    tags: list[str] = []
    for label, p in zip(labels, parts):
        host = p.get("host")
        for src, dst in ((p.get("gpus") or [], gpus), (p.get("cpu") or [], cpu)):
            for d in src:
                d = dict(d)
                d["node_key"] = d.get("key")
                d["key"] = f"{label}:{d.get('key')}"
                d["host"] = host
                d["session"] = p.get("id")
                dst.append(d)
        for n in p.get("notes") or []:
            if all(n in (q.get("notes") or []) for q in parts):
                line = n  # every node says it: once is enough
            else:
                line = f"{label}: {n}"
            if line not in notes:
                notes.append(line)
        for t in p.get("tags") or []:
            if t not in tags:
                tags.append(t)
        nodes.append(
            {
                "label": label,
                "host": host,
                "id": p.get("id"),
                "rank": _rank(p),
                "status": p.get("status"),
                "exit_code": p.get("exit_code"),
                "started_at": p.get("started_at"),
                "ended_at": p.get("ended_at"),
                "duration_s": p.get("duration_s"),
                "energy_j": p.get("energy_j"),
                "gpu_energy_j": p.get("gpu_energy_j"),
                "gpus": len(p.get("gpus") or []),
                "accuracy": p.get("accuracy"),
                "simulated": bool(p.get("simulated")),
            }
        )

    exit_codes = [p.get("exit_code") for p in parts]
    nonzero = [c for c in exit_codes if c not in (None, 0)]
    exit_code = nonzero[0] if nonzero else (0 if exit_codes and all(c == 0 for c in exit_codes) else None)
    names = {p.get("name") for p in parts if p.get("name")}
    hosts = []
    for p in parts:
        if p.get("host") and p["host"] not in hosts:
            hosts.append(p["host"])

    energy = _sum_present([p.get("energy_j") for p in parts])
    rec: dict = {
        "id": str(GroupRef(group_id)),
        "kind": "group",
        "name": names.pop() if len(names) == 1 else f"group {group_id}",
        "tags": tags,
        "command": parts[0].get("command"),
        "pid": None,
        "host": ",".join(hosts) if hosts else None,
        "hosts": hosts,
        "group": group_id,
        "session_ids": [p.get("id") for p in parts],
        "status": status,
        "exit_code": exit_code,
        "started_at": started,
        "ended_at": ended,
        "duration_s": duration,
        "energy_j": energy,
        "gpu_energy_j": _sum_present([p.get("gpu_energy_j") for p in parts]),
        "simulated": any(p.get("simulated") for p in parts),
        "gpus": gpus,
        "cpu": cpu,
        "notes": notes,
        "baseline": None,
        "nodes": nodes,
        "node_count": len(parts),
        "missing_energy_nodes": [
            n["label"] for n in nodes if finite_float(n["energy_j"]) is None
        ],
    }
    for k in COMMON:
        vals = {repr(p.get(k)) for p in parts if k in p}
        if len(vals) == 1:
            rec[k] = next(p.get(k) for p in parts if k in p)
    for k in ADDITIVE:
        if any(k in p for p in parts):
            rec[k] = _sum_all([p.get(k) for p in parts])

    acc_part = _accuracy_part(parts)
    has_metrics = any("sam" in p or "accuracy" in p for p in parts)
    if acc_part is not None:
        for k in ACCURACY_FIELDS:
            if k in acc_part:
                rec[k] = acc_part[k]
        rec["accuracy_node"] = labels[parts.index(acc_part)]
    elif has_metrics:
        rec["accuracy"] = None
        rec["accuracy_node"] = None
    if has_metrics or acc_part is not None:
        ref = acc_part or next((p for p in parts if "sam_alpha" in p), {})
        alpha, beta, unit = ref.get("sam_alpha"), ref.get("sam_beta"), ref.get("sam_unit")
        rec.update(_sam(rec.get("accuracy"), energy, alpha, beta, unit))
        if rec.get("projected_energy_j") is not None:
            ps = _sam(rec.get("accuracy"), rec["projected_energy_j"], alpha, beta, unit)
            rec["projected_sam"] = ps["sam"]
            rec["projected_sam_undefined_reason"] = ps["sam_undefined_reason"]
        elif any("projected_sam" in p for p in parts):
            rec["projected_sam"] = None
            rec["projected_sam_undefined_reason"] = "not every node has a projection"
    return rec


def group_records(records: list[dict]) -> list[dict]:
    """Merge the records that share a ``group`` into one record each.

    The merged record sits where the group's first record was; records without a group
    are returned unchanged and in place. A merged record has ``kind: "group"``, an ``id``
    of ``group:<ID>``, energy summed over its nodes, ``nodes`` (one entry per part, with
    its host), ``gpus``/``cpu`` with keys prefixed by the node's label (``host:gpu0``),
    the status ``running`` if any part runs, else ``failed`` if any failed, else
    ``interrupted`` if any was, else ``finished``; ``started_at`` the earliest start and
    ``ended_at`` the latest end; the accuracy of the rank that reported it, and SAM
    recomputed on the group's total energy.
    """
    groups: dict[str, list[dict]] = {}
    for r in records:
        g = r.get("group")
        if g not in (None, "") and r.get("kind") != "group":
            groups.setdefault(str(g), []).append(r)
    out: list[dict] = []
    done: set[str] = set()
    for r in records:
        g = r.get("group")
        if g in (None, "") or r.get("kind") == "group":
            out.append(r)
            continue
        g = str(g)
        if g in done:
            continue
        done.add(g)
        out.append(merge_group(g, groups[g]))
    return out


# -- power and energy of several nodes over time -------------------------------------------
POINTS_SCHEMA = {"t_wall": pl.Float64, "v": pl.Float64}


def held_sum(frames: Sequence[pl.DataFrame], held: Sequence[bool]) -> pl.DataFrame:
    """Several nodes' ``(t_wall, v)`` frames summed at every time any of them has a row:
    each node's last value at or before that time; nothing before its first row, nor after
    its last unless ``held`` (a node still running, or a counter such as energy that keeps
    its final value). The one sum of nodes' power and energy: the live group view (through
    :func:`held_sum_points`) and the details screen both use it.

    The nodes are added in the order given, one after the other, so a total is the same
    float on either screen."""
    parts = [(f.select("t_wall", "v").sort("t_wall"), k) for f, k in zip(frames, held) if f.height]
    if not parts:
        return pl.DataFrame(schema=POINTS_SCHEMA)
    if len(parts) == 1:
        return parts[0][0]
    out = pl.concat([f.select("t_wall") for f, _ in parts]).unique().sort("t_wall")
    total = None
    for i, (f, keep) in enumerate(parts):
        name = f"v{i}"
        out = out.join_asof(f.rename({"v": name}), on="t_wall", strategy="backward")
        c = pl.col(name).fill_null(0.0)
        if not keep:
            c = pl.when(pl.col("t_wall") > f["t_wall"].max()).then(0.0).otherwise(c)
        total = c if total is None else total + c
    return out.select("t_wall", v=total)


def held_sum_points(
    series: Sequence[Sequence[tuple[float, float]]], held: Sequence[bool]
) -> tuple[tuple[float, float], ...]:
    """:func:`held_sum` of ``(time, value)`` tuples (the live view's power histories)."""
    frames = [
        pl.DataFrame(dict(zip(POINTS_SCHEMA, zip(*s))) if s else {}, schema=POINTS_SCHEMA)
        for s in series
    ]
    out = held_sum(frames, held)
    return tuple(zip(out["t_wall"].to_list(), out["v"].to_list()))
