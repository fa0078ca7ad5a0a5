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

from . import schema
from .paths import sessions_dir

HEARTBEAT_STALE_S = 30.0  # a running session on another host with no flush for this long


class CorruptSession(Exception):
    """A session directory that cannot be read. The message says which file and why."""


# -- live file parsing ------------------------------------------------------------
def _complete_bytes(path: Path, start: int = 0) -> tuple[bytes, int]:
    """Bytes of ``path`` from ``start`` up to and including the last newline."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
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
    data, _ = _complete_bytes(Path(path))
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

    @classmethod
    def open(cls, session_dir: Path) -> Session:
        session_dir = Path(session_dir)
        meta_path = session_dir / schema.META
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise CorruptSession(f"{session_dir.name}: no {schema.META}") from e
        except (ValueError, UnicodeDecodeError) as e:
            raise CorruptSession(f"{session_dir.name}: {schema.META} is not valid JSON") from e
        except OSError as e:
            raise CorruptSession(f"{session_dir.name}: cannot read {schema.META}: {e}") from e
        if not isinstance(meta, dict) or "id" not in meta:
            raise CorruptSession(f"{session_dir.name}: {schema.META} is not a wattui session")
        v = meta.get("schema_version", 0)
        if not isinstance(v, int) or v > schema.SCHEMA_VERSION:
            raise CorruptSession(
                f"{session_dir.name}: schema version {v} is newer than this wattui understands"
            )
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

    def live_totals(self) -> dict | None:
        try:
            return json.loads((self.dir / schema.LIVE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def samples(self):
        """All samples as a Polars DataFrame (Parquet once compacted, else the live CSV)."""
        import polars as pl

        final = self.dir / schema.SAMPLES_FINAL
        if final.exists():
            try:
                return conform_samples(pl.read_parquet(final), self.id)
            except Exception:  # noqa: BLE001 - fall back to the live file if it is still there
                if not (self.dir / schema.SAMPLES_LIVE).exists():
                    raise CorruptSession(f"{self.id}: {schema.SAMPLES_FINAL} is unreadable") from None
        live = self.dir / schema.SAMPLES_LIVE
        if live.exists():
            return read_samples_live(live)
        return conform_samples(pl.DataFrame(schema=schema.sample_schema()), self.id)

    def events(self):
        import polars as pl

        final = self.dir / schema.EVENTS_FINAL
        if final.exists():
            try:
                return conform_events(pl.read_parquet(final), self.id)
            except Exception:  # noqa: BLE001
                if not (self.dir / schema.EVENTS_LIVE).exists():
                    raise CorruptSession(f"{self.id}: {schema.EVENTS_FINAL} is unreadable") from None
        live = self.dir / schema.EVENTS_LIVE
        if live.exists():
            return read_events_live(live)
        return events_frame([], self.id)

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
        if not e.is_dir():
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
    return sessions, problems


def find_session(root: Path, ref: str | None) -> Session:
    """A session by id, unique id prefix, name, or ``None`` for the newest."""
    sessions, _ = list_sessions(root)
    if not sessions:
        raise LookupError(f"no sessions in {sessions_dir(root)}")
    if ref is None or ref == "latest":
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
        final = d / schema.SAMPLES_FINAL
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
            if not final.exists():
                return empty, []
            df = conform_samples(pl.read_parquet(final), self.session.id)
            ev = self.session.events()
            new_events = ev.slice(self._events_seen).to_dicts()
            self._final_done = True
        df = df.filter(pl.col("seq") > self._last_seq)
        if df.height:
            self._last_seq = int(df["seq"].max())
        self._events_seen += len(new_events)
        return df, new_events
