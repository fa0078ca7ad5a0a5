"""The live screen on real sessions: a real background recorder (--simulate) writes the
files, the real app reads them through its worker thread, Pilot presses the keys."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import pilot_wait_until as wait_for
from conftest import wait_until

from wattui.cli.record import detach
from wattui.record.options import RecordOptions
from wattui.store.paths import new_session_id, sessions_dir
from wattui.store.reader import Session
from wattui.view.history import PowerHistory
from wattui.view.metric_tracker import MetricTracker
from wattui.view.output import OutputTail, clean_line

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TRAIN = (
    "import time\n"
    "for i in range({n}):\n"
    "    print(f'epoch {{i}} accuracy {{0.5 + i / 400:.3f}} loss {{1 / (i + 1):.3f}}', flush=True)\n"
    "    time.sleep(0.2)\n"
)


def start_recorder(store: Path, seconds: float = 60.0, period: float = 0.1) -> Path:
    """A real detached recorder (own session, like `wattui -- CMD`); returns the session dir."""
    sid = new_session_id() + "-" + os.urandom(2).hex()
    opts = RecordOptions(store=store, simulate=1, session_id=sid)
    code = TRAIN.format(n=int(seconds / 0.2))
    argv = [
        "--store",
        str(store),
        "--simulate",
        "1",
        "--period",
        str(period),
        "--",
        sys.executable,
        "-c",
        code,
    ]
    assert detach(argv, opts, quiet=True) == 0
    return sessions_dir(store) / sid


def stop(session_dir: Path, timeout: float = 15.0) -> None:
    try:
        meta = json.loads((session_dir / "meta.json").read_text())
        pid = meta["recorder_pid"]
        os.kill(pid, signal.SIGINT)
        psutil.Process(pid).wait(timeout)
    except (ProcessLookupError, psutil.NoSuchProcess, KeyError, FileNotFoundError):
        pass


def samples_bytes(d: Path) -> int:
    p = d / "samples.csv"
    return p.stat().st_size if p.exists() else -1


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    d = start_recorder(store)
    yield store, d
    stop(d)


def run(coro):
    return asyncio.run(coro)


def make_app(store, d, **kw):
    from wattui.tui.app import WattuiApp

    return WattuiApp(store, d, refresh_s=kw.pop("refresh_s", 0.25), **kw)


# -- the live screen on a running session ----------------------------------------------------------
@pytest.mark.slow
def test_figures_update_over_time(live):
    store, d = live

    async def go():
        from wattui.tui.widgets import GpuTable, PowerChart, SessionHeader

        app = make_app(store, d)
        async with app.run_test(size=(100, 30)) as pilot:
            scr = app.live
            await wait_for(
                pilot, lambda: scr.snapshot is not None and scr.snapshot.record.get("energy_j")
            )
            s1 = scr.snapshot
            assert s1.status == "running" and s1.simulated
            assert scr.query_one(SessionHeader).has_class("-simulated")
            assert [g.key for g in s1.gpus] == ["gpu0"]
            assert s1.gpus[0].power_method == "simulated" and s1.gpus[0].watts > 0
            assert scr.query_one(GpuTable).row_count == 1
            await wait_for(
                pilot,
                lambda: (
                    scr.snapshot.record.get("energy_j", 0) > s1.record["energy_j"]
                    and scr.snapshot.elapsed_s > s1.elapsed_s + 0.9
                    and len(scr.snapshot.history) > len(s1.history)
                ),
                timeout=8,
            )
            s2 = scr.snapshot
            assert s2.seq > s1.seq
            # the chart draws what the snapshot holds
            chart = scr.query_one(PowerChart)
            cols, start, end = chart.columns(50)
            assert any(c is not None and c > 0 for c in cols)
            assert math.isclose(end, s2.now)
            # metrics the run prints reach the accuracy panel (via the recorder's intake)
            await wait_for(pilot, lambda: scr.snapshot.metrics.count >= 2)
            m1 = scr.snapshot.metrics
            assert 0.5 <= m1.latest_accuracy <= 0.8 and m1.best_accuracy >= m1.latest_accuracy
            await wait_for(pilot, lambda: scr.snapshot.metrics.count > m1.count)
            assert scr.snapshot.metrics.latest_accuracy > m1.latest_accuracy
            panel = scr.query_one("#accuracy").render()
            assert f"{scr.snapshot.metrics.latest_accuracy:.3f}"[:4] in str(panel)
            # the run's output is tail-followed into the log
            log = scr.query_one("#output-log")
            await wait_for(pilot, lambda: any("epoch" in line for line in log.lines))
            # redraws stay at the configured rate (0.25 s): no flood of snapshots
            n0, t0 = scr.snapshots_applied, time.monotonic()
            await pilot.pause(2.0)  # the measuring window: this pause is the test
            n = scr.snapshots_applied - n0
            rate = n / (time.monotonic() - t0)
            # at least one update (a loaded machine may give fewer than 4 a second), no flood
            assert n >= 1 and rate <= 5.0, (n, rate)

    run(go())


@pytest.mark.slow
def test_keys_window_help_search(live):
    store, d = live

    async def go():
        from wattui.tui.help import HelpScreen
        from wattui.tui.widgets import OutputPanel, PowerChart

        app = make_app(store, d)
        async with app.run_test(size=(80, 24)) as pilot:
            scr = app.live
            chart = scr.query_one(PowerChart)
            await wait_for(pilot, lambda: scr.snapshot is not None)
            assert chart.window == "10m"
            await pilot.press("w")
            assert chart.window == "1h"
            await pilot.press("w", "w")
            assert chart.window == "1m"
            await pilot.press("4")
            assert chart.window == "all"
            await pilot.press("2")
            assert chart.window == "10m"
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert app.screen is scr
            out = scr.query_one(OutputPanel)
            await wait_for(pilot, lambda: sum("epoch" in x for x in out.log_widget.lines) >= 3)
            await pilot.press("slash")
            assert out.has_class("-searching")
            await pilot.press(*"epoch", "enter")
            assert not out.has_class("-searching")
            assert len(out.matches) >= 3
            last = out.match_index
            await pilot.press("N")
            assert out.match_index == last - 1
            await pilot.press("n")
            assert out.match_index == last
            assert out.log_widget.auto_scroll is False
            await pilot.press("f")
            assert out.log_widget.auto_scroll is True
            # a search with no match says so
            await pilot.press("slash", *"no-such-text", "enter")
            assert out.matches == []

    run(go())


def test_the_live_screen_opens_without_the_heavy_imports(tmp_path):
    """The first frame does not wait for Polars or NVML: the app and its live screen
    load them in the worker, after the frame (the comparison screen when it opens)."""
    code = (
        "import sys; from pathlib import Path; from wattui.tui.app import WattuiApp; "
        "WattuiApp(Path(sys.argv[1]), Path(sys.argv[1]) / 'x'); "
        "print(sorted(m for m in ('polars', 'pynvml') if m in sys.modules))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


FIRST_FRAME = r"""
import sys
from textual.app import App
from wattui import cli
out, argv, shown = sys.argv[1], sys.argv[2:], []
display = App._display
def first(self, *a, **k):
    display(self, *a, **k)
    if not shown and self.screen.query("FooterKey"):  # the first full frame is out
        shown.append(sorted(m for m in ("polars", "psutil", "pynvml", "numpy") if m in sys.modules))
        self.exit()
App._display = first
cli.main(argv)
with open(out, "w") as f:
    f.write(repr(shown))
"""


def test_view_draws_its_first_frame_before_the_heavy_imports(tmp_path):
    """`wattui view ID` of a running session, in a real terminal: its first full frame
    (the footer's keys included) is out before Polars, psutil or NVML is imported; the
    worker loads them after it."""
    pexpect = pytest.importorskip("pexpect")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from compare_fixtures import make_session

    store = tmp_path / "store"
    d = make_session(store, "20260101-120000-live", status="running")
    out = tmp_path / "modules"
    env = dict(os.environ, WATTUI_HOME=str(store), TERM="xterm-256color")
    child = pexpect.spawn(sys.executable, ["-c", FIRST_FRAME, str(out), "view", d.name],
                          env=env, dimensions=(48, 160), timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    assert out.read_text() == "[[]]"


def test_footer_shows_the_keys_of_what_has_focus(live):
    """The footer is rebuilt only when its keys change, and still follows the focus: the
    search box's keys while it is open, the screen's again when it closes."""
    from textual.widgets._footer import FooterKey

    store, d = live

    async def go():
        app = make_app(store, d)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.live.snapshot is not None)

            def keys():
                return [k.key for k in app.screen.query(FooterKey)]

            await wait_for(pilot, lambda: "q" in keys())
            screen_keys = keys()
            assert {"q", "w", "slash", "question_mark", "c"} <= set(screen_keys)
            await pilot.press("slash")
            await wait_for(pilot, lambda: "q" not in keys())
            assert "slash" in keys()  # the search box's own keys
            await pilot.press("escape")
            await wait_for(pilot, lambda: keys() == screen_keys)

    run(go())


def test_c_switches_to_compare_and_back(live):
    store, d = live
    async def go():
        app = make_app(store, d)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.live.snapshot is not None)
            await pilot.press("c")
            await wait_for(pilot, lambda: app.current_mode == "compare")
            assert type(app.screen).__name__ == "CompareScreen"
            await pilot.press("c")
            await wait_for(pilot, lambda: app.current_mode == "live" and app.screen is app.live)
            n = app.live.snapshots_applied
            await wait_for(pilot, lambda: app.live.snapshots_applied > n)  # still polling

    run(go())


@pytest.mark.slow
def test_second_viewer_on_same_session(live):
    """A real second viewer (`wattui view ID` in a terminal) while the Pilot one runs."""
    pexpect = pytest.importorskip("pexpect")
    store, d = live
    env = dict(os.environ, WATTUI_HOME=str(store), TERM="xterm-256color")
    other = pexpect.spawn(
        sys.executable,
        ["-m", "wattui", "view", d.name],
        env=env,
        dimensions=(24, 80),
        encoding="utf-8",
        timeout=20,
    )
    try:

        async def go():
            app = make_app(store, d)
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, lambda: app.live.snapshot is not None)
                assert app.live.snapshot.status == "running"
                other.expect("running")
                n = app.live.snapshots_applied
                await wait_for(pilot, lambda: app.live.snapshots_applied > n)  # both keep reading

        run(go())
        other.send("q")
        other.expect("leave it running")
        other.send("l")
        other.expect(pexpect.EOF)
    finally:
        other.close(force=True)
    assert Session.open(d).is_live


def test_quit_leave_running_keeps_the_recording(live):
    store, d = live

    async def go():
        from wattui.tui.live import QuitScreen

        app = make_app(store, d)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.live.snapshot is not None)
            await pilot.press("q")
            assert isinstance(app.screen, QuitScreen)
            await pilot.press("escape")  # cancel: still watching
            assert app.screen is app.live
            await pilot.press("q", "l")
            await wait_for(pilot, lambda: app.return_value is not None)
        return app.return_value

    assert run(go()) == "left-running"
    meta = json.loads((d / "meta.json").read_text())
    assert psutil.pid_exists(meta["recorder_pid"])
    n0 = samples_bytes(d)
    assert n0 > 0
    wait_until(lambda: samples_bytes(d) > n0, what="the left recorder's next flush")
    assert Session.open(d).status == "running"


def test_quit_and_stop_ends_the_run(tmp_path):
    store = tmp_path / "store"
    d = start_recorder(store, seconds=60)
    try:

        async def go():
            app = make_app(store, d)
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, lambda: app.live.snapshot is not None)
                await pilot.press("q", "s")
                await wait_for(pilot, lambda: app.return_value is not None, timeout=20)
            return app.return_value, app.live.stop_result

        result, how = run(go())
        assert result == "stopped" and how == "stopped"
        s = Session.open(d)
        assert s.status in ("interrupted", "finished")
        assert s.meta.get("ended_at") and (d / "samples.parquet").exists()
        assert (
            not psutil.pid_exists(s.meta["recorder_pid"])
            or psutil.Process(s.meta["recorder_pid"]).status() == psutil.STATUS_ZOMBIE
        )
    finally:
        stop(d)


@pytest.mark.slow
def test_finished_session_replays(tmp_path):
    store = tmp_path / "store"
    code = "import time\nfor i in range(8):\n    print('epoch', i, flush=True); time.sleep(0.15)\n"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "wattui",
            "record",
            "--store",
            str(store),
            "--simulate",
            "2",
            "--period",
            "0.1",
            "--",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    (d,) = sessions_dir(store).iterdir()

    async def go():
        from wattui.tui.widgets import PowerChart, SessionHeader

        app = make_app(store, d)
        async with app.run_test(size=(120, 40)) as pilot:
            scr = app.live
            await wait_for(pilot, lambda: scr.snapshot is not None)
            s = scr.snapshot
            assert s.status == "finished" and s.exit_code == 0
            assert len(s.gpus) == 2 and all(g.energy_j and g.energy_j > 0 for g in s.gpus)
            assert s.elapsed_s == pytest.approx(s.record["duration_s"], abs=0.5)
            assert len(s.history) >= 1
            assert scr.query_one(PowerChart).window == "all"
            status = scr.query_one(SessionHeader).query_one("#hdr-status").render()
            assert "finished (exit 0)" in str(status)
            log = scr.query_one("#output-log")
            await wait_for(pilot, lambda: sum("epoch" in x for x in log.lines) == 8)
            await wait_for(pilot, lambda: scr.snapshots_applied >= 2)
            n = scr.snapshots_applied
            await pilot.pause(1.0)  # a second of nothing: this pause is the test
            assert scr.snapshots_applied == n  # the worker stopped: nothing changes any more
            await pilot.press("q")  # a finished session quits at once
        return app.return_value

    assert run(go()) == "closed"


def _recorded_session(tmp_path) -> tuple[Path, Path]:
    store = tmp_path / "store"
    p = run_wattui_record(store, "print('epoch 0', flush=True)")
    assert p.returncode == 0, p.stderr
    (d,) = sessions_dir(store).iterdir()
    return store, d


def run_wattui_record(store: Path, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wattui", "record", "--store", str(store), "--simulate", "1",
         "--period", "0.1", "--", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60,
    )


def test_a_session_read_that_fails_is_said_and_tried_again(tmp_path, monkeypatch):
    """A poll that raises (a file replaced under the reader) used to end the worker
    silently: the screen stayed at 'opening session...' for good."""
    from wattui.view.snapshot import SnapshotBuilder

    store, d = _recorded_session(tmp_path)
    real_poll, calls = SnapshotBuilder.poll, []

    def flaky_poll(self):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("samples.csv was replaced")
        return real_poll(self)

    monkeypatch.setattr(SnapshotBuilder, "poll", flaky_poll)

    async def go():
        app = make_app(store, d)
        async with app.run_test(size=(120, 40)) as pilot:
            scr = app.live
            await wait_for(pilot, lambda: scr.snapshot is not None)
            shown = [str(n.message) for n in app._notifications]
            assert any("reading the session failed (samples.csv was replaced)" in m
                       for m in shown), shown
            assert scr.snapshot.status == "finished"
            await pilot.press("q")

    run(go())


def test_a_session_that_cannot_be_read_ends_with_a_one_line_error(tmp_path, monkeypatch):
    from wattui.view.snapshot import SnapshotBuilder

    store, d = _recorded_session(tmp_path)

    def broken_poll(self):
        raise OSError("disk on fire")

    monkeypatch.setattr(SnapshotBuilder, "poll", broken_poll)

    async def go():
        app = make_app(store, d)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.return_code == 2, timeout=30)
        return app.return_code

    assert run(go()) == 2


# -- the bounded view model --------------------------------------------------------------------------
def test_power_history_is_bounded_for_72_hours():
    h = PowerHistory()
    t0 = 1_700_000_000.0
    for k in range(0, 72 * 3600, 2):
        h.add(t0 + k, 100.0 + (k % 7))
    pts = h.points()
    assert len(pts) <= h.fine_points + h.coarse_points
    assert pts[0][0] < t0 + 3600 and pts[-1][0] > t0 + 72 * 3600 - 5
    assert all(a[0] < b[0] for a, b in zip(pts, pts[1:], strict=False))
    assert all(100.0 <= w <= 106.0 for _, w in pts)


def test_metric_tracker_and_output_tail(tmp_path):
    tr = MetricTracker(history=5)
    for i, acc in enumerate([0.5, 0.7, 0.6, 0.8, 0.75, 0.79, 0.81]):
        tr.add(
            {
                "kind": "metric",
                "epoch": i,
                "accuracy": acc,
                "values_json": json.dumps({"loss": 1 / (i + 1)}),
            }
        )
    tr.add({"kind": "warning", "message": "x"})
    m = tr.summary()
    assert (
        m.count == 7 and m.latest_accuracy == 0.81 and m.best_accuracy == 0.81 and m.best_epoch == 6
    )
    assert len(m.accuracy_history) == 5 and m.others[0][0] == "loss"
    f = tmp_path / "output.log"
    f.write_bytes(b"one\ntw")
    tail = OutputTail(f)
    assert tail.poll() == ["one"]
    with open(f, "ab") as fh:
        fh.write(b"o\n\x1b[32mgreen\x1b[0m\nbar 10%\rbar 100%\n")
    assert tail.poll() == ["two", "\x1b[32mgreen\x1b[0m", "bar 100%"]  # colours kept (SGR only)
    assert clean_line("a\rb\r") == "b"


def test_bounded_tail_catches_up_in_chunks(tmp_path):
    """A big live CSV is read a chunk per poll, and compaction mid-way loses nothing."""
    from wattui.store.writer import compact
    from wattui.tui.demo_data import write_demo_session
    from wattui.view.sample_rows import SampleRows
    from wattui.view.samples_tail import BoundedTail

    def seqs_of(frame) -> list[int]:  # a chunk this small comes as plain rows
        assert isinstance(frame, SampleRows)
        return [r[1] for r in frame]

    d = write_demo_session(tmp_path / "store", duration_s=3000.0, gpus=1, running=True)
    tail = BoundedTail(d, chunk=32 * 1024)
    seqs, polls = set(), 0
    while True:
        frame, _ = tail.poll()
        polls += 1
        if frame is not None:
            seqs |= set(seqs_of(frame))
        if tail.caught_up or polls > 500:
            break
    assert polls > 3 and tail.caught_up
    half = len(seqs)
    assert half > 1000 and seqs == set(range(half))
    compact(d)  # the recorder finished: the live CSV is replaced by Parquet
    frame, events = tail.poll()
    assert frame is None or frame.collect().height == 0
    assert tail.final_done


@pytest.mark.slow
def test_long_finished_session_replays_whole_run(tmp_path, monkeypatch):
    """A compacted session bigger than one read slice is read to its end, in slices."""
    import wattui.view.samples_tail as snap
    from wattui.tui.demo_data import T0, write_demo_session

    monkeypatch.setattr(snap, "ROWS_CHUNK", 1000)  # 3,001 ticks x 3 devices: 10 slices
    d = write_demo_session(tmp_path / "store", duration_s=3000.0, running=False, epochs=30)

    async def go():
        app = make_app(tmp_path / "store", d, refresh_s=0.5)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(
                pilot, lambda: app.live.snapshot is not None and app.live.snapshot.seq >= 10
            )
            await wait_for(pilot, lambda: app.live.snapshots_applied >= 11, timeout=10)
            s = app.live.snapshot
            assert s.status == "finished" and s.metrics.count == 30
            assert s.history[0][0] < T0 + 5 and s.history[-1][0] > T0 + 2990
            assert app.live.snapshots_applied >= 11

    run(go())


def test_other_processes_on_a_gpu_are_flagged():
    from wattui.view.samples_tail import _other_processes

    assert _other_processes(None, "1;2") == "n/a"
    assert _other_processes("-", "1;2") == "none"
    assert _other_processes("1;2", "1;2;3") == "none"
    assert _other_processes("1;7;9", "1;2") == "2 (pids 7, 9)"


@pytest.mark.slow
def test_watch_estimate_is_shown_beside_the_measured_energy_per_step(tmp_path):
    """wattui.watch(model, x) in a real training script: the live screen shows the
    architecture's estimate per step and its split, beside the measured energy per step."""
    pytest.importorskip("torch", reason="wattui.watch needs torch (the torch extra)")
    store = tmp_path / "store"
    code = (
        "import time, torch, torch.nn as nn, wattui\n"
        "m = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 10))\n"
        "wattui.watch(m, torch.zeros(32, 256))\n"
        "for i in range(1, 7):\n"
        "    time.sleep(0.4); wattui.report(step=100 * i, loss=1.0 / i)\n"
    )
    p = subprocess.run(
        [sys.executable, "-m", "wattui", "record", "--store", str(store), "--simulate", "--",
         sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    (d,) = sessions_dir(store).iterdir()
    ev = Session.open(d).events()
    watch = ev.filter(ev["kind"] == "watch")
    assert watch.height == 1
    vals = json.loads(watch["values_json"][0])
    assert vals["est_step_energy_j"] > 0 and "layer_Linear_j" in vals

    async def go():
        from wattui.tui.widgets import EnergyPanel

        app = make_app(store, d)
        async with app.run_test(size=(160, 48)) as pilot:
            scr = app.live
            await wait_for(pilot, lambda: scr.snapshot is not None and scr.snapshot.metrics.count >= 6)
            m = scr.snapshot.metrics
            assert m.est_step_j == pytest.approx(vals["est_step_energy_j"])
            assert m.est_split[0][0] == "Linear"
            # Simulated GPU at 60-240 W, a report every ~0.4 s per 100 steps: ~0.2-1 J a step.
            assert m.measured_step_j is not None and 0.1 < m.measured_step_j < 2.0
            await wait_for(pilot, lambda: "Linear" in str(scr.query_one(EnergyPanel).render()))
            text = str(scr.query_one(EnergyPanel).render())
            assert "[estimated]" in text.replace(" ", "") or "estimated" in text
            assert "measured" in text and "Linear" in text
            await pilot.press("q")

    run(go())


def test_tracker_measures_energy_per_step_between_reports():
    tr = MetricTracker()
    tr.add({"kind": "watch", "values_json": json.dumps({"est_step_energy_j": 2.0, "layer_Conv2d_j": 3.0, "layer_Linear_j": 1.0})})
    tr.add({"kind": "metric", "step": 100, "energy_j": 1000.0})
    tr.add({"kind": "metric", "step": 300, "energy_j": 1500.0})
    s = tr.summary()
    assert s.est_step_j == 2.0
    assert s.est_split == (("Conv2d", 0.75), ("Linear", 0.25))
    assert s.measured_step_j == pytest.approx(2.5)


def test_other_metrics_leave_out_the_accuracy_and_the_counters():
    tr = MetricTracker()
    tr.add({"kind": "metric", "accuracy": 0.7, "accuracy_key": "val_accuracy", "epoch": 1,
            "values_json": json.dumps({"val_accuracy": 0.7, "total_epochs": 4, "epoch": 1, "loss": 0.3})})
    assert [name for name, _, _ in tr.summary().others] == ["loss"]
