"""Finding a group's sessions in a store, from ``group:<ID>`` or the bare id."""

from __future__ import annotations

from pathlib import Path

from wattui.model.group import GroupRef
from wattui.store.group_scan import scan_group

__all__ = ["group_sessions"]


def group_sessions(root, group: str | GroupRef) -> list:
    """The readable sessions of ``root`` whose meta.json names the group (oldest first);
    ``group`` is a :class:`GroupRef`, ``group:<ID>`` or the bare id."""
    return scan_group(Path(root), GroupRef.of(group).id)
