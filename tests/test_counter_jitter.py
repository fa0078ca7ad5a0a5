"""Energy counters that read back a little (jitter, out-of-order reads) are not resets or
wraps; real resets and RAPL wraps still are. Every counter source: the accumulator itself,
NVML through the stand-in library, RAPL on a fake powercap tree."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_until, wattui_env

try:
    from nvml_stub.build import FakeNvml
    from nvml_stub.fixtures import fake_nvml, nvml_stub_lib  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.nvml_stub.build import FakeNvml
    from tests.nvml_stub.fixtures import fake_nvml, nvml_stub_lib  # noqa: F401

from wattui.sources.base import JITTER_SETTLE_S, EnergyAccumulator, plausible_max_w
from wattui.sources.nvml import NvmlSource
from wattui.sources.rapl import RaplSource
from wattui.store.reader import Session

# A real RAPL package range (max_energy_range_uj on a Xeon): 262 kJ.
RAPL_RANGE_UJ = 262_143_328_850


# ----------------------------------------------------------------------- the accumulator


def test_a_small_step_back_is_jitter_and_the_sum_continues():
    acc = EnergyAccumulator(max_rate=1000.0)  # 1000 units/s at most
    acc.update(1e9, 0.0)
    acc.update(1e9 + 100, 0.2)
    assert acc.update(1e9 + 95, 0.4) == pytest.approx(100)  # 5 back: nothing added
    assert acc.update(1e9 + 300, 0.6) == pytest.approx(300)  # continues from 1e9 + 100
    assert (acc.jitters, acc.resets) == (1, 0)


def test_a_high_read_then_the_true_value_counts_once():
    acc = EnergyAccumulator(max_rate=1000.0)
    for t, raw in ((0.0, 5000), (0.2, 5100), (0.4, 5350), (0.6, 5300), (0.8, 5400)):
        total = acc.update(raw, t)
    assert total == pytest.approx(400)  # 5400 - 5000: the early high read is not doubled


def test_a_reset_to_near_zero_is_still_a_reset():
    acc = EnergyAccumulator(max_rate=1000.0)
    acc.update(50_000, 0.0)
    acc.update(50_200, 0.2)
    assert acc.update(150, 0.4) == pytest.approx(200 + 150)  # restarted: 150 since
    assert acc.resets == 1 and acc.jitters == 0


def test_a_reset_first_taken_for_jitter_is_recognised_as_time_passes():
    """A counter that restarted at a value above half the last one looks like jitter at
    first; once the elapsed time makes the restart plausible it counts as a reset."""
    acc = EnergyAccumulator(max_rate=100.0)
    acc.update(300, 0.0)
    acc.update(200, 0.2)  # not < 150: jitter
    assert acc.total == 0 and acc.jitters == 1
    acc.update(130, 0.4)  # below half and within 100 * (0.4 + 1): a reset after all
    assert acc.resets == 1 and acc.total == pytest.approx(130)


def test_a_counter_that_stays_low_is_rebased_at_its_first_low_reading():
    acc = EnergyAccumulator(max_rate=100.0)
    acc.update(1e6, 0.0)
    acc.update(9e5, 1.0)  # far too big for a reset within 1 s; not a wrap: jitter
    acc.update(9e5 + 50, 2.0)
    assert acc.total == 0
    acc.update(9e5 + 100 * JITTER_SETTLE_S, 1.0 + JITTER_SETTLE_S)
    assert acc.resets == 1 and acc.jitters == 0
    assert acc.total == pytest.approx(100 * JITTER_SETTLE_S)
    assert acc.update(9e5 + 100 * JITTER_SETTLE_S + 7, 2.0 + JITTER_SETTLE_S) == pytest.approx(
        100 * JITTER_SETTLE_S + 7
    )


def test_a_read_far_ahead_of_any_plausible_power_is_ignored():
    acc = EnergyAccumulator(max_rate=1000.0)
    acc.update(5000, 0.0)
    acc.update(5100, 0.2)
    assert acc.update(5100 + 1e12, 0.4) == pytest.approx(100)  # a garbage read
    assert acc.update(5300, 0.6) == pytest.approx(300)  # continues from 5100
    assert (acc.spikes, acc.resets) == (1, 0)


def test_a_counter_that_jumped_for_good_is_taken_up_from_its_first_high_reading():
    acc = EnergyAccumulator(max_rate=100.0)
    acc.update(1000, 0.0)
    acc.update(1e9, 1.0)  # an offset appeared: 1e9 in 1 s is impossible
    acc.update(1e9 + 50, 2.0)
    assert acc.total == 0
    acc.update(1e9 + 100 * JITTER_SETTLE_S, 1.0 + JITTER_SETTLE_S)
    assert acc.total == pytest.approx(100 * JITTER_SETTLE_S)
    assert (acc.spikes, acc.resets) == (0, 1)


def test_rapl_wrap_uses_the_range_and_the_power_bound():
    rate = plausible_max_w("cpu", 125.0) * 1e6  # uJ/s
    acc = EnergyAccumulator(wrap_at=RAPL_RANGE_UJ, max_rate=rate)
    acc.update(RAPL_RANGE_UJ - 20_000_000, 0.0)  # 20 J below the top
    assert acc.update(30_000_000, 0.2) == pytest.approx(50_000_000)  # over the top: 50 J
    assert acc.wraps == 1
    # 10 uJ back in the middle of the range: 262 kJ in 0.2 s is impossible: jitter
    assert acc.update(29_999_990, 0.4) == pytest.approx(50_000_000)
    assert acc.wraps == 1 and acc.jitters == 1


def test_without_a_bound_only_the_relative_test_applies():
    acc = EnergyAccumulator()
    for raw in (1e9, 1e9 + 10, 1e9 + 5, 1e9 + 20):
        acc.update(raw)
    assert acc.total == pytest.approx(20) and acc.resets == 0


# ----------------------------------------------------------------------- NVML (stand-in)


def _gpu(**kw) -> dict:
    return {f"gpu0.{k}": v for k, v in kw.items()}


def _read(fake, src, t):
    fake.update(time=t)
    (r,) = src.read(t)
    return r


def test_nvml_counter_read_100_j_low_for_0_3_s_adds_nothing(fake_nvml):
    # 300 W, a counter that has been running for a while (1e9 mJ), power limit 350 W
    fake_nvml.configure(count=1, time=0.0, **_gpu(power_w=300, energy_offset_mj=1e9, limit_mw=350000))
    src = NvmlSource(use_env=False)
    try:
        t = 0.0
        while t < 2.0 - 1e-9:
            _read(fake_nvml, src, t)
            t = round(t + 0.1, 6)
        # The counter reads 100 J low for 0.3 s, then catches up.
        fake_nvml.update(**_gpu(energy_offset_mj=1e9 - 100_000))
        for _ in range(3):
            _read(fake_nvml, src, t)
            t = round(t + 0.1, 6)
        fake_nvml.update(**_gpu(energy_offset_mj=1e9))
        while t <= 8.0 + 1e-9:
            r = _read(fake_nvml, src, t)
            t = round(t + 0.1, 6)
        assert r.energy_j == pytest.approx(300 * 8.0, rel=1e-6)  # not 1,354 % too high
        (info,) = src.devices()
        assert any("read back 1x" in n for n in info.notes)
        assert not any("reset" in n for n in info.notes)
    finally:
        src.close()


def test_nvml_5_mj_step_back_at_1e9_mj_is_not_a_reset(fake_nvml):
    fake_nvml.configure(count=1, time=0.0, **_gpu(power_w=100, energy_offset_mj=1e9))
    src = NvmlSource(use_env=False)
    try:
        _read(fake_nvml, src, 0.0)
        assert _read(fake_nvml, src, 1.0).energy_j == pytest.approx(100.0)
        fake_nvml.update(**_gpu(energy_offset_mj=1e9 - 5))  # the same instant, 5 mJ back
        assert _read(fake_nvml, src, 1.0).energy_j == pytest.approx(100.0)  # not +278 Wh
        fake_nvml.update(**_gpu(energy_offset_mj=1e9))
        assert _read(fake_nvml, src, 2.0).energy_j == pytest.approx(200.0)
    finally:
        src.close()


def test_nvml_one_garbage_read_far_ahead_adds_nothing(fake_nvml):
    fake_nvml.configure(count=1, time=0.0, **_gpu(power_w=200, energy_offset_mj=1e9))
    src = NvmlSource(use_env=False)
    try:
        _read(fake_nvml, src, 0.0)
        assert _read(fake_nvml, src, 1.0).energy_j == pytest.approx(200.0)
        fake_nvml.update(**_gpu(energy_offset_mj=1e9 + 1e15))  # a read 1e12 J ahead
        assert _read(fake_nvml, src, 1.2).energy_j == pytest.approx(200.0)
        fake_nvml.update(**_gpu(energy_offset_mj=1e9))
        assert _read(fake_nvml, src, 2.0).energy_j == pytest.approx(400.0)
        (info,) = src.devices()
        assert any("jumped ahead" in n for n in info.notes)
    finally:
        src.close()


def test_nvml_driver_reload_is_still_a_reset(fake_nvml):
    fake_nvml.configure(count=1, time=10.0, **_gpu(power_w=100, energy_offset_mj=5e9))
    src = NvmlSource(use_env=False)
    try:
        _read(fake_nvml, src, 10.0)
        assert _read(fake_nvml, src, 12.0).energy_j == pytest.approx(200.0)
        fake_nvml.update(**_gpu(energy_since=13.0, energy_offset_mj=0))
        assert _read(fake_nvml, src, 14.0).energy_j == pytest.approx(300.0)
        (info,) = src.devices()
        assert any("reset 1x" in n for n in info.notes)
    finally:
        src.close()


# ----------------------------------------------------------------------- RAPL (fake powercap)


def _rapl_tree(root: Path, energy: int) -> Path:
    z = root / "intel-rapl:0"
    z.mkdir(parents=True)
    (z / "name").write_text("package-0\n")
    (z / "energy_uj").write_text(f"{energy}\n")
    (z / "max_energy_range_uj").write_text(f"{RAPL_RANGE_UJ}\n")
    (z / "constraint_0_power_limit_uw").write_text("125000000\n")
    return z


def test_rapl_10_uj_step_back_is_not_a_wrap(tmp_path):
    z = _rapl_tree(tmp_path / "pc", 100_000_000_000)
    src = RaplSource(str(tmp_path / "pc"))
    src.read(0.0)
    (z / "energy_uj").write_text("100020000000\n")  # +20 J in 0.2 s
    (r,) = src.read(0.2)
    assert r.energy_j == pytest.approx(20.0)
    (z / "energy_uj").write_text("100019999990\n")  # 10 uJ back
    (r,) = src.read(0.4)
    assert r.energy_j == pytest.approx(20.0)  # not + 72.8 Wh
    (z / "energy_uj").write_text("100040000000\n")
    (r,) = src.read(0.6)
    assert r.energy_j == pytest.approx(40.0)
    (info,) = src.devices()
    assert any("read back 1x" in n for n in info.notes)


def test_rapl_real_wrap_is_still_a_wrap(tmp_path):
    z = _rapl_tree(tmp_path / "pc", RAPL_RANGE_UJ - 10_000_000)  # 10 J below the top
    src = RaplSource(str(tmp_path / "pc"))
    src.read(0.0)
    (z / "energy_uj").write_text("15000000\n")  # over the top: 25 J in 0.2 s
    (r,) = src.read(0.2)
    assert r.energy_j == pytest.approx(25.0)
    assert r.power_w == pytest.approx(125.0)


# ----------------------------------------------------------------------- the whole recorder


@pytest.mark.slow
def test_a_recording_through_a_counter_that_reads_low_once_keeps_its_energy(
    store, nvml_stub_lib, tmp_path  # noqa: F811
):
    """`wattui record` on the stand-in NVML (real clock), the counter reading 1,000 J low for
    0.6 s mid-run: the session's energy stays power x duration, and meta.json says so.

    A low read is a step back only while the counter has not run past it since the last
    read: 1,000 J at 300 W gives 3.3 s, so every read in the dip is one, and 0.6 s holds two
    whole 0.2 s slots, so a tick reads the dip even on a busy machine (100 J for 0.3 s
    missed it there when the tick before the dip came over 0.33 s earlier)."""
    fake = FakeNvml(nvml_stub_lib, tmp_path / "fake.conf")
    fake.configure(count=1, **_gpu(power_w=300, energy_offset_mj=1e9, limit_mw=350000))
    env = fake.subprocess_env(wattui_env(store))
    go = tmp_path / "go"
    child = f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.02)\n"
    p = subprocess.Popen(
        [sys.executable, "-m", "wattui", "record", "--", sys.executable, "-c", child],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        end = time.monotonic() + 30
        while not list(store.glob("sessions/*/live.json")):
            assert time.monotonic() < end and p.poll() is None, p.stderr.read()
            time.sleep(0.05)
        fake.update(**_gpu(energy_offset_mj=1e9 - 1_000_000))
        time.sleep(0.6)  # the dip: well under 1,000 J / 300 W
        t_back = time.time()
        fake.update(**_gpu(energy_offset_mj=1e9))
        (live,) = store.glob("sessions/*")
        wait_until(lambda: Session.open(live).samples()["t_wall"].max() > t_back, step=0.2,
                   what="a read of the restored counter on disk")
        go.touch()
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    (sdir,) = (store / "sessions").iterdir()
    meta = json.loads((sdir / "meta.json").read_text())
    dur = meta["ended_at"] - meta["started_at"]
    assert meta["summary"]["gpu0"]["energy_j"] == pytest.approx(300 * dur, rel=0.02)
    (gpu0,) = [d for d in meta["devices"] if d["key"] == "gpu0"]
    assert any("read back" in n for n in gpu0["notes"])
