"""Where sessions are written: append-only live files, compacted to Parquet at the end.

Crash safety: every live file is only ever appended in whole lines; buffered rows are
written out at least once a second (``flush``). A write that fails (full disk, I/O
error) keeps the rows in a bounded backlog and is retried at the next flush, and the
training run is never disturbed. Compaction writes Parquet to a temporary name,
fsyncs it and renames it into place before the live file is removed.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import sys
import time
from collections import deque
from pathlib import Path

from wattui.sources.base import Sample
from wattui.store import schema
from wattui.store.paths import (
    create_file,
    make_private_dir,
    sessions_dir,
    write_atomic,
    write_json_atomic,
)

MAX_BACKLOG_ROWS = 200_000  # rows kept in memory while the disk refuses writes
FINISH_META_TRIES = 3  # the final meta.json is worth a short wait for the disk
ROW_GROUP_ROWS = 1 << 16  # compaction holds about one row group: 7 MB for 8 GPUs' samples
# live.json is a checkpoint that readers continue from samples.csv (store/checkpoint.py):
# rewritten at most this often, or sooner once the rows after it pass LIVE_EVERY_BYTES
# (readers then read little, whatever the rate of rows).
LIVE_EVERY_S = 10.0
LIVE_EVERY_BYTES = 256 << 10  # a cold reader parses this much at most (about 8 ms here)


_NOT_FINITE = (math.inf, -math.inf)


def _fmt(v) -> str:
    """A CSV field: '' for None, NaN and infinities; floats exactly (repr)."""
    if v is None:
        return ""
    if v.__class__ is float:
        return "" if v != v or v in _NOT_FINITE else repr(v)
    if isinstance(v, float):
        return "" if math.isnan(v) or math.isinf(v) else repr(v)
    return str(v)


class SessionWriter:
    """Writes one session directory. Not thread-safe: one owner (the recorder)."""

    def __init__(
        self,
        root: Path,
        session_id: str,
        meta: dict,
        flush_every_s: float = 1.0,
        *,
        reserved: bool = False,
    ):
        """Create the session folder (``FileExistsError`` if the id is taken; ``reserved``:
        it was made empty for us by ``record --detach``). If the first files cannot be
        written (full disk) the folder is removed again: no empty sessions are left."""
        self.session_id = session_id
        self.dir = sessions_dir(root) / session_id
        if reserved:
            if self.dir.is_symlink() or not self.dir.is_dir() or any(self.dir.iterdir()):
                raise FileExistsError(17, "session folder is not the empty one reserved", str(self.dir))
        else:
            make_private_dir(self.dir, exist_ok=False)  # 0700 (2770 in a group's store)
        try:
            self._create(meta, flush_every_s)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _create(self, meta: dict, flush_every_s: float) -> None:
        session_id = self.session_id
        self.meta = dict(meta)
        self.meta.setdefault("schema_version", schema.SCHEMA_VERSION)
        self.meta["id"] = session_id
        self.meta.setdefault("status", "running")
        self.flush_every_s = flush_every_s
        self._samples: deque[str] = deque()
        self._pids_text: dict[tuple, str] = {}
        self._tails: dict[str, tuple] = {}  # device -> its last slow columns and their text
        self._events: deque[str] = deque()
        self._output: deque[bytes] = deque()
        self._last_flush = time.monotonic()
        self._last_fsync = self._last_flush
        self.write_errors = 0
        self.dropped_rows = 0
        # the totals of the rows on disk at the last flush that got every sample row out
        self.saved_live: dict | None = None
        self._live_at: float | None = None  # monotonic time of the last checkpoint written
        self._live_offset = 0  # the size of samples.csv it covers
        self.last_error: str | None = None
        self.meta_saved = True
        self._warned = False
        self.save_meta()
        header = (",".join(schema.SAMPLE_COLUMNS) + "\n").encode()
        with create_file(self.dir / schema.SAMPLES_LIVE) as f:  # 0600 (0660 for a group)
            f.write(header)
        # samples.csv's size, counted as rows are appended (None: unknown after a failed
        # append, whose cut-back may itself have failed; looked up at the next one)
        self._samples_size: int | None = len(header)
        create_file(self.dir / schema.EVENTS_LIVE).close()
        create_file(self.dir / schema.OUTPUT).close()

    # -- metadata ---------------------------------------------------------------
    def save_meta(self) -> None:
        write_json_atomic(self.dir / schema.META, self.meta)

    def update_meta(self, **fields) -> None:
        self.meta.update(fields)
        try:
            self.save_meta()
        except OSError as e:
            self._warn(e)

    # -- live data --------------------------------------------------------------
    def add_sample(self, sample: Sample) -> None:
        self.add_samples((sample,))

    def add_samples(self, samples) -> None:
        # Runs for every device of every tick: the shared head is formatted once per
        # sample; the slow columns (utilisation to pids: they change about once a second)
        # are formatted again only when a reading holds other values than the last one.
        f = _fmt
        tails = self._tails
        append = self._samples.append
        for sample in samples:
            head = f"{f(sample.t_wall)},{f(sample.t_mono)},{sample.seq},"
            for r in sample.readings:
                c = tails.get(r.key)
                if (
                    c is None
                    or c[0] is not r.util_pct
                    or c[1] is not r.mem_used_b
                    or c[2] is not r.temp_c
                    or c[3] is not r.mem_total_b
                    or c[4] is not r.pids
                    or c[5] != r.energy_method
                    or c[6] != r.power_method
                ):
                    c = tails[r.key] = (
                        r.util_pct, r.mem_used_b, r.temp_c, r.mem_total_b, r.pids,
                        r.energy_method, r.power_method, self._tail(r),
                    )
                append(f"{head}{r.key},{f(r.energy_j)},{f(r.power_w)},{c[7]}")
        self._bound(self._samples)

    def _tail(self, r) -> str:
        """The columns of a row from util_pct to the end, with its newline."""
        f = _fmt
        pids = r.pids
        if pids is None:
            pt = ""
        else:
            pids_text = self._pids_text
            pt = pids_text.get(pids)
            if pt is None:
                if len(pids_text) > 256:
                    pids_text.clear()
                pt = pids_text[pids] = ";".join(map(str, pids)) or "-"
        return (
            f"{f(r.util_pct)},{f(r.mem_used_b)},{f(r.temp_c)},{r.energy_method},"
            f"{r.power_method},{f(r.mem_total_b)},{pt}\n"
        )

    def add_event(self, event: dict) -> None:
        ev = {"t_wall": time.time(), **event}
        self._events.append(json.dumps(ev, allow_nan=False, default=str) + "\n")
        self._bound(self._events)

    def add_output(self, data: bytes) -> None:
        self._output.append(data)
        if len(self._output) > 10_000:
            self._output.popleft()
            self.dropped_rows += 1

    def _bound(self, q: deque) -> None:
        while len(q) > MAX_BACKLOG_ROWS:
            q.popleft()
            self.dropped_rows += 1

    def flush(self, fsync: bool | None = None, live: dict | None = None) -> None:
        """Write buffered rows out. Failures keep the rows for the next try; a write the
        disk refuses half-way is cut back, so the files only ever hold whole lines.

        ``live``: the totals of every row added so far (``SessionStats.checkpoint()`` and
        ``energy_j``). When every sample row got out they become ``saved_live``, and
        live.json when a checkpoint is due (:meth:`_checkpoint`)."""
        now = time.monotonic()
        self._last_flush = now
        sync = bool(fsync or (fsync is None and now - self._last_fsync > 10))
        samples_out = True  # every buffered sample row is on disk
        for name, q in (
            (schema.SAMPLES_LIVE, self._samples),
            (schema.EVENTS_LIVE, self._events),
            (schema.OUTPUT, self._output),
        ):
            if not q:
                continue
            chunk = list(q)
            data = b"".join(chunk) if isinstance(chunk[0], bytes) else "".join(chunk).encode()
            try:
                append_whole(self.dir / name, data, fsync=sync and name != schema.OUTPUT)
            except OSError as e:
                self._warn(e)
                if name == schema.SAMPLES_LIVE:
                    samples_out = False
                    self._samples_size = None
                continue
            if name == schema.SAMPLES_LIVE:
                self._count_samples(len(data))
            for _ in chunk:
                q.popleft()
        if sync:
            self._last_fsync = now
        if live is not None and samples_out:
            self.saved_live = live
            self._checkpoint(live, now)

    def _count_samples(self, appended: int) -> None:
        if self._samples_size is not None:
            self._samples_size += appended
            return
        try:
            self._samples_size = os.stat(self.dir / schema.SAMPLES_LIVE).st_size
        except OSError:
            pass

    def _checkpoint(self, live: dict, now: float) -> None:
        """Write live.json if it is due: the first time, then at most every LIVE_EVERY_S.
        Only after a flush that got every sample row out, so the file holds every row the
        totals cover. No fsync: a killed recorder loses nothing (the page cache outlives
        it) and readers continue an older one from the rows anyway."""
        size = self._samples_size
        if size is None:
            return
        if (
            self._live_at is not None
            and now - self._live_at < LIVE_EVERY_S
            and size - self._live_offset < LIVE_EVERY_BYTES
        ):
            return
        if "state" in live:
            live = {**live, "samples_offset": size}
        try:
            write_json_atomic(self.dir / schema.LIVE, live, durable=False)
        except OSError as e:
            self._warn(e)
            return
        self._live_at, self._live_offset = now, size

    @property
    def unsaved_rows(self) -> int:
        """Sample and event rows measured but not (yet) on disk."""
        return len(self._samples) + len(self._events)

    def _warn(self, err: OSError) -> None:
        self.write_errors += 1
        self.last_error = err.strerror or str(err)
        if not self._warned:
            self._warned = True
            print(
                f"wattui: cannot write session {self.session_id} ({err.strerror or err}); "
                "keeping data in memory and retrying; the run is not affected",
                file=sys.stderr,
            )

    # -- end of session -------------------------------------------------------
    def finish(self, live: dict | None = None, **meta_fields) -> bool:
        """Flush (``live``: the totals now, as for :meth:`flush`), compact to Parquet,
        then record the final status. Returns whether meta.json says so: False when the
        disk refused it (the session then stays as its last successful flush left it and
        is listed as interrupted; see ``saved_live``)."""
        self.flush(fsync=True, live=live)
        unsaved = self.unsaved_rows
        if unsaved:  # the disk stays full: these never reach the files
            self.dropped_rows += unsaved
            self._samples.clear()
            self._events.clear()
        try:
            compact(self.dir)
        except Exception as e:  # noqa: BLE001 - live files stay readable if compaction fails
            self.meta.setdefault("warnings", []).append(f"compaction failed: {e}")
        if self.write_errors:
            self.meta["write_errors"] = self.write_errors
        if self.dropped_rows:
            self.meta["dropped_rows"] = self.dropped_rows
        self.meta.update(meta_fields)
        self.meta_saved = False
        for attempt in range(FINISH_META_TRIES):
            try:
                self.save_meta()
                self.meta_saved = True
                break
            except OSError as e:
                self._warn(e)
                if attempt + 1 < FINISH_META_TRIES:
                    time.sleep(0.2)
        live = self.dir / schema.LIVE
        if self.meta_saved and live.exists() and (self.dir / schema.SAMPLES_FINAL).exists():
            live.unlink()
        return self.meta_saved


def write_whole(fd: int, data: bytes, fsync: bool = False) -> None:
    """Append all of ``data`` to ``fd`` (opened ``O_APPEND``) or, if the disk refuses part
    way, none of it (the file is cut back to its old length) and raise: a reader never
    sees a torn line from a full disk."""
    start = os.lseek(fd, 0, os.SEEK_END)
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    except OSError:
        try:
            os.ftruncate(fd, start)
        except OSError:
            pass
        raise


def append_whole(path: Path, data: bytes, fsync: bool = False) -> None:
    """:func:`write_whole` to the file at ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        write_whole(fd, data, fsync)
    finally:
        os.close(fd)


def compact(session_dir: Path) -> None:
    """Turn the live CSV/NDJSON files into Parquet. Idempotent; safe after a crash.

    The samples are streamed (``scan_csv`` -> ``sink_parquet``), so memory stays bounded
    whatever the length of the run: a 72-hour 8-GPU session is about 1 GB of CSV."""
    from wattui.store.reader import read_events_live

    session_dir = Path(session_dir)
    pairs = (
        (schema.SAMPLES_LIVE, schema.SAMPLES_FINAL, _sink_samples),
        (schema.EVENTS_LIVE, schema.EVENTS_FINAL, _write_events(read_events_live)),
    )
    for live_name, final_name, write in pairs:
        live = session_dir / live_name
        final = session_dir / final_name
        if not live.exists():
            continue
        write_atomic(final, functools.partial(write, live), tmp=session_dir / f".{final_name}.tmp")
        live.unlink()


def _write_events(read):
    def write(live: Path, tmp: Path) -> None:
        read(live).write_parquet(tmp, compression="zstd", statistics=True)

    return write


def _sink_samples(live: Path, tmp: Path) -> None:
    """Stream a live samples.csv into Parquet at ``tmp``, a chunk at a time: the same rows,
    columns and types as :func:`~wattui.store.reader.read_samples_live` returns. (Polars'
    own ``scan_csv`` holds the whole file in memory as it sinks: 330 MB for 330 MB.)"""
    import polars as pl
    from polars.io.plugins import register_io_source

    from wattui.store.reader import read_samples_chunks

    sch = schema.sample_schema()

    def source(with_columns, predicate, n_rows, batch_size):
        empty = True
        for df in read_samples_chunks(live):
            empty = False
            if predicate is not None:
                df = df.filter(predicate)
            yield df if with_columns is None else df.select(with_columns)
        if empty:  # a file of no rows: an empty table of the session's schema
            yield pl.DataFrame(schema=sch)

    register_io_source(source, schema=sch).sink_parquet(
        tmp, compression="zstd", statistics=True, row_group_size=ROW_GROUP_ROWS
    )
