"""Prometheus ``/metrics`` for a recording in progress (text exposition format 0.0.4).

``wattui record --prometheus-port PORT [--prometheus-host HOST] -- CMD`` serves, while the
run is recorded, on ``http://HOST:PORT/metrics`` (127.0.0.1 unless told otherwise; port 0
picks a free port and the address is printed to stderr)::

    wattui_gpu_power_watts{session,host,gpu_uuid,device,gpu_name}        gauge
    wattui_gpu_energy_joules_total{session,host,gpu_uuid,device,...}     counter
    wattui_cpu_power_watts / wattui_cpu_energy_joules_total{...,device}  RAPL domains
    wattui_energy_joules_total{session,host}                             counter (all devices)
    wattui_accuracy / wattui_sam / wattui_projected_energy_joules        gauges
    wattui_session_info{session,host,name,command_name}                  always 1

Every sample also carries ``group`` when the session belongs to one (multi-node runs:
``sum by (group) (wattui_energy_joules_total)``), and ``simulated="true"`` when the
session's GPUs are simulated. Energy counters count from the start of the recording.

Standard library only: one ``ThreadingHTTPServer`` in a daemon thread; a scrape reads the
recorder's typed state (:meth:`wattui.record.recorder.Recorder.state`) and never touches the
disk. The exporter subscribes to the recorder's events: it serves from :class:`Started` and
stops at :class:`Finished`. Never imports Textual.
"""

from __future__ import annotations

import math
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from wattui.record.state import Finished, RecorderEvent, RecorderState, RecorderView, Started
from wattui.sanitize import clean_text

__all__ = ["PrometheusExporter", "render_metrics", "escape_label", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LOOPBACK = frozenset(("127.0.0.1", "localhost", "::1"))


def host_of(value: str) -> str:
    """The host part of a ``Host`` header or an origin's netloc (no port, no brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value

FAMILIES = (
    ("wattui_session_info", "gauge", "A recorded session (always 1); its labels describe it."),
    ("wattui_gpu_power_watts", "gauge", "GPU power draw at the last sample, in watts."),
    (
        "wattui_gpu_energy_joules_total",
        "counter",
        "GPU energy used since the recording started, in joules.",
    ),
    ("wattui_cpu_power_watts", "gauge", "CPU/DRAM (RAPL domain) power at the last sample, in watts."),
    (
        "wattui_cpu_energy_joules_total",
        "counter",
        "CPU/DRAM (RAPL domain) energy used since the recording started, in joules.",
    ),
    (
        "wattui_energy_joules_total",
        "counter",
        "Energy of all measured devices of the session since the recording started, in joules.",
    ),
    ("wattui_accuracy", "gauge", "Latest accuracy reported by the run, as a fraction."),
    (
        "wattui_sam",
        "gauge",
        "Sustainable Accuracy Metric of the run so far (absent while undefined).",
    ),
    (
        "wattui_projected_energy_joules",
        "gauge",
        "Projected energy of the whole run at its end, in joules.",
    ),
)


def escape_label(value) -> str:
    """A label value for the text format: backslash, double quote and newline escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _fmt_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _labels(labels: dict) -> str:
    body = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items() if v is not None)
    return "{" + body + "}" if body else ""


def render_metrics(snapshot: dict) -> str:
    """The exposition text for one snapshot (see :meth:`PrometheusExporter.snapshot`)."""
    base = {"session": snapshot.get("session"), "host": snapshot.get("host")}
    if snapshot.get("group"):
        base["group"] = snapshot["group"]
    if snapshot.get("simulated"):
        base["simulated"] = "true"
    samples: dict[str, list[tuple[dict, float]]] = {name: [] for name, _, _ in FAMILIES}
    info = dict(base)
    info["name"] = snapshot.get("name") or ""
    info["command_name"] = snapshot.get("command_name") or ""
    samples["wattui_session_info"].append((info, 1.0))
    for d in snapshot.get("devices", ()):
        kind = d.get("kind")
        if kind == "gpu":
            labels = dict(base)
            labels.update(
                gpu_uuid=d.get("uuid") or "", device=d.get("key"), gpu_name=d.get("name") or ""
            )
            power, energy = "wattui_gpu_power_watts", "wattui_gpu_energy_joules_total"
        elif kind in ("cpu", "dram"):
            labels = dict(base)
            labels.update(device=d.get("key"), kind=kind)
            power, energy = "wattui_cpu_power_watts", "wattui_cpu_energy_joules_total"
        else:
            continue
        if d.get("power_w") is not None:
            samples[power].append((labels, d["power_w"]))
        if d.get("energy_j") is not None:
            samples[energy].append((labels, d["energy_j"]))
    for key, name in (
        ("energy_j", "wattui_energy_joules_total"),
        ("accuracy", "wattui_accuracy"),
        ("sam", "wattui_sam"),
        ("projected_energy_j", "wattui_projected_energy_joules"),
    ):
        if snapshot.get(key) is not None:
            samples[name].append((dict(base), snapshot[key]))
    out: list[str] = []
    for name, typ, help_text in FAMILIES:
        out.append(f"# HELP {name} {_escape_help(help_text)}")
        out.append(f"# TYPE {name} {typ}")
        for labels, value in samples[name]:
            out.append(f"{name}{_labels(labels)} {_fmt_value(value)}")
    return "\n".join(out) + "\n"


class _Handler(BaseHTTPRequestHandler):
    server_version = "wattui"
    exporter: PrometheusExporter  # set on the subclass made per exporter

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self._respond(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(head=True)

    def _respond(self, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        if not self.exporter.host_allowed(self.headers.get("Host")):
            # On loopback, a web page may reach us through a DNS name that resolves to
            # 127.0.0.1 (DNS rebinding): only our own names are answered, as `serve` does.
            body = b"wattui: unexpected Host header\n"
            code, ctype = 421, "text/plain; charset=utf-8"
        elif path == "/metrics":
            try:
                body = render_metrics(self.exporter.snapshot()).encode("utf-8")
                code, ctype = 200, CONTENT_TYPE
            except Exception as e:  # noqa: BLE001 - a scrape must never hurt the recording
                body = f"wattui: cannot read the recording's totals: {e}\n".encode()
                code, ctype = 500, "text/plain; charset=utf-8"
        elif path == "/":
            body = b"wattui Prometheus exporter: see /metrics\n"
            code, ctype = 200, "text/plain; charset=utf-8"
        else:
            body = b"not found: try /metrics\n"
            code, ctype = 404, "text/plain; charset=utf-8"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet: the run's output is ours
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class PrometheusExporter:
    """Serves ``/metrics`` for a recording (``recorder``: its :class:`RecorderView`) on
    ``host:port`` (port 0: any free port). Subscribed to the recorder
    (``recorder.subscribe(exporter.on_recorder_event)``) it starts with the session and stops
    when it ends; :meth:`start` / :meth:`close` (or ``with``) do the same by hand.

    ``start()`` never raises for a port that cannot be bound: it prints one line to stderr,
    records a warning in the session and the recording goes on without the endpoint (a run
    must not be lost over its monitoring)."""

    def __init__(
        self, recorder: RecorderView, host: str = "127.0.0.1", port: int = 0, *, announce: bool = True
    ):
        self.recorder = recorder
        self.host = host or "127.0.0.1"
        self.port = int(port)
        self.announce = announce
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._static: dict = {}
        self.error: str | None = None

    # -- lifecycle -------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int] | None:
        if self._server is None:
            return None
        return self._server.server_address[0], self._server.server_address[1]

    @property
    def url(self) -> str | None:
        addr = self.address
        if addr is None:
            return None
        host = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
        return f"http://{host}:{addr[1]}/metrics"

    def start(self) -> PrometheusExporter:
        self._static = self._static_labels()
        handler = type("WattuiMetricsHandler", (_Handler,), {"exporter": self})
        cls = _Server6 if ":" in self.host else _Server
        try:
            self._server = cls((self.host, self.port), handler)
        except (OSError, OverflowError) as e:
            why = getattr(e, "strerror", None) or str(e)
            self.error = f"cannot serve Prometheus metrics on {self.host}:{self.port}: {why}"
            print(f"wattui: {self.error}; recording without them", file=sys.stderr)
            try:
                self.recorder.add_event({"kind": "warning", "message": self.error})
            except Exception:  # noqa: BLE001
                pass
            return self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="wattui-prometheus",
            daemon=True,
        )
        self._thread.start()
        if self.announce:
            print(f"wattui: Prometheus metrics at {self.url}", file=sys.stderr, flush=True)
        return self

    def on_recorder_event(self, event: RecorderEvent) -> None:
        """A recorder sink: serve from the session's start to its end."""
        if isinstance(event, Started):
            self.start()
        elif isinstance(event, Finished):
            self.close()

    def close(self) -> None:
        srv, self._server = self._server, None
        if srv is None:
            return
        srv.shutdown()
        srv.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> PrometheusExporter:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def host_allowed(self, header: str | None) -> bool:
        """A request's ``Host`` is one of our own names (always true off loopback, where
        the user chose to serve other machines)."""
        if self.host.lower() not in LOOPBACK:
            return True
        if not header:
            return False  # HTTP/1.1 requires Host; Prometheus always sends it
        return host_of(header) in LOOPBACK | {self.host.lower()}

    # -- reading the recorder ----------------------------------------------------------
    def _static_labels(self, state: RecorderState | None = None) -> dict:
        st = state or self.recorder.state()
        labels = {
            "session": st.session_id,
            "host": st.host,
            "group": st.group,
            "name": st.name,
            "command_name": st.command[0].rsplit("/", 1)[-1] if st.command else None,
        }
        return {k: None if v is None else clean_text(v) for k, v in labels.items()}

    def snapshot(self) -> dict:
        """What a scrape shows: static labels, per-device totals and live metrics."""
        st = self.recorder.state()
        snap = dict(self._static or self._static_labels(st))
        snap["devices"] = [
            {
                "key": d.key,
                "kind": d.kind,
                "uuid": d.uuid,
                "name": d.name,
                "energy_j": d.energy_j,
                "power_w": d.power_w,
            }
            for d in st.devices
        ]
        snap["simulated"] = st.simulated
        snap["energy_j"] = st.energy_j
        try:
            m = self.recorder.live_metrics()
        except Exception:  # noqa: BLE001 - the intake is optional; a scrape still works
            m = None
        snap["accuracy"] = m.accuracy if m is not None else None
        snap["sam"] = m.sam if m is not None else None
        snap["projected_energy_j"] = m.projected_energy_j if m is not None else None
        return snap
