"""The sessions of one multi-node group in a store: the one scan for them.

Every reader of a group finds its nodes here: :func:`wattui.groups.refs.group_sessions`
(the comparison table, ``wattui view group:ID``), ``wattui tag/rename/rm group:ID``
(:func:`wattui.store.manage.expand_refs`) and the live group view, which calls again
with the same ``seen`` set to find only the nodes that joined since.
"""

from __future__ import annotations

from pathlib import Path

from wattui.store.reader import CorruptSession, Session, scan_store

__all__ = ["scan_group"]


def scan_group(root: Path, group_id: str, seen: set[str] | None = None) -> list[Session]:
    """The readable sessions of ``root`` whose ``meta.json`` names ``group_id`` (the bare
    id), oldest first. With ``seen``, directories named in it are skipped and each one whose
    ``meta.json`` could be read is added to it; one that cannot be read yet (half written)
    is looked at again at the next call. No id, no group: an empty one finds nothing."""
    gid = str(group_id)
    out: list[Session] = []
    if not gid:
        return out
    entries, _ = scan_store(Path(root))
    for e in entries:
        if seen is not None and e.name in seen:
            continue
        try:
            s = Session.open(Path(e.path))
        except CorruptSession:
            continue
        if seen is not None:
            seen.add(e.name)
        if str(s.meta.get("group") or "") == gid:
            out.append(s)
    return out
