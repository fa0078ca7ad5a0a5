"""wattui.measure: the energy of a block, in-process (simulated GPUs, the stand-in NVML, a
RAPL tree) and under a real `wattui record`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import run_wattui

import wattui
from wattui import _measure, _report
from wattui.sources.simulated import energy_between
from wattui.store.reader import list_sessions

try:
    from nvml_stub.fixtures import fake_nvml, nvml_stub_lib  # noqa: F401
except ImportError:  # pragma: no cover - run from the repository root
    from tests.nvml_stub.fixtures import fake_nvml, nvml_stub_lib  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A process with no open meter, no recorder, no RAPL and no simulation unless set."""
    for k in list(os.environ):
        if k.startswith("WATTUI_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("WATTUI_RAPL_ROOT", str(tmp_path / "no-rapl"))
    _measure._meter = None
    _report._close()
    _report._st.reset()
    yield tmp_path
    if _measure._meter is not None:
        for s in _measure._meter.sources:
            s.close()
    _measure._meter = None
    _report._close()
    _report._st.reset()


def test_simulated_gpus_within_1pc_with_a_running_value(fresh, monkeypatch):
    monkeypatch.setenv("WATTUI_SIMULATE", "2")
    with wattui.measure("eval") as m:
        time.sleep(0.3)
        mid = m.energy_j
        assert m.running and mid is not None and mid > 0
        time.sleep(0.3)
    assert not m.running
    assert m.simulated is True
    assert m.started_at < m.ended_at
    assert m.duration_s == pytest.approx(m.ended_at - m.started_at)
    assert [g["index"] for g in m.gpus] == [0, 1]
    total = 0.0
    for g in m.gpus:
        exact = energy_between(g["index"], m.started_at, m.ended_at)
        assert g["energy_j"] == pytest.approx(exact, rel=0.01)
        assert g["method"] == "simulated" and g["uuid"].startswith("GPU-SIMULATED")
        total += exact
    assert m.energy_j == pytest.approx(total, rel=0.01)
    assert 0 < mid < m.energy_j
    assert m.cpu is None  # no RAPL here
    final = m.energy_j
    time.sleep(0.05)
    assert m.energy_j == final  # closed: no longer moves
    assert "SIMULATED" in repr(m)


def test_decorator_and_begin_end(fresh, monkeypatch):
    monkeypatch.setenv("WATTUI_SIMULATE", "1")

    @wattui.measure("step")
    def step(x):
        time.sleep(0.05)
        return x * 2

    assert step(21) == 42
    m = step.measurement
    assert m.name == "step" and not m.running
    assert m.energy_j == pytest.approx(energy_between(0, m.started_at, m.ended_at), rel=0.01)
    first = m.started_at
    step(1)
    assert m.started_at > first  # the latest call's window

    @wattui.measure
    def bare():
        time.sleep(0.02)

    bare()
    assert bare.measurement.name == "bare" and bare.measurement.energy_j > 0

    w = wattui.measure("manual").begin()
    time.sleep(0.05)
    w.end()
    assert w.energy_j == pytest.approx(energy_between(0, w.started_at, w.ended_at), rel=0.01)
    w.end()  # a second end changes nothing
    assert w.energy_j == pytest.approx(energy_between(0, w.started_at, w.ended_at), rel=0.01)


def test_an_exception_in_the_block_still_closes_the_window(fresh, monkeypatch):
    monkeypatch.setenv("WATTUI_SIMULATE", "1")
    with pytest.raises(KeyError):
        with wattui.measure("boom") as m:
            raise KeyError("x")
    assert not m.running and m.energy_j > 0


def test_nothing_to_measure_says_so_once_and_never_raises(fresh, monkeypatch, capsys):
    monkeypatch.setenv("WATTUI_SIMULATE", "0")  # neither a simulation nor NVML
    for _ in range(3):
        with wattui.measure("eval") as m:
            assert m.energy_j is None
    err = capsys.readouterr().err
    assert err.count("nothing to measure") == 1
    assert "WATTUI_SIMULATE" in err and "RAPL" in err
    assert m.energy_j is None and m.gpus == [] and m.cpu is None
    assert m.duration_s is not None and m.duration_s >= 0
    assert "n/a" in repr(m)


def test_stand_in_nvml_counter_is_exact_per_gpu(fresh, fake_nvml):
    # A fixed fake clock, moved between the edges: the exact energy is the integral.
    fake_nvml.configure(
        count=2,
        time=10.0,
        **{"gpu0.power_w": 100, "gpu0.ramp_w_per_s": 20, "gpu1.power_w": 250},
    )
    m = wattui.measure("eval").begin()
    fake_nvml.update(time=12.0)
    assert m.energy_j == pytest.approx(640.0 + 500.0, rel=1e-6)  # running value
    fake_nvml.update(time=13.0)
    m.end()
    fake_nvml.update(time=20.0)
    g0, g1 = m.gpus
    # gpu0: integral of 100 + 20 t over [10, 13] = 300 + 10*(169-100) = 990 J; gpu1: 750 J
    assert (g0["index"], g1["index"]) == (0, 1)
    assert g0["energy_j"] == pytest.approx(990.0, rel=0.01)
    assert g1["energy_j"] == pytest.approx(750.0, rel=0.01)
    assert g0["method"] == g1["method"] == "counter"
    assert m.energy_j == pytest.approx(1740.0, rel=0.01)
    assert m.simulated is False


def test_stand_in_nvml_without_a_counter_is_integrated_by_a_poller(fresh, fake_nvml):
    fake_nvml.configure(count=1, **{"gpu0.power_w": 180, "rc.nvmlDeviceGetTotalEnergyConsumption": "NOT_SUPPORTED"})
    with wattui.measure("eval") as m:
        time.sleep(0.6)
    (g,) = m.gpus
    assert g["method"] == "integrated"
    assert g["energy_j"] == pytest.approx(180.0 * m.duration_s, rel=0.01)


def test_rapl_is_reported_as_cpu(fresh, monkeypatch, tmp_path):
    zone = tmp_path / "rapl" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("1000000\n")
    (zone / "max_energy_range_uj").write_text(str(2**32) + "\n")
    monkeypatch.setenv("WATTUI_RAPL_ROOT", str(tmp_path / "rapl"))
    monkeypatch.setenv("WATTUI_SIMULATE", "1")
    with wattui.measure("cpu") as m:
        (zone / "energy_uj").write_text("6000000\n")  # +5 J
    (cpu,) = m.cpu
    assert cpu["energy_j"] == pytest.approx(5.0)
    assert cpu["method"] == "counter"
    assert m.energy_j is not None  # the GPU total does not include the CPU


def test_public_module_imports_no_sources_until_used():
    code = (
        "import sys, wattui; m = wattui.measure('x'); "
        "print(sorted(k for k in sys.modules if k.startswith('wattui.sources') or k in ('polars', 'pynvml')))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTUI_")}
    env["PYTHONPATH"] = str(ROOT)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


@pytest.mark.slow
def test_under_wattui_record_the_window_is_a_session_event(store):
    child = textwrap.dedent(
        """
        import json, time, wattui
        time.sleep(0.3)
        with wattui.measure("eval") as m:
            time.sleep(0.6)
        print("MEASURED " + json.dumps(m.as_dict()), flush=True)
        time.sleep(0.3)
        """
    )
    r = run_wattui(store, "record", "--simulate", "2", "--", sys.executable, "-c", child)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("MEASURED "))
    mine = json.loads(line[len("MEASURED ") :])
    assert mine["simulated"] is True and len(mine["gpus"]) == 2
    for g in mine["gpus"]:
        exact = energy_between(g["index"], mine["started_at"], mine["ended_at"])
        assert g["energy_j"] == pytest.approx(exact, rel=0.01)
    sessions, _ = list_sessions(store)
    (s,) = sessions
    ev = s.events()
    rows = [row for row in ev.to_dicts() if row["kind"] == "measure"]
    assert len(rows) == 1
    values = json.loads(rows[0]["values_json"])
    assert values["name"] == "eval"
    assert values["energy_j"] == pytest.approx(mine["energy_j"], rel=1e-9)
    assert values["gpu1_energy_j"] == pytest.approx(mine["gpus"][1]["energy_j"], rel=1e-9)
    assert values["started_at"] == pytest.approx(mine["started_at"])
    # `wattui show` lists it, in text and JSON
    shown = json.loads(run_wattui(store, "show", "--format", "json").stdout)["windows"]
    assert [w["name"] for w in shown] == ["eval"]
    assert shown[0]["energy_j"] == pytest.approx(mine["energy_j"], rel=1e-9)
    assert shown[0]["gpus"]["gpu0"] == pytest.approx(mine["gpus"][0]["energy_j"], rel=1e-9)
    # the recorder's own samples over the same window agree (0.2 s reads, interpolated)
    assert shown[0]["recorder_energy_j"] == pytest.approx(mine["energy_j"], rel=0.05)
    text = run_wattui(store, "show").stdout
    assert re.search(r"^block     eval: [0-9.]+ J in [0-9.]+ s \[SIMULATED\]; recorder's samples [0-9.]+ J", text, re.M), text


def test_under_the_report_shim_it_is_na_and_never_raises(tmp_path):
    """A script run by another Python gets wattui through the stdlib-only shim: measure is
    there, has no sources to read, says so once and gives n/a."""
    from wattui.record.report_shim import ensure_shim

    shim = ensure_shim(tmp_path)
    code = (
        "import wattui\n"
        "for _ in range(2):\n"
        "    with wattui.measure('eval') as m:\n"
        "        pass\n"
        "print(m.energy_j, m.gpus, m.duration_s is not None)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "WATTUI_"))}
    env["PYTHONPATH"] = str(shim)
    p = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd="/")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "None [] True"
    assert p.stderr.count("nothing to measure") == 1 and "not importable" in p.stderr


@pytest.mark.slow
def test_the_live_screen_shows_the_latest_window(tmp_path):
    """A real recording whose script measures two blocks: the live screen's energy panel shows
    the latest window with its name (sanitised), energy and SIMULATED tag."""
    from test_tui_live import make_app, run, wait_for

    from wattui.store.paths import sessions_dir
    from wattui.tui.widgets import EnergyPanel

    store = tmp_path / "store"
    code = (
        "import time, wattui\n"
        "with wattui.measure('warm'):\n"
        "    time.sleep(0.2)\n"
        "with wattui.measure('eval\\x1b[31m'):\n"
        "    time.sleep(0.4)\n"
    )
    p = subprocess.run(
        [sys.executable, "-m", "wattui", "record", "--store", str(store), "--simulate", "--", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    (d,) = sessions_dir(store).iterdir()

    async def go():
        app = make_app(store, d)
        async with app.run_test(size=(160, 48)) as pilot:
            scr = app.live
            await wait_for(pilot, lambda: scr.snapshot is not None and scr.snapshot.metrics.windows == 2)
            name, e, dur, sim = scr.snapshot.metrics.window
            assert name == "eval" and sim is True and 0.35 < dur < 5 and e > 0
            await wait_for(pilot, lambda: "eval x2" in str(scr.query_one(EnergyPanel).render()))
            text = str(scr.query_one(EnergyPanel).render())
            assert "eval x2" in text and "SIMULATED" in text and "\x1b" not in text
            await pilot.press("q")

    run(go())


def test_synchronize_waits_for_queued_gpu_work_at_both_edges(fresh, monkeypatch):
    """synchronize=True calls torch.cuda.synchronize() at both edges, only for a script that
    already imported torch (a stand-in torch module here: no GPU on this machine)."""
    import types

    calls = []
    cuda = types.SimpleNamespace(is_available=lambda: True, synchronize=lambda: calls.append(time.time()))
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setenv("WATTUI_SIMULATE", "1")
    with wattui.measure("sync", synchronize=True) as m:
        assert len(calls) == 1 and calls[0] <= m.started_at
        time.sleep(0.05)
    assert len(calls) == 2 and calls[1] <= m.ended_at
    with wattui.measure("nosync"):
        pass
    assert len(calls) == 2
    cuda.synchronize = lambda: 1 / 0  # a failing synchronize never reaches the training loop
    with wattui.measure("sync", synchronize=True) as m:
        pass
    assert m.energy_j is not None


@pytest.mark.slow
def test_a_script_without_wattui_still_gets_its_window_measured_by_the_recorder(store, tmp_path):
    """Another Python (here: -S, no site-packages) gets the report shim: measure() cannot read
    the GPUs there, but the window reaches the session and `show` gives the recorder's figure."""
    child = "import time, wattui\nwith wattui.measure('eval') as m:\n    time.sleep(0.6)\nprint('SHIM', m.energy_j, wattui.__file__)\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run(
        [sys.executable, "-m", "wattui", "record", "--simulate", "2", "--", sys.executable, "-S", "-c", child],
        env={**env, "WATTUI_HOME": str(store)}, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("SHIM")]
    assert line.split()[1] == "None" and str(ROOT) not in line  # the shim, with nothing to read
    (w,) = json.loads(run_wattui(store, "show", "--format", "json").stdout)["windows"]
    assert w["name"] == "eval" and w["energy_j"] is None and w["duration_s"] >= 0.6
    exact = energy_between(0, w["started_at"], w["ended_at"]) + energy_between(1, w["started_at"], w["ended_at"])
    assert w["recorder_energy_j"] == pytest.approx(exact, rel=0.05)
