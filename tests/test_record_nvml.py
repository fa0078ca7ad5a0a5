"""The whole recorder, as a user runs it, on GPUs served by the stand-in NVML library:
the real pynvml binding, a real subprocess, a constant known power per GPU."""

import json
import sys

import polars as pl
import pytest
from conftest import run_wattui
from nvml_stub.build import FakeNvml
from nvml_stub.fixtures import nvml_stub_lib  # noqa: F401


@pytest.fixture
def two_gpus(nvml_stub_lib, tmp_path):  # noqa: F811
    fake = FakeNvml(nvml_stub_lib, tmp_path / "fake.conf")
    # GPU 0 has an energy counter (Hopper); GPU 1 has none, so wattui integrates its power.
    fake.configure(
        count=2,
        **{
            "gpu0.power_w": 300,
            "gpu0.pids": "1",  # a process that is not the run's
            "gpu1.power_w": 120,
            "gpu1.arch": 4,
            "gpu1.rc.nvmlDeviceGetTotalEnergyConsumption": "NOT_SUPPORTED",
            "gpu1.rc.nvmlDeviceGetTemperature": "NOT_SUPPORTED",
        },
    )
    return fake


@pytest.mark.slow
def test_record_measures_counter_and_integrated_gpus(store, two_gpus):
    env = two_gpus.subprocess_env()
    r = run_wattui(store, "record", "--", sys.executable, "-c", "import time; time.sleep(2)", **{
        k: v for k, v in env.items() if k in ("LD_LIBRARY_PATH", "WATTUI_FAKE_NVML_CONFIG")
    })
    assert r.returncode == 0, r.stderr
    assert "no GPU energy" not in r.stderr
    show = run_wattui(store, "show", "--format", "json")
    rec = json.loads(show.stdout)
    assert rec["simulated"] is False
    g0, g1 = rec["gpus"]
    assert g0["method"] == "counter"
    assert g1["method"] == "integrated"
    dur = rec["duration_s"]
    # Constant power: energy is power x the session's own duration (counter rounds to mJ).
    assert g0["energy_j"] == pytest.approx(300 * dur, rel=0.01)
    assert g1["energy_j"] == pytest.approx(120 * dur, rel=0.01)
    assert g0["mean_w"] == pytest.approx(300, rel=0.01)
    meta = json.loads(next((store / "sessions").iterdir()).joinpath("meta.json").read_text())
    gpu1 = [d for d in meta["devices"] if d["key"] == "gpu1"][0]
    assert any("temperature" in n for n in gpu1["notes"])
    assert meta["period_s"] <= 0.1  # integration needs fast polling
    # What is on each GPU is stored, so viewers can flag processes the run does not own.
    from wattui.store.reader import find_session
    from wattui.view.samples_tail import _other_processes

    df = find_session(store, rec["id"]).samples()
    last = {r["device"]: r for r in df.group_by("device").agg(pl.all().last()).to_dicts()}
    assert last["gpu0"]["pids"] == "1"
    assert str(rec["pid"]) in last["proc"]["pids"].split(";")
    assert _other_processes(last["gpu0"]["pids"], last["proc"]["pids"]) == "1 (pids 1)"


def test_doctor_reports_each_gpu_and_what_it_cannot_measure(store, two_gpus):
    env = two_gpus.subprocess_env()
    keep = {k: v for k, v in env.items() if k in ("LD_LIBRARY_PATH", "WATTUI_FAKE_NVML_CONFIG")}
    r = run_wattui(store, "doctor", **keep)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith("GPU 0") and "energy by counter" in line for line in lines)
    assert any(line.startswith("GPU 1") and "energy by integrated" in line for line in lines)
    assert any("n/a" in line and "temperature" in line for line in lines)
    j = json.loads(run_wattui(store, "doctor", "--format", "json", **keep).stdout)
    assert [g["energy"] for g in j["gpus"]] == ["counter", "integrated"]


def test_doctor_without_a_driver_says_how_to_fix_it(store):
    r = run_wattui(store, "doctor", LD_LIBRARY_PATH="/nonexistent")
    assert r.returncode == 0
    assert "libnvidia-ml.so.1 not found" in r.stdout
    assert "--simulate" in r.stdout
