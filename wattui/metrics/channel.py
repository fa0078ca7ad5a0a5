"""Reader side of the report channel (the writer is :mod:`wattui._report`).

A recorder that launches a script sets ``WATTUI_CHANNEL_DIR`` (see :func:`child_env`) and
the script's processes write ``<dir>/<pid>.ndjson`` from their first ``report()``. A recorder
attached with ``--pid`` calls :meth:`ReportChannel.start_watching`, which writes
``<dir>/<pid>.watch``; within a second the process flushes the events it buffered before the
attach and then writes directly.

:meth:`ReportChannel.poll` reads new complete lines of each followed pid's file. A torn last
line waits for its newline; junk lines, lines whose ``pid`` differs from the file's, and files
of pids that are not followed are ignored.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from wattui._report import ENV_DIR, ENV_SESSION, dir_is_safe
from wattui._report import channel_dir as _channel_dir_str
from wattui.metrics.intake import MetricEvent, Rejections, make_event

__all__ = [
    "ReportChannel",
    "channel_dir",
    "ensure_channel_dir",
    "private_fallback_dir",
    "child_env",
    "UnsafeChannelDir",
]

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted in the directory must not block
MAX_LINE = 1 << 16
MAX_READ = 4 << 20
POLL_BYTES = 256 << 10  # read per followed process and poll: a poll never holds the intake long


class UnsafeChannelDir(Exception):
    """The channel directory exists but another user could read or write it."""


def channel_dir() -> Path:
    """``$WATTUI_CHANNEL_DIR``, else ``$XDG_RUNTIME_DIR/wattui``, else ``/tmp/wattui-<uid>``."""
    return Path(_channel_dir_str())


def ensure_channel_dir(directory: str | os.PathLike | None = None) -> Path:
    """Create the channel directory (mode 0700) if needed and check, with ``lstat`` (a
    symlink is never followed), that it is a directory of ours that no one else can use.

    Raises :class:`UnsafeChannelDir` (one-line message) when it exists but is a symlink, not
    a directory (a FIFO, a file), another user's, or open to group or others.
    """
    d = Path(directory) if directory is not None else channel_dir()
    try:
        d.mkdir(mode=0o700, parents=False)
    except FileNotFoundError:
        d.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass
    except FileExistsError:
        pass
    if not dir_is_safe(str(d)):
        try:
            st = os.lstat(d)
            if stat.S_ISLNK(st.st_mode):
                why = f"a symbolic link to {os.readlink(d)}"
            elif not stat.S_ISDIR(st.st_mode):
                why = "not a directory"
            else:
                why = f"owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}"
        except OSError as e:
            why = e.strerror or str(e)
        raise UnsafeChannelDir(
            f"report channel {d} is not private ({why}); it must be a directory owned by "
            f"uid {os.getuid()} with mode 0700. Remove it or set {ENV_DIR} elsewhere."
        )
    return d


def private_fallback_dir() -> Path:
    """A new private channel directory (``mkdtemp``: 0700, a name no one could have
    prepared), for a launched run when the usual one is unsafe."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"wattui-{os.getuid()}-"))


def child_env(
    directory: str | os.PathLike | None = None,
    session: str | None = None,
    base: dict | None = None,
) -> dict:
    """Environment for a script the recorder launches: it reports from its first call."""
    env = dict(os.environ if base is None else base)
    env[ENV_DIR] = str(ensure_channel_dir(directory))
    if session:
        env[ENV_SESSION] = session
    return env


class _Follow:
    __slots__ = ("offset", "partial", "ino", "head")

    def __init__(self) -> None:
        self.offset = 0
        self.partial = b""
        self.ino: tuple[int, int] | None = None
        self.head = b""  # the file's first bytes: a new file may reuse the inode number


class ReportChannel:
    """Reads ``wattui.report`` events of the processes the recorder follows.

    ``pids_provider()`` returns the pids to follow now (e.g. the launched process and its
    descendants). With ``mark=True`` (the default) every followed pid also gets a ``.watch``
    marker, so processes that started reporting before they were followed (an attach with
    ``--pid``, or children spawned without the environment variable) flush their buffers.
    """

    def __init__(
        self,
        pids_provider: Callable[[], Iterable[int]],
        directory: str | os.PathLike | None = None,
        *,
        mark: bool = True,
        accuracy_key: str | None = None,
        rejections: Rejections | None = None,
        percent=None,
    ) -> None:
        self.percent = percent
        self.pids_provider = pids_provider
        self.directory = Path(directory) if directory is not None else channel_dir()
        self.mark = mark
        self.accuracy_key = accuracy_key
        self.rejections = rejections if rejections is not None else Rejections()
        self._follow: dict[int, _Follow] = {}
        self._explicit: set[int] = set()
        self._markers: set[int] = set()
        self._checked = False

    # -- markers

    def _ensure_dir(self) -> None:
        if not self._checked:
            ensure_channel_dir(self.directory)
            self._checked = True

    def start_watching(self, pid: int) -> None:
        """Follow ``pid`` and write its ``.watch`` marker (creating the directory if needed)."""
        pid = int(pid)
        self._ensure_dir()
        self._explicit.add(pid)
        self._follow.setdefault(pid, _Follow())
        self._write_marker(pid)

    def _write_marker(self, pid: int) -> None:
        path = self.directory / f"{pid}.watch"
        if pid in self._markers and os.path.exists(path):
            return  # (re-created when another watcher of the same pid removed it on close)
        try:
            flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | _NONBLOCK
            fd = os.open(path, flags, 0o600)
            os.close(fd)
            self._markers.add(pid)
        except OSError:
            self.rejections.add("marker_failed")

    def close(self, remove_files: bool = True) -> None:
        """Remove the markers this channel wrote (processes go back to buffering) and, with
        ``remove_files``, the event files of the pids it followed that no other watcher
        marks (a process still reporting starts a new file at its next check)."""
        for pid in list(self._markers):
            try:
                os.unlink(self.directory / f"{pid}.watch")
            except OSError:
                pass
        self._markers.clear()
        if remove_files:
            for pid in list(self._follow):
                if os.path.exists(self.directory / f"{pid}.watch"):
                    continue
                try:
                    os.unlink(self.directory / f"{pid}.ndjson")
                except OSError:
                    pass
        self._follow.clear()

    def __enter__(self) -> ReportChannel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading

    def followed(self) -> set[int]:
        try:
            pids = {int(p) for p in self.pids_provider()}
        except Exception:  # noqa: BLE001 - a vanished process tree is not our failure
            pids = set()
        return pids | self._explicit

    def poll(self) -> list[MetricEvent]:
        """New events of all followed pids, in order per pid."""
        pids = self.followed()
        if self.mark and pids:
            try:
                self._ensure_dir()
            except (OSError, UnsafeChannelDir):
                self.rejections.add("unsafe_dir")
                return []
            for pid in pids:
                self._follow.setdefault(pid, _Follow())
                self._write_marker(pid)
        events: list[MetricEvent] = []
        for pid in sorted(pids):
            f = self._follow.setdefault(pid, _Follow())
            events.extend(self._read(pid, f))
        return events

    def skip_to_tail(self, keep_bytes: int = 64 << 10) -> int:
        """Out of time at the run's end: jump each followed file to its last ``keep_bytes``
        (from a line start) so its newest reports, the run's last accuracy among them, are
        still read. Returns the number of report lines skipped (counted, not stored)."""
        skipped = 0
        for pid, f in self._follow.items():
            path = self.directory / f"{pid}.ndjson"
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | _NONBLOCK)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if (
                    not stat.S_ISREG(st.st_mode)
                    or f.ino != (st.st_dev, st.st_ino)
                    or st.st_size - f.offset <= keep_bytes
                ):
                    continue
                start = st.st_size - keep_bytes
                os.lseek(fd, f.offset, os.SEEK_SET)
                pos, n = f.offset, 0
                while pos < start:
                    chunk = os.read(fd, min(1 << 20, start - pos))
                    if not chunk:
                        break
                    n += chunk.count(b"\n")
                    pos += len(chunk)
                rest = os.read(fd, keep_bytes)
                cut = rest.find(b"\n")
                if cut < 0:
                    continue
                n += 1  # the line the cut falls in
                f.offset, f.partial = pos + cut + 1, b""
                skipped += n
            except OSError:
                continue
            finally:
                os.close(fd)
        if skipped:
            self.rejections.add("report_not_stored_at_exit", skipped)
        return skipped

    def pending(self) -> bool:
        """True while a followed file holds bytes not read yet."""
        for pid, f in self._follow.items():
            try:
                st = os.stat(self.directory / f"{pid}.ndjson", follow_symlinks=False)
            except OSError:
                continue
            if st.st_size > f.offset and (f.ino is None or f.ino == (st.st_dev, st.st_ino)):
                return True
        return False

    def _read(self, pid: int, f: _Follow) -> list[MetricEvent]:
        path = self.directory / f"{pid}.ndjson"
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | _NONBLOCK)
        except OSError:
            return []
        try:
            st = os.fstat(fd)
            if st.st_uid != os.getuid() or not stat.S_ISREG(st.st_mode):
                self.rejections.add("foreign_file")
                return []
            ino = (st.st_dev, st.st_ino)
            replaced = f.ino != ino or st.st_size < f.offset
            if not replaced and f.head:
                replaced = os.pread(fd, len(f.head), 0) != f.head
            if replaced:  # a new file (removed and re-created, pid reuse) or truncated
                f.offset, f.partial, f.ino, f.head = 0, b"", ino, b""
            if st.st_size == f.offset:
                return []
            os.lseek(fd, f.offset, os.SEEK_SET)
            data = os.read(fd, POLL_BYTES)
        except OSError:
            return []
        finally:
            os.close(fd)
        if not f.head:
            f.head = data[:64]
        f.offset += len(data)
        lines = (f.partial + data).split(b"\n")
        f.partial = lines.pop()
        if len(f.partial) > MAX_LINE:
            f.partial = b""
            self.rejections.add("line_too_long")
        out = []
        for line in lines:
            ev = self._event(pid, f, line)
            if ev is not None:
                out.append(ev)
        return out

    def _event(self, pid: int, f: _Follow, line: bytes) -> MetricEvent | None:
        if not line.strip():
            return None
        if len(line) > MAX_LINE:
            self.rejections.add("line_too_long")
            return None
        try:
            rec = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            self.rejections.add("bad_json_line")
            return None
        if not isinstance(rec, dict) or rec.get("pid") != pid:
            self.rejections.add("wrong_pid")
            return None
        values = rec.get("values")
        t = rec.get("t")
        if (
            not isinstance(values, dict)
            or isinstance(t, bool)
            or not isinstance(t, (int, float))
            or not math.isfinite(t)
        ):
            self.rejections.add("bad_record")
            return None
        if rec.get("kind") == "stats":  # what report() itself dropped, sent at exit
            for name, n in values.items():
                if name in ("buffer_overflow", "dropped_values", "write_errors") and (
                    type(n) is int and 0 < n < 2**53
                ):
                    self.rejections.add(f"report_{name}", n)
            return None
        kind = rec.get("kind") if rec.get("kind") in ("metric", "watch", "measure") else "metric"
        return make_event(
            values,
            float(t),
            "report",
            pid=pid,
            kind=kind,
            accuracy_key=self.accuracy_key,
            rejections=self.rejections,
            percent=self.percent,
        )
