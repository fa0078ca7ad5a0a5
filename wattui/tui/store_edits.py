"""The comparison screen's store edits (rename, tag, delete) as jobs that its loading thread
runs before it reads the store again, so the disk is never touched on the event loop.

A job returns what to tell the user, ``(text, severity)``, and the row ids to unselect.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from wattui.store import manage
from wattui.store.manage import ManageError

Notice = tuple[str, str]
StoreChange = Callable[[], tuple[Notice | None, frozenset[str]]]


def rename_job(store_root: Path, sid: str, parts: list[str], name: str) -> StoreChange:
    """Rename row ``sid``: every session behind it (``parts``)."""

    def run() -> tuple[Notice | None, frozenset[str]]:
        try:
            for p in parts:
                manage.rename(store_root, p, name)
        except ManageError as e:
            return (str(e), "error"), frozenset()
        every = f" (all {len(parts)} sessions of the group)" if len(parts) > 1 else ""
        return (f"renamed {sid} to {name.strip()!r}{every}", "information"), frozenset()

    return run


def tag_job(store_root: Path, ids: list[str], text: str) -> StoreChange:
    """Words add tags, ``-word`` removes one, on every session of ``ids``."""
    words = text.replace(",", " ").split()
    add = [w for w in words if not w.startswith("-")]
    remove = [w[1:] for w in words if w.startswith("-") and len(w) > 1]

    def run() -> tuple[Notice | None, frozenset[str]]:
        try:
            for sid in ids:
                if add:
                    manage.tag(store_root, sid, add)
                if remove:
                    manage.tag(store_root, sid, remove, remove=True)
        except ManageError as e:
            return (str(e), "error"), frozenset()
        return (f"tags changed on {len(ids)} session(s)", "information"), frozenset()

    return run


def delete_job(store_root: Path, ids: list[str], rows: list[str]) -> StoreChange:
    """Delete the sessions ``ids`` (behind table rows ``rows``); each error is kept and the
    first one told, the others deleted all the same."""

    def run() -> tuple[Notice | None, frozenset[str]]:
        errors = []
        for sid in ids:
            try:
                manage.delete(store_root, sid)
            except ManageError as e:
                errors.append(str(e))
        if errors:
            return (errors[0], "error"), frozenset(ids) | frozenset(rows)
        return (f"deleted {len(ids)} session(s)", "information"), frozenset(ids) | frozenset(rows)

    return run
