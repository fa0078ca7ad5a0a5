"""The session store: whatever happens, earlier sessions stay readable."""

import json
import os

import polars as pl
import pytest
from conftest import run_wattui

from wattui.sources.base import DeviceReading, Sample
from wattui.sources.simulated import SimulatedSource
from wattui.store import schema
from wattui.store.reader import Session, SessionTail, find_session, list_sessions
from wattui.store.summary import SessionStats, stats_from_samples
from wattui.store.writer import SessionWriter, compact


def _samples(n, clock_start=1_700_000_000.0, gpus=1, step=0.5):
    t = [clock_start]
    src = SimulatedSource(gpus, clock=lambda: t[0])
    out = []
    for i in range(n):
        t[0] = clock_start + i * step
        out.append(Sample(i, 100.0 + i * step, t[0], tuple(src.read(0.0))))
    return out


def _write_session(root, sid, n=20, finish=True):
    w = SessionWriter(root, sid, {"command": ["x"], "devices": [d.to_dict() for d in SimulatedSource(1).devices()]})
    stats = SessionStats()
    for s in _samples(n):
        w.add_sample(s)
        stats.add(s)
    w.add_event({"kind": "metric", "accuracy": 0.5, "epoch": 1})
    if finish:
        w.finish(status="finished", exit_code=0, ended_at=1_700_000_000.0 + (n - 1) * 0.5, summary=stats.to_dict())
    else:
        w.flush()
    return w


def test_live_session_is_readable_and_compacts_to_the_same_rows(tmp_path):
    w = _write_session(tmp_path, "s1", n=30, finish=False)
    s = Session.open(w.dir)
    live = s.samples()
    assert live.height == 30
    assert (w.dir / schema.SAMPLES_LIVE).exists()
    compact(w.dir)
    assert not (w.dir / schema.SAMPLES_LIVE).exists()
    final = Session.open(w.dir).samples()
    assert final.equals(live)
    assert Session.open(w.dir).events()["accuracy"].to_list() == [0.5]
    compact(w.dir)  # idempotent


def test_torn_last_lines_are_ignored(tmp_path):
    w = _write_session(tmp_path, "s1", n=10, finish=False)
    with open(w.dir / schema.SAMPLES_LIVE, "a") as f:
        f.write("1700000009.5,109.5,10,gpu0,12")  # torn mid-row, no newline
    with open(w.dir / schema.EVENTS_LIVE, "a") as f:
        f.write('{"kind": "metric", "accur')
    s = Session.open(w.dir)
    assert s.samples().height == 10
    assert s.events().height == 1


def test_corrupt_and_foreign_files_are_reported_and_skipped(tmp_path, store):
    _write_session(store, "20250101-000000-good")
    base = store / "sessions"
    (base / "stray.txt").write_text("not a session")
    bad = base / "20250101-000001-bad"
    bad.mkdir()
    (bad / "meta.json").write_text('{"id": "20250101-000001-b')  # truncated
    foreign = base / "foreign"
    foreign.mkdir()
    (foreign / "meta.json").write_text("[1, 2, 3]")
    empty = base / "20250101-000002-empty"
    empty.mkdir()
    sessions, problems = list_sessions(store)
    assert [s.id for s in sessions] == ["20250101-000000-good"]
    assert len(problems) == 4
    r = run_wattui(store, "sessions", "--format", "json")
    assert r.returncode == 0
    assert [x["id"] for x in json.loads(r.stdout)] == ["20250101-000000-good"]
    assert "not valid JSON" in r.stderr
    assert "Traceback" not in r.stderr


def test_corrupt_parquet_falls_back_or_reports(tmp_path):
    w = _write_session(tmp_path, "s1", n=10)
    (w.dir / schema.SAMPLES_FINAL).write_bytes(b"PAR1 garbage")
    s = Session.open(w.dir)
    from wattui.store.reader import CorruptSession

    with pytest.raises(CorruptSession):
        s.samples()
    # The listing and the session's record still work: totals live in meta.json.
    from wattui.sessions import session_record

    rec = session_record(s, metrics=False)
    assert rec["energy_j"] > 0


def test_full_disk_keeps_rows_and_recovers(tmp_path, capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full is needed to simulate a full disk")
    w = _write_session(tmp_path, "s1", n=5, finish=False)
    live = w.dir / schema.SAMPLES_LIVE
    saved = live.read_bytes()
    live.unlink()
    live.symlink_to("/dev/full")
    for s in _samples(5, clock_start=1_800_000_000.0):
        w.add_sample(s)
    w.flush()  # must not raise
    assert w.write_errors >= 1
    assert "cannot write session" in capsys.readouterr().err
    live.unlink()
    live.write_bytes(saved)
    w.flush()
    assert Session.open(w.dir).samples().height == 10


def test_tail_follows_growth_and_compaction(tmp_path):
    w = SessionWriter(tmp_path, "s1", {"command": ["x"]})
    tail = SessionTail(Session.open(w.dir))
    samples = _samples(10)
    for s in samples[:4]:
        w.add_sample(s)
    w.flush()
    df, ev = tail.poll()
    assert df["seq"].to_list() == [0, 1, 2, 3]
    for s in samples[4:]:
        w.add_sample(s)
    w.add_event({"kind": "metric", "accuracy": 0.7})
    w.flush()
    df, ev = tail.poll()
    assert df["seq"].to_list() == [4, 5, 6, 7, 8, 9]
    assert [e["accuracy"] for e in ev] == [0.7]
    w.finish(status="finished")
    df, ev = tail.poll()
    assert df.height == 0  # nothing new after compaction
    assert ev == []


def test_stats_from_samples_match_the_incremental_stats(tmp_path):
    samples = _samples(40, gpus=2)
    stats = SessionStats()
    for s in samples:
        stats.add(s)
    w = SessionWriter(tmp_path, "s1", {})
    for s in samples:
        w.add_sample(s)
    w.flush()
    df = Session.open(w.dir).samples()
    again = stats_from_samples(df)
    for key, st in stats.to_dict().items():
        for k in ("energy_j", "mean_w", "peak_w"):
            assert again[key][k] == pytest.approx(st[k], rel=1e-9)


def test_all_sessions_load_with_one_polars_scan(tmp_path):
    for i in range(3):
        _write_session(tmp_path, f"2025010{i}-000000-aaaa")
    df = pl.scan_parquet(str(tmp_path / "sessions" / "*" / "samples.parquet"), include_file_paths="path").collect()
    assert df.height == 60
    assert df["path"].n_unique() == 3


def test_find_session_by_prefix_and_name(tmp_path):
    _write_session(tmp_path, "20250101-000000-aaaa")
    _write_session(tmp_path, "20250102-000000-bbbb")
    assert find_session(tmp_path, None).id == "20250102-000000-bbbb"
    assert find_session(tmp_path, "20250101").id == "20250101-000000-aaaa"
    with pytest.raises(LookupError, match="matches 2"):
        find_session(tmp_path, "2025010")


def test_a_newer_schema_is_refused_clearly(tmp_path):
    w = _write_session(tmp_path, "s1")
    meta = json.loads((w.dir / "meta.json").read_text())
    meta["schema_version"] = 99
    (w.dir / "meta.json").write_text(json.dumps(meta))
    _, problems = list_sessions(tmp_path)
    assert "newer than this wattui" in problems[0]


def test_nan_readings_are_stored_as_missing(tmp_path):
    w = SessionWriter(tmp_path, "s1", {})
    r = DeviceReading("gpu0", float("nan"), float("inf"), "counter", "instant")
    w.add_sample(Sample(0, 1.0, 1_700_000_000.0, (r,)))
    w.flush()
    df = Session.open(w.dir).samples()
    assert df["energy_j"].to_list() == [None]
    assert df["power_w"].to_list() == [None]


def test_sessions_written_before_a_column_was_added_still_read(tmp_path):
    w = _write_session(tmp_path, "s1", n=5, finish=False)
    live = w.dir / schema.SAMPLES_LIVE
    old_cols = list(schema.SAMPLE_COLUMNS[:11])  # the first version's columns
    lines = live.read_text().splitlines()
    live.write_text("\n".join([",".join(old_cols)] + [",".join(x.split(",")[:11]) for x in lines[1:]]) + "\n")
    df = Session.open(w.dir).samples()
    assert df.columns == [schema.SESSION_ID, *schema.SAMPLE_COLUMNS]
    assert df.height == 5 and df["pids"].null_count() == 5
    assert df[schema.SESSION_ID].to_list() == ["s1"] * 5
    compact(w.dir)
    assert Session.open(w.dir).samples().columns == [schema.SESSION_ID, *schema.SAMPLE_COLUMNS]


def test_processes_on_each_device_are_stored(tmp_path):
    w = SessionWriter(tmp_path, "s1", {})
    r = DeviceReading("gpu0", 1.0, 100.0, "counter", "instant", mem_total_b=8e10, pids=(11, 12))
    w.add_sample(Sample(0, 1.0, 1_700_000_000.0, (r,)))
    w.flush()
    df = Session.open(w.dir).samples()
    assert df["pids"].to_list() == ["11;12"]
    assert df["mem_total_b"].to_list() == [8e10]


def test_compacted_events_keep_which_value_the_accuracy_is(tmp_path):
    w = SessionWriter(tmp_path, "s1", {})
    w.add_event({"kind": "metric", "accuracy": 0.9, "accuracy_key": "val_accuracy"})
    w.finish(status="finished")
    ev = Session.open(w.dir).events()
    assert ev["accuracy_key"].to_list() == ["val_accuracy"]
