"""The `wattui` command line: the parser and ``main``, the console entry point.

    wattui -- CMD ARGS...          launch CMD under a recorder and watch it live
    wattui attach PID              follow a running process and watch it live
    wattui record [...] -- CMD     headless recording (also --pid PID, --detach)
    wattui sessions / show ID      list and inspect recorded sessions
    wattui doctor                  what this machine can measure

Each command module exposes ``add_parser(subparsers, common)`` and ``run(args)``
(``estimate`` and ``calibrate`` parse their own argv: ``run_argv``); :data:`COMMANDS`
lists them in the order ``wattui --help`` shows them. Each keeps its heavy imports inside
its commands, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import sys

from wattui import __version__, exitcodes
from wattui.cli import (
    compare,
    demo,
    doctor,
    estimate,
    export,
    project,
    record,
    serve,
    sessions,
    watch,
)
from wattui.cli.common import COMMON, CliError

__all__ = ["COMMANDS", "CliError", "build_parser", "main"]

COMMANDS = (
    record,  # record
    sessions,  # sessions, show
    doctor,  # doctor
    estimate,  # estimate, calibrate
    watch,  # run (wattui -- CMD), attach, view
    project,  # project
    compare,  # compare, tag, rm, rename
    demo,  # demo
    serve,  # serve
    export,  # export
)


def _build() -> tuple[argparse.ArgumentParser, dict]:
    """The parser, and the command module that owns each subcommand."""
    p = argparse.ArgumentParser(
        prog="wattui",
        description="Watch what a training run costs in electricity, and whether the accuracy it buys is worth it.",
        epilog="Launch and watch: wattui -- python train.py   |   headless: wattui record -- python train.py",
    )
    p.add_argument("--version", action="version", version=f"wattui {__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    owners: dict = {}
    for mod in COMMANDS:
        before = set(sub.choices)
        mod.add_parser(sub, COMMON)
        owners.update((name, mod) for name in sub.choices if name not in before)
    return p, owners


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--":
        argv = ["run", *argv]  # `wattui -- CMD`: launch and watch
    elif argv and argv[0] not in ("-h", "--help") and argv[0].startswith("--") and "--" in argv:
        argv = ["run", *argv]  # `wattui --simulate -- CMD`
    if argv and argv[0] in estimate.NAMES:
        return estimate.run_argv(argv)
    parser, owners = _build()
    args = parser.parse_args(argv)
    if args.cmd is None:
        parser.print_help()
        return 0
    try:
        return int(owners[args.cmd].run(args) or 0)
    except CliError as e:
        from wattui.sanitize import clean_text

        print(f"wattui: error: {clean_text(str(e))}", file=sys.stderr)  # may quote a path
        return e.code
    except KeyboardInterrupt:
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        return 0
