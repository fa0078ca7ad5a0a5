"""Where the store lives and how session ids look."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from .schema import SESSIONS_DIR


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


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON so a reader sees the old file or the new one, never half of one."""
    import json

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, default=_json_default)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # a full disk: leave no half-written temp file behind (it also frees the space)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
