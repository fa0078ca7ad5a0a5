"""A bounded follower of a session's samples (live CSV, then compacted Parquet)."""

from __future__ import annotations

import os
from pathlib import Path

from wattui.store import schema
from wattui.store.reader import parse_event_lines
from wattui.store.safeio import check_regular, open_regular
from wattui.view.sample_rows import NEEDED as _NEEDED
from wattui.view.sample_rows import SampleRows, parse_rows

SAMPLES_CHUNK = 4 << 20  # bytes of the live CSV parsed per poll
ROWS_CHUNK = 100_000  # rows of a compacted session's Parquet read per poll


class BoundedTail:
    """Follows a session like :class:`wattui.store.reader.SessionTail`, but in bounded
    memory whatever the session's size: at most ``chunk`` bytes of the live CSV are
    parsed per poll (a viewer opened on a 72-hour run catches up over a few polls), and
    a compacted session is scanned lazily, only the columns the screen needs.

    ``poll()`` returns ``(samples, events)``: the new sample rows (None if none): a
    :class:`~wattui.view.sample_rows.SampleRows` list for a small chunk of the live CSV,
    else a Polars LazyFrame; and the new event dicts. ``caught_up`` is False while a backlog remains.
    """

    def __init__(self, session_dir: Path, chunk: int | None = None, rows_chunk: int | None = None):
        self.dir = Path(session_dir)
        self.chunk = chunk or SAMPLES_CHUNK
        self.samples_off = 0
        self.columns: list[str] | None = None
        self.last_seq = -1
        self.events_off = 0
        self.events_seen = 0
        self.final_done = False
        self.caught_up = False
        self.final_rows = 0  # rows of samples.parquet already read
        self.rows_chunk = rows_chunk or ROWS_CHUNK
        self.events_final: list | None = None
        # how to collect the frame poll() returned: a compacted session is scanned lazily
        # (bounded memory); a chunk of the live CSV is in memory already, and a few rows
        # are cheaper without the streaming engine's threads
        self.engine = "in-memory"

    def _read_lines(self, path: Path, offset: int, limit: int | None) -> tuple[bytes, int]:
        with open_regular(path) as f:
            f.seek(offset)
            data = f.read() if limit is None else f.read(limit)
            while limit is not None and len(data) == limit and b"\n" not in data[-65536:]:
                more = f.read(65536)  # a chunk with no line end at all: read on to one
                if not more:
                    break
                data += more
        self.caught_up = limit is None or len(data) < limit
        cut = data.rfind(b"\n")
        if cut < 0:
            return b"", offset
        return data[: cut + 1], offset + cut + 1

    def poll(self):
        import polars as pl

        d = self.dir
        if self.final_done:
            self.caught_up = True
            return None, []
        live = d / schema.SAMPLES_LIVE
        events: list[dict] = []
        frame = None
        try:
            data, self.samples_off = self._read_lines(live, self.samples_off, self.chunk)
            if self.columns is None:
                nl = data.find(b"\n")
                if nl >= 0:  # the file's own header: older sessions have fewer columns
                    self.columns = data[:nl].decode("ascii", "replace").strip().split(",")
                data = data[nl + 1 :] if nl >= 0 else b""
            rows = parse_rows(data, self.columns, self.last_seq) if self.columns else None
            if rows is not None:  # a second's worth: plain Python, no Polars call
                if rows:
                    self.last_seq = max(r[1] for r in rows)
                    frame = rows
            elif data.strip() and self.columns:
                sch = schema.sample_schema()
                have = [c for c in _NEEDED if c in self.columns]
                df = pl.read_csv(
                    data,
                    has_header=False,
                    new_columns=self.columns,
                    schema={c: sch.get(c, pl.String) for c in self.columns},
                    truncate_ragged_lines=True,
                    ignore_errors=True,
                ).select(have)
                frame = _with_needed(df.lazy())
                self.engine = "in-memory"
            caught = self.caught_up
            try:
                ev_data, self.events_off = self._read_lines(
                    d / schema.EVENTS_LIVE, self.events_off, self.chunk
                )
                events = parse_event_lines(ev_data)
            except FileNotFoundError:
                pass
            self.caught_up = caught and self.caught_up
        except FileNotFoundError:
            final = d / schema.SAMPLES_FINAL
            try:
                check_regular(final)
            except FileNotFoundError:
                return None, []
            # Compacted: scan the Parquet a slice of rows per poll (bounded memory).
            scan = pl.scan_parquet(final)
            self.engine = "streaming"
            have = [c for c in _NEEDED if c in scan.collect_schema().names()]
            frame = _with_needed(scan.select(have).slice(self.final_rows, self.rows_chunk))
            n = frame.select(pl.len()).collect().item()
            self.final_rows += n
            ev_final = d / schema.EVENTS_FINAL
            if self.events_final is None and os.path.lexists(ev_final):
                try:
                    with open_regular(ev_final) as f:
                        events = pl.read_parquet(f).slice(self.events_seen).to_dicts()
                finally:
                    self.events_final = []  # read once; an unreadable one is noted once
            self.caught_up = n < self.rows_chunk
            self.final_done = self.caught_up and self.events_final is not None
        if frame is not None and not isinstance(frame, SampleRows):
            frame = frame.filter(
                pl.col("t_wall").is_not_null()
                & pl.col("device").is_not_null()
                & (pl.col("seq") > self.last_seq)
            )
            mx = frame.select(pl.col("seq").max()).collect(engine=self.engine).item()
            if mx is None:
                frame = None
            else:
                self.last_seq = int(mx)
        self.events_seen += len(events)
        return frame, events


def _with_needed(frame):
    """Add the needed columns an older session file lacks, as nulls."""
    import polars as pl

    sch = schema.sample_schema()
    names = frame.collect_schema().names()
    missing = [pl.lit(None, dtype=sch[c]).alias(c) for c in _NEEDED if c not in names]
    return frame.with_columns(missing).select(_NEEDED) if missing else frame


def _other_processes(gpu_pids, run_pids) -> str:
    """Processes on a GPU that are not the run's: "none", "2 (pids 1, 2)", or "n/a"."""
    if not gpu_pids:
        return "n/a" if gpu_pids is None else "none"
    on_gpu = {p for p in str(gpu_pids).split(";") if p and p != "-"}
    mine = {p for p in str(run_pids or "").split(";") if p}
    others = sorted(on_gpu - mine, key=int)
    if not others:
        return "none"
    return f"{len(others)} (pids {', '.join(others[:3])}{'...' if len(others) > 3 else ''})"
