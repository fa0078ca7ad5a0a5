"""Opening files in the store safely: only regular files, never through a symlink where
none is expected, never blocking, never more bytes than a bound.

A FIFO named ``meta.json`` would block a plain ``open()`` for good, a ``samples.csv``
that is ``/dev/zero`` would be read without end, and a symlink would send a reader (or
a writer) outside the store. Every reader of session files opens them here.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

__all__ = [
    "UnsafeFile",
    "open_regular",
    "read_bytes",
    "read_json",
    "check_regular",
    "is_real_dir",
    "MAX_META",
    "MAX_LIVE",
    "MAX_EVENTS",
    "MAX_SAMPLES",
]

# Bounds on what a reader takes in at once. Real files are far smaller: meta.json is a
# few kB; a 72-hour session of 8 GPUs at 0.2 s is about 1 GB of CSV.
MAX_META = 16 << 20
MAX_LIVE = 4 << 20
MAX_EVENTS = 1 << 30
MAX_SAMPLES = 8 << 30

_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


class UnsafeFile(OSError):
    """A store file that is not a regular file, is a symlink, or is over its bound."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike, max_bytes: int | None = None):
    """A binary file object for ``path``, which must be a regular file (not a symlink)
    of at most ``max_bytes``. Raises :class:`UnsafeFile` (one-line message) otherwise,
    ``FileNotFoundError`` when it is missing."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW on a symlink
            raise UnsafeFile(e.errno, f"{os.path.basename(path)} is a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            name = os.path.basename(path)
            raise UnsafeFile(errno.EINVAL, f"{name} is {_kind(st.st_mode)}, not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            name = os.path.basename(path)
            raise UnsafeFile(
                errno.EFBIG, f"{name} is {st.st_size:,} bytes, over the {max_bytes:,} a reader takes"
            )
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_bytes(
    path: str | os.PathLike, max_bytes: int, offset: int = 0, limit: int | None = None
) -> bytes:
    """The bytes of a regular file from ``offset``, at most ``limit`` of them, never past
    the size the file had when opened."""
    with open_regular(path, None if offset or limit else max_bytes) as f:
        size = os.fstat(f.fileno()).st_size
        n = max(0, size - offset)
        if limit is not None:
            n = min(n, limit)
        elif n > max_bytes:
            raise UnsafeFile(
                errno.EFBIG, f"{Path(path).name}: {n:,} new bytes, over the {max_bytes:,} a reader takes"
            )
        if n == 0:
            return b""
        f.seek(offset)
        return f.read(n)


def read_json(path: str | os.PathLike, max_bytes: int = MAX_META):
    """Parsed JSON of a regular file. ``ValueError`` for bad JSON (including nesting too
    deep to parse), ``OSError`` (:class:`UnsafeFile`) for a file that must not be read."""
    data = read_bytes(path, max_bytes)
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def check_regular(path: str | os.PathLike, max_bytes: int | None = None) -> os.stat_result:
    """``lstat`` of ``path``, which must be a regular file: for readers that hand a path
    to a library (Polars) rather than a file object."""
    st = os.lstat(path)
    name = Path(path).name
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFile(errno.EINVAL, f"{name} is {_kind(st.st_mode)}, not a regular file")
    if max_bytes is not None and st.st_size > max_bytes:
        raise UnsafeFile(errno.EFBIG, f"{name} is {st.st_size:,} bytes, over the {max_bytes:,} a reader takes")
    return st


def is_real_dir(path: str | os.PathLike) -> bool:
    """A directory, and not a symlink to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
