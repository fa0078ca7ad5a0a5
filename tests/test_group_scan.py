"""The one scan for a group's sessions (wattui.store.group_scan), and its users: the
comparison table and `wattui view` (group_sessions), `wattui tag/rename/rm group:ID`
(expand_refs) and the live group view (which scans again for nodes that joined)."""

from __future__ import annotations

import json
import os

import pytest
from compare_fixtures import GROUP_ID, GROUP_PARTS, make_demo_store, make_group, make_session

from wattui.groups.refs import group_sessions
from wattui.store.group_scan import scan_group
from wattui.store.manage import ManageError, expand_refs
from wattui.store.paths import sessions_dir

PART_IDS = [sid for sid, _ in GROUP_PARTS]


@pytest.fixture
def store(tmp_path):
    root = make_demo_store(tmp_path / "store")  # other sessions and a corrupt one around it
    make_group(root)
    return root


def test_every_reader_finds_the_same_sessions_oldest_first(store):
    assert [s.id for s in scan_group(store, GROUP_ID)] == PART_IDS
    assert [s.id for s in group_sessions(store, f"group:{GROUP_ID}")] == PART_IDS
    assert [s.id for s in group_sessions(store, GROUP_ID)] == PART_IDS
    refs = ["20261101-080000-a001", PART_IDS[1], f"group:{GROUP_ID}"]
    assert expand_refs(store, refs) == [refs[0], PART_IDS[1], PART_IDS[0], PART_IDS[2]]


def test_unknown_group_and_missing_store_find_nothing(store, tmp_path):
    assert scan_group(store, "nope") == []
    assert scan_group(store, "") == []  # ungrouped sessions are no group
    assert scan_group(tmp_path / "no-store", GROUP_ID) == []
    with pytest.raises(ManageError, match="no sessions in group 'nope'"):
        expand_refs(store, ["group:nope"])


def test_a_symlinked_session_is_not_a_node(store, tmp_path):
    elsewhere = make_session(tmp_path / "other", "20261109-100000-n009", group=GROUP_ID)
    os.symlink(elsewhere, sessions_dir(store) / elsewhere.name)
    assert [s.id for s in scan_group(store, GROUP_ID)] == PART_IDS


def test_seen_finds_only_nodes_that_joined_and_retries_a_half_written_one(store, tmp_path):
    seen: set[str] = set()
    assert [s.id for s in scan_group(store, GROUP_ID, seen)] == PART_IDS
    assert set(PART_IDS) <= seen
    assert scan_group(store, GROUP_ID, seen) == []  # nothing new: nothing read again

    late = make_session(tmp_path / "late", "20261109-090003-n004", group=GROUP_ID)
    meta = (late / "meta.json").read_text()
    d = sessions_dir(store) / late.name
    d.mkdir()
    (d / "meta.json").write_text(meta[: len(meta) // 2])  # the recorder is writing it
    assert scan_group(store, GROUP_ID, seen) == []
    assert late.name not in seen
    (d / "meta.json").write_text(meta)
    assert [s.id for s in scan_group(store, GROUP_ID, seen)] == [late.name]
    assert json.loads(meta)["group"] == GROUP_ID


def test_the_live_group_view_follows_a_node_that_joins_late(tmp_path, monkeypatch):
    from wattui.view import group_snapshot

    monkeypatch.setattr(group_snapshot, "GROUP_RESCAN_S", 0.0)  # look at every poll
    root = tmp_path / "store"
    make_session(root, PART_IDS[0], host="node-a", group=GROUP_ID, status="running")
    make_session(root, "20261109-085959-x000", host="node-z", status="running")  # no group
    b = group_snapshot.GroupSnapshotBuilder(root, f"group:{GROUP_ID}")
    first = b.poll()
    assert first.session_id == f"group:{GROUP_ID}" and first.status == "running"
    assert first.node_count == 1
    make_session(root, PART_IDS[1], host="node-b", group=GROUP_ID, status="running")
    snap = b.poll()
    assert snap.node_count == 2
    assert sorted(snap.record["session_ids"]) == PART_IDS[:2]
    with pytest.raises(LookupError):
        group_snapshot.GroupSnapshotBuilder(root, "group:nope")
