"""Accuracy intake, SAM, projection, CO2 and cost.

Never imports Textual; Polars is not needed here. Entry points for the recorder:

- :class:`wattui.metrics.channel.ReportChannel` (``wattui.report`` events),
- :class:`wattui.metrics.lineparser.LineParser` (the script's output) and
  :class:`wattui.metrics.intake.MetricsFileFollower` (a metrics file),
- :func:`wattui.metrics.summary.summarize_metrics` (the per-session JSON fields),
- :func:`wattui.metrics.projection.project`, :func:`wattui.metrics.sam.sam`,
- :class:`wattui.record.intake.RecorderIntake` (all of the above, wired for the recorder),
  :func:`wattui.metrics.session_metrics.metrics_for_session` (a stored session's fields,
  which ``wattui project`` shows).
"""

from wattui.metrics.carbon import CarbonSettings, co2_g, cost, lookup_country, make_settings
from wattui.metrics.intake import (
    MetricEvent,
    MetricsFileFollower,
    Rejections,
    choose_accuracy,
    event_from_row,
    validate_accuracy,
)
from wattui.metrics.lineparser import LineParser
from wattui.metrics.projection import Projection, energy_to_target, project
from wattui.metrics.sam import SamResult, format_sam, sam
from wattui.metrics.summary import summarize_metrics

__all__ = [
    "CarbonSettings",
    "LineParser",
    "MetricEvent",
    "MetricsFileFollower",
    "Projection",
    "Rejections",
    "SamResult",
    "choose_accuracy",
    "co2_g",
    "cost",
    "energy_to_target",
    "event_from_row",
    "format_sam",
    "lookup_country",
    "make_settings",
    "project",
    "sam",
    "summarize_metrics",
    "validate_accuracy",
]
