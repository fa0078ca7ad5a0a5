"""Rename, tag and delete sessions. Never imports Textual.

Renaming and tagging re-read ``meta.json`` and replace it atomically, so a reader sees
the old file or the new one. A session that is still recording is refused: its recorder
rewrites ``meta.json`` and would undo the change.

Deleting first renames the directory to a hidden name inside the store (one atomic step:
listings stop showing it at once), then removes it. Only a real directory directly inside
``<store>/sessions`` whose ``meta.json`` names the same id is removed; a symlink is never
followed.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from wattui.model.group import GroupRef, is_group_ref
from wattui.sanitize import control_chars
from wattui.store import schema
from wattui.store.group_scan import scan_group
from wattui.store.paths import sessions_dir, write_json_atomic
from wattui.store.reader import Session, find_session
from wattui.store.safeio import is_real_dir, read_json

__all__ = ["ManageError", "rename", "tag", "delete", "resolve", "check_name", "check_tag"]

MAX_NAME = 200
MAX_TAG = 64


class ManageError(Exception):
    """One line for the user."""


def check_name(name: str) -> str:
    n = (name or "").strip()
    if not n:
        raise ManageError("a name cannot be empty")
    if len(n) > MAX_NAME:
        raise ManageError(f"a name is at most {MAX_NAME} characters")
    bad = control_chars(n)
    if bad:
        raise ManageError(
            f"a name cannot contain control, escape or bidi characters ({', '.join(bad[:3])})"
        )
    return n


def check_tag(t: str) -> str:
    t = (t or "").strip()
    if not t:
        raise ManageError("a tag cannot be empty")
    if len(t) > MAX_TAG:
        raise ManageError(f"a tag is at most {MAX_TAG} characters")
    if t.startswith("-") or control_chars(t) or any(c.isspace() or c in ",;" for c in t):
        raise ManageError(f"bad tag {t!r}: no spaces, commas or semicolons, no leading '-'")
    return t


def resolve(root: Path, ref: str) -> Session:
    if not ref:
        raise ManageError("give a session id (or a unique prefix, or its name)")
    try:
        return find_session(Path(root), ref)
    except LookupError as e:
        raise ManageError(str(e)) from None


def expand_refs(root: Path, refs: list[str]) -> list[str]:
    """Session refs with each ``group:<ID>`` replaced by the ids of the group's sessions
    (a multi-node run is one row on screen; managing it manages all of its parts)."""
    out: list[str] = []
    for ref in refs:
        if not is_group_ref(ref):
            out.append(ref)
            continue
        gid = GroupRef.parse(ref).id
        parts = [s.id for s in scan_group(Path(root), gid)]
        if not parts:
            raise ManageError(f"no sessions in group {gid!r}")
        out += [p for p in parts if p not in out]
    return out


def _update_meta(session: Session, change) -> dict:
    if session.status == "running":
        raise ManageError(f"session {session.id} is still recording; change it after the run ends")
    path = session.dir / schema.META
    # Never write through a symlink: a linked session folder or meta.json would send the
    # change outside the store.
    if not is_real_dir(session.dir) or os.path.islink(path):
        raise ManageError(f"{session.dir} is a symbolic link, not a session of the store; nothing written")
    try:
        meta = read_json(path)
    except (OSError, ValueError) as e:
        raise ManageError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if not isinstance(meta, dict) or meta.get("id") != session.id:
        raise ManageError(f"{path} changed under us; nothing written")
    change(meta)
    try:
        write_json_atomic(path, meta)
    except OSError as e:
        raise ManageError(f"cannot write {path}: {e.strerror or e}") from None
    session.meta = meta
    return meta


def rename(root: Path, ref: str, name: str) -> dict:
    """Give a session a new name; returns the new meta."""
    n = check_name(name)
    s = resolve(root, ref)
    return _update_meta(s, lambda m: m.__setitem__("name", n))


def tag(root: Path, ref: str, tags: list[str], remove: bool = False) -> dict:
    """Add (or with ``remove`` take away) tags; order kept, no duplicates."""
    ts = list(dict.fromkeys(check_tag(t) for t in tags))
    if not ts:
        raise ManageError("give at least one tag")
    s = resolve(root, ref)

    def change(m: dict) -> None:
        cur = [str(t) for t in (m.get("tags") or [])]
        if remove:
            cur = [t for t in cur if t not in ts]
        else:
            cur += [t for t in ts if t not in cur]
        m["tags"] = cur

    return _update_meta(s, change)


def _session_dir(root: Path, ref: str) -> tuple[Path, str]:
    """The directory of ``ref``: a readable session (id, prefix or name), or the exact
    directory name of an unreadable one, so corrupt sessions can be removed too."""
    base = sessions_dir(root)
    exact = base / ref
    if ref and "/" not in ref and ref not in (".", "..") and os.path.lexists(exact):
        try:
            sid = Session.open(exact).id
        except Exception:  # noqa: BLE001 - corrupt: remove by its directory name
            sid = None
        return exact, sid or ref
    s = resolve(root, ref)
    return s.dir, s.id


def delete(root: Path, ref: str, allow_running: bool = False) -> str:
    """Remove one session directory; returns its id."""
    base = sessions_dir(root).resolve()
    d, sid = _session_dir(root, ref)
    if d.is_symlink() or not d.is_dir():
        raise ManageError(f"{d} is not a session directory; not removed")
    if d.parent.resolve() != base:
        raise ManageError(f"{d} is not inside the store {base}; not removed")
    if d.name.startswith("."):
        raise ManageError(f"{d.name} is not a session; not removed")
    try:
        s = Session.open(d)
    except Exception:  # noqa: BLE001
        s = None
    if s is not None:
        if s.id != sid and d.name != sid:
            raise ManageError(f"{d} holds session {s.id}, not {sid}; not removed")
        if s.status == "running" and not allow_running:
            raise ManageError(f"session {s.id} is still recording; stop it first")
    trash = base / f".deleting-{d.name}-{os.getpid()}"
    try:
        os.rename(d, trash)
    except OSError as e:
        raise ManageError(f"cannot remove {d}: {e.strerror or e}") from None
    errors: list[str] = []
    if sys.version_info >= (3, 12):
        shutil.rmtree(trash, onexc=lambda fn, p, exc: errors.append(f"{p}: {exc}"))
    else:
        shutil.rmtree(trash, onerror=lambda fn, p, exc: errors.append(f"{p}: {exc[1]}"))
    if errors:
        raise ManageError(f"session {sid} hidden but not fully removed ({errors[0]}); see {trash}")
    return sid
