"""Where the store lives and how session ids look."""

from __future__ import annotations

import os
import re
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path

from wattui.store.schema import SESSIONS_DIR


def store_root(explicit: str | os.PathLike | None = None) -> Path:
    """``--store DIR`` > ``$WATTUI_HOME`` > ``$XDG_DATA_HOME/wattui`` > ``~/.local/share/wattui``."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("WATTUI_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    # the XDG spec: a relative path in an XDG variable is invalid and is ignored
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "wattui"


def sessions_dir(root: Path) -> Path:
    return Path(root) / SESSIONS_DIR


def recorder_logs_dir(root: Path) -> Path:
    return Path(root) / "recorder-logs"


def recorder_log_path(root: Path, session_id: str) -> Path:
    """Where a background recorder (``record --detach``) writes its own stdout and stderr."""
    return recorder_logs_dir(root) / f"{session_id}.log"


# 32 random bits: 512 recorders starting in one second (one per GPU on a big Slurm job)
# collide with odds of about 3e-5, and the writer retries with a new id on EEXIST anyway.
ID_RANDOM_HEX = 8
MAX_ID_LEN = 128
_ID_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def new_session_id(now: float | None = None) -> str:
    """Sortable by start time; unique across recorders starting together."""
    t = time.localtime(now if now is not None else time.time())
    return time.strftime("%Y%m%d-%H%M%S", t) + "-" + secrets.token_hex(ID_RANDOM_HEX // 2)


def check_session_id(value: str) -> str:
    """``value`` if it can name a session folder (letters, digits, ``.``, ``_``, ``-``; not
    starting with ``.`` or ``-``; at most 128 characters), else ValueError with one line."""
    if not isinstance(value, str) or not value:
        raise ValueError("a session id cannot be empty")
    if len(value) > MAX_ID_LEN:
        raise ValueError(f"a session id has at most {MAX_ID_LEN} characters")
    if not _ID_OK.fullmatch(value):
        raise ValueError(
            f"invalid session id {value[:40]!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return value


# -- privacy: sessions hold what a run printed (tokens, keys) -------------------------
# A store is private (directories 0700, files 0600) unless the user made it a group's:
# a directory with the set-group-ID bit and group rwx (``chmod 2770``): the store, whose
# ``sessions`` then is made so too, or ``sessions`` itself. Directories made inside one
# are 2770 and files 0660, whatever the umask.
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
GROUP_DIR, GROUP_FILE = 0o2770, 0o660


def is_group_dir(path: str | os.PathLike) -> bool:
    """A directory made for a group: set-group-ID and group rwx."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(mode & stat.S_ISGID) and mode & 0o070 == 0o070


def file_mode(directory: str | os.PathLike) -> int:
    """The mode of a new file in ``directory`` (a session directory or the store)."""
    return GROUP_FILE if is_group_dir(directory) else PRIVATE_FILE


def make_private_dir(path: Path, exist_ok: bool = True) -> Path:
    """``mkdir`` of ``path`` (and its missing parents) as 0700, or 2770 inside a group's
    store; an existing parent keeps its mode."""
    path = Path(path)
    if not path.parent.exists():
        make_private_dir(path.parent)
    mode = GROUP_DIR if is_group_dir(path.parent) else PRIVATE_DIR
    try:
        path.mkdir(mode=mode)
    except FileExistsError:
        if not exist_ok:
            raise
        return path
    os.chmod(path, mode)  # the umask may have taken bits away
    return path


def create_file(path: Path, append: bool = False):
    """A new (or, with ``append``, existing) file of ``path`` with the store's file mode,
    never through a symlink. Returns a binary file object."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_APPEND if append else os.O_TRUNC
    mode = file_mode(Path(path).parent)
    fd = os.open(path, flags, mode)
    try:
        st = os.fstat(fd)
        if stat.S_IMODE(st.st_mode) != mode and st.st_uid == os.getuid():
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "ab" if append else "wb")


def write_atomic(
    path: Path,
    data: bytes | Callable[[Path], None],
    *,
    durable: bool = True,
    tmp: Path | None = None,
) -> None:
    """Replace ``path`` so a reader sees the old file or the new one, never half of one:
    write a temporary file beside it (the store's mode, never through a symlink), fsync it
    when ``durable``, rename it over ``path``. ``data`` is the bytes, or a function that
    writes the file at the path it is given (Polars' writers). On any error, a full disk
    included, the temporary file is removed (its space back) and the error raised."""
    path = Path(path)
    tmp = tmp or path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if callable(data):
            create_file(tmp).close()  # the store's mode (0600, 0660 for a group) from the start
            data(tmp)
            os.chmod(tmp, file_mode(path.parent))
            if durable:
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
        else:
            with create_file(tmp) as f:
                f.write(data)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json_atomic(path: Path, data: dict, *, durable: bool = True) -> None:
    """Write JSON so a reader sees the old file or the new one, never half of one.

    ``durable=False``: no fsync, and compact JSON (the C encoder; ``indent`` takes the
    pure-Python one), for a file rewritten every second that only hints viewers
    (live.json): the rename is still atomic for readers and a killed process loses
    nothing (the page cache outlives it); only a machine crash may take the last one."""
    import json

    if durable:
        text = json.dumps(data, indent=1, default=_json_default).encode("utf-8")
    else:
        text = json.dumps(data, separators=(",", ":"), default=_json_default).encode("utf-8")
    write_atomic(path, text, durable=durable)


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
