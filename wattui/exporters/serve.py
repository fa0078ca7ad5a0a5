"""``wattui serve``: the comparison (or live) screen in a web browser, via textual-serve.

Each browser tab starts its own ``wattui compare --store DIR`` (or ``wattui view ID``)
process, which only reads session files: serving never owns or stops a run.

Served on 127.0.0.1 by default. Other local users can reach a loopback port too, so the
page and its websocket need a token: a fresh random one per start, printed in the URL
as Jupyter does (``http://127.0.0.1:8000/?token=...``); opening that URL sets a cookie
for this server's port, so the page's websocket carries it. Because any web page the
user opens could try to reach a localhost port, requests must name this server in their
``Host`` header (no DNS rebinding) and websockets must come from exactly this server's
origin (scheme, host and port), so another site cannot read or drive the screen.

textual-serve ships its JavaScript, CSS and fonts in its package; its page template also
links a Google Fonts stylesheet. wattui serves a copy of the template without that link
(the bundled Roboto Mono is used instead), so nothing is fetched from the internet.
"""

from __future__ import annotations

import atexit
import hmac
import re
import secrets
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from wattui import exitcodes

__all__ = ["screen_command", "make_server", "serve", "ServeError"]

from wattui.exporters.prometheus import host_of as _host_of

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
TOKEN_PARAM = "token"


class ServeError(Exception):
    """A problem the user can fix; the message is one line; ``exit_code`` from
    wattui.exitcodes."""

    def __init__(self, message: str, exit_code: int = exitcodes.USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def screen_command(target: str, ref: str | None, store: str | None) -> list[str]:
    """The command each browser tab runs: ``wattui compare`` or ``wattui view ID``."""
    cmd = [sys.executable, "-m", "wattui", target]
    if store:
        cmd += ["--store", str(Path(store).expanduser().resolve())]
    if target == "view" and ref:
        cmd.append(ref)
    return cmd


def _offline_templates(templates_dir: Path) -> Path:
    """A copy of textual-serve's page template with no request leaving the machine."""
    src = (templates_dir / "app_index.html").read_text(encoding="utf-8")
    src = re.sub(r"<link[^>]*fonts\.googleapis\.com[^>]*>", "", src, flags=re.S)
    font_face = (
        "<style>@font-face { font-family: 'Roboto Mono'; "
        "src: url('{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf'); }</style>"
    )
    src = src.replace("</head>", font_face + "\n  </head>", 1)
    out = Path(tempfile.mkdtemp(prefix="wattui-serve-"))
    atexit.register(shutil.rmtree, out, True)
    (out / "app_index.html").write_text(src, encoding="utf-8")
    return out


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower case, no path."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}"


def make_server(
    command: list[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    title: str = "wattui",
    public_url: str | None = None,
    token: str | None = None,
):
    """A textual-serve ``Server`` for ``command``, restricted to requests for this server
    that carry ``token`` (in the URL once, then in a cookie; ``None``: no token needed)."""
    try:
        import textual_serve.server as ts
        from aiohttp import web
    except ImportError as e:
        raise ServeError(
            f"`wattui serve` needs textual-serve ({e}); install it with: pip install textual-serve",
            exitcodes.MISSING_DEPENDENCY,
        ) from None

    pkg = Path(ts.__file__).resolve().parent
    url_host = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::") and public_url is None:
        import socket

        url_host = socket.gethostname()  # what other machines call us; else --public-url
    public = public_url or f"http://{url_host}:{port}"
    loopback_only = host.lower() in LOCAL_HOSTS
    allowed = {h.lower() for h in LOCAL_HOSTS} | {host.lower()}
    allowed.add(_host_of(public.split("://", 1)[-1].split("/", 1)[0]))
    # The origins our own page can have: each of our names with exactly our port.
    origins = {_origin(public)}
    for h in allowed:
        origins.add(f"http://[{h}]:{port}" if ":" in h else f"http://{h}:{port}")
    cookie = f"wattui_serve_{port}"  # cookies are per host, not per port

    def authorised(request) -> tuple[bool, bool]:
        """(token given and right, and given in the URL)."""
        if token is None:
            return True, False
        given = request.query.get(TOKEN_PARAM)
        if given is not None:
            return hmac.compare_digest(given.encode(), token.encode()), True
        c = request.cookies.get(cookie)
        return c is not None and hmac.compare_digest(c.encode(), token.encode()), False

    @web.middleware
    async def guard(request, handler):
        # On loopback, a page from another site may reach us through a DNS name that
        # resolves to 127.0.0.1 (DNS rebinding): only our own names are served.
        req_host = _host_of(request.host or "")
        if loopback_only and req_host not in allowed:
            return web.Response(status=421, text="wattui serve: unexpected Host header\n")
        # A websocket opened by another site's page (cross-site websocket hijacking) would
        # read and drive the screen: it must come from exactly our own origin.
        if request.path == "/ws":
            origin = (request.headers.get("Origin") or "").strip().lower().rstrip("/")
            if origin not in origins:
                return web.Response(status=403, text="wattui serve: cross-site request refused\n")
        if request.path.startswith("/static/"):
            return await handler(request)  # textual-serve's own scripts, fonts and styles
        ok, in_url = authorised(request)
        if not ok:
            return web.Response(
                status=403,
                text="wattui serve: open the address with the token that `wattui serve` "
                "printed when it started (…/?token=…)\n",
            )
        response = await handler(request)
        if in_url and token is not None and request.path == "/":
            response.set_cookie(cookie, token, httponly=True, samesite="Strict", path="/")
        return response

    class WattuiServer(ts.Server):
        async def _make_app(self):
            app = await super()._make_app()
            app.middlewares.append(guard)
            return app

        async def on_startup(self, app) -> None:  # no banner: we announce once listening
            pass

        def serve(self, debug: bool = False) -> None:
            """textual-serve's ``serve``, announcing the address once it accepts connections
            and logging only warnings (not every request)."""
            import asyncio
            import logging
            import signal

            self.debug = debug
            logging.basicConfig(level=logging.WARNING, format="wattui serve: %(message)s")
            logging.getLogger("asyncio").setLevel(logging.ERROR)
            _quiet_closed_loop_noise()
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self.request_exit)
                except (NotImplementedError, RuntimeError):
                    pass

            def announce(*_args) -> None:
                url = self.public_url + (f"/?{TOKEN_PARAM}={token}" if token else "")
                print(f"wattui: serving {title} on {url}  (Ctrl+C to stop)", flush=True)

            web.run_app(
                self._make_app(),
                host=self.host,
                port=self.port,
                handle_signals=False,
                loop=loop,
                print=announce,
                access_log=None,
            )

    server = WattuiServer(
        shlex.join(command),
        host=host,
        port=port,
        title=title,
        public_url=public,
        statics_path=pkg / "static",
        templates_path=_offline_templates(pkg / "templates"),
    )
    return server


def _quiet_closed_loop_noise() -> None:
    """A tab's app process still open when Ctrl+C closes the loop makes asyncio's subprocess
    transport complain from ``__del__`` ("Event loop is closed"); the process is gone, so
    that message is noise. Everything else still reaches the default hook."""
    default = sys.unraisablehook

    def hook(unraisable) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, RuntimeError) and "Event loop is closed" in str(exc):
            return
        default(unraisable)

    sys.unraisablehook = hook


def _free_port(host: str) -> int:
    import socket

    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve(
    target: str = "compare",
    ref: str | None = None,
    store: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    public_url: str | None = None,
) -> int:
    if port == 0:
        port = _free_port(host)
    command = screen_command(target, ref, store)
    title = "wattui compare" if target == "compare" else f"wattui view {ref or 'latest'}"
    server = make_server(
        command, host=host, port=port, title=title, public_url=public_url, token=new_token()
    )
    if host not in LOCAL_HOSTS:
        print(
            f"wattui: warning: serving on {host}: anyone who can reach this port can see "
            "your sessions",
            file=sys.stderr,
        )
    try:
        server.serve()
    except OSError as e:
        raise ServeError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None
    return 0
