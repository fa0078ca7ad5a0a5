"""The live view's snapshot builder reads meta.json again only when it changed (its
inode, size or time), and still sees every change: a rewrite (the run ended), damage, and
the recorder's death."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil  # noqa: E402
from compare_fixtures import make_session  # noqa: E402

from wattui.store.paths import write_json_atomic  # noqa: E402
from wattui.view.snapshot import SnapshotBuilder  # noqa: E402


def test_builder_sees_meta_rewritten_and_damaged(tmp_path):
    d = make_session(tmp_path, "run1", status="running")
    b = SnapshotBuilder(d)
    assert b.poll().status == "running"
    assert b.poll().status == "running"  # unchanged meta.json: the cached parse

    meta = json.loads((d / "meta.json").read_text())
    meta.update(status="finished", exit_code=3, ended_at=meta["started_at"] + 10)
    write_json_atomic(d / "meta.json", meta)  # as the recorder writes it: a new file
    s = b.poll()
    assert (s.status, s.exit_code) == ("finished", 3)

    # the same file rewritten in place, same size, broken (a moment later): a clear
    # error, not the cached parse
    path = d / "meta.json"
    raw, st = path.read_bytes(), path.stat()
    with open(path, "r+b") as f:
        f.write(b"#" + raw[1:])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    s = b.poll()
    assert s.error and "meta.json" in s.error


def test_builder_sees_the_recorder_die_while_meta_is_unchanged(tmp_path):
    d = make_session(tmp_path, "run2", status="running")
    recorder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        meta = json.loads((d / "meta.json").read_text())
        meta.update(recorder_pid=recorder.pid,
                    recorder_started=psutil.Process(recorder.pid).create_time())
        write_json_atomic(d / "meta.json", meta)
        b = SnapshotBuilder(d)
        assert b.poll().status == "running"
        assert b.poll().status == "running"
    finally:
        recorder.kill()
        recorder.wait()
    assert b.poll().status == "interrupted"  # killed -9: meta.json still says running


def test_live_event_rows_follow_appends_exactly_as_a_full_read(tmp_path):
    """The live screen's session record reads only the events appended since its last
    poll; its rows are always those of a full read (``Session.events()``), through torn
    lines, junk, values of the wrong type, a replaced or truncated file and compaction,
    and the record built from them is the full read's."""
    from wattui.sessions import session_record
    from wattui.store.reader import Session
    from wattui.view.event_rows import LiveEventRows

    d = make_session(tmp_path, "run3", status="running")
    ev = d / "events.ndjson"
    rows = LiveEventRows(d)

    def same() -> list[dict]:
        got = rows.poll()
        s = Session.open(d)
        assert got == s.events().to_dicts()
        assert session_record(s, event_rows=got) == session_record(Session.open(d))
        return got

    assert len(same()) > 0
    t = json.loads(ev.read_text().splitlines()[-1])["t_wall"]
    lines = [
        {"t_wall": t + 1, "kind": "metric", "source": "report", "accuracy": 0.9, "epoch": 4},
        {"t_wall": t + 2, "kind": "epoch_end", "epoch": 4, "energy_j": "12.5"},  # a string
        {"t_wall": t + 3, "kind": "metric", "accuracy": [1], "epoch": "x", "loss": {"a": 1}},
    ]
    with open(ev, "ab") as f:
        f.write(json.dumps(lines[0]).encode() + b"\nnot json\n")
    n = len(same())
    with open(ev, "ab") as f:  # a torn line: not read until it is complete
        f.write(json.dumps(lines[1]).encode()[:20])
    assert len(same()) == n
    with open(ev, "ab") as f:
        f.write(json.dumps(lines[1]).encode()[20:] + b"\n" + json.dumps(lines[2]).encode() + b"\n")
    assert len(same()) == n + 2
    assert rows.poll() is rows.poll()  # nothing new: nothing parsed

    raw = ev.read_bytes()  # replaced by a shorter file (another inode): read again
    tmp = d / "events.tmp"
    tmp.write_bytes(raw[: raw.index(b"\n") + 1])
    os.replace(tmp, ev)
    assert len(same()) == 1
    with open(ev, "r+b") as f:  # truncated in place
        f.truncate(0)
    assert same() == []
    ev.unlink()
    assert same() == []

    ev.write_bytes(raw)  # compacted: the Parquet file wins, and the caller reads it
    from wattui.store.reader import events_frame, parse_event_lines

    events_frame(parse_event_lines(raw), "run3").write_parquet(d / "events.parquet")
    assert rows.poll() is None


def test_a_slow_first_record_does_not_hold_back_the_next(tmp_path):
    """The first session record pays for imports loaded after the first frame; pacing the
    next one by 10x that left a fresh run's energy unshown for 30 s under load."""
    import time

    d = make_session(tmp_path, "run3", status="running")
    calls = []

    def record_fn(session):
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(0.5)  # the one-off import cost
        return {"energy_j": float(len(calls))}

    b = SnapshotBuilder(d, record_fn=record_fn)
    assert b.poll().record["energy_j"] == 1.0
    deadline = time.monotonic() + 3.0  # paced by 10 x 0.5 s, the next came after 5 s
    while b.poll().record["energy_j"] == 1.0:
        assert time.monotonic() < deadline, "the second record never came"
        time.sleep(0.05)
    # and no faster than about once a second: not one per poll
    assert len(calls) == 2
