"""Wake-ups when files in a few directories change: Linux inotify, through ctypes.

The recorder's metrics intake reads files other processes write (the report channel, a
metrics file). Instead of polling them on a timer it waits on a :class:`DirWatch`, whose
thread sleeps in the kernel until one of the directories sees a file created, written or
renamed into it. Where inotify is missing (not Linux, no libc symbol, watches exhausted)
:func:`open_dir_watch` returns None and the caller keeps its timer.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable

IN_MODIFY = 0x2
IN_CLOSE_WRITE = 0x8
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_IGNORED = 0x8000  # the watch is gone (its directory removed, or unmounted)
IN_CLOEXEC = 0o2000000
WATCH_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF
LOST = IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF  # what was watched is no longer at its path
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)
COALESCE_S = 0.05  # after a wake-up: lets a burst of writes gather (the kernel merges them)


class DirWatch:
    """Calls ``on_change()`` from its own thread after files change in ``dirs`` (several
    changes close together may give one call). ``complete`` is False when some directory
    could not be watched (it does not exist yet), or stopped being watched (removed,
    moved, unmounted): the caller must then also poll. ``linked`` is True when a path goes
    through a symbolic link, which may be pointed elsewhere, out of the watch."""

    def __init__(self, libc, fd: int, dirs: list[str], on_change: Callable[[], None]):
        self._fd = fd
        self.on_change = on_change
        self.complete = True
        self.linked = any(os.path.realpath(d) != os.path.abspath(d) for d in dirs)
        for d in dirs:
            if libc.inotify_add_watch(fd, os.fsencode(d), WATCH_MASK) < 0:
                self.complete = False
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="wattui-dirwatch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            try:
                ready = {fd for fd, _ in poller.poll()}
            except OSError:
                return
            if self._stop_r in ready:
                return
            try:
                events = os.read(self._fd, 65536)  # which file changed does not matter: the
            except OSError:  # caller reads what changed; only a watch that was lost does
                return
            if self.complete and _lost(events):
                self.complete = False
            try:
                self.on_change()
            except Exception:  # noqa: BLE001 - a wake-up must never end the recording
                pass
            time.sleep(COALESCE_S)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        self._thread.join(2.0)
        if self._thread.is_alive():
            return  # stuck: leave its descriptors to the process's end
        for fd in (self._fd, self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def _lost(events: bytes) -> bool:
    """Whether any of these inotify events says a watched path is no longer watched."""
    at = 0
    while at + _EVENT.size <= len(events):
        _wd, mask, _cookie, name_len = _EVENT.unpack_from(events, at)
        if mask & LOST:
            return True
        at += _EVENT.size + name_len
    return False


def open_dir_watch(dirs: Iterable[str | os.PathLike], on_change: Callable[[], None]) -> DirWatch | None:
    """A watch on ``dirs``, or None where inotify cannot be used."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        init = libc.inotify_init1
    except (OSError, AttributeError):
        return None
    fd = init(IN_CLOEXEC)
    if fd < 0:
        return None
    try:
        return DirWatch(libc, fd, [os.fspath(d) for d in dirs], on_change)
    except OSError:
        os.close(fd)
        return None
