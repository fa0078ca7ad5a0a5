"""The exporters a recording asked for (``--prometheus-port``, ``--log-to``), subscribed to
its recorder: the recorder knows nothing of them, the command that builds it wires them."""

from __future__ import annotations

from wattui.record.recorder import Recorder


def subscribe_exporters(recorder: Recorder) -> Recorder:
    """Subscribe the exporters ``recorder.opts`` asks for; returns the recorder. Each is
    imported only when asked for (a plain recording loads no HTTP server)."""
    opts = recorder.opts
    if opts.prometheus_port is not None:
        from wattui.exporters.prometheus import PrometheusExporter

        exporter = PrometheusExporter(recorder, opts.prometheus_host, opts.prometheus_port)
        recorder.subscribe(exporter.on_recorder_event)
    if opts.log_to:
        from wattui.exporters.live_trackers import TrackerLogSink

        recorder.subscribe(TrackerLogSink(opts.log_to))
    return recorder
