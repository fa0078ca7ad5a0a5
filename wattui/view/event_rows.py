"""A live session's event rows, read incrementally for its session record.

``session_record`` reads every event of a session (``Session.events()``) to compute its
accuracy, SAM and projection; the live screen asks for the record every second. This
follows ``events.ndjson`` instead: each call parses only the complete lines appended since
the last one and keeps the rows, exactly as ``Session.events().to_dicts()`` gives them.
Whenever that read would decide something else (the events were compacted to Parquet,
the file was replaced, is not a regular file, is over the readers' limit, or a chunk
cannot be read), it answers None and the caller reads the session in full.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from wattui.store import schema
from wattui.store.reader import events_frame, parse_event_lines
from wattui.store.safeio import MAX_EVENTS, read_bytes


class LiveEventRows:
    """The event rows of the live session in ``session_dir``, followed by appends."""

    def __init__(self, session_dir: Path):
        self.dir = Path(session_dir)
        self.path = self.dir / schema.EVENTS_LIVE
        self.final = self.dir / schema.EVENTS_FINAL
        self.rows: list[dict] = []
        self.offset = 0  # bytes of complete lines already parsed
        self._file: tuple[int, int] | None = None  # (device, inode) those bytes came from

    def _reset(self, file: tuple[int, int] | None) -> None:
        self.rows, self.offset, self._file = [], 0, file

    def poll(self) -> list[dict] | None:
        """The rows now (the same list, grown), or None: read the session in full."""
        if os.path.lexists(self.final):
            return None  # Session.events() reads the Parquet first
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            self._reset(None)
            return self.rows  # no events yet: an empty frame
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_EVENTS:
            return None  # refused by the full read too: it says so
        file = (st.st_dev, st.st_ino)
        if file != self._file or st.st_size < self.offset:
            self._reset(file)  # replaced or truncated: start again
        if st.st_size == self.offset:
            return self.rows
        try:
            data = read_bytes(self.path, MAX_EVENTS, offset=self.offset)
            cut = data.rfind(b"\n")
            if cut < 0:
                return self.rows  # a line still being written
            new = parse_event_lines(data[: cut + 1])
            added = events_frame(new, self.dir.name).to_dicts() if new else []
        except Exception:  # noqa: BLE001 - the full read reports what is wrong
            return None
        self.rows.extend(added)
        self.offset += cut + 1
        return self.rows
