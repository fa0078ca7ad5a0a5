"""The store's cache of what readers derive from finished sessions, so a listing costs
O(sessions changed), not O(sessions).

One mechanism serves every reader (``wattui sessions``, ``show``, ``compare`` and the
comparison screen, also under ``serve``): a text file per view in ``<store>/.cache/``
(``records`` for session records, ``compare-rows`` for the comparison table's rows), a
line per session: its folder's name, the inode, mtime and size of every file the value
is read from, a digest, and the value as JSON. Rules:

- running sessions are never cached;
- a stamp that differs in anything, a session folder gone, an entry whose digest does not
  match (a damaged file), a cache of another version or wattui release: the session is
  read again from its files, through the store's validating readers, and the entry is
  replaced;
- the cache is private (0600 in a 0700 folder; a group's modes in a group's store), never
  followed through a symlink, bounded in size, and cached values are sanitised again by
  the caller before they reach a terminal unless :func:`all_printable` shows that no
  string in the value holds anything the sanitiser would remove.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from wattui import __version__
from wattui.model.kinds import ENDED
from wattui.model.session import SessionRecord
from wattui.store import schema
from wattui.store.paths import make_private_dir, write_atomic
from wattui.store.safeio import open_regular, read_bytes

CACHE_VERSION = 2
# Finished, failed and interrupted (the recorder is gone) sessions change only when their
# files do; a running one is read every time.
CACHEABLE = ENDED
MAX_CACHE = 1 << 30
# What a session's record is read from: any change to one of these is a change.
STAMPED = (
    schema.META,
    schema.SAMPLES_FINAL,
    schema.EVENTS_FINAL,
    schema.LIVE,
    schema.SAMPLES_LIVE,
    schema.EVENTS_LIVE,
)
_HEADER = f"wattui-record-cache {CACHE_VERSION} {__version__}"

# Escapes in JSON text: a value is written as ASCII, so every non-ASCII or control
# character of a string in it is one of these.
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|[bfnrt])")
_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def all_printable(text: str) -> bool:
    """Whether every string in the JSON text ``text`` is printable (so the sanitiser would
    leave it as it is): the text is ASCII and each escape in it is of a printable
    character. Conservative: an escaped backslash before a ``u`` may fail it, never pass."""
    if not text.isascii():
        return False
    if "\\" not in text:
        return True
    chars = {chr(int(m[1:], 16)) if m[0] == "u" else _SIMPLE[m] for m in set(_ESCAPE.findall(text))}
    return "".join(chars).isprintable()


def cache_path(root: Path, view: str) -> Path:
    return Path(root) / ".cache" / f"{view}-v{CACHE_VERSION}.txt"


def session_stamp(session_dir: str | os.PathLike) -> str | None:
    """``ino:mtime_ns:size`` (``-`` when absent) of each stamped file; None when meta.json
    is missing or a file cannot be looked at (then nothing is cached). A live CSV is
    looked at only while its Parquet file is absent: readers prefer the Parquet file."""
    d = os.fspath(session_dir)
    out = []
    for name in STAMPED:
        if name in _LIVE_OF and out[_LIVE_OF[name]] != "-":
            out.append("")
            continue
        try:
            st = os.lstat(f"{d}/{name}")
        except FileNotFoundError:
            out.append("-")
            continue
        except OSError:
            return None
        out.append(f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}")
    return ",".join(out) if out[0] != "-" else None


# a live file -> the index in STAMPED of the Parquet file that replaces it
_LIVE_OF = {
    schema.SAMPLES_LIVE: STAMPED.index(schema.SAMPLES_FINAL),
    schema.EVENTS_LIVE: STAMPED.index(schema.EVENTS_FINAL),
}


def _digest(stamp: str, text: str) -> str:
    return hashlib.blake2b(f"{stamp}\t{text}".encode(), digest_size=16).hexdigest()


def lookup(root: Path, view: str, name: str, stamp: str | None) -> str | None:
    """The cached JSON text of one session (as :meth:`RecordCache.get_text`) without
    reading the whole cache: ``show ID`` takes the same time at any store size."""
    import mmap

    if stamp is None or "\t" in name or "\n" in name:
        return None
    try:
        with open_regular(cache_path(root, view), MAX_CACHE) as f:
            if os.fstat(f.fileno()).st_size == 0:
                return None
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                head = m[: len(_HEADER) + 1]
                at = m.find(f"\n{name}\t".encode()) if head == f"{_HEADER}\n".encode() else -1
                if at < 0:
                    return None
                end = m.find(b"\n", at + 1)
                line = m[at + 1 : end if end >= 0 else len(m)].decode("ascii")
    except (OSError, ValueError):
        return None
    parts = line.split("\t")
    if len(parts) != 4 or parts[1] != stamp or _digest(stamp, parts[3]) != parts[2]:
        return None
    return parts[3]


class RecordCache:
    """One view's cache: a line per session, ``name TAB stamp TAB digest TAB json``. ``get``
    a value by folder name and stamp (an entry whose digest does not match is damaged and
    ignored), ``put`` one read from the files, then ``save()``: only the entries got or
    put this time are kept (a folder gone is dropped), and the file is written only when
    that changed anything."""

    def __init__(self, root: Path, view: str, enabled: bool = True):
        self.path = cache_path(root, view)
        self.enabled = enabled
        self._old = self._load() if enabled else {}
        self._new: dict[str, tuple[str, str, str]] = {}
        self._changed = False

    def _load(self) -> dict[str, tuple[str, str, str]]:
        try:
            text = read_bytes(self.path, MAX_CACHE).decode("ascii")
        except (OSError, ValueError):
            return {}  # absent, damaged, a symlink, too big, not ASCII: rebuilt
        lines = text.split("\n")
        if lines[0] != _HEADER:
            return {}
        out = {}
        for line in lines[1:]:
            parts = line.split("\t")
            if len(parts) == 4:
                out[parts[0]] = (parts[1], parts[2], parts[3])
        return out

    def get_text(self, name: str, stamp: str | None) -> str | None:
        """The cached JSON text for folder ``name`` if its stamp is ``stamp`` and the entry
        is whole, else None."""
        if stamp is None:
            return None
        hit = self._old.get(name)
        if hit is None or hit[0] != stamp or _digest(stamp, hit[2]) != hit[1]:
            return None
        self._new[name] = hit
        return hit[2]

    def get(self, name: str, stamp: str | None) -> dict | None:
        """:meth:`get_text`, parsed: a dict, or None."""
        text = self.get_text(name, stamp)
        if text is None:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def get_record(self, name: str, stamp: str | None) -> SessionRecord | None:
        """:meth:`get_text` as a :class:`SessionRecord`, or None when it is not one (a
        damaged or foreign entry: the caller reads the session again)."""
        text = self.get_text(name, stamp)
        if text is None:
            return None
        try:
            return SessionRecord.from_dict(json.loads(text))
        except (ValueError, RecursionError):  # RecordError is a ValueError
            return None

    def put(self, name: str, stamp: str | None, value: dict | SessionRecord) -> str:
        """Cache ``value`` (a record, or any dict: a view's row); returns its JSON text."""
        if isinstance(value, SessionRecord):
            value = value.to_dict()
        text = json.dumps(value, allow_nan=False)
        if stamp is not None and self.enabled and "\t" not in name and "\n" not in name:
            self._new[name] = (stamp, _digest(stamp, text), text)
            self._changed = True
        return text

    def save(self) -> None:
        """Write the entries got or put this time, if that differs from the file read."""
        if not self.enabled or (not self._changed and self._new.keys() == self._old.keys()):
            return
        lines = [_HEADER] + [f"{k}\t{s}\t{d}\t{t}" for k, (s, d, t) in self._new.items()]
        try:
            make_private_dir(self.path.parent)
            # no fsync: a torn cache fails its digests and is rebuilt
            write_atomic(self.path, "\n".join(lines).encode("ascii"), durable=False)
        except (OSError, TypeError, ValueError):
            pass  # a read-only or full store is read in full every time
