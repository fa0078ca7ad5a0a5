"""Power labels that match NVML, the run's share of a shared GPU, and MIG instances,
against the stand-in NVML library (real pynvml binding, no GPU)."""

from __future__ import annotations

import asyncio
import json
import math
import sys

import pytest
from conftest import pilot_wait_until, run_wattui

try:
    from nvml_stub.build import FakeNvml
    from nvml_stub.fixtures import fake_nvml, nvml_stub_lib  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.nvml_stub.build import FakeNvml
    from tests.nvml_stub.fixtures import fake_nvml, nvml_stub_lib  # noqa: F401

from wattui.sources.base import AVERAGE_1S, ESTIMATED, INSTANT, INTEGRATED, SourceUnavailable
from wattui.sources.nvml import NvmlSource
from wattui.sources.shares import RunShare, split_fraction

NO_COUNTER = "NOT_SUPPORTED"


def gpu(i: int, **kw) -> dict:
    return {f"gpu{i}.{k}": v for k, v in kw.items()}


def read_at(fake: FakeNvml, src: NvmlSource, t: float) -> dict:
    fake.update(time=t)
    return {r.key: r for r in src.read(t)}


@pytest.fixture
def opened():
    srcs: list[NvmlSource] = []
    yield srcs
    for s in srcs:
        s.close()


def open_source(opened, **kw) -> NvmlSource:
    kw.setdefault("use_env", False)
    src = NvmlSource(**kw)
    opened.append(src)
    return src


# ------------------------------------------------------------------ power labels
def test_without_the_instant_field_the_average_field_is_labelled_average(fake_nvml, opened):
    fake_nvml.configure(count=1, time=10.0, **gpu(0, fields="average", power_w=100, ramp_w_per_s=20))
    src = open_source(opened)
    (info,) = src.devices()
    assert info.power_method == AVERAGE_1S
    r = read_at(fake_nvml, src, 12.0)["gpu0"]
    assert r.power_w == pytest.approx(100 + 20 * 11.5)  # the mean over the last second


def test_integration_uses_the_instant_field_even_where_power_usage_is_an_average(
    fake_nvml, opened
):
    """A Hopper vGPU without a counter: nvmlDeviceGetPowerUsage returns a 1 s average, the
    instant field is there, and integration must use the instant one."""
    fake_nvml.configure(
        count=1, time=10.0,
        **gpu(0, power_w=100, ramp_w_per_s=20, usage="average",
              **{"rc.nvmlDeviceGetTotalEnergyConsumption": NO_COUNTER}),
    )
    src = open_source(opened)
    (info,) = src.devices()
    assert (info.energy_method, info.power_method) == (INTEGRATED, INSTANT)
    for t in (10.0, 10.4, 11.0):
        r = read_at(fake_nvml, src, t)["gpu0"]
    assert r.power_w == pytest.approx(100 + 20 * 11.0)
    assert r.energy_j == pytest.approx(100 * 1.0 + 10 * (11.0**2 - 10.0**2), rel=1e-12)


def test_power_usage_without_fields_is_labelled_average_on_hopper(fake_nvml, opened):
    fake_nvml.configure(count=1, time=5.0, **gpu(0, fields=0, power_w=100, ramp_w_per_s=10))
    src = open_source(opened)
    (info,) = src.devices()
    assert info.power_method == AVERAGE_1S
    assert read_at(fake_nvml, src, 5.0)["gpu0"].power_w == pytest.approx(100 + 10 * 4.5)


def test_stub_square_wave_counter_is_its_closed_form(fake_nvml, opened):
    fake_nvml.configure(
        count=1, time=0.0,
        **gpu(0, power_w=100, wave_w=200, wave_period_s=0.5, wave_shape="square", wave_phase=0.25),
    )
    src = open_source(opened)
    read_at(fake_nvml, src, 0.0)
    # high while frac(t/0.5 + 0.25) < 0.5: [0, 0.125) and [0.375, 0.625) ... in [0, 1.3]:
    # 0.125 + 0.25 + 0.25 + (1.3 - 1.375 < 0: the fourth high stretch starts at 1.375) = 0.625
    r = read_at(fake_nvml, src, 1.3)["gpu0"]
    assert r.energy_j == pytest.approx(100 * 1.3 + 200 * 0.625, abs=1e-3)
    assert read_at(fake_nvml, src, 1.4)["gpu0"].power_w == pytest.approx(300.0)
    assert read_at(fake_nvml, src, 1.2)["gpu0"].power_w == pytest.approx(100.0)


# ------------------------------------------------------------------- shared GPUs
def test_split_gives_idle_evenly_and_the_rest_by_sm_share():
    # 200 J over 1 s, idle 50 W: 50 J idle (half each), 150 J dynamic (run has 60 of 80 SM %)
    f = split_fraction(200.0, 1.0, 50.0, {100: 60.0, 200: 20.0}, {100})
    assert f == pytest.approx((25 + 150 * 0.75) / 200)
    assert split_fraction(200.0, 1.0, 50.0, {100: 60.0}, {100}) == 1.0  # alone: all of it
    assert split_fraction(200.0, 1.0, 50.0, {200: 60.0}, {100}) == 0.0  # not on the GPU
    assert split_fraction(200.0, 1.0, 50.0, {}, {100}) == 0.0  # nobody's energy
    # no SM samples from anyone: evenly
    assert split_fraction(200.0, 1.0, 50.0, {100: None, 200: None}, {100}) == 0.5


def test_run_share_is_unknown_when_processes_cannot_be_listed():
    s = RunShare()
    assert s.update(0.0, 0.0, 100.0, None, {1}) is None
    # once listed, the second just gone by is split with what is listed now
    assert s.update(1.0, 100.0, 100.0, {1: 50.0}, {1}) == pytest.approx(100.0)
    assert s.update(2.0, 200.0, 100.0, {1: 50.0, 2: 50.0}, {1}) == pytest.approx(150.0)


def test_source_reports_the_runs_share_of_a_shared_gpu(fake_nvml, opened):
    fake_nvml.configure(
        count=2, time=0.0,
        **gpu(0, power_w=200, pids="100,200", sm="60,20"),
        **gpu(1, power_w=150, pids="100", sm="90"),
    )
    src = open_source(opened, slow_period_s=0.0)
    src.follow_run(lambda: {100, 101}, idle_w={"gpu0": 50.0, "gpu1": 50.0})
    keys = {d.key: d for d in src.devices()}
    assert keys["gpu0:run"].kind == "share"
    assert keys["gpu0:run"].energy_method == ESTIMATED == keys["gpu0:run"].power_method
    for t in (0.0, 1.0, 2.0):
        rs = read_at(fake_nvml, src, t)
    share = rs["gpu0:run"]
    expect = (25 + 150 * 0.75) / 200
    assert share.energy_j == pytest.approx(2 * 200 * expect, rel=1e-6)
    assert share.util_pct == pytest.approx(100 * expect)
    assert share.power_w == pytest.approx(200 * expect)
    assert share.pids == (100,)
    assert rs["gpu0"].energy_j == pytest.approx(400.0, rel=1e-6)  # the device total is untouched
    assert rs["gpu1:run"].energy_j == pytest.approx(rs["gpu1"].energy_j, rel=1e-9)  # alone


def test_process_utilisation_not_supported_splits_evenly_and_says_so(fake_nvml, opened):
    fake_nvml.configure(
        count=1, time=0.0,
        **gpu(0, power_w=100, pids="100,200", sm="90,10",
              **{"rc.nvmlDeviceGetProcessUtilization": "NOT_SUPPORTED"}),
    )
    src = open_source(opened, slow_period_s=0.0)
    src.follow_run(lambda: {100}, idle_w={"gpu0": 0.0})
    for t in (0.0, 1.0):
        rs = read_at(fake_nvml, src, t)
    assert rs["gpu0:run"].energy_j == pytest.approx(50.0, rel=1e-6)
    (info, _share) = src.devices()
    assert any(n.startswith("process utilisation: n/a (NVML NotSupported)") for n in info.notes)


def test_processes_that_cannot_be_listed_leave_the_share_unknown(fake_nvml, opened):
    fake_nvml.configure(
        count=1, time=0.0,
        **gpu(0, **{"rc.nvmlDeviceGetComputeRunningProcesses_v3": "NO_PERMISSION"}),
    )
    src = open_source(opened, slow_period_s=0.0)
    src.follow_run(lambda: {100})
    for t in (0.0, 1.0):
        rs = read_at(fake_nvml, src, t)
    assert rs["gpu0:run"].energy_j is None and rs["gpu0:run"].util_pct is None
    assert rs["gpu0"].energy_j is not None


@pytest.mark.slow
def test_record_shows_the_runs_share_beside_the_device_total(store, nvml_stub_lib, tmp_path):  # noqa: F811
    """A real launch: the child puts itself on GPU 0 beside another process (it rewrites
    the stub's config with its own PID); the session, `show` and the live screen's rows
    carry the run's estimated share next to the device total."""
    fake = FakeNvml(nvml_stub_lib, tmp_path / "fake.conf")
    fake.configure(count=1, **gpu(0, power_w=300, pids="1", sm="50"))
    child = (
        "import os, time\n"
        f"p = {str(fake.config)!r}\n"
        "txt = open(p).read() + f'gpu0.pids=1,{os.getpid()}\\ngpu0.sm=25,75\\n'\n"
        "open(p + '.new', 'w').write(txt); os.replace(p + '.new', p)\n"
        "time.sleep(3)\n"
    )
    env = fake.subprocess_env()
    r = run_wattui(store, "record", "--", sys.executable, "-c", child, **{
        k: v for k, v in env.items() if k in ("LD_LIBRARY_PATH", "WATTUI_FAKE_NVML_CONFIG")
    })
    assert r.returncode == 0, r.stderr
    rec = json.loads(run_wattui(store, "show", "--format", "json").stdout)
    (g0,) = rec["gpus"]
    assert g0["energy_j"] == pytest.approx(300 * rec["duration_s"], rel=0.02)
    # The run kept 75 % of the SMs busy beside a process with 25 %; idle (the lowest power
    # seen, 300 W: a constant load) is shared evenly, so the run's share is about half of
    # what it ran beside the other process, never more than the device's total.
    assert 0 < g0["run_energy_j"] < g0["energy_j"]
    text = run_wattui(store, "show").stdout
    assert "of which this run" in text and "estimated" in text
    meta_devices = json.loads(
        next((store / "sessions").iterdir()).joinpath("meta.json").read_text()
    )["devices"]
    share = [d for d in meta_devices if d["key"] == "gpu0:run"][0]
    assert share["kind"] == "share" and share["energy_method"] == "estimated"
    assert rec["energy_j"] == pytest.approx(g0["energy_j"], rel=1e-9)  # not counted twice

    from wattui.tui.panels import _run_share_cell, gpu_caption
    from wattui.view.snapshot import SnapshotBuilder

    snap = SnapshotBuilder(next((store / "sessions").iterdir())).poll()
    (row,) = snap.gpus
    assert row.has_run_share and row.run_energy_j == pytest.approx(g0["run_energy_j"])
    assert _run_share_cell(row).endswith("Wh")
    assert "run: estimated share" in gpu_caption(snap.gpus)

    async def screen(size):
        from textual.widgets import Label

        from wattui.tui.app import WattuiApp
        from wattui.tui.widgets import GpuTable

        app = WattuiApp(store, next((store / "sessions").iterdir()), refresh_s=0.25)
        async with app.run_test(size=size) as pilot:
            shown = app.live.query_one(GpuTable)
            await pilot_wait_until(pilot, lambda: app.live.snapshot is not None
                                   and "Run (est.)" in getattr(shown, "_wattui_last", ""),
                                   what="the GPU table with the run's share")
            table = app.live.query_one(GpuTable)._wattui_last.plain
            caption = str(app.live.query_one("#gpu-caption", Label).render())
            return table, caption

    for size in ((160, 40), (80, 24)):
        table, caption = asyncio.run(screen(size))
        header, line = table.splitlines()[:2]
        assert header.rstrip().endswith("Run (est.)")
        assert line.rstrip().endswith(_run_share_cell(row))  # beside the device's own energy
        assert max(len(x) for x in table.splitlines()) <= size[0] - 2  # nothing cut off
        assert "run: estimated share" in caption


# ------------------------------------------------------------------------------ MIG
MIG_A = "MIG-4f2d1c3e-aaaa-bbbb-cccc-123456789abc"
MIG_B = "MIG-4f2d1c3e-dddd-bbbb-cccc-123456789abc"


def test_mig_instances_select_their_parent_gpu(fake_nvml, opened):
    fake_nvml.configure(count=3, **gpu(1, mig=f"{MIG_A},{MIG_B}"))
    src = open_source(opened, visible=f"{MIG_A},{MIG_B}", use_env=True)
    assert src.indices == [1]  # both instances are on GPU 1: measured once
    (info,) = src.devices()
    assert any(n.startswith("MIG:") and "per parent GPU" in n for n in info.notes)
    assert MIG_A in " ".join(info.notes)


def test_old_style_mig_entries_name_their_parent(fake_nvml, opened):
    fake_nvml.configure(count=2)
    uuid0 = NvmlSource(use_env=False).devices()[0].uuid
    src = open_source(opened, visible=f"MIG-{uuid0}/1/0", use_env=True)
    assert src.indices == [0]


def test_an_unknown_mig_instance_selects_nothing(fake_nvml):
    fake_nvml.configure(count=2, **gpu(1, mig=MIG_A))
    with pytest.raises(SourceUnavailable, match="selects no GPU"):
        NvmlSource(visible=MIG_B, use_env=True)


def test_mig_caption_says_energy_is_per_parent_gpu():
    from wattui.tui.widgets import gpu_caption
    from wattui.view.snapshot import GpuRow

    row = GpuRow("gpu1", 1, "H100", 100.0, INSTANT, None, None, None, None, 1.0, "counter",
                 mig=True)
    assert "MIG: energy is per parent GPU" in gpu_caption([row])
    assert not math.isnan(row.watts)


@pytest.mark.slow
def test_a_run_on_a_mig_instance_is_measured_on_its_parent_and_the_screen_says_so(
    store, nvml_stub_lib, tmp_path  # noqa: F811
):
    fake = FakeNvml(nvml_stub_lib, tmp_path / "fake.conf")
    fake.configure(count=2, **gpu(1, mig=MIG_A, power_w=250))
    env = fake.subprocess_env()
    r = run_wattui(store, "record", "--", sys.executable, "-c", "import time; time.sleep(1)", **{
        k: v for k, v in env.items() if k in ("LD_LIBRARY_PATH", "WATTUI_FAKE_NVML_CONFIG")
    }, CUDA_VISIBLE_DEVICES=MIG_A)
    assert r.returncode == 0, r.stderr
    rec = json.loads(run_wattui(store, "show", "--format", "json").stdout)
    assert [g["key"] for g in rec["gpus"]] == ["gpu1"]
    assert rec["gpus"][0]["energy_j"] == pytest.approx(250 * rec["duration_s"], rel=0.02)

    from wattui.tui.widgets import gpu_caption
    from wattui.view.snapshot import SnapshotBuilder

    snap = SnapshotBuilder(next((store / "sessions").iterdir())).poll()
    assert snap.gpus[0].mig
    assert "MIG: energy is per parent GPU" in gpu_caption(snap.gpus)


SLOW_CALLS = ("nvmlDeviceGetFieldValues", "nvmlDeviceGetUtilizationRates", "nvmlDeviceGetMemoryInfo",
              "nvmlDeviceGetTemperature", "nvmlDeviceGetComputeRunningProcesses_v3",
              "nvmlDeviceGetProcessUtilization")


def test_light_ticks_read_only_the_counters_and_the_share_stays_the_same(fake_nvml, opened):
    """Between full ticks (about once a second) a tick reads only the field call: no
    utilisation, memory, temperature or process calls, and no share reading. The share
    then spans a second of energy at once; with the idle power fixed its split is linear
    in the energy, so its total is what a share updated at every tick gives."""
    fake_nvml.configure(
        count=1, time=0.0,
        **gpu(0, power_w=200, ramp_w_per_s=40, pids="100,200", sm="60,20"),
    )
    every, light = open_source(opened), open_source(opened)
    for s in (every, light):
        s.follow_run(lambda: {100}, idle_w={"gpu0": 50.0})
    fake_nvml.reset_calls()
    got_every, got_light = [], []
    for k in range(26):  # 0 .. 5 s at 0.2 s; full at each whole second and at the end
        t = 0.2 * k
        fake_nvml.update(time=t)
        full = k % 5 == 0 or k == 25
        got_every.append({r.key: r for r in every.decode(every.capture(t))})
        before = {fn: fake_nvml.calls(fn) for fn in SLOW_CALLS}
        got_light.append({r.key: r for r in light.decode(light.capture(t, full))})
        made = {fn: fake_nvml.calls(fn) - n for fn, n in before.items()}
        assert made.pop("nvmlDeviceGetFieldValues") == 1
        assert all(made.values()) if full else not any(made.values()), (k, made)
        assert ("gpu0:run" in got_light[-1]) == full
        assert got_light[-1]["gpu0"].energy_j == got_every[-1]["gpu0"].energy_j
    assert got_light[-1]["gpu0:run"].energy_j == pytest.approx(
        got_every[-1]["gpu0:run"].energy_j, rel=1e-9)
    assert got_light[-1]["gpu0:run"].energy_j > 0


def test_a_process_that_left_just_before_a_full_tick_keeps_its_part_of_the_second(
        fake_nvml, opened):
    """Full ticks split about a second at once: the processes of that interval are those
    listed at either end, so a run whose process left just before the last read (the
    session's end) still gets the second it ran in, and one that starts gets its first."""
    fake_nvml.configure(count=1, time=0.0, **gpu(0, power_w=200, pids="", sm=""))
    src = open_source(opened)
    run = {"pids": set()}
    src.follow_run(lambda: run["pids"], idle_w={"gpu0": 0.0})
    shares = []
    for t, on in ((0.0, False), (1.0, True), (2.0, True), (3.0, True), (4.0, False)):
        # the process list as the full tick at t sees it (the run's process is on the GPU
        # from 0.5 s to 3.9 s)
        fake_nvml.update(time=t, **gpu(0, pids="100" if on else "", sm="90" if on else ""))
        run["pids"] = {100} if on else set()
        rs = {r.key: r for r in src.decode(src.capture(t))}
        shares.append(rs["gpu0:run"].energy_j)
    # 0-1 s: listed at its end; 3-4 s: listed at its start; alone on the GPU: all of it
    assert shares[-1] == pytest.approx(rs["gpu0"].energy_j, rel=1e-9)
    assert shares[1] == pytest.approx(200.0, rel=1e-6)
