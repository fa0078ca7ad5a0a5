"""analysis.timeline: what the details screen reads of a row, without Textual: a session's
timeline, a group's merged from its nodes', and a one-line reason when there is nothing."""

from __future__ import annotations

import shutil

import pytest
from compare_fixtures import GROUP_ID, GROUP_PARTS, make_group, make_session

from wattui.analysis import table as cmp
from wattui.analysis.timeline import OpenedTimeline, Timeline, open_timeline
from wattui.store.paths import sessions_dir
from wattui.store.reader import Session

GID = f"group:{GROUP_ID}"


def test_a_session_opens_with_its_record_meta_and_timeline(tmp_path):
    make_session(tmp_path, "20261101-080000-a001", name="resnet", n_gpus=2, accs=(0.5, 0.7))
    got = open_timeline(tmp_path, "20261101-080000-a001")
    assert isinstance(got, OpenedTimeline) and got.error is None
    assert got.record["name"] == "resnet" and got.meta["id"] == "20261101-080000-a001"
    tl = got.timeline
    assert tl.gpus == ["gpu0", "gpu1"] and tl.t1 > tl.t0
    assert tl.acc["accuracy"].to_list()[-1] == pytest.approx(0.7)
    assert tl.metric_events.height >= 2  # the reports, kept for the screen's summary


def test_a_missing_session_or_group_is_one_line_not_an_exception(tmp_path):
    make_session(tmp_path, "20261101-080000-a001")
    gone = open_timeline(tmp_path, "20261101-080000-zzzz")
    assert gone.timeline is None and gone.error.startswith("cannot open session 20261101-080000-zzzz")
    assert open_timeline(tmp_path, "group:nope").error == "no sessions of group:nope in the store"


def test_a_group_with_a_node_deleted_since_the_listing_shows_the_others(tmp_path):
    make_group(tmp_path)
    rec = cmp.load_group_record(tmp_path, GID)
    notes_before = list(rec.get("notes") or [])
    shutil.rmtree(sessions_dir(tmp_path) / GROUP_PARTS[2][0])  # node-c
    got = open_timeline(tmp_path, GID, rec)
    assert got.error is None and got.meta == {}
    assert got.timeline.gpus == ["node-a:gpu0", "node-a:gpu1", "node-b:gpu0", "node-b:gpu1"]
    assert any(n.startswith("node-c: cannot open session") for n in got.record["notes"])
    assert list(rec.get("notes") or []) == notes_before  # the caller's record is not changed
    # the merged energy is the two remaining nodes' sum
    parts = [Timeline(Session.open(sessions_dir(tmp_path) / s)) for s, _ in GROUP_PARTS[:2]]
    want = sum(p.energy_j["v"].max() for p in parts)
    assert got.timeline.energy_j["v"].max() == pytest.approx(want, rel=1e-9)
    # accuracy from the node that reported it (rank 0)
    assert got.timeline.acc.height == parts[0].acc.height > 0


def test_a_group_whose_every_node_is_gone(tmp_path):
    make_group(tmp_path)
    rec = cmp.load_group_record(tmp_path, GID)
    for sid, _ in GROUP_PARTS:
        shutil.rmtree(sessions_dir(tmp_path) / sid)
    got = open_timeline(tmp_path, GID, rec)
    assert got.timeline is None and got.error == f"cannot open any session of {GID}"
