"""The recorder's typed state and event sink, on a real recording (simulated GPU, a real
child process reporting through wattui.report)."""

from __future__ import annotations

import dataclasses
import re
import sys
import threading
import time

import pytest

from wattui.record.options import MetricOptions, RecordOptions
from wattui.record.recorder import Recorder
from wattui.record.state import (
    DeviceTotals,
    Finished,
    Logged,
    RecorderState,
    Sampled,
    Started,
    StatusChanged,
)
from wattui.store.reader import list_sessions

SCRIPT = (
    "import time, wattui\n"
    "time.sleep(0.3)\n"
    "wattui.report(accuracy=0.8, epoch=1, total_epochs=2)\n"
    "time.sleep(0.3)\n"
    "wattui.report(accuracy=0.9, epoch=2, total_epochs=2)\n"
    "time.sleep(0.3)\n"
)


def _record(tmp_path, monkeypatch, *sinks_of):
    monkeypatch.setenv("WATTUI_CHANNEL_DIR", str(tmp_path / "chan"))
    opts = RecordOptions(
        store=tmp_path / "store", simulate=2, period_s=0.05, quiet=True, passthrough=False,
        name="state test", group="g1", metrics=MetricOptions(sam_unit="Wh"),
    )
    rec = Recorder(opts)
    for make in sinks_of:
        rec.subscribe(make(rec))
    rc = rec.launch([sys.executable, "-c", SCRIPT])
    return rec, rc


def test_sinks_get_typed_events_in_order(tmp_path, monkeypatch):
    events = []
    states_mid_run: list[RecorderState] = []
    threads = set()

    def collector(rec):
        def sink(ev):
            events.append(ev)
            threads.add(threading.current_thread().name)
            if isinstance(ev, Sampled) and StatusChanged in map(type, events) and len(states_mid_run) < 3:
                states_mid_run.append(rec.state())  # no deadlock: sinks run outside the lock

        return sink

    rec, rc = _record(tmp_path, monkeypatch, collector)
    assert rc == 0
    kinds = [type(e) for e in events]
    assert kinds[0] is Started and kinds[-1] is Finished
    started = events[0].state
    assert started.status == "starting" and started.session_id == rec.session_id
    assert started.name == "state test" and started.group == "g1" and started.simulated
    assert started.command == (sys.executable, "-c", SCRIPT)
    assert started.sam_unit == "Wh" and started.started_at is None
    assert [d.key for d in started.devices if d.kind == "gpu"] == ["gpu0", "gpu1"]
    assert all(isinstance(d, DeviceTotals) for d in started.devices)

    (running,) = [e for e in events if isinstance(e, StatusChanged)]
    assert running.status == "running" and running.state.started_at is not None
    # the first sample is taken (it dates the start), then the session is running
    assert kinds[:3] == [Started, Sampled, StatusChanged]

    sampled = [e for e in events if isinstance(e, Sampled)]
    assert len(sampled) >= 5
    energies = [e.energy_j for e in sampled if e.energy_j is not None]
    assert energies == sorted(energies) and energies[-1] > 0

    metric_rows = [e.row for e in events if isinstance(e, Logged) and e.row["kind"] == "metric"]
    assert [r["accuracy"] for r in metric_rows] == pytest.approx([0.8, 0.9])
    with pytest.raises(TypeError):
        metric_rows[0]["accuracy"] = 1.0  # read-only

    assert states_mid_run and all(s.status == "running" for s in states_mid_run)
    assert all(s.energy_j is not None and s.energy_j > 0 for s in states_mid_run[1:])

    fin = events[-1]
    [s], _ = list_sessions(tmp_path / "store")
    assert fin.status == "finished" and fin.meta["id"] == s.id == rec.session_id
    assert fin.meta["energy_j"] == pytest.approx(s.meta["energy_j"])
    assert fin.meta["accuracy"] == pytest.approx(0.9)
    assert "MainThread" in threads and len(threads) >= 2  # sampler and intake threads too


def test_state_is_a_frozen_snapshot_and_metrics_are_fractions(tmp_path, monkeypatch):
    rec, rc = _record(tmp_path, monkeypatch)
    assert rc == 0
    st = rec.state()
    assert st.status == "finished"
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.status = "running"  # type: ignore[misc]
    gpu_energy = sum(d.energy_j for d in st.devices if d.kind == "gpu")
    assert st.energy_j == pytest.approx(gpu_energy) and st.energy_j > 0
    m = rec.live_metrics()
    assert m.accuracy == pytest.approx(0.9)


def test_a_failing_sink_never_ends_the_recording(tmp_path, monkeypatch):
    calls = []

    def broken(_rec):
        def sink(ev):
            calls.append(type(ev))
            raise RuntimeError("sink bug")

        return sink

    rec, rc = _record(tmp_path, monkeypatch, broken)
    assert rc == 0 and calls[0] is Started and calls[-1] is Finished
    [s], _ = list_sessions(tmp_path / "store")
    assert s.status == "finished" and s.meta["accuracy"] == pytest.approx(0.9)



def test_the_prometheus_exporter_lives_as_long_as_the_session(tmp_path, monkeypatch):
    """Subscribed to the recorder, the endpoint serves from Started to Finished and reads
    the recorder's state, the run's reported accuracy included (the CLI's wiring is
    test_prometheus's real `wattui record --prometheus-port 0`)."""
    import urllib.error
    import urllib.request

    from wattui.exporters.prometheus import PrometheusExporter

    monkeypatch.setenv("WATTUI_CHANNEL_DIR", str(tmp_path / "chan"))
    rec = Recorder(RecordOptions(
        store=tmp_path / "store", simulate=1, period_s=0.05, quiet=True, passthrough=False,
    ))
    exp = PrometheusExporter(rec, "127.0.0.1", 0, announce=False)
    rec.subscribe(exp.on_recorder_event)
    assert exp.address is None  # not before the session exists
    result = {}
    t = threading.Thread(target=lambda: result.update(rc=rec.launch([sys.executable, "-c", SCRIPT])))
    t.start()
    seen = ""
    deadline = time.monotonic() + 60
    while t.is_alive() and time.monotonic() < deadline and " 0.9\n" not in seen:
        url = exp.url
        if url is not None:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    seen = r.read().decode()
            except (urllib.error.URLError, ConnectionError):
                pass  # closed between the check and the request: the loop ends
        time.sleep(0.02)
    t.join(60)
    assert result.get("rc") == 0
    line = re.search(r"^wattui_accuracy\{(.*)\} (\S+)$", seen, re.M)
    assert line and f'session="{rec.session_id}"' in line.group(1) and line.group(2) == "0.9"
    assert "wattui_gpu_energy_joules_total{" in seen
    assert exp.address is None  # closed at Finished
