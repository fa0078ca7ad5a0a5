"""``wattui serve``: registered by :mod:`wattui.cli` through ``register(sub)``."""

from __future__ import annotations

import argparse


def _port(value: str) -> int:
    try:
        p = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {value!r}") from None
    if not 0 <= p <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, not {p}")
    return p


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="show the comparison (or live) screen in a web browser",
        description=(
            "Serve `wattui compare` (default) or `wattui view ID` to a web browser. Each tab "
            "runs its own viewer, which only reads session files: serving never owns a run."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 = any free)")
    p.add_argument("--public-url", help="URL the browser uses, when it differs (e.g. a proxy)")
    from wattui.cli import _add_store

    _add_store(p)
    p.add_argument("screen", nargs="?", choices=("compare", "view"), default="compare")
    p.add_argument("id", nargs="?", help="session id for `view` (default: newest)")
    p.set_defaults(func=cmd_serve)


def _has_command(name: str) -> bool:
    from wattui.cli import build_parser

    parser = build_parser()
    for action in parser._subparsers._group_actions:  # noqa: SLF001 - argparse has no API
        if name in getattr(action, "choices", {}):
            return True
    return False


def cmd_serve(args) -> int:
    from wattui.cli import CliError

    from .serve import ServeError, serve

    if args.screen == "compare" and args.id:
        raise CliError("`wattui serve compare` takes no session id (did you mean `view ID`?)")
    if not _has_command(args.screen):
        raise CliError(f"`wattui {args.screen}` is not available in this install")
    try:
        return serve(
            target=args.screen,
            ref=args.id,
            store=args.store,
            host=args.host,
            port=args.port,
            public_url=args.public_url,
        )
    except ServeError as e:
        raise CliError(str(e), e.exit_code) from None
