"""Screens that say what happened: the command palette, the power chart's resampling, the
output pane's streams, SAM units in show/sessions/compare, the comparison screen at 80x24."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import pilot_wait_until as wait_for

from wattui.store.paths import sessions_dir, write_json_atomic

sys.path.insert(0, str(Path(__file__).parent))
from compare_fixtures import make_session  # noqa: E402
from screen_waits import compare_loaded  # noqa: E402

LOOP = "import time\nfor i in range(400):\n    print('step', i, flush=True)\n    time.sleep(0.25)\n"


def wattui(*args: str, store: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wattui", *args],
        env=dict(os.environ, WATTUI_HOME=str(store)),
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- the command palette and Ctrl+Q ----------------------------------------------------------
def test_palette_offers_wattui_commands_and_its_quit_asks(tmp_path):
    from wattui.cli.record import detach
    from wattui.record.options import RecordOptions
    from wattui.store.paths import new_session_id
    from wattui.tui.app import WattuiApp
    from wattui.tui.live import QuitScreen
    from wattui.tui.widgets import PowerChart

    store = tmp_path / "store"
    sid = new_session_id()
    opts = RecordOptions(store=store, simulate=1, session_id=sid)
    argv = ["--store", str(store), "--simulate", "1", "--", sys.executable, "-c", LOOP]
    assert detach(argv, opts, quiet=True) == 0
    d = sessions_dir(store) / sid

    async def go():
        app = WattuiApp(store, d, refresh_s=0.25)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.live.snapshot is not None)
            cmds = {c.title: c for c in app.get_system_commands(app.screen)}
            for title in (
                "Stop the run",
                "Leave the run running",
                "Power window: 1 min",
                "Power window: whole run",
                "Search the output",
                "Compare sessions",
                "Quit",
            ):
                assert title in cmds, sorted(cmds)
            cmds["Power window: 1 min"].callback()
            assert app.live.query_one(PowerChart).window == "1m"
            cmds["Quit"].callback()  # the palette's Quit asks, like q
            await pilot.pause()
            assert isinstance(app.screen, QuitScreen)
            await pilot.press("escape")
            assert app.screen is app.live
            await pilot.press("ctrl+q")  # Textual's quit key asks too
            await pilot.pause()
            assert isinstance(app.screen, QuitScreen)
            await pilot.press("ctrl+c")  # a second Ctrl+C cancels the question
            await pilot.pause()
            assert app.screen is app.live
            cmds = {c.title: c for c in app.get_system_commands(app.screen)}
            cmds["Leave the run running"].callback()
            await wait_for(pilot, lambda: app.return_value is not None)
        return app.return_value

    try:
        assert asyncio.run(go()) == "left-running"
        assert json.loads((d / "meta.json").read_text())["status"] == "running"
    finally:
        import signal

        import psutil

        pid = json.loads((d / "meta.json").read_text())["recorder_pid"]
        os.kill(pid, signal.SIGINT)
        psutil.Process(pid).wait(20)


# -- the power chart ----------------------------------------------------------------------------
def test_power_chart_draws_what_was_measured_at_every_window():
    from wattui.tui.widgets import WINDOWS, PowerChart, resample

    t0 = 1_000_000.0
    pts = [(t0 + i + 0.5, 200.0 + (i % 5)) for i in range(3600)]  # one-second buckets
    chart = PowerChart()
    chart.set_points(pts, now=t0 + 3600.2, latest=260.0)
    for window in WINDOWS:
        chart.set_window(window)
        for width in (20, 53, 71, 150):
            cols, start, end = chart.columns(width)
            # no false gaps: a column narrower than a second is never empty between samples
            assert all(c is not None for c in cols), (window, width, cols.count(None))
            assert all(200.0 <= c <= 204.0 for c in cols)
    # a real hole in the measurements stays a hole
    holed = [p for p in pts if not (t0 + 1000 <= p[0] <= t0 + 1030)]
    cols = resample(holed, t0 + 990, t0 + 1050, 60)
    assert cols[5] is not None and cols[55] is not None
    assert all(c is None for c in cols[12:38])
    # honest means: a column over two buckets is their time-weighted mean
    two = [(t0 + 0.5, 100.0), (t0 + 1.5, 300.0)]
    assert resample(two, t0, t0 + 2, 1) == [200.0]
    assert resample(two, t0, t0 + 2, 4) == [100.0, 100.0, 300.0, 300.0]
    # the header's max includes the newest reading, not only column means
    chart.set_window("1m")
    assert chart._window_peak(t0 + 3540, t0 + 3600.2) == 260.0


# -- the output pane: stdout and stderr apart ---------------------------------------------------
TQDM_RUN = r"""
import sys, time
from tqdm import tqdm
for epoch in range(1, 4):
    print(f"Epoch {epoch}/3", end="", flush=True)      # a stdout line in two writes,
    for _ in tqdm(range(30), file=sys.stderr, mininterval=0, ncols=60):
        time.sleep(0.005)                            # with a stderr bar redrawn between
    print(f" - loss: 0.{epoch}1 - val_acc: 0.60{epoch}0", flush=True)
print("done", flush=True)
"""


def test_output_keeps_stdout_and_stderr_lines_apart_as_a_terminal_would(tmp_path):
    pytest.importorskip("tqdm")
    from wattui.view.output import OutputTail

    store = tmp_path / "store"
    p = wattui("record", "--simulate", "--", sys.executable, "-c", TQDM_RUN, store=store)
    assert p.returncode == 0, p.stderr
    (d,) = sessions_dir(store).iterdir()
    assert (d / "output.streams").exists()
    lines = OutputTail(d / "output.log").poll()
    for e in (1, 2, 3):
        # the stdout line whole, never drawn over by the bar's \r redraws
        assert f"Epoch {e}/3 - loss: 0.{e}1 - val_acc: 0.60{e}0" in lines, lines
    bars = [x for x in lines if "it/s" in x or "s/it" in x or "30/30" in x]
    assert len(bars) == 3 and all(b.strip().startswith("100%") for b in bars), bars
    assert not any("Epoch" in x and "%|" in x for x in lines)  # no merged lines
    assert "done" in lines  # (across streams, order is as the two pipes deliver it)


class _Output:
    """The recorder's own output writer (OutputLog: stream 0 stdout, 1 stderr), waited on
    until what was written is in output.log."""

    def __init__(self, d: Path):
        from wattui.record.output_drain import OutputLog

        d.mkdir(parents=True, exist_ok=True)
        self.path = d / "output.log"
        self.log = OutputLog(self.path)
        self.n = 0

    def write(self, *parts: tuple[int, bytes]) -> None:
        for stream, data in parts:
            self.log.write(data, stream)
            self.n += len(data)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.path.exists() and self.path.stat().st_size >= self.n:
                return
            time.sleep(0.005)
        raise AssertionError("output.log was not written")


def test_output_tail_shows_the_current_progress_line_mid_epoch(tmp_path):
    """Bytes as the recorder writes them (OutputLog, both streams): a poll mid-epoch
    shows the bar's latest redraw as the live line, and the half-written stdout line."""
    from wattui.view.output import OutputTail

    out = _Output(tmp_path / "s")
    tail = OutputTail(out.path)
    out.write((0, b"Epoch 1/8 - loss: 0.9"), (1, b"\r 10%|\xe2\x96\x88         | 1/10"))
    assert tail.poll() == []
    assert tail.live == ("Epoch 1/8 - loss: 0.9", " 10%|█         | 1/10")
    # a stdout line ends; a character of the bar is cut between two writes
    out.write((0, b" - val_acc: 0.6020\n"), (1, b"\r 20%|\xe2\x96\x88\xe2"))
    assert tail.poll() == ["Epoch 1/8 - loss: 0.9 - val_acc: 0.6020"]
    out.write((1, b"\x96\x88        | 2/10"))
    assert tail.poll() == [] and tail.live == (" 20%|██        | 2/10",)
    out.write((1, b"\r100%|\xe2\x96\x88| 10/10\n"))
    assert tail.poll() == ["100%|█| 10/10"] and tail.live == ()
    out.log.close()
    # a session written before output.streams existed reads as one stream
    (out.path.parent / "output.streams").unlink()
    old = OutputTail(out.path)
    assert "100%|█| 10/10" in old.poll()


# -- SAM units in show, sessions and compare ---------------------------------------------------
def _wh_store(root: Path, unit: str = "Wh") -> list[str]:
    """Three small finished runs (1.5, 4 and 30 Wh) recorded with ``--sam-unit unit``."""
    ids = []
    for k, (name, wh, acc) in enumerate((("mlp", 1.5, 0.70), ("cnn", 4.0, 0.80), ("wide", 30.0, 0.82))):
        sid = f"20261101-0{k}0000-b00{k}"
        d = make_session(
            root, sid, name=name, watts=wh * 3600 / 600, duration_s=600, period_s=10,
            accs=(acc - 0.1, acc), metrics_in_meta=False, co2_per_kwh=None, price_per_kwh=None,
        )
        meta = json.loads((d / "meta.json").read_text())
        settings = {"sam_alpha": 5.0, "sam_beta": 5.0, "sam_unit": unit}
        meta.update(settings, metric_settings=settings)
        write_json_atomic(d / "meta.json", meta)
        ids.append(sid)
    return ids


@pytest.mark.slow
def test_sessions_recorded_in_wh_rank_by_sam_with_no_flag(tmp_path):
    store = tmp_path / "store"
    _wh_store(store)
    p = wattui("compare", "--format", "csv", store=store)
    assert p.returncode == 0, p.stderr
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(p.stdout))}
    assert {r["sam_unit"] for r in rows.values()} == {"Wh"}
    assert all(r["sam"] and r["sam_rank"] for r in rows.values()), rows
    assert "as the sessions were recorded" in p.stderr
    # 1.5 Wh is just above the singularity: flagged, with the unit that makes sense
    assert "dominated by 1/log10" in rows["mlp"]["sam_near_singularity"]
    assert "--sam-unit J" in rows["mlp"]["sam_near_singularity"]
    assert rows["wide"]["sam_near_singularity"] == ""
    # a unit given wins over the recorded one
    p = wattui("compare", "--format", "csv", "--sam-unit", "J", store=store)
    assert {r["sam_unit"] for r in csv.DictReader(io.StringIO(p.stdout))} == {"J"}

    # `sessions` shows their SAM in their unit, and takes --sam-unit
    p = wattui("sessions", store=store)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count(" Wh*") == 1 and p.stdout.count(" Wh\n") + p.stdout.count(" Wh ") >= 2
    assert "--sam-unit J" in p.stdout
    p = wattui("sessions", "--format", "csv", store=store)
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert {r["sam_unit"] for r in rows} == {"Wh"} and all(float(r["sam"]) > 0 for r in rows)
    assert sum(1 for r in rows if r["sam_flag"]) == 1
    p = wattui("sessions", "--sam-unit", "J", "--format", "json", store=store)
    recs = json.loads(p.stdout)
    assert {r["sam_unit"] for r in recs} == {"J"} and not any(r["sam_flag"] for r in recs)
    p = wattui("show", "--sam-unit", "kWh", store=store)
    assert "unit=kWh" in p.stdout and "SAM       undefined" in p.stdout
    p = wattui("show", store=store)  # the newest: wide, 30 Wh, recorded in Wh
    assert "unit=Wh" in p.stdout and "SAM       undefined" not in p.stdout
    p = wattui("show", "--sam-unit", "MJ", store=store)
    assert p.returncode == 2 and "SAM unit must be one of" in p.stderr


def test_compare_says_so_when_recorded_units_disagree(tmp_path):
    store = tmp_path / "store"
    _wh_store(store)
    d = make_session(store, "20261102-000000-c000", name="kwh-run", metrics_in_meta=False)
    meta = json.loads((d / "meta.json").read_text())
    meta.update(sam_unit="kWh", metric_settings={"sam_unit": "kWh"})
    write_json_atomic(d / "meta.json", meta)
    p = wattui("compare", "--format", "csv", store=store)
    assert p.returncode == 0
    assert "different SAM units (Wh: 3, kWh: 1)" in p.stderr
    assert {r["sam_unit"] for r in csv.DictReader(io.StringIO(p.stdout))} == {"kWh"}


# -- the comparison screen at 80x24 ------------------------------------------------------------
@pytest.mark.slow
def test_compare_screen_at_80x24_shows_what_matters_and_scrolls_by_column(tmp_path):
    from wattui.tui.compare import CompareApp, SessionTable

    store = tmp_path / "store"
    _wh_store(store)

    async def go():
        app = CompareApp(store)
        async with app.run_test(size=(80, 24)) as pilot:
            scr = await compare_loaded(pilot)
            t = scr.query_one(SessionTable)
            header = t.render_line(0).text
            for word in ("Rank ▲", "Name", "Acc", "Energy", "SAM"):
                assert word in header, header
            assert len(header) <= 80
            labels = tuple(c.label.plain for c in t.columns)
            assert header.rstrip().endswith(labels), header  # whole columns, none cut
            assert scr.params.unit == "Wh"  # as recorded
            first = [t.render_line(y).text for y in range(1, 4)]
            assert all("n/a" not in x for x in first), first  # every SAM defined in Wh
            assert "*" in "".join(first)  # the 1.5 Wh run is flagged
            pinned = header[: t.pinned_width]
            await pilot.press("right")
            stops = t.scroll_stops()
            assert int(t.scroll_x) == stops[1]  # one whole column
            moved = t.render_line(0).text
            assert moved.startswith(pinned)  # rank and name stay
            await pilot.press("right", "right", "left")
            assert int(t.scroll_x) in stops
            for _ in range(30):  # to the far right: still whole columns, the last one shown
                await pilot.press("right")
            last = t.render_line(0).text
            assert last.rstrip().endswith(labels[-1]) and int(t.scroll_x) in stops
            # sorting by a column off to the right brings it into view, with its arrow
            scr.sort_by("started_at")
            await pilot.pause()
            assert "Start (UTC) ▲" in t.render_line(0).text

    asyncio.run(go())


def test_output_tail_opened_mid_file_skips_one_fragment_only(tmp_path, monkeypatch):
    from wattui.view import output as snapshot

    monkeypatch.setattr(snapshot, "OUTPUT_FIRST_READ", 12)
    out = _Output(tmp_path / "s")
    out.write((0, b"first line\nsecond line\nthird\n"))
    tail = snapshot.OutputTail(out.path)
    assert tail.poll() == ["third"]  # "ne\nthird\n": the fragment before it is dropped
    out.write((1, b"an error\n"), (0, b"fourth\n"))  # stderr first heard of now: whole lines
    assert tail.poll() == ["an error", "fourth"]
    out.log.close()


def test_output_pane_lines_are_one_row_each_at_any_width():
    """No wrapped (merged-looking) rows, no empty scrollbar row under the last line."""
    from textual.app import App

    from wattui.tui.widgets import OutputPanel

    class One(App):
        def compose(self):
            yield OutputPanel(id="out")

    async def go():
        app = One()
        async with app.run_test(size=(40, 8)) as pilot:
            out = app.query_one(OutputPanel)
            out.append([f"Epoch {i}/8 - loss: 0.5 - val_acc: 0.60{i}0 " + "x" * 30 for i in range(20)])
            out.set_live([" 80%|" + "#" * 80 + "| 80/100", "Epoch 9/8 - loss"])
            await pilot.pause()
            log, live = out.log_widget, out.query_one("#output-live")
            assert live.region.height == 2  # one row per stream's live line, never wrapped
            assert "9/8" in app.export_screenshot()  # the second live line is not pushed out
            assert log.region.height == 6 and len(log.lines) == 20
            out.set_live([])
            await pilot.pause()
            assert not live.display and log.region.height == 8
            assert log.scroll_y == log.max_scroll_y  # following the end

    asyncio.run(go())
