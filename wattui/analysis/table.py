"""The comparison table without the UI: every session as one row of a Polars table.

Listing reads only ``meta.json`` (and ``live.json`` for running sessions): finished
sessions carry their per-device summary and their metric results there, so 1,000
sessions list in well under a second. Samples are read only for the details screen.

SAM is recomputed for every row under the alpha, beta and unit asked for
(:func:`wattui.metrics.sam.sam`), so a ranking can be checked for stability. Every
exported table states alpha, beta and unit, the energy method of each row, and marks
simulated sessions. This module never imports Textual.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from wattui.model.group import GroupRef, is_group_ref
from wattui.sanitize import clean_text
from wattui.store.reader import Session, list_sessions

__all__ = [
    "SamParams",
    "Column",
    "COLUMNS",
    "Table",
    "load_record",
    "load_records",
    "load_table",
    "build_frame",
    "filter_frame",
    "sort_frame",
    "pareto_front",
    "export",
    "FORMATS",
]

FORMATS = ("md", "csv", "json", "latex")
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
SIM_MARK = "SIMULATED"


# -- SAM parameters ---------------------------------------------------------------------
@dataclass(frozen=True)
class SamParams:
    alpha: float = 5.0
    beta: float = 5.0
    unit: str = "kWh"

    def checked(self) -> SamParams:
        from wattui.metrics.sam import check_params

        a, b, u = check_params(self.alpha, self.beta, self.unit)
        return SamParams(a, b, u)

    def label(self, greek: bool = True) -> str:
        a, b = ("α", "β") if greek else ("alpha", "beta")
        return f"{a}={self.alpha:g} {b}={self.beta:g} {self.unit}"

    def formula(self) -> str:
        return (
            f"SAM = beta * accuracy^alpha / log10(energy in {self.unit}), "
            f"alpha={self.alpha:g}, beta={self.beta:g}"
        )


def sam_value(accuracy, energy_j, params: SamParams) -> tuple[float | None, str | None]:
    """SAM and, when undefined, why (never raises for bad data; bad params raise ValueError)."""
    r = sam_result(accuracy, energy_j, params)
    return r.value, r.undefined_reason


def sam_result(accuracy, energy_j, params: SamParams):
    """:class:`wattui.metrics.sam.SamResult` under ``params`` (with its near-singularity flag)."""
    from wattui.metrics.sam import sam

    return sam(accuracy, energy_j, params.alpha, params.beta, params.unit)


PARAM_KEYS = ("alpha", "beta", "unit")


def resolve_params(
    rows: list[dict], alpha: float | None = None, beta: float | None = None, unit: str | None = None
) -> tuple[SamParams, list[str]]:
    """SAM's parameters for comparing ``rows``: each one given wins; else the one every
    session was recorded with, when they agree; else the default, and a line that says
    they disagree. Returns the parameters and the lines to show the user."""
    given = {"alpha": alpha, "beta": beta, "unit": unit}
    default = SamParams()
    recorded = [r["rec_sam"] for r in rows if isinstance(r.get("rec_sam"), list | tuple)]
    out: dict = {}
    notes: list[str] = []
    from_sessions = []
    for i, k in enumerate(PARAM_KEYS):
        if given[k] is not None:
            out[k] = given[k]
            continue
        vals = [str(r[i]) if k == "unit" else float(r[i]) for r in recorded if r[i] is not None]
        distinct = sorted(set(vals), key=vals.index)  # in the order the sessions came
        if len(distinct) == 1:
            out[k] = distinct[0]
            if out[k] != getattr(default, k):
                from_sessions.append(k)
        else:
            out[k] = getattr(default, k)
            if len(distinct) > 1:
                counts = ", ".join(
                    f"{v if k == 'unit' else format(v, 'g')}: {vals.count(v)}" for v in distinct
                )
                flag = "--sam-unit" if k == "unit" else f"--{k}"
                notes.append(
                    f"the sessions were recorded with different SAM {k}s ({counts}); all are "
                    f"compared with {k} {getattr(default, k)} here ({flag} to choose)"
                )
    params = SamParams(float(out["alpha"]), float(out["beta"]), str(out["unit"])).checked()
    if from_sessions:
        notes.insert(
            0, f"SAM {params.label(greek=False)}: as the sessions were recorded ({', '.join(from_sessions)})"
        )
    return params, notes


# -- loading ----------------------------------------------------------------------------
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
    try:
        from wattui.metrics.intake import validate_accuracy

        accs = [a for a in (validate_accuracy(x) for x in accs) if a is not None]
    except ImportError:  # pragma: no cover
        pass
    if not accs:
        return {}
    return {"accuracy": accs[-1], "best_accuracy": max(accs)}


def _record(session: Session) -> dict:
    from wattui.sessions import clean_record, session_record

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


def load_record(session: Session) -> dict:
    """The ``session_record`` of one session, with its metric fields."""
    return _record(session)


def load_group_record(root: Path, group_id: str) -> dict | None:
    """The merged record (``group:<ID>``) of the sessions of one group, or None when the
    store holds none of them."""
    from wattui.groups.merge import merge_group
    from wattui.groups.refs import group_sessions

    gid = GroupRef.of(group_id).id
    parts = []
    for s in group_sessions(root, gid):
        try:
            parts.append(_record(s))
        except Exception:  # noqa: BLE001 - one unreadable node never hides the others
            continue
    return merge_group(gid, parts) if parts else None


def load_records(root: Path) -> tuple[list[dict], list[str]]:
    """``session_record`` of every readable session and one line per skipped one."""
    sessions, problems = list_sessions(Path(root))
    recs = []
    for s in sessions:
        try:
            recs.append(_record(s))
        except Exception as e:  # noqa: BLE001 - one bad session never breaks the table
            problems.append(f"{s.dir.name}: cannot read ({type(e).__name__}: {e}) (skipped)")
            continue
        problems.extend(f"{s.id}: {p}" for p in recs[-1].get("problems", ()))
    return recs, problems


# -- the frame ---------------------------------------------------------------------------
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


def _num(x) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def fmt_utc(t) -> str:
    if t is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))


def _gpus_label(gpus: list[dict]) -> str:
    if not gpus:
        return "-"
    names = sorted({(g.get("name") or "GPU").replace("NVIDIA ", "") for g in gpus})
    return f"{len(gpus)}× {names[0]}" + ("+" if len(names) > 1 else "")


def _method(rec: dict) -> str:
    devs = list(rec.get("gpus") or []) + list(rec.get("cpu") or [])
    methods = sorted({d.get("method") for d in devs if d.get("method")} - {"none"})
    m = "+".join(methods) if methods else "none"
    if rec.get("simulated") and "simulated" not in methods:
        m += " " + SIM_MARK
    return m


def _display_name(rec: dict) -> str:
    n = rec.get("name") or rec.get("model")
    if n:
        return str(n)
    from wattui.sessions import command_label

    return command_label(rec.get("command")) or rec.get("id", "?")


def row_of(rec: dict) -> dict:
    """One flat row (no SAM yet) from a ``session_record``."""
    gpus = rec.get("gpus") or []
    energy = _num(rec.get("energy_j"))
    dur = _num(rec.get("duration_s"))
    peaks = [p for p in (_num(g.get("peak_w")) for g in gpus) if p is not None]
    means = [m for m in (_num(g.get("mean_w")) for g in gpus) if m is not None]
    if energy is not None and dur:
        mean_w = energy / dur
    else:
        mean_w = sum(means) if means else None
    tags = [str(t) for t in (rec.get("tags") or [])]
    cmd = rec.get("command")
    if isinstance(cmd, list):
        cmd = " ".join(str(c) for c in cmd)
    status = rec.get("status") or "interrupted"
    proj = _num(rec.get("projected_energy_j")) if status != "finished" else None
    group = rec.get("kind") == "group"
    nodes = int(rec.get("node_count") or len(rec.get("nodes") or [])) if group else 1
    host = rec.get("host") or ""
    if group:  # one row for the whole multi-node run
        host = f"{nodes} node{'s' if nodes != 1 else ''}"
    return {
        "id": rec.get("id"),
        "kind": "group" if group else "session",
        "node_count": nodes,
        "name": _display_name(rec),
        "tags": ", ".join(tags),
        "tag_list": tags,
        "host": host,
        "gpu_count": len(gpus),
        "gpus": _gpus_label(gpus),
        "started_at": _num(rec.get("started_at")),
        "start": fmt_utc(_num(rec.get("started_at"))),
        "duration_s": dur,
        "energy_j": energy,
        "method": _method(rec),
        "mean_w": mean_w,
        "peak_w": max(peaks) if peaks else None,
        "accuracy": _num(rec.get("accuracy")),
        "best_accuracy": _num(rec.get("best_accuracy")),
        "sam": None,
        "sam_reason": None,
        "sam_flag": None,
        "projected_energy_j": proj,
        "co2_g": _num(rec.get("co2_g")),
        "cost": _num(rec.get("cost")),
        "currency": rec.get("currency"),
        "status": status,
        "simulated": bool(rec.get("simulated")),
        "command": cmd or "",
        "model": rec.get("model"),
        # the SAM settings the session was recorded with (compare uses them when all agree)
        "rec_sam": [rec.get("sam_alpha"), rec.get("sam_beta"), rec.get("sam_unit")]
        if rec.get("sam_unit") is not None
        else None,
    }


def build_frame(rows: list[dict], params: SamParams = SamParams()) -> pl.DataFrame:
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


@dataclass
class Table:
    """Everything a view needs: the full frame, the rows behind it, the problems.
    ``records`` holds the full ``session_record`` of the sessions read this time (not of
    those that came from the cache); :meth:`record` reads any one on demand. The sessions
    of a multi-node group are one row, ``group:<ID>``, whose record is the merged one
    (:func:`wattui.groups.merge.merge_group`)."""

    root: Path
    rows: list[dict]
    records: dict[str, dict]
    problems: list[str]
    params: SamParams
    frame: pl.DataFrame

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]

    def record(self, sid: str) -> dict | None:
        rec = self.records.get(sid)
        if rec is None and is_group_ref(sid):
            rec = load_group_record(self.root, sid)
            if rec is not None:
                self.records[sid] = rec
            return rec
        if rec is None:
            from wattui.store.paths import sessions_dir

            try:
                rec = load_record(Session.open(sessions_dir(self.root) / sid))
            except Exception:  # noqa: BLE001 - deleted or damaged since the listing
                return None
            self.records[sid] = rec
        return rec

    def with_params(self, params: SamParams) -> Table:
        params = params.checked()
        return Table(
            self.root,
            self.rows,
            self.records,
            self.problems,
            params,
            build_frame(self.rows, params),
        )

    def view(self, filter_text: str = "", sort: str | None = None, descending=False):
        df = filter_frame(self.frame, filter_text)
        return sort_frame(df, sort, descending) if sort else df


# A finished session's row never changes until one of its files does, so rows are cached
# in <store>/.cache/ by the store's record cache (wattui.store.record_cache), which also
# serves `wattui sessions` and `show`. Sessions of a group are never cached: their row is
# the group's, merged at every load. Bump the number when rows change.
ROWS_VIEW = "compare-rows.3"


def cache_path(root: Path) -> Path:
    from wattui.store.record_cache import cache_path as path

    return path(root, ROWS_VIEW)


def load_table(root: Path, params: SamParams = SamParams(), cache: bool = True) -> Table:
    """Every session of the store as a :class:`Table`. Reads each session (meta.json, and
    live.json for running ones) unless the record cache has its unchanged row. The sessions
    of a multi-node group (``group`` in meta.json) make one row, ``group:<ID>``, where the
    group's first session would be: energy summed, hosts counted, SAM on the total."""
    from wattui.groups.merge import group_records
    from wattui.store.reader import CorruptSession, scan_store
    from wattui.store.record_cache import CACHEABLE, RecordCache, session_stamp

    params = params.checked()
    root = Path(root)
    rcache = RecordCache(root, ROWS_VIEW, enabled=cache)
    # In store order: a cached row, or a session's record. A group's parts are never
    # cached, so group_records passes every cached row through, in place, as it does
    # the records of ungrouped sessions, and puts each group's merged record where the
    # group's first part was.
    items: list[dict] = []
    row_for: dict[int, dict] = {}  # id() of an item -> its row, when known already
    recs: dict[str, dict] = {}
    entries, problems = scan_store(root)
    for e in entries:
        stamp = session_stamp(e.path)
        text = rcache.get_text(e.name, stamp)
        row = _cached_row(text) if text is not None else None
        if row is not None:
            items.append(row)
            row_for[id(row)] = row
            continue
        try:
            s = Session.open(Path(e.path))
            rec = _record(s)
        except CorruptSession as err:
            problems.append(f"{err} (skipped)")
            continue
        except Exception as err:  # noqa: BLE001 - one bad session never breaks the table
            problems.append(f"{e.name}: cannot read ({type(err).__name__}: {err}) (skipped)")
            continue
        problems.extend(f"{s.id}: {p}" for p in rec.get("problems", ()))
        items.append(rec)
        if rec.get("group") not in (None, ""):
            continue  # a part of a multi-node group: its row is the group's
        row = row_of(rec)
        row_for[id(rec)] = row
        recs[row["id"]] = rec
        if s.status in CACHEABLE:
            rcache.put(e.name, stamp, row)
    rows: list[dict] = []
    for item in group_records(items):
        row = row_for.get(id(item))
        if row is None:  # a group's merged record
            row = row_of(item)
            recs[item["id"]] = item
        rows.append(row)
    rcache.save()
    problems = [clean_text(p) for p in problems]  # directory names are anyone's
    return Table(root, rows, recs, problems, params, build_frame(rows, params))


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


def _cached_row(text: str) -> dict | None:
    """A row from the cache, sanitised again unless it is all printable, or None when it
    does not have the frame's columns and types: the cache is a file in the store, trusted
    no further than the session files it was made from (a bad row is read again)."""
    from wattui.sessions import clean_record
    from wattui.store.record_cache import all_printable

    try:
        row = json.loads(text)
    except ValueError:
        return None
    if type(row) is not dict or not _row_ok(row):
        return None
    row = {k: row[k] for k in (*FRAME_SCHEMA, "rec_sam") if k in row}
    return row if all_printable(text) else clean_record(row)


# -- filtering ---------------------------------------------------------------------------
TEXT_COLS = ("name", "tags", "host", "id", "command", "model", "status", "method")


class FilterError(ValueError):
    pass


def _date_bound(v: str, end: bool) -> float:
    import calendar

    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            tm = time.strptime(v, fmt)
        except ValueError:
            continue
        t = float(calendar.timegm(tm))
        if end:  # the end of the period given
            if fmt == "%Y":
                t = float(calendar.timegm((tm.tm_year + 1, 1, 1, 0, 0, 0)))
            elif fmt == "%Y-%m":
                y, m = (tm.tm_year + 1, 1) if tm.tm_mon == 12 else (tm.tm_year, tm.tm_mon + 1)
                t = float(calendar.timegm((y, m, 1, 0, 0, 0)))
            elif fmt == "%Y-%m-%d":
                t += 86400
            else:
                t += 60
        return t
    raise FilterError(f"not a date (UTC, YYYY-MM-DD[ HH:MM]): {v!r}")


def filter_expr(text: str) -> pl.Expr | None:
    """``text`` as a filter. Words match name, tags, host, id, command (case-insensitive);
    ``tag:T``, ``status:S``, ``host:H``, ``method:M``, ``date:YYYY-MM[-DD]`` (UTC),
    ``since:D``, ``until:D``, ``sim:yes|no``; a leading ``-`` negates a term."""
    try:
        terms = shlex.split(text or "")
    except ValueError:
        terms = (text or "").split()
    exprs = []
    for term in terms:
        neg = term.startswith("-") and len(term) > 1
        if neg:
            term = term[1:]
        key, sep, val = term.partition(":")
        key = key.lower()
        if sep and key in ("tag", "status", "host", "method", "date", "since", "until", "sim"):
            v = val.lower()
            if key == "tag":
                e = pl.col("tag_list").list.eval(pl.element().str.to_lowercase() == v).list.any()
            elif key == "status":
                e = pl.col("status").str.starts_with(v)
            elif key in ("host", "method"):
                e = pl.col(key).str.to_lowercase().str.contains(v, literal=True)
            elif key == "sim":
                e = pl.col("simulated") == (v in ("1", "y", "yes", "true"))
            elif key == "date":
                e = pl.col("started_at").is_between(
                    _date_bound(val, False), _date_bound(val, True), closed="left"
                )
            elif key == "since":
                e = pl.col("started_at") >= _date_bound(val, False)
            else:
                e = pl.col("started_at") < _date_bound(val, True)
        else:
            low = term.lower()
            e = pl.any_horizontal(
                [
                    pl.col(c).fill_null("").str.to_lowercase().str.contains(low, literal=True)
                    for c in TEXT_COLS
                ]
            )
        e = e.fill_null(False)
        exprs.append(~e if neg else e)
    if not exprs:
        return None
    return pl.all_horizontal(exprs)


def filter_frame(df: pl.DataFrame, text: str) -> pl.DataFrame:
    e = filter_expr(text)
    return df if e is None else df.filter(e)


# -- columns and sorting -----------------------------------------------------------------
def fmt_energy(j, unit: str | None = None) -> str:
    if j is None:
        return ""
    wh = j / 3600.0
    if unit == "kWh" or (unit is None and wh >= 1000):
        return f"{wh / 1000:.3f} kWh"
    return f"{wh:.1f} Wh" if wh >= 10 else f"{wh:.2f} Wh"


def fmt_duration(s) -> str:
    if s is None:
        return ""
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _f(x, spec: str) -> str:
    return "" if x is None else format(x, spec)


def fmt_acc(x) -> str:
    return "" if x is None else f"{x:.4f}"


def _cost(r: dict) -> str:
    if r.get("cost") is None:
        return ""
    return f"{r['cost']:.2f} {r.get('currency') or ''}".strip()


@dataclass(frozen=True)
class Column:
    key: str  # a frame column: what sorting uses
    label: str
    fmt: Callable[[dict], str]
    numeric: bool = False


def fmt_sam(r: dict) -> str:
    """SAM to 3 decimals; ``*`` when the log dominates it (energy just above 1 unit)."""
    if r["sam"] is None:
        return "n/a"
    return format(r["sam"], ".3f") + ("*" if r.get("sam_flag") else "")


# The columns that matter first (rank, name, accuracy, energy, SAM): at 80 columns they
# are what the screen shows, and the screen keeps the first ones pinned when it scrolls.
COLUMNS: tuple[Column, ...] = (
    Column("sam_rank", "Rank", lambda r: _f(r["sam_rank"], "d"), True),
    Column("name", "Name", lambda r: r["name"] + (" [SIM]" if r["simulated"] else "")),
    Column("accuracy", "Acc", lambda r: fmt_acc(r["accuracy"]), True),
    Column("energy_j", "Energy", lambda r: fmt_energy(r["energy_j"]), True),
    Column("sam", "SAM", fmt_sam, True),
    Column("status", "Status", lambda r: r["status"]),
    Column("best_accuracy", "Best", lambda r: fmt_acc(r["best_accuracy"]), True),
    Column("method", "Method", lambda r: r["method"]),
    Column("tags", "Tags", lambda r: r["tags"]),
    Column("projected_energy_j", "Projected", lambda r: fmt_energy(r["projected_energy_j"]), True),
    Column("duration_s", "Duration", lambda r: fmt_duration(r["duration_s"]), True),
    Column("mean_w", "Mean W", lambda r: _f(r["mean_w"], ".0f"), True),
    Column("peak_w", "Peak W/GPU", lambda r: _f(r["peak_w"], ".0f"), True),
    Column("gpu_count", "GPUs", lambda r: r["gpus"]),
    Column("host", "Host", lambda r: r["host"]),
    Column("started_at", "Start (UTC)", lambda r: r["start"]),
    Column("co2_g", "CO2 g", lambda r: _f(r["co2_g"], ",.0f"), True),
    Column("cost", "Cost", _cost, True),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
SORT_ALIASES = {
    "energy": "energy_j",
    "start": "started_at",
    "started": "started_at",
    "date": "started_at",
    "duration": "duration_s",
    "gpus": "gpu_count",
    "acc": "accuracy",
    "best": "best_accuracy",
    "rank": "sam_rank",
    "projected": "projected_energy_j",
    "co2": "co2_g",
    "mean": "mean_w",
    "peak": "peak_w",
}


def sam_label(params: SamParams, greek: bool = True) -> str:
    return f"SAM ({params.label(greek)})"


def resolve_sort(col: str) -> tuple[str, bool]:
    """``col`` (a column key, label or alias; a leading ``-`` means descending)."""
    desc = col.startswith("-")
    c = col.lstrip("-+").strip().lower()
    c = SORT_ALIASES.get(c, c)
    for k in COLUMN_BY_KEY:
        if c in (k, COLUMN_BY_KEY[k].label.lower()):
            return k, desc
    raise ValueError(
        f"cannot sort by {col!r}; columns: "
        + ", ".join(sorted(set(COLUMN_BY_KEY) | set(SORT_ALIASES)))
    )


def sort_frame(df: pl.DataFrame, col: str, descending: bool = False) -> pl.DataFrame:
    key, neg = resolve_sort(col)
    desc = descending ^ neg
    return df.sort([key, "started_at"], descending=[desc, False], nulls_last=True)


def display_rows(df: pl.DataFrame) -> list[dict]:
    return df.to_dicts()


# -- export ------------------------------------------------------------------------------
def _caption(params: SamParams, df: pl.DataFrame) -> str:
    sim = int(df["simulated"].sum()) if df.height else 0
    s = (
        f"{params.formula()}. Energy: all measured devices, method per row "
        "(counter | integrated | simulated | estimated). Rank: by SAM, 1 = best; "
        "SAM n/a where undefined (energy <= 1 unit or no accuracy)."
    )
    flagged = [r for r in df.to_dicts() if r.get("sam_flag")] if df.height else []
    if flagged:
        from wattui.metrics.sam import meaningful_unit

        unit = meaningful_unit(df["energy_j"].to_list())
        s += (
            f" SAM* ({len(flagged)} row(s)): energy under 2 {params.unit}, where 1/log10(energy)"
            f" dominates SAM; a meaningful comparison needs --sam-unit {unit}."
        )
    if sim:
        s += f" {sim} row(s) marked [SIM] are SIMULATED GPUs, not measurements."
    return s


def _machine_row(r: dict, params: SamParams) -> dict:
    return {
        "id": r["id"],
        "kind": r["kind"],
        "nodes": r["node_count"],
        "name": r["name"],
        "tags": r["tag_list"],
        "host": r["host"],
        "gpus": r["gpus"],
        "gpu_count": r["gpu_count"],
        "started_at_utc": r["start"],
        "started_at": r["started_at"],
        "duration_s": r["duration_s"],
        "energy_j": r["energy_j"],
        "energy_kwh": None if r["energy_j"] is None else r["energy_j"] / 3.6e6,
        "energy_method": r["method"],
        "mean_w": r["mean_w"],
        "peak_w_per_gpu": r["peak_w"],
        "accuracy": r["accuracy"],
        "best_accuracy": r["best_accuracy"],
        "sam": r["sam"],
        "sam_undefined_reason": r["sam_reason"],
        "sam_near_singularity": r.get("sam_flag"),
        "sam_rank": r["sam_rank"],
        "sam_alpha": params.alpha,
        "sam_beta": params.beta,
        "sam_unit": params.unit,
        "pareto": r["pareto"],
        "projected_energy_j": r["projected_energy_j"],
        "co2_g": r["co2_g"],
        "cost": r["cost"],
        "currency": r["currency"],
        "status": r["status"],
        "simulated": r["simulated"],
    }


def _tex(s: str) -> str:
    rep = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "×": r"$\times$",
    }
    return "".join(rep.get(ch, ch) for ch in s)


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def export(df: pl.DataFrame, fmt: str, params: SamParams, problems: list[str] = ()) -> str:
    """The table as ``md``, ``csv``, ``json`` or ``latex`` text, alpha/beta/unit stated."""
    rows = df.to_dicts()
    if fmt in ("csv", "json"):
        mrows = [_machine_row(r, params) for r in rows]
        if fmt == "json":
            doc = {
                "sam": {
                    "alpha": params.alpha,
                    "beta": params.beta,
                    "unit": params.unit,
                    "formula": params.formula(),
                },
                "caption": _caption(params, df),
                "problems": list(problems),
                "sessions": mrows,
            }
            return json.dumps(doc, indent=1) + "\n"
        buf = io.StringIO()
        fields = list(
            _machine_row(
                {k: None for k in FRAME_SCHEMA}
                | {"tag_list": [], "sam_rank": None, "pareto": None},
                params,
            )
        )
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for r in mrows:
            r = dict(r, tags=";".join(r["tags"]))
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
        return buf.getvalue()
    labels = [c.label if c.key != "sam" else sam_label(params, fmt == "md") for c in COLUMNS]
    cells = [[c.fmt(r) for c in COLUMNS] for r in rows]
    if fmt == "md":
        lines = [f"Table: {_caption(params, df)}", ""]
        lines.append("| " + " | ".join(_md(x) for x in labels) + " |")
        lines.append("|" + "|".join("---:" if c.numeric else "---" for c in COLUMNS) + "|")
        for row in cells:
            lines.append("| " + " | ".join(_md(x) for x in row) + " |")
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        labels = [
            f"SAM ($\\alpha$={params.alpha:g}, $\\beta$={params.beta:g}, {params.unit})"
            if c.key == "sam"
            else _tex(c.label)
            for c in COLUMNS
        ]
        spec = "".join("r" if c.numeric else "l" for c in COLUMNS)
        lines = [
            "% generated by wattui compare --format latex; needs \\usepackage{booktabs}",
            "\\begin{table}[t]",
            "\\centering",
            "\\caption{" + _tex(_caption(params, df)) + "}",
            "\\resizebox{\\linewidth}{!}{%",
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
            " & ".join(labels) + " \\\\",
            "\\midrule",
        ]
        for row in cells:
            lines.append(" & ".join(_tex(x) for x in row) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}}", "\\end{table}"]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
