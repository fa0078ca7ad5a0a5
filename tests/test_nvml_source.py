"""NvmlSource against the real pynvml binding talking to a stand-in libnvidia-ml
(tests/nvml_stub/fake_nvml.c, compiled with gcc at test time). No GPU needed.

The stub's clock is fixed by its config (``time=T``) and each read passes the same T as
``t_mono``, so energies are checked against exact integrals of the stub's power
P(t) = power_w + ramp_w_per_s * t.
"""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

import pytest

try:
    from nvml_stub.build import FakeNvml, StubUnavailable, build_stub
    from nvml_stub.fixtures import fake_nvml, nvml_stub_lib  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.nvml_stub.build import FakeNvml, StubUnavailable, build_stub
    from tests.nvml_stub.fixtures import fake_nvml, nvml_stub_lib  # noqa: F401

from wattui.sources.base import (
    AVERAGE_1S,
    COUNTER,
    DERIVED,
    INSTANT,
    INTEGRATED,
    SourceUnavailable,
)
from wattui.sources.nvml import NvmlSource
from wattui.sources.nvml_lib import gpus_of_pids
from wattui.sources.nvml_probe import nvml_probe
from wattui.sources.visible import select_devices

REPO = Path(__file__).resolve().parents[1]
NO_COUNTER = {"rc.nvmlDeviceGetTotalEnergyConsumption": "NOT_SUPPORTED"}


def linear_energy(a: float, b: float, t0: float, t1: float) -> float:
    """Exact integral of a + b*t from t0 to t1 (J)."""
    return a * (t1 - t0) + b * (t1 * t1 - t0 * t0) / 2.0


def gpu(i: int, **kw) -> dict:
    return {f"gpu{i}.{k}": v for k, v in kw.items()}


def read_at(fake: FakeNvml, src: NvmlSource, t: float) -> dict:
    fake.update(time=t)
    return {r.key: r for r in src.read(t)}


@pytest.fixture
def source_factory(fake_nvml):
    opened: list[NvmlSource] = []

    def make(**kw) -> NvmlSource:
        kw.setdefault("use_env", False)
        src = NvmlSource(**kw)
        opened.append(src)
        return src

    yield make
    for s in opened:
        s.close()


# --------------------------------------------------------------------------- energy
def test_counter_energy_is_exact_and_power_is_the_instant_field(fake_nvml, source_factory):
    fake_nvml.configure(count=1, time=10.0, **gpu(0, power_w=100, ramp_w_per_s=20))
    src = source_factory()
    (info,) = src.devices()
    assert (info.energy_method, info.power_method) == (COUNTER, INSTANT)
    assert info.name == "NVIDIA H100 80GB HBM3" and info.uuid.startswith("GPU-")
    assert info.driver == "550.54.15" and info.power_limit_w == 700.0
    assert not src.needs_fast_poll

    r0 = read_at(fake_nvml, src, 10.0)["gpu0"]
    assert r0.energy_j == 0.0
    r1 = read_at(fake_nvml, src, 12.0)["gpu0"]
    assert r1.energy_j == pytest.approx(linear_energy(100, 20, 10.0, 12.0), abs=1e-9)  # 640 J
    assert r1.energy_method == COUNTER
    # NVML_FI_DEV_POWER_INSTANT: the power at t = 12 (the 1 s average would say 330)
    assert r1.power_w == pytest.approx(340.0)
    assert r1.power_method == INSTANT


def test_no_counter_integrates_instant_power_exactly(fake_nvml, source_factory):
    fake_nvml.configure(
        count=1, time=10.0, **gpu(0, name="Tesla P100", arch=4, power_w=100, ramp_w_per_s=20),
        **{"gpu0.rc.nvmlDeviceGetTotalEnergyConsumption": "NOT_SUPPORTED"},
    )
    src = source_factory()
    (info,) = src.devices()
    assert (info.energy_method, info.power_method) == (INTEGRATED, INSTANT)
    assert any(n.startswith("energy counter: n/a (NVML NotSupported)") for n in info.notes)
    assert src.needs_fast_poll and src.recommended_period_s <= 0.1

    times = [10.0, 10.1, 10.25, 10.3, 10.3, 10.9, 11.0]  # uneven, one repeated read
    for t in times:
        r = read_at(fake_nvml, src, t)["gpu0"]
        assert r.power_w == pytest.approx(100 + 20 * t)
    # Trapezoids are exact for a linear power: integral of 100 + 20 t over [10, 11]
    assert r.energy_j == pytest.approx(linear_energy(100, 20, 10.0, 11.0), rel=1e-12)  # 310 J
    assert r.energy_method == INTEGRATED and r.power_method == INSTANT


def test_power_polls_between_reads_go_into_the_integral_only_where_there_is_no_counter(
    fake_nvml, source_factory
):
    fake_nvml.configure(
        count=2, time=0.0, **gpu(0, power_w=200), **gpu(1, power_w=50),
        **{"gpu1.rc.nvmlDeviceGetTotalEnergyConsumption": "NOT_SUPPORTED"},
    )
    src = source_factory()
    read_at(fake_nvml, src, 0.0)
    fake_nvml.reset_calls()
    fake_nvml.update(time=0.5, **gpu(1, power_w=150))  # a step the poll at 0.5 sees
    src.poll_power(0.5)
    # only the GPU without a counter was asked
    assert fake_nvml.calls("nvmlDeviceGetFieldValues") == 1
    assert fake_nvml.calls("nvmlDeviceGetTotalEnergyConsumption") == 0
    rs = read_at(fake_nvml, src, 1.0)
    # trapezoids over 0, 0.5 (the poll), 1.0: 0.5 * (50 + 150) / 2 + 0.5 * 150 = 125 J
    # (without the poll, (50 + 150) / 2 * 1 = 100 J)
    assert rs["gpu1"].energy_j == pytest.approx(125.0, rel=1e-12)
    assert rs["gpu0"].energy_j == pytest.approx(200.0)  # the counter, untouched by polls


def test_counter_and_integrated_gpus_side_by_side(fake_nvml, source_factory):
    fake_nvml.configure(
        count=2, time=0.0, **gpu(0, power_w=200), **gpu(1, power_w=50, ramp_w_per_s=10),
        **{"gpu1.rc.nvmlDeviceGetTotalEnergyConsumption": "NOT_SUPPORTED"},
    )
    src = source_factory()
    assert [d.energy_method for d in src.devices()] == [COUNTER, INTEGRATED]
    assert src.needs_fast_poll
    for t in (0.0, 0.5, 1.0, 2.0):
        rs = read_at(fake_nvml, src, t)
    assert rs["gpu0"].energy_j == pytest.approx(400.0)
    assert rs["gpu1"].energy_j == pytest.approx(linear_energy(50, 10, 0.0, 2.0))  # 120 J


def test_counter_reset_keeps_the_sum(fake_nvml, source_factory):
    fake_nvml.configure(count=1, time=10.0, **gpu(0, power_w=100, energy_offset_mj=5e6))
    src = source_factory()
    read_at(fake_nvml, src, 10.0)
    assert read_at(fake_nvml, src, 12.0)["gpu0"].energy_j == pytest.approx(200.0)
    # Driver reload at t=13: the counter restarts from 0 and counts from then on.
    fake_nvml.update(**gpu(0, energy_since=13.0, energy_offset_mj=0))
    r = read_at(fake_nvml, src, 14.0)["gpu0"]
    # 10..12 before, 13..14 after; 12..13 is unknowable and must not be invented
    assert r.energy_j == pytest.approx(200.0 + 100.0)
    assert read_at(fake_nvml, src, 15.0)["gpu0"].energy_j == pytest.approx(400.0)
    (info,) = src.devices()
    assert any("reset 1x" in n for n in info.notes)


def test_transient_error_is_one_tick_na_and_the_counter_bridges_it(fake_nvml, source_factory):
    fake_nvml.configure(count=1, time=0.0, **gpu(0, power_w=100))
    src = source_factory()
    read_at(fake_nvml, src, 0.0)
    fake_nvml.update(**gpu(0, **{"rc.nvmlDeviceGetTotalEnergyConsumption": "UNKNOWN"}))
    assert read_at(fake_nvml, src, 1.0)["gpu0"].energy_j is None
    fake_nvml.update(**gpu(0, **{"rc.nvmlDeviceGetTotalEnergyConsumption": "SUCCESS"}))
    assert read_at(fake_nvml, src, 2.0)["gpu0"].energy_j == pytest.approx(200.0)
    assert src.devices()[0].notes == ()


def test_a_failed_field_call_falls_back_to_one_call_per_figure(fake_nvml, source_factory):
    """The counter and the power come from one field call per tick; when that call fails
    the tick is n/a and the separate calls take over, the counter bridging the gap."""
    fake_nvml.configure(count=1, time=0.0, **gpu(0, power_w=100))
    src = source_factory()
    read_at(fake_nvml, src, 0.0)
    fake_nvml.update(**gpu(0, **{"rc.nvmlDeviceGetFieldValues": "UNKNOWN"}))
    r = read_at(fake_nvml, src, 1.0)["gpu0"]
    assert (r.energy_j, r.power_w) == (None, None)
    fake_nvml.reset_calls()
    r = read_at(fake_nvml, src, 2.0)["gpu0"]
    assert r.energy_j == pytest.approx(200.0) and r.power_w is None  # field still failing
    assert fake_nvml.calls("nvmlDeviceGetTotalEnergyConsumption") == 1
    fake_nvml.update(**gpu(0, **{"rc.nvmlDeviceGetFieldValues": "SUCCESS"}))
    r = read_at(fake_nvml, src, 3.0)["gpu0"]
    assert r.energy_j == pytest.approx(300.0) and r.power_w == pytest.approx(100.0)
    assert src.devices()[0].notes == ()


def test_without_the_raw_field_call_each_figure_has_its_own_call(
    fake_nvml, source_factory, monkeypatch
):
    """A pynvml whose internals differ (no function pointer or field struct to borrow):
    the binding's public calls, one per figure, with the same figures."""
    import wattui.sources.nvml as nvml_mod

    monkeypatch.setattr(nvml_mod, "raw_field_values", lambda nv: (None, None))
    fake_nvml.configure(count=2, time=0.0, **gpu(0, power_w=100),
                        **gpu(1, power_w=50, **NO_COUNTER))
    src = source_factory()
    read_at(fake_nvml, src, 0.0)
    fake_nvml.reset_calls()
    fake_nvml.update(time=0.5)
    src.poll_power(0.5)
    rs = read_at(fake_nvml, src, 1.0)
    assert rs["gpu0"].energy_j == pytest.approx(100.0) and rs["gpu0"].power_w == pytest.approx(100.0)
    assert rs["gpu1"].energy_j == pytest.approx(50.0) and rs["gpu1"].power_w == pytest.approx(50.0)
    assert fake_nvml.calls("nvmlDeviceGetTotalEnergyConsumption") == 1
    assert fake_nvml.calls("nvmlDeviceGetFieldValues") == 3  # two reads, one poll


def test_derived_power_when_power_is_not_readable(fake_nvml, source_factory):
    fake_nvml.configure(
        count=1, time=0.0,
        **gpu(0, power_w=100, ramp_w_per_s=40, fields=0,
              **{"rc.nvmlDeviceGetPowerUsage": "NOT_SUPPORTED"}),
    )
    src = source_factory()
    assert src.devices()[0].power_method == DERIVED
    assert read_at(fake_nvml, src, 0.0)["gpu0"].power_w is None
    assert read_at(fake_nvml, src, 0.25)["gpu0"].power_w is None  # window < 0.5 s
    r = read_at(fake_nvml, src, 0.5)["gpu0"]
    assert r.power_w == pytest.approx(linear_energy(100, 40, 0.0, 0.5) / 0.5)  # 110 W
    assert r.power_method == DERIVED


# ------------------------------------------------------------ degrading per figure
def test_not_supported_figure_is_na_noted_and_not_retried(fake_nvml, source_factory):
    fake_nvml.configure(
        count=1, time=0.0,
        **gpu(0, util_gpu=87, mem_used=3 << 30, temp_c=61, pids="11,12",
              **{"rc.nvmlDeviceGetTemperature": "NOT_SUPPORTED"}),
    )
    src = source_factory()
    fake_nvml.reset_calls()
    for t in (0.0, 1.0, 2.0, 3.0):
        r = read_at(fake_nvml, src, t)["gpu0"]
    assert r.temp_c is None
    assert (r.util_pct, r.mem_used_b, r.pids) == (87.0, float(3 << 30), (11, 12))
    assert r.energy_j is not None and r.power_w is not None
    assert fake_nvml.calls("nvmlDeviceGetTemperature") == 1
    notes = src.devices()[0].notes
    assert "temperature: n/a (NVML NotSupported)" in notes
    assert (p := nvml_probe()[0])["temperature"] == "n/a"
    assert [x["figure"] for x in p["problems"]] == ["temperature"]


def test_slow_figures_are_read_at_most_once_per_second(fake_nvml, source_factory):
    fake_nvml.configure(count=2, time=0.0, **gpu(0, util_gpu=10))
    src = source_factory()
    fake_nvml.reset_calls()
    times = [i * 0.25 for i in range(9)]  # 0 .. 2 s, every 250 ms
    seen = []
    for t in times:
        if t == 0.5:
            fake_nvml.update(**gpu(0, util_gpu=90))
        seen.append(read_at(fake_nvml, src, t)["gpu0"].util_pct)
    n = len(times)
    # the counter and the power field in one nvmlDeviceGetFieldValues call per GPU a tick
    assert fake_nvml.calls("nvmlDeviceGetTotalEnergyConsumption") == 0
    assert fake_nvml.calls("nvmlDeviceGetFieldValues") == 2 * n
    for fn in ("nvmlDeviceGetUtilizationRates", "nvmlDeviceGetMemoryInfo",
               "nvmlDeviceGetTemperature", "nvmlDeviceGetComputeRunningProcesses_v3"):
        assert fake_nvml.calls(fn) == 2 * 3, fn  # at t = 0, 1, 2
    assert seen == [10.0] * 4 + [90.0] * 5  # the new value shows at the next second


def test_function_not_found_falls_back_by_architecture(tmp_path):
    try:
        lib = build_stub(tmp_path / "build", omit=(
            "nvmlDeviceGetFieldValues", "nvmlDeviceGetEnforcedPowerLimit"))
    except StubUnavailable as e:
        pytest.skip(str(e))
    fake = FakeNvml(lib, tmp_path / "conf")
    fake.configure(
        count=4, time=5.0, **{"*.ramp_w_per_s": 10, "*.power_w": 100, "*.limit_mw": 350000},
        **gpu(0, name="NVIDIA H100 80GB HBM3", arch=9),
        **gpu(1, name="NVIDIA A100-SXM4-80GB", arch=7),
        **gpu(2, name="Tesla V100-SXM2-16GB", arch=5),
        **gpu(3, name="NVIDIA L4", arch=8),
    )
    with fake.activated():
        src = NvmlSource(use_env=False)
        try:
            infos = src.devices()
            assert [d.power_method for d in infos] == [AVERAGE_1S, INSTANT, INSTANT, AVERAGE_1S]
            assert all(d.power_limit_w == 350.0 for d in infos)  # management limit
            assert all(
                "power fields: n/a (NVML FunctionNotFound): live-power label taken from the "
                "architecture" in d.notes
                for d in infos
            )
            rs = {r.key: r for r in src.read(5.0)}
            assert rs["gpu0"].power_w == pytest.approx(100 + 10 * 4.5)  # 1 s average
            assert rs["gpu1"].power_w == pytest.approx(100 + 10 * 5.0)  # instantaneous
        finally:
            src.close()


def test_power_fields_not_supported_uses_architecture_label(fake_nvml, source_factory):
    fake_nvml.configure(count=1, time=3.0, **gpu(0, fields=0, arch=6, name="Tesla T4"))
    src = source_factory()
    (info,) = src.devices()
    assert info.power_method == INSTANT
    assert any(n.startswith("power fields: n/a (NVML NotSupported)") for n in info.notes)


# --------------------------------------------------------------------- init errors
def test_driver_not_loaded_is_one_line_source_unavailable(fake_nvml):
    fake_nvml.configure(init="DRIVER_NOT_LOADED")
    with pytest.raises(SourceUnavailable) as ei:
        NvmlSource(use_env=False)
    msg = str(ei.value)
    assert "\n" not in msg and "Driver Not Loaded" in msg and "nvidia-smi" in msg
    (entry,) = nvml_probe()
    assert entry["available"] is False and entry["message"] == msg
    assert gpus_of_pids({1}) is None


def test_zero_gpus_is_source_unavailable(fake_nvml):
    fake_nvml.configure(count=0)
    with pytest.raises(SourceUnavailable, match="no GPU"):
        NvmlSource(use_env=False)


def _run_py(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60,
    )


def test_missing_library_and_lazy_imports_in_a_clean_process():
    if ctypes.util.find_library("nvidia-ml"):
        pytest.skip("a real libnvidia-ml is installed here; the missing-library case needs none")
    code = (
        "import sys\n"
        "import wattui.sources.nvml as n, wattui.sources.nvml_lib as lib, wattui.sources.rapl\n"
        "import wattui.sources.nvml_probe as probe\n"
        "assert 'pynvml' not in sys.modules, 'pynvml imported at module import'\n"
        "assert not any(m.startswith('textual') for m in sys.modules)\n"
        "try:\n    n.NvmlSource()\nexcept n.SourceUnavailable as e:\n    print('SU', e)\n"
        "print('PROBE', probe.nvml_probe()[0]['available'], lib.gpus_of_pids({1}))\n"
    )
    p = _run_py(code)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("SU no NVIDIA driver library (libnvidia-ml.so.1 not found)")
    assert lines[1] == "PROBE False None"
    assert "Traceback" not in p.stderr


def test_subprocess_finds_stub_through_ld_library_path(fake_nvml):
    fake_nvml.configure(count=8)
    code = (
        "from wattui.sources.nvml import NvmlSource\n"
        "import time\n"
        "s = NvmlSource(use_env=False)\n"
        "print(len(s.devices()), sorted({r.energy_method for r in s.read(time.monotonic())}))\n"
    )
    p = _run_py(code, env=fake_nvml.subprocess_env())
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "8 ['counter']"


# ------------------------------------------------------------ CUDA_VISIBLE_DEVICES
UUIDS = [
    "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6",
    "GPU-8932f000-0000-0000-0000-000000000001",
    "GPU-1a2b3c4d-0000-0000-0000-000000000002",
    "GPU-ffff0000-0000-0000-0000-000000000003",
]
ALL = list(enumerate(UUIDS))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, [0, 1, 2, 3]),
        ("", []),
        ("  ", []),
        ("-1", []),
        ("2", [2]),
        ("1,0", [1, 0]),
        (" 3 , 1 ", [3, 1]),
        ("0,-1,1", [0]),  # an invalid entry ends the list
        ("7", []),
        ("1,7,2", [1]),
        ("1,1,2", [1, 2]),
        (UUIDS[2], [2]),
        (UUIDS[3].upper().replace("GPU-", "gpu-"), [3]),
        ("GPU-1a2b", [2]),  # unique prefix
        ("GPU-8932", []),  # ambiguous prefix
        ("GPU-8932f937,3", [0, 3]),
        ("MIG-4f2d1c3e-aaaa-bbbb-cccc-123456789abc", []),
        ("abc", []),
    ],
)
def test_select_devices(value, expected):
    assert select_devices(value, ALL) == expected


def test_source_honours_cuda_visible_devices(fake_nvml, monkeypatch):
    fake_nvml.configure(count=4)
    uuid0 = "GPU-fa4e0000-0000-4000-8000-000000000000"  # the stub's default for GPU 0
    src = NvmlSource(visible=f"2,{uuid0}")
    assert src.indices == [2, 0] and [d.key for d in src.devices()] == ["gpu2", "gpu0"]
    src.close()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    src = NvmlSource()
    assert src.indices == [3]
    src.close()
    src = NvmlSource(use_env=False)
    assert src.indices == [0, 1, 2, 3]
    src.close()
    src = NvmlSource(indices=[1])
    assert src.indices == [1]
    src.close()
    assert [e["visible"] for e in nvml_probe()] == [False, False, False, True]
    for bad in ("", "-1"):
        with pytest.raises(SourceUnavailable, match="selects no GPU"):
            NvmlSource(visible=bad)
    with pytest.raises(SourceUnavailable, match="no GPU 9"):
        NvmlSource(indices=[9])


# ------------------------------------------------------------------ pids and close
def test_gpus_of_pids(fake_nvml):
    fake_nvml.configure(count=3, **gpu(1, pids="1234,99"), **gpu(2, pids="5"))
    assert gpus_of_pids({5, 1234}) == [1, 2]
    assert gpus_of_pids({42}) == []
    fake_nvml.update(**gpu(0, **{"rc.nvmlDeviceGetComputeRunningProcesses_v3": "NO_PERMISSION"}))
    assert gpus_of_pids({42}) is None  # GPU 0 cannot tell
    assert gpus_of_pids({5}) == [2]
    src = NvmlSource(use_env=False)
    assert src.gpus_of_pids({99}) == [1]
    src.close()


def test_close_shuts_nvml_down_once(fake_nvml):
    fake_nvml.reset_calls()
    src = NvmlSource(use_env=False)
    src.close()
    src.close()
    assert fake_nvml.calls("nvmlInitWithFlags") == 1
    assert fake_nvml.calls("nvmlShutdown") == 1
    with pytest.raises(SourceUnavailable):
        src.read(0.0)


def test_probe_reports_methods_and_fixes(fake_nvml):
    fake_nvml.configure(
        count=2, **gpu(1, name="Tesla P40", arch=4, **NO_COUNTER,
                       **{"rc.nvmlDeviceGetComputeRunningProcesses_v3": "NO_PERMISSION"}),
    )
    p0, p1 = nvml_probe()
    assert (p0["energy"], p0["power"], p0["power_label_from"]) == ("counter", "instant", "field")
    assert p0["problems"] == [] and p0["architecture"] == "Hopper"
    assert (p1["energy"], p1["power"], p1["architecture"]) == ("integrated", "instant", "Pascal")
    probs = {x["figure"]: x for x in p1["problems"]}
    assert set(probs) == {"energy counter", "processes"}
    assert "integrates power" in probs["energy counter"]["fix"]
    assert probs["processes"]["why"] == "NVML NoPermission" and "root" in probs["processes"]["fix"]
    assert p1["processes"] == "n/a"


def test_gpu_that_cannot_be_opened_is_skipped_and_reported(fake_nvml):
    fake_nvml.configure(
        count=3, **gpu(1, **{"rc.nvmlDeviceGetHandleByIndex_v2": "NO_PERMISSION"}),
        **gpu(2, pids="77"),
    )
    src = NvmlSource(use_env=False)
    assert src.indices == [0, 2] and src.skipped == {1: "NoPermission"}
    src.close()
    probe = nvml_probe()
    assert [(e["index"], e["available"]) for e in probe] == [(0, True), (1, False), (2, True)]
    assert "GPU 1 cannot be opened (NVML NoPermission)" in probe[1]["message"]
    with pytest.raises(SourceUnavailable, match="GPU 1 cannot be opened"):
        NvmlSource(indices=[1])
    assert gpus_of_pids({77}) == [2]
    assert gpus_of_pids({78}) is None  # GPU 1 might hold it


# ------------------------------------------------------------- capture now, decode later
def test_reads_decoded_a_batch_later_equal_reads_decoded_at_once(fake_nvml, source_factory):
    """The sampler's ticks only capture (the field calls and a copy of their bytes) and
    decode a second's ticks at once: the readings, energies and the run's shares must be
    exactly those of reads decoded at once, also across a change of the GPUs' processes."""
    fake_nvml.configure(
        count=2, time=10.0,
        **gpu(0, power_w=200, ramp_w_per_s=30, pids="100,200", sm="60,20"),
        **gpu(1, power_w=150, ramp_w_per_s=-5, pids="100", sm="90"),
    )
    now_src, later_src = source_factory(), source_factory()
    run = {"pids": (100,)}
    for s in (now_src, later_src):
        s.follow_run(lambda: run["pids"], None)
    assert later_src._deferred  # every GPU batched, none integrates: decode can wait
    at_once, captured = [], []
    for k in range(12):
        t = 10.0 + 0.2 * k
        if k == 6:  # the processes change mid-batch: each tick keeps its own
            fake_nvml.update(**gpu(0, pids="100,200,300", sm="10,10,80"))
            run["pids"] = (100, 300)
        fake_nvml.update(time=t)
        at_once.append(now_src.read(t))
        captured.append(later_src.capture(t))
    later = [later_src.decode(c) for c in captured]
    assert later == at_once
    shares = [r for tick in later for r in tick if r.key == "gpu0:run"]
    assert shares[-1].energy_j > shares[5].energy_j > 0
    assert shares[-1].pids == (100, 300) and shares[5].pids == (100,)
    first, last = later[0][0], later[-1][0]
    assert last.energy_j - first.energy_j == pytest.approx(
        linear_energy(200, 30, 10.0, 12.2), abs=0.01
    )


def test_slow_figures_come_from_plain_c_calls_as_the_binding_gives_them(
        fake_nvml, source_factory, monkeypatch):
    """Utilisation, memory, temperature and processes are read through C calls into
    structs made once; what they give, failures included, is what the binding gives.
    More processes than the raw call has room for: the binding's call lists them all."""
    import pynvml

    from wattui.sources import nvml_lib

    monkeypatch.setattr(nvml_lib, "PROCS_ROOM", 2)
    fake_nvml.configure(
        count=3, time=0.0,
        **gpu(0, util_gpu=37, pids="100,200"),
        **gpu(1, pids="100,200,300", **{"rc.nvmlDeviceGetTemperature": "NOT_SUPPORTED"}),
        **gpu(2, **{"rc.nvmlDeviceGetComputeRunningProcesses_v3": "NO_PERMISSION",
                    "rc.nvmlDeviceGetMemoryInfo": "UNKNOWN"}),
    )
    binding = source_factory()
    binding._raw_slow = None
    raw = source_factory()
    assert raw._raw_slow is not None
    want = binding.read(0.0)
    calls = {"n": 0}
    real = pynvml.nvmlDeviceGetComputeRunningProcesses

    def counted(handle):
        calls["n"] += 1
        return real(handle)

    def never(*a, **k):
        raise AssertionError("the binding's wrapper was called")

    for name in ("nvmlDeviceGetUtilizationRates", "nvmlDeviceGetMemoryInfo",
                 "nvmlDeviceGetTemperature"):
        monkeypatch.setattr(pynvml, name, never)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetComputeRunningProcesses", counted)
    got = raw.read(0.0)
    assert got == want
    by = {r.key: r for r in got}
    assert by["gpu0"].util_pct == 37.0 and by["gpu0"].pids == (100, 200)
    assert by["gpu1"].temp_c is None and by["gpu1"].pids == (100, 200, 300)
    assert by["gpu2"].pids is None and by["gpu2"].mem_used_b is None
    assert calls["n"] == 1  # gpu1's three processes: more than the raw call's room
    assert [d.notes for d in raw.devices()] == [d.notes for d in binding.devices()]
