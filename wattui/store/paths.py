"""Where the store lives and how session ids look."""

from __future__ import annotations

import os
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


def new_session_id(now: float | None = None) -> str:
    """Sortable by start time, unique enough for one user's store."""
    t = time.localtime(now if now is not None else time.time())
    return time.strftime("%Y%m%d-%H%M%S", t) + "-" + secrets.token_hex(2)


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON so a reader sees the old file or the new one, never half of one."""
    import json

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, default=_json_default)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
