"""The comparison table without the UI: every session as one row of a Polars table.

Listing reads only ``meta.json`` (and ``live.json`` for running sessions): finished
sessions carry their per-device summary and their metric results there, so 1,000
sessions list in well under a second. Samples are read only for the details screen.

SAM is recomputed for every row under the alpha, beta and unit asked for
(:func:`wattui.metrics.sam.sam`), so a ranking can be checked for stability. Every
exported table states alpha, beta and unit, the energy method of each row, and marks
simulated sessions. This module never imports Textual.

Here: :class:`Table` and :func:`load_table` (with the rows' cache). The parts are in
``params`` (SAM's parameters), ``records`` (loading a session's record), ``frame`` (a row
per record, SAM, rank, Pareto front), ``columns`` (cells and sorting), ``filter`` (the
filter language) and ``export`` (md, csv, json, latex); their names are importable from
here too, which is how the screens and commands read them (``table.X``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from wattui.analysis.columns import (
    COLUMN_BY_KEY,
    COLUMNS,
    SORT_ALIASES,
    Column,
    display_rows,
    fmt_sam,
    resolve_sort,
    sort_frame,
)
from wattui.analysis.export import FORMATS, export
from wattui.analysis.filter import FilterError, filter_expr, filter_frame
from wattui.analysis.frame import FRAME_SCHEMA, build_frame, cached_row, pareto_front, row_of
from wattui.analysis.params import (
    DEFAULT_PARAMS,
    SamParams,
    resolve_params,
    sam_label,
    sam_result,
    sam_value,
)
from wattui.analysis.records import load_group_record, load_record, load_records
from wattui.format import fmt_acc, fmt_utc
from wattui.format import fmt_clock as fmt_duration
from wattui.format import fmt_energy_cell as fmt_energy
from wattui.groups.merge import group_records
from wattui.model.group import is_group_ref
from wattui.sanitize import clean_text
from wattui.store import reader
from wattui.store.paths import sessions_dir
from wattui.store.reader import CorruptSession, Session
from wattui.store.record_cache import CACHEABLE, RecordCache, session_stamp
from wattui.store.record_cache import cache_path as _cache_path

# What readers use as ``table.X`` (``from wattui.analysis import table as cmp``): the
# comparison's names in one place, wherever each is defined.
__all__ = [
    "COLUMNS",
    "COLUMN_BY_KEY",
    "Column",
    "FORMATS",
    "FRAME_SCHEMA",
    "FilterError",
    "SORT_ALIASES",
    "SamParams",
    "Table",
    "build_frame",
    "cache_path",
    "display_rows",
    "export",
    "filter_expr",
    "filter_frame",
    "fmt_acc",
    "fmt_duration",
    "fmt_energy",
    "fmt_sam",
    "fmt_utc",
    "load_group_record",
    "load_record",
    "load_records",
    "load_table",
    "pareto_front",
    "resolve_params",
    "resolve_sort",
    "row_of",
    "sam_label",
    "sam_result",
    "sam_value",
    "sort_frame",
]


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
    return _cache_path(root, ROWS_VIEW)


def load_table(root: Path, params: SamParams = DEFAULT_PARAMS, cache: bool = True) -> Table:
    """Every session of the store as a :class:`Table`. Reads each session (meta.json, and
    live.json for running ones) unless the record cache has its unchanged row. The sessions
    of a multi-node group (``group`` in meta.json) make one row, ``group:<ID>``, where the
    group's first session would be: energy summed, hosts counted, SAM on the total."""
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
    entries, problems = reader.scan_store(root)  # through its module: hooks see it
    for e in entries:
        stamp = session_stamp(e.path)
        text = rcache.get_text(e.name, stamp)
        row = cached_row(text) if text is not None else None
        if row is not None:
            items.append(row)
            row_for[id(row)] = row
            continue
        try:
            s = Session.open(Path(e.path))
            rec = load_record(s)
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

