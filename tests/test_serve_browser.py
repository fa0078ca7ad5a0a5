"""`wattui serve` in a real headless Chromium: the page loads from localhost only, the
browser runs textual-serve's client, and the comparison (and live/replay) screen's text
appears in the page.

textual-serve's xterm.js draws with WebGL or a canvas, so the terminal's text is not in
the DOM. The test turns canvases off in the page (before any script runs), which makes
xterm.js fall back to its DOM renderer, and reads ``.xterm-rows`` over the Chrome
DevTools Protocol (aiohttp's websocket client; aiohttp comes with textual-serve).
Needs Debian's ``chromium`` package; skipped with the reason when it is missing.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("textual_serve", reason="textual-serve is not installed")
aiohttp = pytest.importorskip("aiohttp", reason="aiohttp (a textual-serve dependency) missing")

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
    None,
)
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium here (Debian: apt-get install -y chromium)"
)
NO_CANVAS = "HTMLCanvasElement.prototype.getContext = function () { return null; };"
RUN_NAME = "browser-run-7"


def _env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTUI_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["WATTUI_CHANNEL_DIR"] = str(tmp_path / "chan")
    env["HOME"] = str(tmp_path / "home")  # no user config or store leaks in
    return env


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    store = tmp / "store"
    out = subprocess.run(
        [sys.executable, "-m", "wattui", "record", "--simulate", "--store", str(store),
         "--name", RUN_NAME, "--", sys.executable, "-c", "import time; time.sleep(0.5)"],
        env=_env(tmp), capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    sid = re.search(r"recording session (\S+)", out.stderr).group(1)
    return store, sid, tmp


class _Serve:
    def __init__(self, args: list[str], env: dict):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wattui", "serve", "--port", "0", *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # its tabs' app processes go with it
        )
        self.url = None
        deadline = time.monotonic() + 30
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(r"on (http://\S+)/\?token=(\S+)", line)
            if m:
                self.url, self.token = m.group(1), m.group(2)
                self.full_url = f"{self.url}/?token={self.token}"
                break
        assert self.url, "".join(seen)

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


async def _screen_text(url: str, want: list[str], timeout: float = 60.0) -> str:
    """Load ``url`` in headless Chromium; return the terminal's text once it shows ``want``."""
    ud = tempfile.mkdtemp(prefix="wattui-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={ud}", "--remote-debugging-port=0",
         "--window-size=1400,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    text = ""
    try:
        port_file = Path(ud) / "DevToolsActivePort"
        # a cold start of Chromium on a loaded 2-core machine has taken over 20 s
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            assert proc.poll() is None, "chromium exited at start"
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json") as r:
                targets = await r.json()
            page = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                counter = 0

                async def call(method, **params):
                    nonlocal counter
                    counter += 1
                    my = counter
                    await ws.send_json({"id": my, "method": method, "params": params})
                    while True:
                        msg = await ws.receive_json()
                        if msg.get("id") == my:
                            assert "error" not in msg, msg
                            return msg["result"]

                await call("Page.enable")
                await call("Page.addScriptToEvaluateOnNewDocument", source=NO_CANVAS)
                await call("Page.navigate", url=url)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.3)
                    res = await call(
                        "Runtime.evaluate",
                        expression="(document.querySelector('.xterm-rows') || {}).innerText || ''",
                        returnByValue=True,
                    )
                    text = res["result"].get("value") or ""
                    if all(w in text for w in want):
                        return text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(ud, ignore_errors=True)
    raise AssertionError(f"the page never showed {want!r}; it showed:\n{text}")


def _has_compare_screen() -> bool:
    return (ROOT / "wattui" / "tui" / "compare.py").exists()


@needs_browser
@pytest.mark.slow
def test_compare_screen_in_the_browser(store):
    if not _has_compare_screen():
        pytest.skip("the comparison screen (wattui/tui/compare.py) is not in this tree")
    store_dir, sid, tmp = store
    srv = _Serve(["--store", str(store_dir)], _env(tmp))
    try:
        assert srv.url.startswith("http://127.0.0.1:")
        text = asyncio.run(_screen_text(srv.full_url, [RUN_NAME, "1 of 1 sessions"]))
        assert "SIM" in text  # simulated sessions are marked in the browser too
    finally:
        srv.close()


def _view_refuses_web_driver(store_dir, sid, env) -> str | None:
    """`wattui view` as a browser tab runs it: stdout a pipe, TEXTUAL_DRIVER the web driver."""
    env = dict(env, TEXTUAL_DRIVER="textual.drivers.web_driver:WebDriver")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wattui", "view", "--store", str(store_dir), sid],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # it runs: good
        proc.kill()
        proc.communicate()
        return None
    if b"needs a terminal" in err:
        return (
            "`wattui view` refuses to run without a tty even under textual-serve's web driver "
            "(wattui/cli/watch.py cmd_view should accept $TEXTUAL_DRIVER)"
        )
    return None


@needs_browser
@pytest.mark.slow
def test_view_screen_of_a_finished_session_in_the_browser(store):
    store_dir, sid, tmp = store
    reason = _view_refuses_web_driver(store_dir, sid, _env(tmp))
    if reason:
        pytest.skip(reason)
    srv = _Serve(["--store", str(store_dir), "view", sid], _env(tmp))
    try:
        text = asyncio.run(_screen_text(srv.full_url, ["SIMULATED"]))
        assert sid in text or RUN_NAME in text, text
    finally:
        srv.close()


@pytest.mark.slow
def test_page_is_local_and_foreign_hosts_and_origins_are_refused(store):
    """No CDN: the page and its assets come from this server; DNS-rebinding Host headers and
    websockets opened from other sites are refused."""
    store_dir, sid, tmp = store
    srv = _Serve(["--store", str(store_dir)], _env(tmp))
    try:
        html = urllib.request.urlopen(srv.full_url, timeout=10).read().decode()
        assert "googleapis" not in html
        urls = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
        assert urls and all(u.startswith(srv.url + "/static/") for u in urls), urls
        for u in urls:
            assert urllib.request.urlopen(u, timeout=10).status == 200
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(
                urllib.request.Request(srv.full_url, headers={"Host": "evil.example"}), timeout=10
            )
        assert e.value.code == 421
        ws_headers = {
            "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "http://evil.example",
        }
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(
                urllib.request.Request(srv.url + "/ws?token=" + srv.token, headers=ws_headers),
                timeout=10,
            )
        assert e.value.code == 403
    finally:
        srv.close()


def test_serve_needs_its_token_and_an_exact_origin(store):
    """Another local user can reach a loopback port: without the token printed at start
    nothing but the static assets is served, and a websocket needs exactly our origin
    (another localhost port is another site)."""
    store_dir, sid, tmp = store
    srv = _Serve(["--store", str(store_dir)], _env(tmp))
    try:
        port = int(srv.url.rsplit(":", 1)[1])
        for bad in (srv.url + "/", srv.url + "/?token=wrong" + srv.token[5:]):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(bad, timeout=10)
            assert e.value.code == 403
        resp = urllib.request.urlopen(srv.full_url, timeout=10)
        assert resp.status == 200
        cookie = resp.headers["Set-Cookie"]
        assert srv.token in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie

        async def ws(url, origin, headers=None):
            async with aiohttp.ClientSession() as http:
                try:
                    async with http.ws_connect(url, origin=origin, headers=headers or {}) as w:
                        await w.close()
                        return 101
                except aiohttp.WSServerHandshakeError as err:
                    return err.status

        own = f"http://127.0.0.1:{port}"
        ws_url = srv.url.replace("http://", "ws://") + "/ws"
        assert asyncio.run(ws(ws_url, own)) == 403  # no token
        assert asyncio.run(ws(ws_url + "?token=" + srv.token, f"http://localhost:{port + 1}")) == 403
        assert asyncio.run(ws(ws_url + "?token=" + srv.token, f"http://127.0.0.1:{port}.evil")) == 403
        assert asyncio.run(ws(ws_url + "?token=" + srv.token, None)) == 403  # no Origin
        cookie_hdr = {"Cookie": cookie.split(";", 1)[0]}
        assert asyncio.run(ws(ws_url, own, cookie_hdr)) == 101  # the page's own websocket
        assert asyncio.run(ws(ws_url, f"http://localhost:{port}", cookie_hdr)) == 101
    finally:
        srv.close()


def test_serve_refuses_an_id_with_compare(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "wattui", "serve", "--store", str(tmp_path), "compare", "x"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=60,
    )
    assert out.returncode != 0 and "takes no session id" in out.stderr
