"""live.json is a checkpoint written at most every LIVE_EVERY_S; readers continue it with
the rows of samples.csv after it, so listings are exact to the last flush and a killed
recorder's session lists every row that reached the disk."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
import types

import pytest
from conftest import kill_run_group, run_wattui, wait_until, wattui_env
from test_disk_full import fill, small_fs  # noqa: F401 - small_fs: a fixture, a small real tmpfs

from wattui.sources.base import DeviceReading, Sample
from wattui.store import writer as writer_mod
from wattui.store.reader import Session
from wattui.store.summary import SessionStats, stats_from_samples
from wattui.store.writer import LIVE_EVERY_BYTES, LIVE_EVERY_S, SessionWriter

DEVICES = [
    {"key": "gpu0", "kind": "gpu", "index": 0},
    {"key": "gpu1", "kind": "gpu", "index": 1},
    {"key": "gpu0:run", "kind": "share", "index": 0},
    {"key": "cpu0", "kind": "cpu", "index": 0},
    {"key": "proc", "kind": "proc", "index": 0},
]
ENERGY = ("gpu0", "gpu1", "cpu0")


class Clock:
    """A virtual ``time`` for the writer: ``monotonic`` is what the test says."""

    def __init__(self):
        self.now = 1000.0
        self.ns = types.SimpleNamespace(monotonic=lambda: self.now, time=time.time, sleep=time.sleep)


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(writer_mod, "time", c.ns)
    return c


class Run:
    """A writer fed like the recorder feeds it, and the totals of every row it was given."""

    def __init__(self, store, seed=0):
        self.rng = random.Random(seed)
        self.w = SessionWriter(store, "s1", {"devices": DEVICES, "started_at": 1.0})
        self.stats = SessionStats()
        self.seq = 0
        self.e = {d["key"]: self.rng.uniform(0, 1e6) for d in DEVICES}

    def add(self, n: int) -> None:
        rng = self.rng
        for _ in range(n):
            self.seq += 1
            readings = []
            for d in DEVICES:
                k = d["key"]
                if k == "gpu1" and self.seq < 7:
                    continue  # a device that appears later
                self.e[k] += rng.uniform(10, 90) / 3
                energy = None if k == "proc" or rng.random() < 0.05 else self.e[k]
                power = None if k == "proc" or rng.random() < 0.05 else rng.uniform(40, 700) / 7
                readings.append(DeviceReading(k, energy, power, "counter", "instant", util_pct=50.0))
            s = Sample(seq=self.seq, t_mono=self.seq * 0.2, t_wall=1.7e9 + self.seq * 0.2 + rng.random() / 1e3,
                       readings=tuple(readings))
            self.stats.add(s)
            self.w.add_samples((s,))

    def totals(self) -> dict:
        vals = [st.energy_j for k, st in self.stats.devices.items() if k in ENERGY and st.energy_j is not None]
        return {**self.stats.checkpoint(), "energy_j": sum(vals) if vals else None}

    def flush(self) -> None:
        self.w.flush(live=self.totals())

    def expected(self) -> dict:
        t = self.totals()
        return {"t_wall": t["t_wall"], "devices": t["devices"], "energy_j": t["energy_j"]}

    def live_file(self) -> dict:
        return json.loads((self.w.dir / "live.json").read_text())

    def session(self) -> Session:
        return Session.open(self.w.dir)


def _merged(run: Run) -> dict:
    s = run.session()
    got = s.live_totals()
    assert s.problems == []
    return {k: got[k] for k in ("t_wall", "devices", "energy_j")}


def test_the_checkpoint_is_written_at_the_first_flush_then_at_most_every_10_s(store, clock):
    run = Run(store)
    run.add(5)
    run.flush()
    first = run.live_file()
    assert first["seq"] == 5
    assert first["samples_offset"] == (run.w.dir / "samples.csv").stat().st_size
    assert first["state"] == run.stats.to_state()
    writes = [first["seq"]]
    for _ in range(int(3 * LIVE_EVERY_S)):  # a flush a second for 30 s
        clock.now += 1.0
        run.add(5)
        run.flush()
        assert run.w.saved_live["seq"] == run.seq  # every flush: what the files hold
        if run.live_file()["seq"] != writes[-1]:
            writes.append(run.live_file()["seq"])
    # one every 10 s: at 10, 20 and 30 s after the first
    assert writes == [5, 5 + 50, 5 + 100, 5 + 150]
    assert _merged(run) == run.expected()


def test_a_fast_growing_file_is_checkpointed_before_10_s(store, clock):
    run = Run(store)
    run.add(1)
    run.flush()
    rows = 0
    while run.live_file()["seq"] == 1:
        clock.now += 0.2
        run.add(200)
        rows += 200
        run.flush()
        assert rows * 5 * 40 < 4 * LIVE_EVERY_BYTES, "no checkpoint for megabytes of rows"
    assert clock.now - 1000.0 < LIVE_EVERY_S
    assert _merged(run) == run.expected()


def test_the_merge_equals_the_totals_of_every_row(store, clock):
    run = Run(store, seed=7)
    for step in range(60):
        clock.now += random.Random(step).uniform(0.3, 2.5)
        run.add(random.Random(step).randrange(1, 12))
        run.flush()
        assert _merged(run) == run.expected(), f"after flush {step}"
    assert run.live_file()["seq"] < run.seq  # the checkpoint alone is behind: the merge did it
    # and the same as recomputing from every sample (the whole file)
    s = run.session()
    full = stats_from_samples(s.samples())
    got = s.live_totals()["devices"]
    assert set(full) == set(got)
    for k, v in full.items():
        for key in ("energy_j", "duration_s", "peak_w", "last_w"):
            assert got[k][key] == v[key], (k, key)
        assert got[k]["mean_w"] == pytest.approx(v["mean_w"], rel=1e-9)


def test_rows_before_the_offset_are_not_read(store, clock):
    run = Run(store, seed=3)
    run.add(20)
    run.flush()
    clock.now += 1
    run.add(9)
    run.flush()
    want = run.expected()
    # damage a row the checkpoint covers, in place (same length): the merge never reads it
    path = run.w.dir / "samples.csv"
    data = bytearray(path.read_bytes())
    off = run.live_file()["samples_offset"]
    start = data.index(b"\n", 200) + 1
    assert start < off
    data[start : start + 30] = b"#" * 30
    path.write_bytes(bytes(data))
    assert _merged(run) == want
    rec = json.loads(run_wattui(store, "show", "s1", "--format", "json").stdout)
    assert rec["energy_j"] == pytest.approx(want["energy_j"], rel=1e-12)


def test_a_torn_last_line_and_a_bad_line_end_the_tail(store, clock):
    run = Run(store, seed=4)
    run.add(10)
    run.flush()
    clock.now += 1
    run.add(3)
    run.flush()
    want = run.expected()
    path = run.w.dir / "samples.csv"
    size = path.stat().st_size
    with open(path, "ab") as f:  # a row being written: no newline yet
        f.write(b"1800000000.0,9.0,999,gpu0,99999999.0,100.0")
    assert _merged(run) == want
    with open(path, "r+b") as f:  # instead a whole line that does not parse, then a good one
        f.truncate(size)
        f.seek(size)
        f.write(b",,,,,,,,\nxx,yy,1000,gpu0,1,1,,,,,,,\n")
        f.write(b"1800000001.0,9.0,1001,gpu0,99999999.0,100.0,,,,counter,instant,,\n")
    assert _merged(run) == want


def test_an_offset_that_is_not_a_line_end_uses_the_checkpoint_as_it_is(store, clock):
    run = Run(store, seed=5)
    run.add(10)
    run.flush()
    clock.now += 1
    run.add(3)
    run.flush()
    live = run.live_file()
    live["samples_offset"] -= 3
    (run.w.dir / "live.json").write_text(json.dumps(live))
    s = run.session()
    got = s.live_totals()
    assert got["devices"] == live["devices"] and got["t_wall"] == live["t_wall"]
    s.live_totals()
    assert len(s.problems) == 1 and "live.json" in s.problems[0], s.problems


@pytest.mark.parametrize(
    "change",
    [
        {"samples_offset": "12"},
        {"samples_offset": -4},
        {"seq": 1.5},
        {"state": []},
        {"state": {"gpu0": {"power_n": -1}}},
        {"state": {"gpu0": {"first_e": "x", "power_n": 1, "power_sum": 1.0}}},
        {"seq": None, "state": None},
    ],
)
def test_bad_checkpoint_keys_use_it_as_it_is_and_say_so_once(store, clock, change):
    run = Run(store, seed=6)
    run.add(10)
    run.flush()
    clock.now += 1
    run.add(3)
    run.flush()
    live = {**run.live_file(), **change}
    (run.w.dir / "live.json").write_text(json.dumps(live))
    s = run.session()
    for _ in range(2):
        got = s.live_totals()
        assert got["devices"] == live["devices"] and got["energy_j"] == live["energy_j"]
    assert len(s.problems) == 1 and s.problems[0].startswith("live.json: "), s.problems
    r = run_wattui(store, "sessions")
    assert r.returncode == 0 and "Traceback" not in r.stderr


def test_an_older_live_json_is_used_as_it_is(store, clock):
    run = Run(store, seed=8)
    run.add(10)
    run.flush()
    clock.now += 1
    run.add(3)
    run.flush()
    old = {"t_wall": 1.7e9, "devices": {"gpu0": {"energy_j": 5.0, "mean_w": 1.0, "peak_w": 2.0,
                                                 "last_w": 1.5, "duration_s": 5.0}}, "energy_j": 5.0}
    (run.w.dir / "live.json").write_text(json.dumps(old))
    s = run.session()
    assert s.live_totals() == old and s.problems == []


def test_a_compacted_session_whose_end_was_lost_continues_from_the_parquet(store, clock):
    run = Run(store, seed=9)
    run.add(10)
    run.flush()
    clock.now += 1
    run.add(7)
    run.flush()
    want = run.expected()
    from wattui.store.writer import compact

    compact(run.w.dir)  # what finish() does before its meta.json, which never came
    assert not (run.w.dir / "samples.csv").exists()
    assert _merged(run) == want


CHILD = "import time\nwhile True:\n    print('step', flush=True)\n    time.sleep(0.05)\n"


@pytest.mark.slow
def test_a_killed_recorder_lists_every_row_on_disk(store):
    p = subprocess.Popen(
        [sys.executable, "-m", "wattui", "record", "--simulate", "--no-passthrough",
         "--session-id", "k9", "--", sys.executable, "-c", CHILD],
        env=wattui_env(store), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    sdir = store / "sessions" / "k9"
    try:
        live = wait_until(lambda: (sdir / "live.json").exists() and json.loads((sdir / "live.json").read_text()),
                          what="the first checkpoint")
        # two more flushes after it: rows the checkpoint does not cover
        wait_until(lambda: (sdir / "samples.csv").stat().st_size > live["samples_offset"] or p.poll(),
                   what="rows after the checkpoint")
        assert p.poll() is None, p.stderr.read().decode()
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
        kill_run_group(sdir)
    s = Session.open(sdir)
    assert s.status == "interrupted"
    live = json.loads((sdir / "live.json").read_text())
    samples = s.samples()
    assert samples["seq"].max() > live["seq"]  # the checkpoint alone would miss rows
    got = s.live_totals()
    assert s.problems == []
    full = stats_from_samples(samples)
    assert set(got["devices"]) == set(full)
    assert got["devices"] != live["devices"]
    for k, v in full.items():
        for key in ("energy_j", "duration_s", "peak_w", "last_w"):
            assert got["devices"][k][key] == v[key], (k, key)
    assert got["t_wall"] == samples["t_wall"].max()
    rec = json.loads(run_wattui(store, "show", "k9", "--format", "json").stdout)
    assert rec["energy_j"] == pytest.approx(got["energy_j"], rel=1e-12)


@pytest.mark.slow
def test_a_full_disk_keeps_saved_live_to_what_the_files_say(small_fs, clock):  # noqa: F811
    store = small_fs / "store"
    store.mkdir()
    run = Run(store, seed=11)
    run.add(10)
    run.flush()
    on_disk = run.expected()
    filler = fill(small_fs)
    for _ in range(100):  # rows until a flush cannot write them (a file's last page takes a few)
        clock.now += 1
        run.add(50)
        now = run.expected()
        run.flush()
        if run.w.unsaved_rows:
            break
        on_disk = now
    assert run.w.unsaved_rows and run.w.write_errors
    saved = {k: run.w.saved_live[k] for k in ("t_wall", "devices", "energy_j")}
    assert saved == on_disk != run.expected()
    assert _merged(run) == on_disk  # the reader says the same
    filler.unlink()
    clock.now += 1
    run.flush()
    assert run.w.unsaved_rows == 0
    assert run.w.saved_live["seq"] == run.seq and _merged(run) == run.expected()


def test_no_checkpoint_covers_rows_the_file_lacks(store, clock, monkeypatch):
    import errno

    run = Run(store, seed=12)
    run.add(10)
    run.flush()
    real = writer_mod.append_whole

    def refuse_samples(path, data, fsync=False):
        if path.name == "samples.csv":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, fsync)

    monkeypatch.setattr(writer_mod, "append_whole", refuse_samples)
    clock.now += 2 * LIVE_EVERY_S  # a checkpoint is due
    run.add(5)
    run.flush()
    assert run.w.unsaved_rows and run.live_file()["seq"] == 10  # not written: rows are missing
    assert _merged(run) == {k: run.w.saved_live[k] for k in ("t_wall", "devices", "energy_j")}
    monkeypatch.setattr(writer_mod, "append_whole", real)
    clock.now += 1
    run.flush()
    assert run.live_file()["seq"] == 15
    assert run.live_file()["samples_offset"] == (run.w.dir / "samples.csv").stat().st_size
    assert _merged(run) == run.expected()


def test_the_state_round_trips_and_names_every_field():
    from wattui.store.summary import STATE_KEYS, DeviceStats

    d = DeviceStats("gpu0")
    for t, e, p in ((1.0, 10.0, 100.5), (2.0, None, 90.25), (3.5, 40.0, None), (4.0, 55.0, 300.0)):
        d.add(t, e, p)
    assert set(d.to_state()) == set(STATE_KEYS)
    back = DeviceStats.from_state("gpu0", json.loads(json.dumps(d.to_state())))
    assert back == d
    back.add(5.0, 60.0, 10.0)
    d.add(5.0, 60.0, 10.0)
    assert back.to_dict() == d.to_dict()


def test_past_the_tail_cap_the_totals_end_at_the_last_row_within_it(store, clock, monkeypatch):
    from wattui.store.checkpoint import MAX_TAIL

    monkeypatch.setattr(writer_mod, "LIVE_EVERY_BYTES", 1 << 40)  # a checkpoint gone stale
    run = Run(store, seed=13)
    run.add(10)
    run.flush()
    off = run.live_file()["samples_offset"]
    path = run.w.dir / "samples.csv"
    while path.stat().st_size - off < MAX_TAIL + (200 << 10):
        clock.now += 0.1
        run.add(500)
        run.flush()
    assert run.live_file()["seq"] == 10
    data = path.read_bytes()
    within = data[off : off + MAX_TAIL].count(b"\n")  # the complete lines the cap takes
    before = data[:off].count(b"\n") - 1  # the rows the checkpoint covers (not the header)
    s = run.session()
    got = s.live_totals()
    rows = s.samples().head(before + within)  # in file order
    assert 10 < rows["seq"].max() < run.seq
    assert got["t_wall"] == rows["t_wall"].max()
    full = stats_from_samples(rows)
    for k, v in full.items():
        for key in ("energy_j", "duration_s", "peak_w", "last_w"):
            assert got["devices"][k][key] == v[key], (k, key)


def test_a_followed_session_reads_each_row_once(store, clock):
    run = Run(store, seed=14)
    run.add(10)
    run.flush()
    clock.now += 1
    run.add(6)
    run.flush()
    assert _merged(run) == run.expected()  # this call read the rows after the checkpoint
    path = run.w.dir / "samples.csv"
    read_to = path.stat().st_size
    clock.now += 1
    run.add(4)
    run.flush()
    want = run.expected()
    # damage a row the last call read, after the checkpoint's offset: the next call starts
    # where that call ended, so it never reads it again (a reader from the checkpoint would
    # stop at the damaged line)
    data = bytearray(path.read_bytes())
    off = run.live_file()["samples_offset"]
    assert run.live_file()["seq"] == 10
    at = data.index(b"\n", off + 10) + 1
    assert at < read_to
    data[at : at + 20] = b"#" * 20
    path.write_bytes(bytes(data))
    assert _merged(run) == want
    # another samples.csv (a new file, longer than where the last call ended): nothing is
    # carried over from the old one
    rows = b"".join(
        f"{1.8e9 + i!r},{i}.0,{11 + i},gpu0,{5e6 + i * 100.0!r},{123.0 + i!r},,,,counter,instant,,\n".encode()
        for i in range(200)
    )
    fresh = path.with_name("fresh.csv")
    fresh.write_bytes(bytes(data[:off]) + rows)
    fresh.replace(path)
    assert path.stat().st_size > read_to
    got = run.session().live_totals()
    assert got["t_wall"] == 1.8e9 + 199 and got["devices"]["gpu0"]["last_w"] == 123.0 + 199
    assert got["devices"]["gpu1"] == run.live_file()["devices"]["gpu1"]


def test_a_sample_read_half_written_is_read_whole_at_the_next_call(store, clock):
    """A reader that follows the session may see an append half done: it stops at the
    last complete line, which can fall between two rows of one sample. The next call
    goes on from that sample's first row, so none of its rows is dropped."""
    run = Run(store, seed=1)
    run.add(10)
    run.flush()  # the checkpoint, at seq 10
    clock.now += 1
    run.add(5)
    run.flush()  # rows of seq 11-15 after it
    path = run.w.dir / "samples.csv"
    full = path.read_bytes()
    lines = full.split(b"\n")
    second_of_13 = [i for i, line in enumerate(lines) if line.split(b",")[2:3] == [b"13"]][1]
    cut = len(b"\n".join(lines[: second_of_13 + 1])) + 1
    with open(path, "r+b") as f:  # the same file, as a reader sees it mid-append
        f.truncate(cut)
    run.session().live_totals()
    with open(path, "r+b") as f:  # the append completes
        f.seek(cut)
        f.write(full[cut:])
    assert _merged(run) == run.expected()
