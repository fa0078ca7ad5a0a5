"""A multi-node group's reference, ``group:<ID>``: the one place that knows the prefix.

A group is the sessions (one per node) whose ``meta.json`` names the same ``group``; the
listings, the comparison table and ``wattui view/tag/rename/rm`` show and take it as one
row whose id is ``group:<ID>``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GROUP_PREFIX", "GroupRef", "is_group_ref"]

GROUP_PREFIX = "group:"


def is_group_ref(ref: object) -> bool:
    """True for ``group:<ID>`` (a non-empty ID), the id of a merged group record."""
    return isinstance(ref, str) and ref.startswith(GROUP_PREFIX) and len(ref) > len(GROUP_PREFIX)


@dataclass(frozen=True)
class GroupRef:
    """One group, by its id (``--group ID``, as stored in each node's ``meta.json``)."""

    id: str

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"a group id is a non-empty string, not {self.id!r}")

    @classmethod
    def parse(cls, text: object) -> GroupRef:
        """The group ``text`` names: ``group:<ID>``. ValueError (one line) for anything else."""
        if not isinstance(text, str):
            raise ValueError(f"a group reference is text such as 'group:ID', not {text!r}")
        if not text.startswith(GROUP_PREFIX):
            raise ValueError(f"{text!r} is not a group reference (write {GROUP_PREFIX}ID)")
        if len(text) == len(GROUP_PREFIX):
            raise ValueError(f"{text!r} names no group (write {GROUP_PREFIX}ID)")
        return cls(text[len(GROUP_PREFIX) :])

    @classmethod
    def of(cls, ref: str | GroupRef) -> GroupRef:
        """A group from ``group:<ID>`` or from its bare id (as stored in meta.json); the
        prefix is taken off once, so a group whose id itself starts with it stays itself."""
        if isinstance(ref, GroupRef):
            return ref
        return cls.parse(ref) if is_group_ref(ref) else cls(ref)

    def __str__(self) -> str:
        return f"{GROUP_PREFIX}{self.id}"
