"""Prometheus /metrics: the text format (strictly parsed by prometheus_client), a real
`wattui record --simulate --prometheus-port 0` scraped over HTTP, and the default bind."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import wait_until

from wattui.exporters.prometheus import PrometheusExporter, escape_label, render_metrics
from wattui.record.state import DeviceTotals, LiveMetrics, RecorderState

parser = pytest.importorskip(
    "prometheus_client.parser", reason="prometheus_client is needed to parse the exposition"
)

ROOT = Path(__file__).resolve().parent.parent

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
_SAMPLE = re.compile(rf"^({_NAME})(\{{(?:{_LABEL})(?:,{_LABEL})*\}})? (\S+)$")


def strict_parse(text: str) -> dict:
    """Families by name, after checking every line against the 0.0.4 grammar: HELP and TYPE
    once per family and before its samples, samples of declared families only."""
    assert text.endswith("\n")
    declared: dict[str, str] = {}
    helped: set[str] = set()
    for line in text.rstrip("\n").split("\n"):
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helped, f"HELP twice for {name}"
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert typ in ("counter", "gauge", "untyped", "summary", "histogram")
            assert name not in declared, f"TYPE twice for {name}"
            declared[name] = typ
        else:
            m = _SAMPLE.match(line)
            assert m, f"not a valid sample line: {line!r}"
            assert m.group(1) in declared and m.group(1) in helped, line
            float(m.group(3).replace("Inf", "inf"))
            if declared[m.group(1)] == "counter":
                assert m.group(1).endswith("_total")
    fams = {f.name: f for f in parser.text_string_to_metric_families(text)}
    assert fams
    return fams


def _value(fams, name, sample=None, **labels):
    fam = fams[name]
    sample = sample or name
    vals = [
        s.value
        for s in fam.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(vals) == 1, (name, labels, fam.samples)
    return vals[0]


def test_label_values_are_escaped_and_read_back():
    nasty = 'a "quoted"\\ back\nslash'
    snap = {
        "session": "s1",
        "host": nasty,
        "group": "g\\1",
        "simulated": True,
        "name": "x\ny",
        "command_name": "python",
        "devices": [
            {"key": "gpu0", "kind": "gpu", "uuid": 'GPU-"0"', "name": "A100",
             "energy_j": 12.5, "power_w": 250.0},
            {"key": "cpu-package-0", "kind": "cpu", "uuid": "", "name": "pkg",
             "energy_j": 3.0, "power_w": None},
        ],
        "energy_j": 15.5,
        "accuracy": 0.5,
        "sam": None,
        "projected_energy_j": 1e6,
    }
    assert escape_label(nasty) == 'a \\"quoted\\"\\\\ back\\nslash'
    fams = strict_parse(render_metrics(snap))
    (s,) = fams["wattui_gpu_power_watts"].samples
    assert s.labels["host"] == nasty and s.labels["gpu_uuid"] == 'GPU-"0"'
    assert s.labels["group"] == "g\\1" and s.labels["simulated"] == "true"
    assert s.value == 250.0
    assert fams["wattui_gpu_energy_joules"].type == "counter"
    assert _value(fams, "wattui_gpu_energy_joules", "wattui_gpu_energy_joules_total") == 12.5
    assert _value(fams, "wattui_cpu_energy_joules", "wattui_cpu_energy_joules_total") == 3.0
    assert fams["wattui_cpu_power_watts"].samples == []  # no reading: no sample, not 0
    assert _value(fams, "wattui_accuracy") == 0.5
    assert fams["wattui_sam"].samples == []  # undefined SAM is absent, not NaN
    assert _value(fams, "wattui_projected_energy_joules") == 1e6


def test_real_session_has_no_simulated_label():
    snap = {"session": "s", "host": "h", "devices": [], "energy_j": None}
    fams = strict_parse(render_metrics(snap))
    (s,) = fams["wattui_session_info"].samples
    assert "simulated" not in s.labels and "group" not in s.labels


class _View:
    """A recording as the exporter sees it (:class:`wattui.record.state.RecorderView`)."""

    def __init__(self, metrics=None, **state):
        gpu = DeviceTotals(
            key="gpu0", kind="gpu", name="H100", uuid="GPU-1", energy_method="counter",
            simulated=False, energy_j=100.0, power_w=300.0,
        )
        fields = dict(
            session_id="sid", status="running", host="node-1", name=None, group="job42",
            command=("/usr/bin/python", "t.py"), simulated=False, devices=(gpu,),
            energy_j=100.0, started_at=1.0, sam_alpha=5.0, sam_beta=5.0, sam_unit="kWh",
            accuracy_key=None,
        )
        fields.update(state)
        self._state = RecorderState(**fields)
        self.metrics = metrics
        self.events: list[dict] = []

    def state(self):
        return self._state

    def live_metrics(self):
        if isinstance(self.metrics, Exception):
            raise self.metrics
        return self.metrics or LiveMetrics()

    def add_event(self, event):
        self.events.append(event)


def test_exporter_serves_live_metrics_from_the_intake():
    rec = _View(LiveMetrics(accuracy=0.91, sam=2.5, projected_energy_j=7e5))
    with PrometheusExporter(rec, "127.0.0.1", 0, announce=False) as exp:
        assert exp.address[0] == "127.0.0.1" and exp.address[1] > 0
        with urllib.request.urlopen(exp.url, timeout=5) as r:
            assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            fams = strict_parse(r.read().decode())
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(exp.url.replace("/metrics", "/nope"), timeout=5)
        assert e.value.code == 404
    assert _value(fams, "wattui_accuracy", session="sid", host="node-1", group="job42") == 0.91
    assert _value(fams, "wattui_sam") == 2.5
    assert _value(fams, "wattui_projected_energy_joules") == 7e5
    assert _value(fams, "wattui_gpu_power_watts", gpu_uuid="GPU-1", device="gpu0") == 300.0
    (info,) = fams["wattui_session_info"].samples
    assert info.labels["command_name"] == "python"


def test_loopback_endpoint_refuses_foreign_host_headers_and_cleans_labels():
    """DNS rebinding: a page of evil.example resolving to 127.0.0.1 sends its own Host;
    only our names are answered (as `wattui serve` does). A run-given name or command
    with escape sequences reaches the labels clean."""
    rec = _View(name="run\x1b]0;pwned\x07\x9b2J\u202e", command=("/usr/bin/py\x1bcthon",))
    with PrometheusExporter(rec, "127.0.0.1", 0, announce=False) as exp:
        port = exp.address[1]
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
            req = urllib.request.Request(exp.url, headers={"Host": host})
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=5)
            assert e.value.code == 421, host
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
            req = urllib.request.Request(exp.url, headers={"Host": host})
            with urllib.request.urlopen(req, timeout=5) as r:
                text = r.read().decode()
    assert not any(c in text for c in "\x1b\x07\x9b\u202e")
    (info,) = strict_parse(text)["wattui_session_info"].samples
    assert info.labels["name"] == "run" and info.labels["command_name"] == "python"


def test_a_broken_intake_does_not_break_the_scrape():
    rec = _View(RuntimeError("boom"))
    with PrometheusExporter(rec, "127.0.0.1", 0, announce=False) as exp:
        with urllib.request.urlopen(exp.url, timeout=5) as r:
            fams = strict_parse(r.read().decode())
    assert fams["wattui_accuracy"].samples == []
    assert _value(fams, "wattui_energy_joules", "wattui_energy_joules_total") == 100.0


# -- a real recorder -------------------------------------------------------------------
def _env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTUI_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["WATTUI_CHANNEL_DIR"] = str(tmp_path / "chan")
    return env


class _Recording:
    """`wattui record ...` in the background, its stderr collected line by line."""

    def __init__(self, args: list[str], env: dict):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wattui", "record", *args],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = rx.search(line)
                if m:
                    return m
            if self.proc.poll() is not None and not self._t.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in stderr: {self.lines}")

    def finish(self, timeout: float = 60.0) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._t.join(timeout=5)
        return rc


def _scrape(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return strict_parse(r.read().decode("utf-8"))


@pytest.mark.slow
def test_scrape_a_real_simulated_recording(tmp_path):
    done = tmp_path / "done"  # the run lasts until the test has scraped (60 s at most)
    script = (
        "import os, time, wattui\n"
        "wattui.report(accuracy=0.8, epoch=1, total_epochs=4)\n"
        "end = time.time() + 60\n"
        f"while not os.path.exists({str(done)!r}) and time.time() < end: time.sleep(0.05)\n"
    )
    rec = _Recording(
        ["--simulate", "2", "--store", str(tmp_path / "store"), "--group", 'job "7"',
         "--period", "0.1", "--prometheus-port", "0", "--", sys.executable, "-c", script],
        _env(tmp_path),
    )
    try:
        url = rec.wait_for(r"Prometheus metrics at (http://\S+/metrics)").group(1)
        sid = rec.wait_for(r"recording session (\S+)").group(1)
        assert url.startswith("http://127.0.0.1:")

        def energies(fams) -> list[float]:
            fam = fams.get("wattui_gpu_energy_joules")
            return [sum(x.value for x in (fam.samples if fam else [])
                        if x.name == "wattui_gpu_energy_joules_total" and x.labels["device"] == g)
                    for g in ("gpu0", "gpu1")]

        def scrape_when(ready):
            return wait_until(lambda: ready(f := _scrape(url)) and f, what="a scrape that is ready")

        first = scrape_when(lambda f: min(energies(f)) > 0)
        second = scrape_when(lambda f: all(b > a for a, b in zip(energies(first), energies(f)))
                             and bool("wattui_accuracy" in f and f["wattui_accuracy"].samples))

        # bound to the loopback address only (the default)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        import psutil

        proc = psutil.Process(rec.proc.pid)
        conns = getattr(proc, "net_connections", proc.connections)(kind="inet")
        listening = [c for c in conns if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
        assert [c.laddr.ip for c in listening] == ["127.0.0.1"]
        other = _non_loopback_address()
        if other:
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=2).close()
    finally:
        done.touch()
        rc = rec.finish()
    assert rc == 0, rec.lines

    labels = {"session": sid, "group": 'job "7"', "simulated": "true"}
    for gpu in ("gpu0", "gpu1"):
        e1 = _value(first, "wattui_gpu_energy_joules", "wattui_gpu_energy_joules_total",
                    device=gpu, **labels)
        e2 = _value(second, "wattui_gpu_energy_joules", "wattui_gpu_energy_joules_total",
                    device=gpu, **labels)
        assert 0 < e1 < e2
        w = _value(second, "wattui_gpu_power_watts", device=gpu, **labels)
        assert 10 < w < 2000
    (s,) = [x for x in second["wattui_gpu_power_watts"].samples if x.labels["device"] == "gpu1"]
    assert s.labels["gpu_uuid"] and s.labels["host"]
    total = _value(second, "wattui_energy_joules", "wattui_energy_joules_total", **labels)
    gpus = sum(
        x.value for x in second["wattui_gpu_energy_joules"].samples
    )
    assert total == pytest.approx(gpus)
    assert _value(second, "wattui_accuracy", **labels) == pytest.approx(0.8)


def _non_loopback_address() -> str | None:
    try:
        import psutil

        for addrs in psutil.net_if_addrs().values():
            for a in addrs:
                if a.family == socket.AF_INET and not a.address.startswith("127."):
                    return a.address
    except Exception:  # noqa: BLE001
        pass
    return None


@pytest.mark.slow
def test_a_busy_port_does_not_stop_the_recording(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rec = _Recording(
            ["--simulate", "--store", str(tmp_path / "store"), "--prometheus-port", str(port),
             "--", sys.executable, "-c", "pass"],
            _env(tmp_path),
        )
        assert rec.finish() == 0
    assert any("cannot serve Prometheus metrics" in line for line in rec.lines), rec.lines
