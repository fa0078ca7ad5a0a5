"""The comparison as a Polars frame: one flat row per session record, SAM, its rank and
the Pareto front under the parameters asked for, and the check of a row read back from
the record cache."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import polars as pl

from wattui.analysis.params import DEFAULT_PARAMS, SamParams, sam_result
from wattui.format import fmt_utc
from wattui.model.kinds import FINISHED, INTERRUPTED, NO_METHOD, SIMULATED, join_methods
from wattui.model.session import DeviceRecord, SessionRecord
from wattui.model.values import finite_float
from wattui.sessions import clean_record, command_label
from wattui.store.record_cache import all_printable

SIM_MARK = "SIMULATED"


FRAME_SCHEMA = {
    "id": pl.String,
    "kind": pl.String,
    "node_count": pl.Int64,
    "name": pl.String,
    "tags": pl.String,
    "tag_list": pl.List(pl.String),
    "host": pl.String,
    "gpu_count": pl.Int64,
    "gpus": pl.String,
    "started_at": pl.Float64,
    "start": pl.String,
    "duration_s": pl.Float64,
    "energy_j": pl.Float64,
    "method": pl.String,
    "mean_w": pl.Float64,
    "peak_w": pl.Float64,
    "accuracy": pl.Float64,
    "best_accuracy": pl.Float64,
    "sam": pl.Float64,
    "sam_reason": pl.String,
    "sam_flag": pl.String,
    "projected_energy_j": pl.Float64,
    "co2_g": pl.Float64,
    "cost": pl.Float64,
    "currency": pl.String,
    "status": pl.String,
    "simulated": pl.Boolean,
    "command": pl.String,
    "model": pl.String,
}


def _gpus_label(gpus: tuple[DeviceRecord, ...]) -> str:
    if not gpus:
        return "-"
    names = sorted({(g.name or "GPU").replace("NVIDIA ", "") for g in gpus})
    return f"{len(gpus)}× {names[0]}" + ("+" if len(names) > 1 else "")


def _method(rec: SessionRecord) -> str:
    methods = join_methods(d.method for d in rec.devices if d.method != NO_METHOD)
    m = methods or NO_METHOD
    if rec.simulated and SIMULATED not in methods.split("+"):
        m += " " + SIM_MARK
    return m


def _display_name(rec: SessionRecord) -> str:
    n = rec.name or rec.model
    if n:
        return str(n)
    return command_label(rec.command) or rec.id


def row_of(record: SessionRecord | Mapping) -> dict:
    """One flat row (no SAM yet) from a session record (a :class:`SessionRecord` or its
    dictionary; a value of the wrong type reads as missing)."""
    rec = record if isinstance(record, SessionRecord) else SessionRecord.from_dict(record, strict=False)
    gpus = rec.gpus
    energy = finite_float(rec.energy_j)
    dur = finite_float(rec.duration_s)
    peaks = [p for p in (finite_float(g.peak_w) for g in gpus) if p is not None]
    means = [m for m in (finite_float(g.mean_w) for g in gpus) if m is not None]
    if energy is not None and dur:
        mean_w = energy / dur
    else:
        mean_w = sum(means) if means else None
    tags = [str(t) for t in rec.tags]
    cmd = rec.command
    if isinstance(cmd, tuple):
        cmd = " ".join(str(c) for c in cmd)
    status = rec.status or INTERRUPTED
    proj = finite_float(rec.projected_energy_j) if status != FINISHED else None
    group = rec.is_group
    nodes = int(rec.node_count or len(rec.nodes)) if group else 1
    host = rec.host or ""
    if group:  # one row for the whole multi-node run
        host = f"{nodes} node{'s' if nodes != 1 else ''}"
    return {
        "id": rec.id,
        "kind": "group" if group else "session",
        "node_count": nodes,
        "name": _display_name(rec),
        "tags": ", ".join(tags),
        "tag_list": tags,
        "host": host,
        "gpu_count": len(gpus),
        "gpus": _gpus_label(gpus),
        "started_at": finite_float(rec.started_at),
        "start": fmt_utc(finite_float(rec.started_at)),
        "duration_s": dur,
        "energy_j": energy,
        "method": _method(rec),
        "mean_w": mean_w,
        "peak_w": max(peaks) if peaks else None,
        "accuracy": finite_float(rec.accuracy),
        "best_accuracy": finite_float(rec.best_accuracy),
        "sam": None,
        "sam_reason": None,
        "sam_flag": None,
        "projected_energy_j": proj,
        "co2_g": finite_float(rec.co2_g),
        "cost": finite_float(rec.cost),
        "currency": rec.currency,
        "status": status,
        "simulated": rec.simulated,
        "command": cmd or "",
        "model": rec.model,
        # the SAM settings the session was recorded with (compare uses them when all agree)
        "rec_sam": [rec.sam_alpha, rec.sam_beta, rec.sam_unit] if rec.sam_unit is not None else None,
    }


def build_frame(rows: list[dict], params: SamParams = DEFAULT_PARAMS) -> pl.DataFrame:
    """The table: one row per session with SAM, its rank and the Pareto front under ``params``."""
    cols = {k: [r.get(k) for r in rows] for k in FRAME_SCHEMA}
    sams = [sam_result(a, e, params) for a, e in zip(cols["accuracy"], cols["energy_j"])]
    cols["sam"] = [r.value for r in sams]
    cols["sam_reason"] = [r.undefined_reason for r in sams]
    cols["sam_flag"] = [r.flag for r in sams]
    df = pl.DataFrame(cols, schema=FRAME_SCHEMA)
    front = pareto_front(df["energy_j"].to_list(), df["accuracy"].to_list())
    return df.with_columns(
        sam_rank=pl.col("sam").rank("min", descending=True).cast(pl.Int64),
        pareto=pl.Series([i in front for i in range(df.height)], dtype=pl.Boolean),
    )


def pareto_front(energies: list, accuracies: list) -> set[int]:
    """Indices of the sessions no other beats (less or equal energy and higher or equal
    accuracy, one of them strictly). Sessions lacking either figure are never on it."""
    pts = [
        (e, a, i)
        for i, (e, a) in enumerate(zip(energies, accuracies))
        if e is not None and a is not None and e > 0
    ]
    pts.sort(key=lambda p: (p[0], -p[1]))
    front: set[int] = set()
    best = -math.inf
    for _e, a, i in pts:
        if a > best:
            front.add(i)
            best = a
    return front


_NONE = type(None)
_CELL_TYPES = {
    k: {pl.String: (str, _NONE), pl.Float64: (int, float, _NONE), pl.Int64: (int, _NONE)}.get(
        t, (bool, _NONE) if t == pl.Boolean else (list,)
    )
    for k, t in FRAME_SCHEMA.items()
}


def _row_ok(row: dict) -> bool:
    """``row`` has every column of the frame, each of its type (tag_list: strings)."""
    get = row.get
    rec_sam = get("rec_sam")
    return (
        all(k in row and type(get(k)) in ok for k, ok in _CELL_TYPES.items())
        and all(type(x) is str for x in row["tag_list"])
        and (
            rec_sam is None
            or type(rec_sam) is list
            and len(rec_sam) == 3
            and all(type(x) in (int, float, str, _NONE) for x in rec_sam)
        )
    )


def cached_row(text: str) -> dict | None:
    """A row from the cache, sanitised again unless it is all printable, or None when it
    does not have the frame's columns and types: the cache is a file in the store, trusted
    no further than the session files it was made from (a bad row is read again)."""
    try:
        row = json.loads(text)
    except ValueError:
        return None
    if type(row) is not dict or not _row_ok(row):
        return None
    row = {k: row[k] for k in (*FRAME_SCHEMA, "rec_sam") if k in row}
    return row if all_printable(text) else clean_record(row)
