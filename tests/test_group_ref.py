"""GroupRef: the one reader and writer of ``group:<ID>``."""

from __future__ import annotations

import dataclasses

import pytest

from wattui.model.group import GROUP_PREFIX, GroupRef, is_group_ref


@pytest.mark.parametrize(
    "text, gid",
    [
        ("group:ddp-42", "ddp-42"),
        ("group:1234.0", "1234.0"),
        ("group:run.restart2", "run.restart2"),
        ("group:group:x", "group:x"),  # the prefix comes off once
        ("group: spaced ", " spaced "),  # ids are taken as stored, never trimmed
    ],
)
def test_parse_round_trips(text, gid):
    ref = GroupRef.parse(text)
    assert ref.id == gid
    assert str(ref) == text
    assert GroupRef.parse(str(ref)) == ref
    assert is_group_ref(text)


@pytest.mark.parametrize(
    "bad, why",
    [
        ("group:", "names no group"),
        ("ddp-42", "is not a group reference"),
        ("", "is not a group reference"),
        ("Group:ddp", "is not a group reference"),
        (" group:ddp", "is not a group reference"),
        (None, "not None"),
        (42, "not 42"),
        (b"group:x", "not b'group:x'"),
    ],
)
def test_parse_refuses_bad_input_in_one_line(bad, why):
    with pytest.raises(ValueError) as e:
        GroupRef.parse(bad)
    msg = str(e.value)
    assert why in msg and "\n" not in msg
    assert not is_group_ref(bad)


def test_of_takes_a_ref_or_a_bare_id():
    assert GroupRef.of("group:a") == GroupRef("a") == GroupRef.of("a")
    assert GroupRef.of(GroupRef("a")) == GroupRef("a")
    assert GroupRef.of("group:group:a").id == "group:a"
    with pytest.raises(ValueError):
        GroupRef.of("")


@pytest.mark.parametrize("bad", ["", None, 3])
def test_empty_or_non_text_ids_are_refused(bad):
    with pytest.raises(ValueError):
        GroupRef(bad)


def test_frozen_and_hashable():
    ref = GroupRef("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.id = "b"
    assert {ref, GroupRef("a")} == {ref}
    assert str(ref).startswith(GROUP_PREFIX)
