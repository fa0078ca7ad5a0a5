"""What several commands share: :class:`CliError`, and each shared option declared once.

``build_parser`` hands :data:`COMMON` to every command's ``add_parser``: ``--store``, SAM's
parameters, ``--simulate`` and the record options (``record``, ``run``, ``attach``) are added
through it, never spelled out in a command module. Stdlib only at import: building the
parser must stay cheap.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wattui import exitcodes
from wattui.argtypes import nonneg_float, positive_float


class CliError(Exception):
    """One line for the user; exits with ``code`` (default 2, see wattui.exitcodes)."""

    def __init__(self, message: str, code: int = exitcodes.USAGE) -> None:
        super().__init__(message)
        self.code = code


# -- shared options -------------------------------------------------------------------
def add_store(p: argparse.ArgumentParser) -> None:
    """``--store DIR``, the same for every command (wattui.store.paths.store_root)."""
    p.add_argument(
        "--store",
        metavar="DIR",
        help="session store (default: $WATTUI_HOME, else $XDG_DATA_HOME/wattui, else ~/.local/share/wattui)",
    )


def add_sam(p: argparse.ArgumentParser) -> None:
    """SAM's parameters for a listing: default, the ones each session was recorded with."""
    from wattui.metrics.sam import alpha_arg, beta_arg, unit_arg

    g = p.add_argument_group("SAM (default: as each session was recorded)")
    g.add_argument(
        "--alpha", "--sam-alpha", dest="sam_alpha", type=alpha_arg, metavar="A", help="SAM's alpha"
    )
    g.add_argument(
        "--beta", "--sam-beta", dest="sam_beta", type=beta_arg, metavar="B", help="SAM's beta"
    )
    g.add_argument("--sam-unit", type=unit_arg, metavar="kWh|Wh|J", help="SAM's electricity unit")


def sam_opts(args) -> dict:
    """The SAM options given (checked), as ``session_record`` keywords."""
    opts = {k: getattr(args, k, None) for k in ("sam_alpha", "sam_beta", "sam_unit")}
    opts = {k: v for k, v in opts.items() if v is not None}
    if opts:
        from wattui.metrics.sam import check_params

        try:
            checked = check_params(
                opts.get("sam_alpha", 5.0), opts.get("sam_beta", 5.0), opts.get("sam_unit", "kWh")
            )
        except ValueError as e:
            raise CliError(str(e)) from None
        keys = ("sam_alpha", "sam_beta", "sam_unit")
        opts = {k: v for k, v in zip(keys, checked) if k in opts}
    return opts


def simulate_arg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--simulate takes a number of GPUs, not {value!r}") from None
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError("--simulate takes 1 to 64 GPUs")
    return n


def add_simulate(p: argparse.ArgumentParser, help: str) -> None:
    """``--simulate [N]``: N simulated GPUs (default 1)."""
    p.add_argument("--simulate", nargs="?", const=1, type=simulate_arg, metavar="N", help=help)


def add_rapl_root(p: argparse.ArgumentParser) -> None:
    """``--rapl-root DIR`` (hidden): where RAPL's powercap zones are; tests point it at a copy."""
    p.add_argument("--rapl-root", default="/sys/class/powercap", help=argparse.SUPPRESS)


def _session_id_arg(value: str) -> str:
    from wattui.store.paths import check_session_id

    try:
        return check_session_id(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _log_to_arg(value: str) -> str:
    from wattui.exporters.live_trackers import parse_spec

    try:
        parse_spec(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def add_record_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `record`, `wattui -- CMD` and `attach`."""
    from wattui.record.options import add_metric_options

    add_store(p)
    add_simulate(
        p, "use N simulated GPUs (default 1) instead of real ones; marked SIMULATED everywhere"
    )
    p.add_argument("--period", type=positive_float, default=None, metavar="S", help="sampling period in seconds (default 0.2)")
    p.add_argument("--baseline", type=nonneg_float, default=0.0, metavar="S", help="measure idle power for S seconds before launch")
    p.add_argument("--name", help="a name for this session (shown in the comparison screen)")
    p.add_argument("--tag", action="append", default=[], help="tag the session (repeatable)")
    p.add_argument(
        "--group",
        help="multi-node group id (default: JOBID.STEPID in a Slurm step of several nodes or tasks, "
        "$TORCHELASTIC_RUN_ID when WORLD_SIZE > 1; else none)",
    )
    add_rapl_root(p)
    p.add_argument("--session-id", type=_session_id_arg, help=argparse.SUPPRESS)
    p.add_argument("--session-reserved", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--prometheus-port", type=int, metavar="PORT", help="serve Prometheus /metrics on PORT while recording")
    p.add_argument("--prometheus-host", default="127.0.0.1", metavar="HOST", help="address for --prometheus-port (default 127.0.0.1)")
    p.add_argument(
        "--log-to",
        type=_log_to_arg,
        metavar="TRACKER[=TARGET]",
        help="log each epoch's energy, power, accuracy and SAM live to mlflow[=URI], wandb[=DIR] "
        "or tensorboard[=LOGDIR] (the library must be installed)",
    )
    add_metric_options(p)


class CommonOptions:
    """The shared options, as ``build_parser`` hands them to each command's ``add_parser``."""

    store = staticmethod(add_store)
    sam = staticmethod(add_sam)
    simulate = staticmethod(add_simulate)
    rapl_root = staticmethod(add_rapl_root)
    record = staticmethod(add_record_options)


COMMON = CommonOptions()


def options_from_args(args):
    """The record options given on a command line, as a ``RecordOptions``."""
    import os

    from wattui.groups.node_env import default_group
    from wattui.record.options import RecordOptions, metric_options_from_args
    from wattui.sampler import DEFAULT_PERIOD_S
    from wattui.store.manage import ManageError, check_name, check_tag

    metrics = metric_options_from_args(args)
    group = args.group or default_group(os.environ)
    try:  # the same rules as `wattui rename` / `wattui tag`: no escapes into a terminal
        name = check_name(args.name) if args.name is not None else None
        tags = [check_tag(t) for t in args.tag]
    except ManageError as e:
        raise CliError(f"--name/--tag: {e}") from None
    return RecordOptions(
        store=Path(args.store) if args.store else None,
        simulate=args.simulate,
        period_s=args.period or DEFAULT_PERIOD_S,
        baseline_s=args.baseline,
        name=name,
        tags=tags,
        session_id=args.session_id,
        session_reserved=bool(getattr(args, "session_reserved", False)),
        rapl_root=args.rapl_root,
        group=group,
        metrics=metrics,
        prometheus_port=args.prometheus_port,
        log_to=getattr(args, "log_to", None),
        prometheus_host=args.prometheus_host,
    )
