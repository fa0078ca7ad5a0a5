"""Reusable widgets of the live screen (and of any other screen that shows a session),
gathered from their homes: the chart (chart.py), the panels (panels.py) and the output
pane (output_pane.py).

Every widget takes plain data (numbers, ``session_record`` dicts, the frozen rows of
:mod:`wattui.view.snapshot`) and never reads files or devices itself, so updating one is
cheap and safe on the event loop. Stable API:

    PowerChart(window="10m")      .set_points(points, now=None, method=None, end_label=None)
                                  .set_window("1m"|"10m"|"1h"|"all"), .cycle_window()
    GpuTable()                    .update_gpus(rows: Sequence[GpuRow])
    EnergyPanel()                 .update_energy(record, total_w=None, power_method=None)
    AccuracyPanel()               .update_metrics(summary: MetricsSummary)
    SamPanel()                    .update_sam(record)
    ProcessPanel()                .update_process(cpu_pct, rss_b, cpus: Sequence[CpuRow], running)
    SessionHeader()               .update_header(snapshot: LiveSnapshot)
    OutputPanel()                 .append(lines), .search(text), .next_match(step)

Figures always carry the method that produced them; simulated ones say SIMULATED.
"""

from __future__ import annotations

from wattui.tui.chart import WINDOWS, PowerChart, resample, spark
from wattui.tui.output_pane import OutputPanel
from wattui.tui.panels import (
    AccuracyPanel,
    EnergyPanel,
    GpuTable,
    ProcessPanel,
    SamPanel,
    SessionHeader,
    gpu_caption,
)

__all__ = [
    "WINDOWS",
    "AccuracyPanel",
    "EnergyPanel",
    "GpuTable",
    "OutputPanel",
    "PowerChart",
    "ProcessPanel",
    "SamPanel",
    "SessionHeader",
    "gpu_caption",
    "resample",
    "spark",
]
