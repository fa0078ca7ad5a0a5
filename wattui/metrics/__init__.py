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

import importlib

# Each name is imported from its module when first asked for: a command that needs only
# the carbon table (the CLI's parser) or the accuracy rules (the live screen) does not
# wait for the output parser's patterns.
_HOME = {
    "CarbonSettings": "carbon",
    "co2_g": "carbon",
    "cost": "carbon",
    "lookup_country": "carbon",
    "make_settings": "carbon",
    "MetricEvent": "intake",
    "MetricsFileFollower": "intake",
    "Rejections": "intake",
    "choose_accuracy": "intake",
    "event_from_row": "intake",
    "validate_accuracy": "intake",
    "LineParser": "lineparser",
    "Projection": "projection",
    "energy_to_target": "projection",
    "project": "projection",
    "SamResult": "sam",
    "format_sam": "sam",
    "sam": "sam",
    "summarize_metrics": "summary",
}


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


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
