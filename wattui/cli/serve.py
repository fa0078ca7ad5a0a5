"""``wattui serve``: the comparison (or live) screen in a web browser."""

from __future__ import annotations

from wattui.argtypes import port_number
from wattui.cli.common import CliError


def add_parser(sub, common) -> None:
    p = sub.add_parser(
        "serve",
        help="show the comparison (or live) screen in a web browser",
        description=(
            "Serve `wattui compare` (default) or `wattui view ID` to a web browser. Each tab "
            "runs its own viewer, which only reads session files: serving never owns a run."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=8000, help="port (default 8000; 0 = any free)")
    p.add_argument("--public-url", help="URL the browser uses, when it differs (e.g. a proxy)")
    common.store(p)
    p.add_argument("screen", nargs="?", choices=("compare", "view"), default="compare")
    p.add_argument("id", nargs="?", help="session id for `view` (default: newest)")


def run(args) -> int:
    from wattui.exporters.serve import ServeError, serve

    if args.screen == "compare" and args.id:
        raise CliError("`wattui serve compare` takes no session id (did you mean `view ID`?)")
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
