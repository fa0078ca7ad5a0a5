"""The native ticker (wattui/sources/_ticker.c) as built by this install: its schedule,
ring, wake-up pipe and arguments, the sampler that uses it (and falls back to its own
ticks when the source can no longer batch), and a real `wattui record` with its thread.

GPUs come from the stand-in NVML (tests/nvml_stub) on the real clock, at a constant
power, so a tick's energy is checked against power x time."""

from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import pytest
from conftest import run_wattui, wattui_env
from nvml_stub.fixtures import fake_nvml, nvml_stub_lib  # noqa: F401

from wattui.sampler import Sampler
from wattui.sources import native_ticks
from wattui.sources.nvml import NvmlSource

REPO = Path(__file__).resolve().parents[1]
HAS_CC = bool(shutil.which("cc") or shutil.which("gcc"))
needs_ticker = pytest.mark.skipif(
    not native_ticks.available(), reason="the native ticker is not built for this Python"
)


FIELD = 40  # sizeof(nvmlFieldValue_t)


@pytest.fixture
def gpus(fake_nvml):  # noqa: F811
    fake_nvml.configure(count=3, **{"*.power_w": 100})
    src = NvmlSource(visible=None, use_env=False)
    yield fake_nvml, src
    src.close()


@pytest.fixture
def pipe():
    r, w = os.pipe()
    os.set_blocking(w, False)
    yield r, w
    os.close(r)
    os.close(w)


def test_the_ticker_is_built_where_a_compiler_is():
    """An install on a machine with a C compiler builds the ticker, and it is not older
    than its source (an editable install does not rebuild it by itself)."""
    if not HAS_CC:
        pytest.skip("no C compiler: the sampler's own thread takes the ticks")
    so = REPO / "wattui" / "sources" / ("_ticker" + sysconfig.get_config_var("EXT_SUFFIX"))
    assert native_ticks.available(), "reinstall: pip install -e ."
    assert so.stat().st_mtime >= (REPO / "wattui/sources/_ticker.c").stat().st_mtime, (
        "the compiled ticker is older than _ticker.c: reinstall (pip install -e .)"
    )


def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(native_ticks.ENV, "0")
    assert not native_ticks.available()


@needs_ticker
def test_one_tick_per_slot_inside_it_with_the_gpus_figures(gpus, pipe):
    fake, src = gpus
    slot = 0.05
    t0 = time.monotonic()
    ticks = src.native_ticks(t0, slot, 12345, pipe[1])
    assert ticks is not None and ticks.ok
    time.sleep(1.0)
    ticks.close()
    items = ticks.drain()
    assert 12 <= len(items) <= 21
    times = [t for t, _, _ in items]
    assert times == sorted(times) and times[0] >= t0
    # one tick per slot: a tick drawn near a slot's end may wake a little into the next
    slots = [int((t - t0) // slot) for t in times]
    assert all(slots.count(k) <= 2 for k in slots) and len(set(slots)) >= len(slots) - 3
    # dithered: the moments inside the slots are spread, not one fixed phase
    phases = [(t - t0) / slot - k for (t, _, _), k in zip(items, slots)]
    assert max(phases) - min(phases) > 0.3
    assert all(abs(tw - time.time()) < 5 for _, tw, _ in items)
    readings = [{r.key: r for r in src.decode(cap)} for _, _, cap in items]
    assert {r["gpu1"].power_w for r in readings} == {100.0}
    # energy by the counter between the first and last tick: 100 W x the time between
    e = readings[-1]["gpu2"].energy_j - readings[0]["gpu2"].energy_j
    assert e == pytest.approx(100 * (items[-1][0] - items[0][0]), abs=0.5)
    assert ticks.drain() == []  # drained once
    taken, dropped = ticks.stats()
    assert taken == len(items) and dropped == 0


@needs_ticker
def test_wakes_the_sampler_once_after_the_time_asked(gpus, pipe):
    _, src = gpus
    r, w = pipe
    ticks = src.native_ticks(time.monotonic(), 0.05, 7, w)
    try:
        at = time.monotonic() + 0.3
        ticks.wake_at(at)
        ready, _, _ = select.select([r], [], [], 5)
        assert ready and os.read(r, 64) == b"\x01"
        woke = time.monotonic()
        assert woke >= at
        assert ticks.drain()[-1][0] >= at  # the tick that woke it is in the ring
        ready, _, _ = select.select([r], [], [], 0.4)  # one byte per request
        assert not ready
    finally:
        ticks.close()


@needs_ticker
def test_a_full_ring_keeps_the_newest_ticks(gpus, pipe):
    _, src = gpus
    from wattui.sources import _ticker

    fn = ctypes.cast(src._raw_fields, ctypes.c_void_p).value
    calls = [(ctypes.cast(g.handle, ctypes.c_void_p).value, g.batch_n, g.batch_base) for g in src._gpus]
    t = _ticker.Ticker(fn, calls, bytes(src._fields), time.monotonic(), 0.01, 3, pipe[1], FIELD, 4)
    t.start()
    time.sleep(0.3)
    t.stop()
    taken, dropped = t.stats()
    items = t.drain()
    assert len(items) == 4 and dropped == taken - 4 and taken >= 10
    times = [x[0] for x in items]
    assert times == sorted(times) and time.monotonic() - times[-1] < 0.2
    assert all(list(x[2]) == [0, 0, 0] for x in items)  # every call succeeded


@needs_ticker
def test_bad_arguments_are_refused(gpus, pipe):
    _, src = gpus
    from wattui.sources import _ticker

    fn = ctypes.cast(src._raw_fields, ctypes.c_void_p).value
    dev = ctypes.cast(src._gpus[0].handle, ctypes.c_void_p).value
    buf = bytes(src._fields)
    now = time.monotonic()
    with pytest.raises(ValueError, match="outside the buffer"):
        _ticker.Ticker(fn, [(dev, 2, len(buf))], buf, now, 0.1, 1, pipe[1], FIELD)
    # NVML writes whole field structs (40 bytes each), not 8 bytes a field: two fields
    # 16 bytes before the end would write 64 bytes past it
    with pytest.raises(ValueError, match="outside the buffer"):
        _ticker.Ticker(fn, [(dev, 2, len(buf) - 16)], buf, now, 0.1, 1, pipe[1], FIELD)
    with pytest.raises(ValueError, match="outside the buffer"):
        _ticker.Ticker(fn, [(dev, 1, len(buf) - FIELD + 1)], buf, now, 0.1, 1, pipe[1], FIELD)
    with pytest.raises(ValueError):
        _ticker.Ticker(fn, [(dev, 2, 0)], buf, now, 0.1, 1, pipe[1], 0)
    with pytest.raises(ValueError):
        _ticker.Ticker(fn, [(dev, 2, 0)], buf, now, 0.0, 1, pipe[1], FIELD)
    with pytest.raises(ValueError):
        _ticker.Ticker(fn, [], buf, now, 0.1, 1, pipe[1], FIELD)
    with pytest.raises(ValueError):
        _ticker.Ticker(0, [(dev, 2, 0)], buf, now, 0.1, 1, pipe[1], FIELD)
    with pytest.raises(TypeError):
        _ticker.Ticker(fn, [(dev, 2, 0)], "text", now, 0.1, 1, pipe[1], FIELD)
    _ticker.Ticker(fn, [(dev, 1, len(buf) - FIELD)], buf, now, 0.1, 1, pipe[1], FIELD)  # the last one fits
    t = _ticker.Ticker(fn, [(dev, 2, 0)], buf, now, 0.1, 1, pipe[1], FIELD)
    assert t.drain() == []  # never started: nothing, and stop is harmless
    t.stop()
    with pytest.raises(RuntimeError):
        t.start()


def ticker_running(wait_s: float = 0.0) -> bool:
    """Whether this process has a wattui-ticker thread (waiting up to ``wait_s`` for one
    just started to name itself)."""
    deadline = time.monotonic() + wait_s
    while "wattui-ticker" not in ticker_threads(os.getpid()):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def run_with_deadline(fn, seconds: float) -> bool:
    """Run ``fn`` in a daemon thread; False if it has not returned within ``seconds``."""
    th = threading.Thread(target=fn, daemon=True)
    th.start()
    th.join(seconds)
    return not th.is_alive()


@needs_ticker
def test_stop_is_prompt_and_safe_from_two_threads_at_once(gpus, pipe):
    """stop() ends the wait for the next tick at once (a slot may be long: --period), and
    two threads stopping together (the sampler's and NvmlSource.close()) both return, once
    the thread has ended: joining one thread twice at once hangs glibc for good."""
    _, src = gpus
    from wattui.sources import _ticker

    fn = ctypes.cast(src._raw_fields, ctypes.c_void_p).value
    calls = [(ctypes.cast(g.handle, ctypes.c_void_p).value, g.batch_n, g.batch_base) for g in src._gpus]
    t = _ticker.Ticker(fn, calls, bytes(src._fields), time.monotonic(), 1000.0, 5, pipe[1], FIELD)
    t.start()
    assert ticker_running(wait_s=2)
    t0 = time.monotonic()
    both = [threading.Thread(target=t.stop, daemon=True) for _ in range(2)]
    for th in both:
        th.start()
    for th in both:
        th.join(10)
    assert not any(th.is_alive() for th in both), "stop() hangs"
    assert time.monotonic() - t0 < 1.0
    assert not ticker_running()
    t.stop()  # again: nothing to do


@needs_ticker
def test_a_sampler_with_a_long_period_stops_at_once_and_closes(gpus):
    """`wattui record --period 12`: stop() used to wait for the ticker's next tick (up to a
    period), past the sampler's join timeout, and the source's close then hung."""
    _, src = gpus
    sampler = Sampler([src], 12.0)
    sampler.sample_once()
    sampler.start()
    deadline = time.monotonic() + 5
    while sampler._native is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sampler._native is not None and ticker_running(wait_s=2)
    t0 = time.monotonic()
    last = sampler.stop()
    assert time.monotonic() - t0 < 1.5
    assert last is not None and not sampler._thread.is_alive()
    assert run_with_deadline(sampler.close, 5), "closing the source hangs"
    assert not ticker_running()


@needs_ticker
def test_the_sampler_wakes_once_a_batch_and_falls_back_when_batching_ends(gpus):
    fake, src = gpus
    sampler = Sampler([src], 0.1)
    batches: list[list] = []
    sampler.subscribe_batch(batches.append)
    sampler.sample_once()
    sampler.start()
    time.sleep(2.5)
    assert sampler.native and sampler._native is not None
    # the field call fails from now on: NVML's separate calls take over, in this thread
    fake.update(**{"rc.nvmlDeviceGetFieldValues": "GPU_IS_LOST"})
    time.sleep(2.5)
    assert sampler._native is None
    n_before_stop = sum(len(b) for b in batches)
    t = time.monotonic()
    last = sampler.stop()
    assert time.monotonic() - t < 2.0  # the pipe woke it: no wait for a timeout
    samples = [s for b in batches for s in b]
    assert len(samples) > n_before_stop
    assert [s.seq for s in samples] == list(range(len(samples)))
    times = [s.t_mono for s in samples]
    assert times == sorted(times) and samples[-1] is last
    # about 10 ticks a second throughout, native then the sampler's own: one per 0.1 s
    # slot between the first and the last (stop) read, a slot or so missed under load
    slots = (samples[-1].t_mono - samples[0].t_mono) / 0.1
    assert 0.7 * slots <= len(samples) - 2 <= slots + 1
    # every tick has every GPU's energy, but those whose field call failed before a
    # decode saw it (about a batch: in Python ticks too); the power field is gone after
    whole = [{r.key for r in s.readings if r.energy_j is not None} == {"gpu0", "gpu1", "gpu2"}
             for s in samples]
    assert 0 < whole.count(False) <= 12
    assert samples[1].by_key()["gpu1"].power_w == 100.0
    first_bad = whole.index(False)
    assert all(whole[:first_bad]) and all(whole[first_bad + whole.count(False):])
    first, end = samples[0].by_key()["gpu0"], last.by_key()["gpu0"]
    assert end.energy_j - first.energy_j == pytest.approx(100 * (last.t_mono - samples[0].t_mono), abs=0.5)
    # the slow figures came on about one tick a second in native mode as well
    assert all(r.util_pct is not None for s in samples for r in s.readings)


@needs_ticker
def test_no_native_ticks_for_a_per_sample_listener_or_a_virtual_clock(gpus):
    _, src = gpus
    s = Sampler([src], 0.1)
    s.subscribe(lambda sample: None)
    assert s._native_source() is None
    s2 = Sampler([src], 0.1, clock=lambda: 0.0)
    assert s2._native_source() is None
    assert Sampler([src], 0.1)._native_source() is src


def ticker_threads(pid: int) -> list[str]:
    names = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            names.append(Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip())
        except OSError:
            pass
    return names


@needs_ticker
@pytest.mark.parametrize("native", ["1", "0"])
def test_record_takes_its_ticks_in_a_named_thread(store, fake_nvml, native):  # noqa: F811
    """`wattui record` on 2 stand-in GPUs: the ticker thread shows as wattui-ticker
    (unless turned off), and the session has about 5 rows a second per GPU either way."""
    fake_nvml.configure(count=2, **{"*.power_w": 200})
    keep = {k: v for k, v in fake_nvml.subprocess_env().items()
            if k in ("LD_LIBRARY_PATH", "WATTUI_FAKE_NVML_CONFIG")}
    env = wattui_env(store, **keep, WATTUI_NATIVE_TICKS=native)
    p = subprocess.Popen(
        [sys.executable, "-m", "wattui", "record", "--", sys.executable, "-c", "import time; time.sleep(4)"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
    )
    time.sleep(2.5)
    names = ticker_threads(p.pid)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert ("wattui-ticker" in names) == (native == "1"), names
    rec = json.loads(run_wattui(store, "show", "--format", "json").stdout)
    from wattui.store.reader import find_session

    df = find_session(store, rec["id"]).samples()
    rows = df.filter(df["device"] == "gpu0").height
    assert rows == pytest.approx(5 * rec["duration_s"], rel=0.25)
    assert rec["gpus"][0]["energy_j"] == pytest.approx(200 * rec["duration_s"], rel=0.01)


@pytest.mark.parametrize("native", ["1", "0"])
def test_doctor_says_whether_the_ticks_are_native(store, native):
    r = run_wattui(store, "doctor", WATTUI_NATIVE_TICKS=native)
    assert r.returncode == 0, r.stderr
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("native ticker")]
    if native == "0":
        assert " off " in line and "WATTUI_NATIVE_TICKS=0" in line
    elif native_ticks.available():
        assert " ok " in line and "wattui-ticker" in line
    else:
        assert " off " in line and "install gcc" in line
    j = json.loads(run_wattui(store, "doctor", "--format", "json", WATTUI_NATIVE_TICKS=native).stdout)
    assert j["native_ticker"]["available"] == (" ok " in line)


@needs_ticker
def test_ticks_stay_in_order_while_other_threads_ask_for_the_newest(gpus):
    """recorder.state() and energy_now() call newest() from other threads, which drains
    the ring: the tick that woke the sampler may be gone. The sampler used to read a full
    tick itself then, while the native thread's next tick was in its field call: that
    tick, timed before the sampler's, came after it (t_mono went back; the energy counter
    saw out-of-order reads). With 20 ms field calls, as a busy driver's can be."""
    fake, src = gpus
    fake.update(field_delay_us=20000)
    sampler = Sampler([src], 0.1)
    batches: list[list] = []
    sampler.subscribe_batch(batches.append)
    sampler.sample_once()
    sampler.start()
    done = threading.Event()

    def ask():
        while not done.is_set():
            sampler.newest()
            time.sleep(0.003)

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    time.sleep(6)
    done.set()
    asker.join(5)
    assert sampler.native
    last = sampler.stop()
    samples = [s for b in batches for s in b]
    assert samples[-1] is last
    assert [s.seq for s in samples] == list(range(len(samples)))
    times = [s.t_mono for s in samples]
    back = [(a, b) for a, b in zip(times, times[1:]) if b < a]
    assert not back, f"{len(back)} ticks earlier than the one before"
    assert not [n for d in sampler.devices() for n in d.notes if "read back" in n]
    # still a full tick (the slow figures, the run's share) about once a second
    assert all(r.util_pct is not None for s in samples for r in s.readings)


@needs_ticker
def test_the_ticker_thread_takes_no_signals(gpus, pipe):
    """SIGINT, SIGTERM and SIGCHLD (a recorder forwards and waits for its run) go to
    Python's threads, never interrupt the ticker's NVML calls: it blocks them all."""
    import signal

    _, src = gpus
    ticks = src.native_ticks(time.monotonic(), 0.05, 9, pipe[1])
    try:
        assert ticker_running(wait_s=2)
        tids = [t for t in os.listdir("/proc/self/task")
                if Path(f"/proc/self/task/{t}/comm").read_text().strip() == "wattui-ticker"]
        status = Path(f"/proc/self/task/{tids[0]}/status").read_text()
        blocked = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigBlk:")), 16)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGUSR1):
            assert blocked & (1 << (sig - 1)), sig
        # this (Python) thread's mask is as it was
        assert not signal.pthread_sigmask(signal.SIG_BLOCK, [])
    finally:
        ticks.close()


@needs_ticker
def test_the_sampler_waits_on_a_descriptor_above_1024(gpus):
    """A recorder following a large process tree keeps a /proc file open per process, so
    its wake-up pipe can get a descriptor above FD_SETSIZE (1024), where select() raises:
    the sampler's thread died and the session stopped getting rows."""
    import resource

    _, src = gpus
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200 and (hard == resource.RLIM_INFINITY or hard >= 1200):
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    elif soft < 1200:
        pytest.skip("the descriptor limit is below 1200 here")
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        sampler = Sampler([src], 0.1)
        batches: list[list] = []
        sampler.subscribe_batch(batches.append)
        sampler.sample_once()
        sampler.start()
        deadline = time.monotonic() + 10
        while len(batches) < 3 and time.monotonic() < deadline and sampler._thread.is_alive():
            time.sleep(0.05)
        assert sampler.native and sampler._thread.is_alive()
        assert len(batches) >= 3
        sampler.stop()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@needs_ticker
def test_rapl_is_read_once_a_second_and_leaves_the_ticks_native(store, fake_nvml, tmp_path):  # noqa: F811
    """A readable RAPL tree beside the GPUs: its counters are read on full ticks only
    (about once a second), so the native thread still takes the GPUs' ticks (5 a second)."""
    pkg = tmp_path / "powercap" / "intel-rapl:0"
    pkg.mkdir(parents=True)
    (pkg / "name").write_text("package-0\n")
    (pkg / "energy_uj").write_text("1000\n")
    (pkg / "max_energy_range_uj").write_text("262143328850\n")
    fake_nvml.configure(count=1, **{"*.power_w": 150})
    keep = {k: v for k, v in fake_nvml.subprocess_env().items()
            if k in ("LD_LIBRARY_PATH", "WATTUI_FAKE_NVML_CONFIG")}
    p = subprocess.Popen(
        [sys.executable, "-m", "wattui", "record", "--rapl-root", str(tmp_path / "powercap"), "--",
         sys.executable, "-c", "import time; time.sleep(4)"],
        env=wattui_env(store, **keep), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
    )
    time.sleep(2.5)
    names = ticker_threads(p.pid)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "wattui-ticker" in names, names
    rec = json.loads(run_wattui(store, "show", "--format", "json").stdout)
    from wattui.store.reader import find_session

    df = find_session(store, rec["id"]).samples()
    devices = set(df["device"].unique())
    cpu = next(d for d in devices if d.startswith("cpu"))
    gpu_rows = df.filter(df["device"] == "gpu0").height
    cpu_rows = df.filter(df["device"] == cpu).height
    assert gpu_rows == pytest.approx(5 * rec["duration_s"], rel=0.25)
    assert cpu_rows == pytest.approx(rec["duration_s"] + 2, abs=2)  # full ticks, first and last


@needs_ticker
def test_a_held_up_sampler_says_how_many_ticks_its_ring_dropped(gpus, monkeypatch, capsys):
    """A batch listener that holds the sampler's thread up longer than the ring lasts: the
    oldest ticks are dropped, the sampler says so once, and the samples stay in order."""
    _, src = gpus
    monkeypatch.setattr(native_ticks, "RING_TICKS", 8)
    sampler = Sampler([src], 0.02)
    held: list[int] = []

    def slow(batch):
        if len(held) == 1:
            time.sleep(0.6)  # about 30 ticks at 0.02 s: the ring keeps 8
        held.append(len(batch))

    samples: list = []
    sampler.subscribe_batch(slow)
    sampler.subscribe_batch(samples.extend)
    sampler.sample_once()
    sampler.start()
    time.sleep(2.5)
    sampler.stop()
    assert sampler.native
    assert sampler.dropped_ticks >= 15
    err = capsys.readouterr().err
    assert err.count("ticks dropped") == 1
    assert [s.seq for s in samples] == list(range(len(samples)))
    times = [s.t_mono for s in samples]
    assert times == sorted(times)
    assert max(b - a for a, b in zip(times, times[1:])) > 0.3  # the gap the drops left


def test_the_run_wait_works_with_descriptors_above_1024():
    """The recorder's main thread waits for the run on a pidfd and a pipe; with a large
    run's /proc files open those are above FD_SETSIZE, where select() raised."""
    import resource

    from wattui.record.signals import RunSignals

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("the descriptor limit is below 1200 here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
        waiter = RunSignals.__new__(RunSignals)
        waiter.signals_received = []
        waiter._log_signals = lambda: None
        waiter._wait_for(child)
        assert child.poll() == 0
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@needs_ticker
def test_the_sampler_takes_the_ticks_again_if_the_native_thread_ends(gpus):
    """The C thread ends on its own only if it cannot allocate its buffers; stopping it
    underneath the sampler stands for that: within the sampler's 4 s wait the Python
    thread takes the ticks again, and the samples stay in order."""
    _, src = gpus
    sampler = Sampler([src], 0.1)
    samples: list = []
    sampler.subscribe_batch(samples.extend)
    sampler.sample_once()
    sampler.start()
    time.sleep(1.5)
    native = sampler._native
    assert native is not None and native.ok
    native._t.stop()  # the thread ends; FieldTicks was not closed
    assert not native.ok
    deadline = time.monotonic() + 8
    while sampler._native is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sampler._native is None
    n = len(samples)
    time.sleep(1.5)
    sampler.stop()
    assert len(samples) - n >= 10  # about 10 a second again, from this thread
    assert [s.seq for s in samples] == list(range(len(samples)))
    times = [s.t_mono for s in samples]
    assert times == sorted(times)
