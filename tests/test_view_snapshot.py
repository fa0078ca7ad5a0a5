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
