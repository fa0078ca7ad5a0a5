"""The typed session record (wattui.model.session) against real recorded sessions: every
key a real record has is a typed field, and from_dict/to_dict give back the same JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from wattui.analysis.records import load_record
from wattui.analysis.table import load_table, row_of
from wattui.groups.merge import merge_group
from wattui.model.kinds import GROUP_STATUS_ORDER, group_status, join_methods
from wattui.model.session import DeviceRecord, RecordError, SessionRecord
from wattui.sessions import list_records, session_record
from wattui.store.reader import Session

ROOT = Path(__file__).resolve().parent.parent
STORES = {
    "sample_runs": ROOT / "sample_runs" / "store",  # recorded by this release (schema 2)
    "store_v1": ROOT / "tests" / "fixtures" / "store_v1",  # recorded by the first release
}


@pytest.fixture(params=sorted(STORES))
def store(request, tmp_path) -> Path:
    """A copy of a real store (readers may write the record cache into it)."""
    dst = tmp_path / request.param
    shutil.copytree(STORES[request.param], dst)
    return dst


def _sessions(store: Path) -> list[Session]:
    out = [Session.open(d) for d in sorted((store / "sessions").iterdir())]
    assert out, f"no sessions in {store}"
    return out


def _same(rec: dict) -> SessionRecord:
    """``rec`` typed; its dictionary and JSON text come back unchanged."""
    typed = SessionRecord.from_dict(rec)
    assert typed.to_dict() == rec
    assert json.dumps(typed.to_dict()) == json.dumps(rec)  # same keys in the same order
    return typed


def test_real_records_round_trip_with_every_key_typed(store):
    for s in _sessions(store):
        for rec in (session_record(s, metrics=False), session_record(s), load_record(s)):
            typed = _same(rec)
            assert typed.extra == {}, f"keys with no typed field: {sorted(typed.extra)}"
            assert all(d.extra == {} for d in typed.devices)
            # the attributes are the dictionary's values, not a copy of something else
            assert typed.id == rec["id"] == s.id
            assert typed.status == rec["status"]
            assert typed.energy_j == rec["energy_j"]
            assert [d.key for d in typed.gpus] == [d["key"] for d in rec["gpus"]]
            assert [d.energy_j for d in typed.cpu] == [d["energy_j"] for d in rec["cpu"]]
            assert typed.has("accuracy") == ("accuracy" in rec)


def test_real_records_carry_the_figures_the_table_shows(store):
    recs, problems = list_records(store, cache=False)
    assert recs and not [p for p in problems if "skipped" in p]
    measured = [SessionRecord.from_dict(r) for r in recs if r["energy_j"] is not None]
    assert measured, "the real stores hold measured sessions"
    for rec in measured:
        assert rec.energy_j > 0
        assert rec.devices and all(isinstance(d, DeviceRecord) for d in rec.devices)
        assert row_of(rec) == row_of(rec.to_dict())  # typed or dictionary: one row


def test_group_record_round_trips(store):
    parts = [dict(load_record(s), group="job-7") for s in _sessions(store)]
    merged = merge_group("job-7", parts)
    typed = _same(merged)
    assert typed.extra == {}
    assert typed.is_group and typed.node_count == len(parts)
    assert [d.session for d in typed.gpus] == [d["session"] for d in merged["gpus"]]
    assert row_of(typed)["kind"] == "group"


def test_record_cache_holds_typed_records(store):
    first, _ = list_records(store)
    again, _ = list_records(store)  # from the cache this time
    cache = store / ".cache"
    assert any(cache.iterdir()), "the record cache was written"
    assert again == first
    assert [SessionRecord.from_dict(r) for r in again] == [SessionRecord.from_dict(r) for r in first]


def test_record_cache_stores_and_gives_back_a_session_record(store, tmp_path):
    from wattui.store.record_cache import RecordCache, session_stamp

    s = _sessions(store)[0]
    typed = SessionRecord.from_dict(load_record(s))
    stamp = session_stamp(s.dir)
    cache = RecordCache(store, "typed-test")
    cache.put(s.dir.name, stamp, typed)
    cache.save()
    again = RecordCache(store, "typed-test").get_record(s.dir.name, stamp)
    assert again == typed and again.to_dict() == typed.to_dict()
    assert RecordCache(store, "typed-test").get_record(s.dir.name, "another stamp") is None
    bad = RecordCache(store, "typed-test")
    bad.put(s.dir.name, stamp, {"id": s.id})  # a dict without a status: not a record
    bad.save()
    assert RecordCache(store, "typed-test").get_record(s.dir.name, stamp) is None


def test_record_cache_entry_of_the_wrong_type_is_read_again(store):
    first, _ = list_records(store)
    path = next((store / ".cache").iterdir())
    text = path.read_text()
    sid = first[0]["id"]
    bad = json.dumps(dict(first[0], energy_j="lots"))
    lines = [ln for ln in text.split("\n") if not ln.startswith(sid + "\t")]
    # a line with a valid digest but a record of the wrong shape: read from the files again
    from wattui.store import record_cache

    stamp = record_cache.session_stamp(store / "sessions" / sid)
    lines.append(f"{sid}\t{stamp}\t{record_cache._digest(stamp, bad)}\t{bad}")
    path.write_text("\n".join(lines))
    again, _ = list_records(store)
    assert again == first


def test_unknown_keys_are_kept_in_place():
    rec = {"id": "s1", "from_a_newer_wattui": [1, 2], "status": "finished", "energy_j": 7200.0}
    typed = SessionRecord.from_dict(rec)
    assert typed.extra == {"from_a_newer_wattui": [1, 2]}
    assert list(typed.to_dict()) == list(rec) and typed.to_dict() == rec
    assert not typed.has("from_a_newer_wattui") and typed.has("energy_j")
    assert not typed.has("accuracy") and typed.accuracy is None


@pytest.mark.parametrize(
    "key, value, error",
    [
        ("energy_j", "7200", "SessionRecord.energy_j"),
        ("energy_j", True, "SessionRecord.energy_j"),  # a bool is not a number
        ("simulated", 1, "SessionRecord.simulated"),
        ("tags", ["a", 3], "SessionRecord.tags"),
        ("gpus", [{"name": "no key"}], "DeviceRecord without 'key'"),
        ("metric_rejections", {"nan": "2"}, "SessionRecord.metric_rejections"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_or_kept_aside(key, value, error):
    rec = {"id": "s1", "status": "finished", key: value}
    with pytest.raises(RecordError, match=error):
        SessionRecord.from_dict(rec)
    lenient = SessionRecord.from_dict(rec, strict=False)
    assert lenient.to_dict() == rec  # nothing lost
    assert lenient.extra == {key: value}
    assert getattr(lenient, key) == getattr(SessionRecord("x", "x"), key)  # reads as missing


def test_a_device_value_of_the_wrong_type_is_kept_aside_in_the_device():
    rec = {"id": "s1", "status": "finished", "gpus": [{"key": "gpu0", "peak_w": "300 W"}]}
    with pytest.raises(RecordError, match="DeviceRecord.peak_w"):
        SessionRecord.from_dict(rec)
    lenient = SessionRecord.from_dict(rec, strict=False)
    assert lenient.to_dict() == rec and lenient.extra == {}
    assert lenient.gpus[0].key == "gpu0" and lenient.gpus[0].peak_w is None
    assert lenient.gpus[0].extra == {"peak_w": "300 W"}


@pytest.mark.parametrize("missing", ["id", "status"])
def test_required_keys(missing):
    rec = {"id": "s1", "status": "finished"}
    del rec[missing]
    with pytest.raises(RecordError, match=missing):
        SessionRecord.from_dict(rec, strict=False)
    with pytest.raises(RecordError):
        SessionRecord.from_dict(["id", "status"])


def test_built_in_code_the_record_lists_every_field():
    typed = SessionRecord("s1", "running", gpus=(DeviceRecord("gpu0", energy_j=3.0),), tags=("a",))
    d = typed.to_dict()
    assert d["gpus"][0]["key"] == "gpu0" and d["gpus"][0]["energy_j"] == 3.0
    assert d["tags"] == ["a"] and d["accuracy"] is None
    assert SessionRecord.from_dict(d) == typed


def test_group_status_order():
    assert GROUP_STATUS_ORDER[0] == "running"
    assert group_status(["finished", "running", "failed"]) == "running"
    assert group_status(["finished", "failed", "interrupted"]) == "failed"
    assert group_status(["finished", "interrupted"]) == "interrupted"
    assert group_status(["finished", "finished"]) == "finished"
    assert group_status([]) == "interrupted"
    assert group_status(["weird"], default="weird") == "weird"


def test_join_methods():
    assert join_methods(["integrated", "counter", None, "counter", ""]) == "counter+integrated"
    assert join_methods([]) == ""


def test_load_table_reads_the_typed_records(store):
    t = load_table(store, cache=False)
    assert t.frame.height == len(_sessions(store))
    for rid, rec in t.records.items():
        row = row_of(SessionRecord.from_dict(rec))
        assert row == next(r for r in t.rows if r["id"] == rid)


def test_kinds_spell_what_the_sources_and_the_store_write():
    from wattui.model import kinds
    from wattui.sources import base
    from wattui.store import schema

    assert kinds.ENERGY_METHODS == base.ENERGY_METHODS
    assert kinds.POWER_METHODS == base.POWER_METHODS
    assert set(kinds.STATUSES) == set(schema.STATUSES) == set(kinds.ENDED) | {kinds.RUNNING}
    assert set(kinds.GROUP_STATUS_ORDER) == set(kinds.STATUSES) | {kinds.STARTING}
