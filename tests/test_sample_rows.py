"""The live screen reads a second's worth of samples without Polars: the figures it folds
(each device's latest row, the per-second power history, the total now) are the Polars
path's, to the bit, on real recordings and on files Polars alone must read."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import wattui.view.samples_tail as samples_tail
from wattui.store import schema
from wattui.tui.demo_data import write_demo_session
from wattui.view.sample_rows import SampleRows, parse_rows
from wattui.view.snapshot import SnapshotBuilder


def _state(b: SnapshotBuilder):
    return b.latest, b.history.points(), b._last_total


def _grow(src: bytes, dst: Path, cuts: list[int]):
    """Write ``src`` to ``dst`` in pieces ending at ``cuts`` (some mid-line), yielding
    after each piece, as a recorder's flushes would."""
    done = 0
    for cut in [*cuts, len(src)]:
        with open(dst, "ab") as f:
            f.write(src[done:cut])
        done = cut
        yield


def _compare(tmp_path: Path, d: Path, monkeypatch, seed: int) -> int:
    """Poll the session as it grows with the plain-Python path and with Polars alone; the
    states must be equal after every poll. Returns the polls that took the Python path."""
    csv = d / schema.SAMPLES_LIVE
    src = csv.read_bytes()
    csv.write_bytes(b"")
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(src)), 25))
    fast, slow = SnapshotBuilder(d), SnapshotBuilder(d)
    used = 0
    for _ in _grow(src, csv, cuts):
        before = fast.tail.last_seq
        fast.poll()
        used += fast.tail.last_seq != before and fast.tail.engine == "in-memory"
        with monkeypatch.context() as m:
            m.setattr(samples_tail, "parse_rows", lambda *a: None)
            slow.poll()
        assert _state(fast) == _state(slow)
    return used


@pytest.mark.parametrize("gpus", [1, 8])
def test_plain_python_path_folds_what_polars_folds(tmp_path, monkeypatch, gpus):
    d = write_demo_session(tmp_path / "store", gpus=gpus, duration_s=120.0, period_s=0.2)
    for seed in range(4):  # the file cut at other places each time
        assert _compare(tmp_path, d, monkeypatch, seed=seed) > 10
    b = SnapshotBuilder(d)
    b.poll()
    assert len(b.history.points()) > 100 and len(b.latest) == gpus + 1  # the GPUs, proc


def test_files_only_polars_reads_the_same_way(tmp_path, monkeypatch):
    """Rows Polars reads its own way (quotes, junk numbers, ragged lines, a device twice
    in a tick, empty fields, an older file without some columns) are read by Polars, and
    the plain path's rows around them agree with it."""
    d = write_demo_session(tmp_path / "store", gpus=2, duration_s=30.0, period_s=0.2)
    csv = d / schema.SAMPLES_LIVE
    lines = csv.read_bytes().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    cols = header.decode().strip().split(",")
    assert parse_rows(b"".join(body), cols, -1) is not None
    for junk in (b'"q"', b"1e5x", b" 1.0", b"nan", b"inf", b"+1"):
        row = body[3].decode().split(",")
        row[cols.index("power_w")] = junk.decode()
        assert parse_rows(",".join(row).encode(), cols, -1) is None, junk
    assert parse_rows(body[3].rstrip(b"\n") + b",extra\n", cols, -1) is None  # ragged
    assert parse_rows(body[3] + body[3], cols, -1) is None  # one device twice in a tick
    assert parse_rows(body[3].replace(b"\n", b"\r\n"), cols, -1) is None
    row = body[5].decode().split(",")
    for c in ("power_w", "temp_c", "pids", "power_method"):
        row[cols.index(c)] = ""  # nulls
    body[5] = ",".join(row).encode()
    rows = parse_rows(body[5], cols, -1)
    assert isinstance(rows, SampleRows) and rows[0][3] is None and rows[0][8] is None
    body[7] = body[7].replace(b",", b",,", 1)  # a ragged line amid plain ones: Polars
    csv.write_bytes(header + b"".join(body))
    _compare(tmp_path, d, monkeypatch, seed=3)

    # an older session: no pids or mem_total_b column
    keep = [i for i, c in enumerate(cols) if c not in ("pids", "mem_total_b")]
    old = [",".join(line.decode().rstrip("\n").split(",")[i] for i in keep).encode() + b"\n"
           for line in lines if line.count(b",") == len(cols) - 1]
    csv.write_bytes(b"".join(old))
    assert _compare(tmp_path, d, monkeypatch, seed=4) > 5
