"""What a recording is asked to do: :class:`RecordOptions` (with its typed
:class:`MetricOptions`), the metric CLI options, and ONE serializer back to ``wattui record``
arguments (:func:`record_argv`), used wherever a recording is started in another process
(``record --detach``, the live screen's background recorder).

The record parser's own options are declared by the CLI (``add_record_options``); the round
trip parse -> :func:`record_argv` -> parse is tested to keep every one of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from wattui.argtypes import positive_int
from wattui.metrics.sam import alpha_arg, beta_arg, unit_arg
from wattui.sampler import DEFAULT_PERIOD_S

__all__ = [
    "MetricOptions",
    "RecordOptions",
    "add_metric_options",
    "metric_options_from_args",
    "record_argv",
    "number_arg",
    "country_arg",
]

DEFAULT_RAPL_ROOT = "/sys/class/powercap"
DEFAULT_PROMETHEUS_HOST = "127.0.0.1"


@dataclass(frozen=True)
class MetricOptions:
    """The metrics intake's options, as given (None: not given, the default applies).
    Checked by the argparse types below or, for programmatic callers, by the intake."""

    metric_patterns: dict[str, str] | None = None  # NAME -> REGEX (one group around the number)
    accuracy_key: str | None = None
    metrics_file: str | None = None
    parse_output: bool | None = None  # False: do not parse the run's output
    total_epochs: int | None = None
    data_fraction: float | None = None
    sam_alpha: float | None = None
    sam_beta: float | None = None
    sam_unit: str | None = None
    carbon_g_per_kwh: float | None = None
    country: str | None = None
    price_per_kwh: float | None = None
    currency: str | None = None
    pue: float | None = None

    def given(self) -> dict:
        """The options given, as a JSON-able dict (stored as the session's metric settings)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }


@dataclass
class RecordOptions:
    store: Path | None = None
    simulate: int | None = None  # number of simulated GPUs, or None for real sources
    period_s: float = DEFAULT_PERIOD_S
    baseline_s: float = 0.0
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    session_id: str | None = None
    session_reserved: bool = False  # record --detach made the (empty) session folder
    passthrough: bool = True  # copy the run's output to our stdout/stderr
    quiet: bool = False  # no summary at the end
    rapl_root: str = DEFAULT_RAPL_ROOT
    group: str | None = None
    metrics: MetricOptions = field(default_factory=MetricOptions)
    prometheus_port: int | None = None  # serve /metrics while recording
    log_to: str | None = None  # mlflow|wandb|tensorboard[=TARGET]: per-epoch figures, live
    prometheus_host: str = DEFAULT_PROMETHEUS_HOST
    extra_meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------- metric CLI options


def _metric_arg(value: str) -> str:
    name, sep, rx = value.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--metric takes NAME=REGEX, not {value!r}")
    from wattui.metrics.lineparser import compile_extra_patterns  # its patterns: on use

    try:
        compile_extra_patterns({name: rx})
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def number_arg(lo: float, hi: float, what: str, lo_open: bool = False):
    """An argparse type: a finite number in ``lo..hi`` (``lo`` excluded with ``lo_open``)."""
    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} takes a number, not {value!r}") from None
        if not math.isfinite(x) or x < lo or x > hi or (lo_open and x == lo):
            raise argparse.ArgumentTypeError(f"{what} must be in {lo:g}..{hi:g}, not {value!r}")
        return x

    return parse


def country_arg(value: str) -> str:
    """An argparse type: a country code, as ISO3."""
    from wattui.metrics.carbon import lookup_country

    try:
        return lookup_country(value).iso3
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_metric_options(p: argparse.ArgumentParser) -> None:
    """Add the accuracy / SAM / CO2 options to a record-like parser (all default to None)."""
    g = p.add_argument_group("accuracy, SAM, CO2 and cost")
    g.add_argument(
        "--metric",
        action="append",
        type=_metric_arg,
        default=None,
        metavar="NAME=REGEX",
        help="read NAME from output lines matching REGEX (one group around the number)",
    )
    g.add_argument(
        "--accuracy-key",
        metavar="NAME",
        help="the reported metric SAM uses (default: val_accuracy, eval_accuracy, val_acc, ...)",
    )
    g.add_argument(
        "--metrics-file",
        metavar="PATH",
        help="follow a metrics file as it grows (CSV with header, e.g. Lightning's metrics.csv, "
        "or JSON lines)",
    )
    g.add_argument(
        "--no-parse-output",
        dest="parse_output",
        action="store_false",
        default=None,
        help="do not look for accuracy in the script's output",
    )
    g.add_argument(
        "--epochs",
        dest="total_epochs",
        type=positive_int,
        metavar="N",
        help="total epochs of the run, for the projection (when the script does not say)",
    )
    g.add_argument(
        "--data-fraction",
        type=number_arg(0, 1, "--data-fraction", lo_open=True),
        metavar="F",
        help="this run trains on F of the data: project the full-data run (default 1)",
    )
    g.add_argument(
        "--alpha",
        "--sam-alpha",
        dest="sam_alpha",
        type=alpha_arg,
        metavar="A",
        help="SAM's alpha (default 5)",
    )
    g.add_argument(
        "--beta",
        "--sam-beta",
        dest="sam_beta",
        type=beta_arg,
        metavar="B",
        help="SAM's beta (default 5)",
    )
    g.add_argument(
        "--sam-unit", type=unit_arg, metavar="kWh|Wh|J",
        help="electricity unit of SAM (default kWh; Wh or J for runs of a few Wh)",
    )
    g.add_argument(
        "--carbon-intensity",
        dest="carbon_g_per_kwh",
        type=number_arg(0, 5000, "--carbon-intensity"),
        metavar="G_PER_KWH",
        help="grams of CO2 per kWh (wins over --country)",
    )
    g.add_argument(
        "--country",
        type=country_arg,
        metavar="ISO3",
        help="use this country's national average carbon intensity (e.g. FRA, USA, IND)",
    )
    g.add_argument(
        "--price",
        dest="price_per_kwh",
        type=number_arg(0, 1e6, "--price"),
        metavar="PER_KWH",
        help="electricity price per kWh, for the cost",
    )
    g.add_argument("--currency", metavar="CUR", help="currency of --price (default USD)")
    g.add_argument(
        "--pue",
        type=number_arg(1, 10, "--pue"),
        metavar="X",
        help="power usage effectiveness: multiplies energy for CO2 and cost (default 1)",
    )


def metric_options_from_args(args) -> MetricOptions:
    """The metric options given on a command line (see :func:`add_metric_options`)."""
    patterns: dict[str, str] = {}
    for item in getattr(args, "metric", None) or []:
        name, _, rx = item.partition("=")
        patterns[name] = rx
    given = {
        f.name: getattr(args, f.name, None)
        for f in dataclasses.fields(MetricOptions)
        if f.name != "metric_patterns"
    }
    return MetricOptions(metric_patterns=patterns or None, **given)


# ---------------------------------------------------------------------------- the serializer

# MetricOptions field -> its flag on the record parser (values as argparse reads them back)
_METRIC_FLAGS = (
    ("accuracy_key", "--accuracy-key"),
    ("metrics_file", "--metrics-file"),
    ("total_epochs", "--epochs"),
    ("data_fraction", "--data-fraction"),
    ("sam_alpha", "--alpha"),
    ("sam_beta", "--beta"),
    ("sam_unit", "--sam-unit"),
    ("carbon_g_per_kwh", "--carbon-intensity"),
    ("country", "--country"),
    ("price_per_kwh", "--price"),
    ("currency", "--currency"),
    ("pue", "--pue"),
)


def _arg(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def record_argv(opts: RecordOptions, *, session: bool = True) -> list[str]:
    """``wattui record`` arguments that parse back to ``opts`` (every option the record
    parser has; values as ``--flag=VALUE``, so a name starting with ``-`` stays a value).
    ``session=False`` leaves out ``--session-id``/``--session-reserved`` (``--detach``
    reserves its own). ``passthrough``, ``quiet`` and ``extra_meta`` are not options of the
    command line and are not written."""
    pairs: list[tuple[str, object]] = []
    flags: list[str] = []
    if opts.store is not None:
        pairs.append(("--store", opts.store))
    if opts.simulate:
        pairs.append(("--simulate", opts.simulate))
    if opts.period_s != DEFAULT_PERIOD_S:
        pairs.append(("--period", float(opts.period_s)))
    if opts.baseline_s:
        pairs.append(("--baseline", float(opts.baseline_s)))
    if opts.name is not None:
        pairs.append(("--name", opts.name))
    pairs += [("--tag", t) for t in opts.tags]
    if opts.group is not None:
        pairs.append(("--group", opts.group))
    if opts.rapl_root != DEFAULT_RAPL_ROOT:
        pairs.append(("--rapl-root", opts.rapl_root))
    if session and opts.session_id is not None:
        pairs.append(("--session-id", opts.session_id))
    if session and opts.session_reserved:
        flags.append("--session-reserved")
    if opts.prometheus_port is not None:
        pairs.append(("--prometheus-port", opts.prometheus_port))
    if opts.prometheus_host != DEFAULT_PROMETHEUS_HOST:
        pairs.append(("--prometheus-host", opts.prometheus_host))
    if opts.log_to is not None:
        pairs.append(("--log-to", opts.log_to))
    m = opts.metrics
    pairs += [("--metric", f"{name}={rx}") for name, rx in (m.metric_patterns or {}).items()]
    if m.parse_output is False:
        flags.append("--no-parse-output")
    pairs += [(flag, getattr(m, key)) for key, flag in _METRIC_FLAGS if getattr(m, key) is not None]
    return [f"{flag}={_arg(v)}" for flag, v in pairs] + flags
