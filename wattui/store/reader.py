"""Where sessions are read: listing, loading, and following a live session.

Readers never trust the store: a foreign, truncated or corrupt file is reported
and skipped, and a session whose recorder died is reported as ``interrupted`` and
read up to its last flush.
"""

from __future__ import annotations

import io
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from wattui.sanitize import clean_text
from wattui.store import schema
from wattui.store.checkpoint import Unusable, continue_checkpoint
from wattui.store.paths import sessions_dir
from wattui.store.safeio import (
    MAX_EVENTS,
    MAX_LIVE,
    MAX_META,
    MAX_SAMPLES,
    UnsafeFile,
    is_real_dir,
    open_regular,
    read_bytes,
    read_json,
)
from wattui.store.validate import checkpoint_problem, live_problem, meta_problem

HEARTBEAT_STALE_S = 30.0  # a running session on another host with no flush for this long


class CorruptSession(Exception):
    """A session directory that cannot be read. The message says which file and why."""


# -- live file parsing ------------------------------------------------------------
def _complete_bytes(path: Path, start: int = 0, max_bytes: int = MAX_SAMPLES) -> tuple[bytes, int]:
    """Bytes of ``path`` from ``start`` up to and including the last newline (a regular
    file only, at most ``max_bytes`` of it)."""
    data = read_bytes(path, max_bytes, offset=start)
    cut = data.rfind(b"\n")
    if cut < 0:
        return b"", start
    return data[: cut + 1], start + cut + 1


def _conform(df, sch: dict, session_id: str | None):
    """``df`` in the columns and order of ``sch``: columns that a file of an older schema
    version lacks are added as nulls, and the session id column holds ``session_id``."""
    import polars as pl

    if session_id is not None:
        df = df.with_columns(pl.lit(session_id, dtype=pl.String).alias(schema.SESSION_ID))
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in sch.items() if c not in df.columns]
    if missing:
        df = df.with_columns(missing)
    return df.select([pl.col(c).cast(t) for c, t in sch.items()])


def conform_samples(df, session_id: str | None = None):
    """The samples frame in the current schema (see :func:`_conform`)."""
    return _conform(df, schema.sample_schema(), session_id)


def conform_events(df, session_id: str | None = None):
    """The events frame in the current schema (see :func:`_conform`)."""
    return _conform(df, schema.event_schema(), session_id)


def _samples_from_csv_bytes(data: bytes, with_header: bool, columns=None, session_id=None):
    import polars as pl

    sch = schema.sample_schema()
    if not data.strip():
        return conform_samples(pl.DataFrame(schema=sch), session_id)
    cols = list(columns or schema.SAMPLE_COLUMNS)
    df = pl.read_csv(
        io.BytesIO(data),
        has_header=with_header,
        new_columns=None if with_header else cols,
        schema={c: sch.get(c, pl.String) for c in cols},
        truncate_ragged_lines=True,
        ignore_errors=True,
    )
    # A line torn by a failed write parses to nulls: drop it rather than guess.
    df = df.filter(pl.col("t_wall").is_not_null() & pl.col("device").is_not_null())
    return conform_samples(df, session_id)


def read_samples_live(path: Path):
    """A live samples.csv; its session id is its folder's name."""
    path = Path(path)
    data, _ = _complete_bytes(path)
    nl = data.find(b"\n")
    header = data[:nl].decode("ascii", "replace").strip().split(",") if nl >= 0 else None
    return _samples_from_csv_bytes(
        data[nl + 1 :], with_header=False, columns=header, session_id=path.parent.name
    )


def read_samples_chunks(path: Path, chunk_bytes: int = 8 << 20):
    """A live samples.csv as a sequence of frames of about ``chunk_bytes`` of CSV each:
    together the rows :func:`read_samples_live` returns, in memory bounded by the chunk
    whatever the length of the file (compaction streams them into Parquet)."""
    path = Path(path)
    with open_regular(path, MAX_SAMPLES) as f:
        first = f.readline(1 << 16)
        if not first.endswith(b"\n"):
            return
        header = first.decode("ascii", "replace").strip().split(",")
        rest = b""
        while True:
            buf = f.read(chunk_bytes)
            if not buf:
                return  # bytes after the last newline: a torn last line, left out
            buf = rest + buf
            cut = buf.rfind(b"\n") + 1
            rest = buf[cut:]
            if cut:
                yield _samples_from_csv_bytes(
                    buf[:cut], with_header=False, columns=header, session_id=path.parent.name
                )


def parse_event_lines(data: bytes) -> list[dict]:
    """Event rows from NDJSON bytes; junk and torn lines are skipped."""
    out = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(ev, dict) and "kind" in ev:
            out.append(ev)
    return out


def _short(e: BaseException) -> str:
    """One line about an exception from a library (Polars messages run to pages)."""
    msg = (getattr(e, "strerror", None) or str(e) or type(e).__name__).strip()
    return msg.splitlines()[0][:160] if msg else type(e).__name__


def events_frame(rows: list[dict], session_id: str | None = None):
    import polars as pl

    sch = schema.event_schema()
    cols = {c: [_coerce(r.get(c), sch[c]) for r in rows] for c in schema.EVENT_COLUMNS}
    cols[schema.SESSION_ID] = [session_id] * len(rows)
    return pl.DataFrame(cols, schema=sch)


def _coerce(v, dtype):
    import polars as pl

    if v is None:
        return None
    try:
        if dtype == pl.Float64:
            return float(v)
        if dtype == pl.Int64:
            return int(v)
        if dtype == pl.String:
            return v if isinstance(v, str) else json.dumps(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return v


def read_events_live(path: Path):
    """A live events.ndjson; its session id is its folder's name."""
    data, _ = _complete_bytes(Path(path), max_bytes=MAX_EVENTS)
    return events_frame(parse_event_lines(data), Path(path).parent.name)


# -- sessions ---------------------------------------------------------------------
def _recorder_alive(meta: dict, session_dir: Path) -> bool:
    """Is the recorder that wrote this session still running?"""
    host = meta.get("recorder_host")
    pid = meta.get("recorder_pid")
    if host == socket.gethostname() and pid:
        try:
            import psutil

            p = psutil.Process(int(pid))
            started = meta.get("recorder_started")
            if started is not None and abs(p.create_time() - float(started)) > 2.0:
                return False  # the pid was reused by another process
            return p.status() != psutil.STATUS_ZOMBIE
        except Exception:  # noqa: BLE001 - NoSuchProcess, AccessDenied, bad values
            return False
    # Another host (a shared store): trust the heartbeat.
    for name in (schema.LIVE, schema.SAMPLES_LIVE):
        try:
            if time.time() - (session_dir / name).stat().st_mtime < HEARTBEAT_STALE_S:
                return True
        except OSError:
            pass
    return False


@dataclass
class Session:
    """One session directory, read lazily."""

    dir: Path
    meta: dict
    _status: str | None = field(default=None, repr=False)
    # What could not be read beyond meta.json (an unreadable events.parquet, a bad
    # live.json), one line each: listings print them, records carry them.
    problems: list[str] = field(default_factory=list, repr=False)

    @classmethod
    def open(cls, session_dir: Path) -> Session:
        """Read and validate ``meta.json``; :class:`CorruptSession` (one line) if the
        directory is not a readable session (or is a symlink)."""
        session_dir = Path(session_dir)
        if not is_real_dir(session_dir):
            why = "a symbolic link" if session_dir.is_symlink() else "not a directory"
            raise CorruptSession(f"{session_dir.name}: {why}, not a session directory")
        meta_path = session_dir / schema.META
        try:
            meta = read_json(meta_path, MAX_META)
        except FileNotFoundError as e:
            raise CorruptSession(f"{session_dir.name}: no {schema.META}") from e
        except UnsafeFile as e:
            raise CorruptSession(f"{session_dir.name}: {e.strerror}") from None
        except (ValueError, UnicodeDecodeError) as e:
            why = " (nested too deeply)" if str(e) == "nested too deeply" else ""
            raise CorruptSession(f"{session_dir.name}: {schema.META} is not valid JSON{why}") from e
        except OSError as e:
            raise CorruptSession(
                f"{session_dir.name}: cannot read {schema.META}: {e.strerror or e}"
            ) from None
        if not isinstance(meta, dict) or "id" not in meta:
            raise CorruptSession(f"{session_dir.name}: {schema.META} is not a wattui session")
        v = meta.get("schema_version", 0)
        if type(v) is int and v > schema.SCHEMA_VERSION:  # before its keys are judged
            raise CorruptSession(
                f"{session_dir.name}: schema version {v} is newer than this wattui understands"
            )
        why = meta_problem(meta)
        if why:
            raise CorruptSession(f"{session_dir.name}: {schema.META}: {why}")
        return cls(session_dir, meta)

    @property
    def id(self) -> str:
        return self.meta["id"]

    @property
    def status(self) -> str:
        if self._status is None:
            st = self.meta.get("status", "interrupted")
            if st == "running" and not _recorder_alive(self.meta, self.dir):
                st = "interrupted"
            self._status = st if st in schema.STATUSES else "interrupted"
        return self._status

    @property
    def is_live(self) -> bool:
        return self.status == "running"

    def _problem(self, line: str) -> None:
        if line not in self.problems:
            self.problems.append(line)

    def live_totals(self) -> dict | None:
        """The totals at the last flush (``t_wall``, ``devices``, ``energy_j``): live.json's
        checkpoint continued with the rows written after it (see
        :func:`~wattui.store.checkpoint.continue_checkpoint`), or None when it is absent or
        unusable. A checkpoint that cannot be continued, and the live.json of an older
        wattui, are used as they are (up to 10 s older)."""
        try:
            live = read_json(self.dir / schema.LIVE, MAX_LIVE)
        except FileNotFoundError:
            return None
        except UnsafeFile as e:
            self._problem(f"{e.strerror} (ignored)")
            return None
        except ValueError:  # written atomically, so never torn: damaged
            self._problem(f"{schema.LIVE} is not valid JSON (ignored)")
            return None
        except OSError:
            return None  # removed as the run ended: the summary has it
        why = live_problem(live)
        if why:
            self._problem(f"{schema.LIVE}: {why} (ignored)")
            return None
        if "state" not in live and "samples_offset" not in live and "seq" not in live:
            return live  # an older wattui's, rewritten every flush
        why = checkpoint_problem(live)
        if not why:
            kinds = {d["key"]: d.get("kind") for d in self.meta.get("devices") or ()}
            try:
                follow = (str(self.dir), self.id, self.meta.get("started_at"))
                return continue_checkpoint(self.dir, live, kinds, follow)
            except Unusable as e:
                why = str(e)
            except OSError as e:
                why = f"cannot read the samples after it: {e.strerror or e}"
            except Exception as e:  # noqa: BLE001 - a damaged samples.parquet
                why = f"cannot read the samples after it: {_short(e)}"
        self._problem(f"{schema.LIVE}: {why} (its totals are used as they are)")
        return live

    def _parquet(self, name: str, max_bytes: int):
        """A Parquet file of the session as a frame; None when it is not there."""
        import polars as pl

        try:
            with open_regular(self.dir / name, max_bytes) as f:
                return pl.read_parquet(f)
        except FileNotFoundError:
            return None

    def samples(self):
        """All samples as a Polars DataFrame (Parquet once compacted, else the live CSV)."""
        import polars as pl

        live = self.dir / schema.SAMPLES_LIVE
        try:
            df = self._parquet(schema.SAMPLES_FINAL, MAX_SAMPLES)
            if df is not None:
                return conform_samples(df, self.id)
        except Exception as e:  # noqa: BLE001 - fall back to the live file if it is still there
            why = f"{schema.SAMPLES_FINAL} is unreadable ({_short(e)})"
            if not os.path.lexists(live):
                self._problem(f"{why}: no energy or power samples")
                raise CorruptSession(f"{self.id}: {why}") from None
        try:
            return read_samples_live(live)
        except FileNotFoundError:
            return conform_samples(pl.DataFrame(schema=schema.sample_schema()), self.id)
        except OSError as e:
            self._problem(f"{e.strerror or e}: no energy or power samples")
            raise CorruptSession(f"{self.id}: {e.strerror or e}") from None

    def events(self):

        live = self.dir / schema.EVENTS_LIVE
        try:
            df = self._parquet(schema.EVENTS_FINAL, MAX_EVENTS)
            if df is not None:
                return conform_events(df, self.id)
        except Exception as e:  # noqa: BLE001
            why = f"{schema.EVENTS_FINAL} is unreadable ({_short(e)})"
            if not os.path.lexists(live):
                # Never silent: without its events a session has no accuracy or epochs.
                self._problem(f"{why}: no accuracy or epoch events")
                raise CorruptSession(f"{self.id}: {why}") from None
        try:
            return read_events_live(live)
        except FileNotFoundError:
            return events_frame([], self.id)
        except OSError as e:
            self._problem(f"{e.strerror or e}: no accuracy or epoch events")
            raise CorruptSession(f"{self.id}: {e.strerror or e}") from None

    def output_path(self) -> Path:
        return self.dir / schema.OUTPUT


def scan_store(root: Path) -> tuple[list[os.DirEntry], list[str]]:
    """The session directories of a store, by name (oldest first), and one line per
    entry that is not one. Hidden entries (temporary files, caches) are ignored."""
    base = sessions_dir(root)
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except FileNotFoundError:
        return [], []
    except OSError as e:
        return [], [f"cannot read store {base}: {e.strerror}"]
    dirs, problems = [], []
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_symlink():
            problems.append(f"{e.name}: a symbolic link, not a session directory (skipped)")
            continue
        if not e.is_dir(follow_symlinks=False):
            problems.append(f"{e.name}: not a session directory (skipped)")
            continue
        dirs.append(e)
    return dirs, problems


def list_sessions(root: Path) -> tuple[list[Session], list[str]]:
    """Every readable session, oldest first, and one line per thing that was skipped."""
    sessions: list[Session] = []
    entries, problems = scan_store(root)
    for e in entries:
        try:
            sessions.append(Session.open(Path(e.path)))
        except CorruptSession as err:
            problems.append(f"{err} (skipped)")
    return sessions, [clean_text(p) for p in problems]  # directory names are anyone's


def _find_by_folder(root: Path, ref: str | None) -> Session | None:
    """The session ``ref`` names when the folder names settle it (a session's folder is
    its id), else None: then the listing decides, with its messages."""
    if ref is None or ref == "latest":
        entries, _ = scan_store(root)
        for e in reversed(entries):
            try:
                return Session.open(Path(e.path))
            except CorruptSession:
                continue
        return None
    if not ref or "/" in ref or ref.startswith("."):
        return None
    if os.path.lexists(sessions_dir(root) / ref):
        try:
            s = Session.open(sessions_dir(root) / ref)
            if s.id == ref:
                return s
        except CorruptSession:
            pass
    entries, _ = scan_store(root)
    found = []
    for e in entries:
        if e.name.startswith(ref) and e.name != ref:
            try:
                s = Session.open(Path(e.path))
            except CorruptSession:
                continue
            if s.id.startswith(ref):
                found.append(s)
            if len(found) > 1:
                return None  # ambiguous: the listing says so
    return found[0] if len(found) == 1 else None


def find_session(root: Path, ref: str | None) -> Session:
    """A session by id, unique id prefix, name, or ``None`` for the newest. A ``ref``
    naming a directory that is not a readable session says why.

    An id, a unique prefix of one and ``latest`` are found from the folder names and open
    only the sessions they name, so they take the same time at any store size (a name
    reads every meta.json)."""
    quick = _find_by_folder(root, ref)
    if quick is not None:
        return quick
    sessions, _ = list_sessions(root)
    if ref is None or ref == "latest":
        if not sessions:
            raise LookupError(f"no sessions in {sessions_dir(root)}")
        return sessions[-1]
    exact = [s for s in sessions if s.id == ref]
    if exact:
        return exact[0]
    pref = [s for s in sessions if s.id.startswith(ref)] or [
        s for s in sessions if s.meta.get("name") == ref
    ]
    if len(pref) == 1:
        return pref[0]
    if not pref:
        d = sessions_dir(root) / ref
        if "/" not in ref and ref not in (".", "..") and os.path.lexists(d):
            try:
                Session.open(d)
            except CorruptSession as e:
                raise LookupError(f"session {e} (unreadable)") from None
        if not sessions:
            raise LookupError(f"no sessions in {sessions_dir(root)}")
        raise LookupError(f"no session matches {ref!r}")
    raise LookupError(f"{ref!r} matches {len(pref)} sessions; give more of the id")


class SessionTail:
    """Follows a session as it grows: each ``poll`` returns only new samples and events.

    Survives compaction: when the live CSV is replaced by Parquet, rows already
    seen (by ``seq``) are skipped.
    """

    def __init__(self, session: Session):
        self.session = session
        self._samples_off = 0
        self._events_off = 0
        self._columns: list[str] | None = None
        self._last_seq = -1
        self._events_seen = 0
        self._final_done = False

    def poll(self):
        """Return ``(samples_df, event_rows)`` that appeared since the last call."""
        import polars as pl

        d = self.session.dir
        empty = pl.DataFrame(schema=schema.sample_schema())
        if self._final_done:
            return empty, []
        live = d / schema.SAMPLES_LIVE
        new_events: list[dict] = []
        try:
            data, self._samples_off = _complete_bytes(live, self._samples_off)
            if self._columns is None:
                nl = data.find(b"\n")
                if nl >= 0:
                    self._columns = data[:nl].decode("ascii", "replace").strip().split(",")
                data = data[nl + 1 :] if nl >= 0 else b""
            df = _samples_from_csv_bytes(
                data, with_header=False, columns=self._columns, session_id=self.session.id
            )
            ev_data, self._events_off = _complete_bytes(d / schema.EVENTS_LIVE, self._events_off)
            new_events = parse_event_lines(ev_data)
        except FileNotFoundError:
            df = self.session._parquet(schema.SAMPLES_FINAL, MAX_SAMPLES)
            if df is None:
                return empty, []
            df = conform_samples(df, self.session.id)
            ev = self.session.events()
            new_events = ev.slice(self._events_seen).to_dicts()
            self._final_done = True
        df = df.filter(pl.col("seq") > self._last_seq)
        if df.height:
            self._last_seq = int(df["seq"].max())
        self._events_seen += len(new_events)
        return df, new_events
