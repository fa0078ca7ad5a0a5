"""The comparison and details screens driven with Pilot on a generated store."""

from __future__ import annotations

import shutil

import pytest
from compare_fixtures import T0, make_demo_store, make_session
from screen_waits import compare_loaded, details_loaded, reloaded, until

from wattui.store.paths import sessions_dir
from wattui.tui.compare import AskText, CompareApp, CompareScreen, Confirm, SessionTable
from wattui.tui.details import DetailsScreen
from wattui.tui.plot import LineChart, ScatterPlot

SIZE = (200, 50)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = make_demo_store(tmp_path_factory.mktemp("tpl"))
    make_session(
        root,
        "20261109-100000-r009",
        name="live-run",
        status="running",
        duration_s=1800,
        accs=(0.4,),
        tags=("wip",),
        started_at=T0 + 8.5 * 86400,
    )
    return root


@pytest.fixture
def store(template, tmp_path):
    dst = tmp_path / "store"
    shutil.copytree(template, dst, symlinks=True)
    return dst


def screen_of(app) -> CompareScreen:
    assert isinstance(app.screen, CompareScreen)
    return app.screen


def visible_ids(scr: CompareScreen) -> list[str]:
    return list(scr.query_one(SessionTable).row_keys)


def names(scr: CompareScreen) -> list[str]:
    return scr.view_df["name"].to_list()


async def test_table_lists_sessions_statuses_and_problems(store):
    app = CompareApp(store, refresh_s=0)
    async with app.run_test(size=SIZE) as pilot:
        scr = await compare_loaded(pilot)
        assert len(visible_ids(scr)) == 9
        st = dict(zip(scr.view_df["name"], scr.view_df["status"]))
        assert st["live-run"] == "running" and st["resnet50-long"] == "interrupted"
        notice = str(scr.query_one("#cmp-notice").render())
        assert "1 unreadable session" in notice and "20261101-000000-dead" in notice
        assert "SAM α=5 β=5 kWh" in notice and "SIMULATED" in notice
        header = [c.label.plain for c in scr.query_one(SessionTable).columns]
        assert header[1:6] == ["Rank ▲", "Name", "Acc", "Energy", "SAM"]  # what matters first


@pytest.mark.slow
async def test_the_store_is_read_off_the_event_loop(store, monkeypatch):
    """With the store read held up, the screens still answer keys; what was read shows up
    when the read goes on."""
    import threading

    from wattui.store import reader

    gate, reading = threading.Event(), threading.Event()

    def held(real):
        def read(*a, **kw):
            reading.set()
            assert gate.wait(60), "never let go"
            return real(*a, **kw)

        return read

    monkeypatch.setattr(reader, "scan_store", held(reader.scan_store))
    app = CompareApp(store, refresh_s=0)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, reading.is_set, "the store read")
        scr = screen_of(app)
        await pilot.press("p", "slash", *"tag:paper", "enter")
        assert scr.has_class("plot-max") and scr.filter_text == "tag:paper"
        assert scr.table_data is None and scr.loads_applied == 0  # still held
        gate.set()
        await compare_loaded(pilot)
        assert set(names(scr)) == {"resnet50", "mobilenet-v2", "vit-h14", "efficientnet-b0"}
        # the details screen's read of the samples, held the same way
        gate.clear()
        reading.clear()
        monkeypatch.setattr(reader.Session, "samples", held(reader.Session.samples))
        await pilot.press("p", "enter")
        await until(pilot, reading.is_set, "the samples read")
        det = app.screen
        assert isinstance(det, DetailsScreen) and det.timeline is None
        await pilot.press("escape")  # answered while the samples are being read
        assert app.screen is scr and not det.loaded
        gate.set()
        await pilot.press("enter")
        det = await details_loaded(pilot)
        assert det.timeline is not None and det.query_one("#det-power", LineChart).series


@pytest.mark.slow
async def test_no_store_access_on_the_event_loop(store, monkeypatch):
    """Every way the two screens reach the store (first read, reload, rename, tag, delete,
    a cached row's record, a session's and a group's details) runs off the event loop's
    thread."""
    import threading

    from compare_fixtures import GROUP_ID, make_group

    from wattui.analysis import table as cmp
    from wattui.store import manage, reader

    make_group(store)
    seen, on_loop = set(), []

    def watch(owner, name: str) -> None:
        real = getattr(owner, name)

        def call(*a, **kw):
            seen.add(name)
            if threading.current_thread() is threading.main_thread():
                on_loop.append(name)
            return real(*a, **kw)

        monkeypatch.setattr(owner, name, call)

    for owner, names_ in (
        (reader, ("scan_store",)),
        (reader.Session, ("open", "samples", "events")),
        (cmp, ("load_table", "load_record", "load_group_record")),
        (manage, ("rename", "tag", "delete")),
    ):
        for name in names_:
            watch(owner, name)
    app = CompareApp(store, refresh_s=0, sort="start")
    async with app.run_test(size=SIZE) as pilot:
        scr = await compare_loaded(pilot)
        n = scr.loads_applied
        await pilot.press("r")
        await reloaded(pilot, scr, n)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, AskText), "the rename dialog")
        n = scr.loads_applied
        await pilot.press(*"-x", "enter")
        await reloaded(pilot, scr, n)
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, AskText), "the tag dialog")
        n = scr.loads_applied
        await pilot.press(*"x", "enter")
        await reloaded(pilot, scr, n)
        await pilot.press("down", "d")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the delete dialog")
        n = scr.loads_applied
        await pilot.press("y")
        await reloaded(pilot, scr, n)
        for sid in ("20261103-100000-a003", f"group:{GROUP_ID}"):
            scr.table_data.records.pop(sid, None)  # as if its row came from the cache
            scr.open_details(sid)
            det = await details_loaded(pilot)
            assert det.timeline is not None, sid
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is scr, "back to the table")
    want = {"scan_store", "open", "samples", "events", "load_table", "load_record"}
    want |= {"load_group_record", "rename", "tag", "delete"}
    assert want <= seen  # every hook was reached...
    assert on_loop == []  # ...and none of them on the event loop


async def test_a_running_session_is_read_again_every_refresh(store):
    import json

    from wattui.store.paths import write_json_atomic

    live = sessions_dir(store) / "20261109-100000-r009" / "live.json"
    app = CompareApp(store, refresh_s=0.2)
    async with app.run_test(size=SIZE) as pilot:
        scr = await compare_loaded(pilot)

        def energy() -> float:
            return dict(zip(scr.view_df["id"], scr.view_df["energy_j"]))["20261109-100000-r009"]

        before = energy()
        state = json.loads(live.read_text())
        state["energy_j"] = before * 3
        for dev in state["devices"].values():
            dev["energy_j"] = dev["energy_j"] * 3
        write_json_atomic(live, state)
        await until(pilot, lambda: energy() == pytest.approx(before * 3), "the refreshed energy")
        assert scr.loads_applied >= 2


async def test_sort_by_key_and_header_click(store):
    app = CompareApp(store, refresh_s=0, sort="start")  # rows in start order
    async with app.run_test(size=SIZE) as pilot:
        scr = await compare_loaded(pilot)
        assert names(scr)[0] == "resnet50"  # by start time
        await pilot.press("s")
        assert scr.sort_key == "co2_g"  # the next column after Start
        await pilot.press("s", "s", "s")  # Cost, then around to Rank and Name
        assert scr.sort_key == "name"
        assert names(scr) == sorted(names(scr))
        await pilot.press("S")
        assert names(scr) == sorted(names(scr), reverse=True)
        scr.sort_by("sam")
        await pilot.pause()
        sams = [x for x in scr.view_df["sam"].to_list() if x is not None]
        assert sams == sorted(sams, reverse=True)
        # click the "Energy" header (sorting by CO2 scrolled the table to show that column)
        t = scr.query_one(SessionTable)
        assert t.scroll_x > 0
        t.scroll_to(x=0, animate=False)
        await pilot.pause()
        x = 0
        for col in t.columns:
            if col.key == "energy_j":
                break
            x += col.width + 2
        await pilot.click(SessionTable, offset=(x + 2, 0))
        await pilot.pause()
        assert scr.sort_key == "energy_j"
        e = scr.view_df["energy_j"].to_list()
        assert e == sorted(e, reverse=True)
        # the rows shown follow the frame
        assert visible_ids(scr) == scr.view_df["id"].to_list()


@pytest.mark.slow
async def test_filter_by_text_tag_status_date(store):
    app = CompareApp(store, refresh_s=0)
    async with app.run_test(size=SIZE) as pilot:
        scr = await compare_loaded(pilot)
        await pilot.press("slash", *"tag:paper", "enter")
        await pilot.pause()
        assert set(names(scr)) == {"resnet50", "mobilenet-v2", "vit-h14", "efficientnet-b0"}
        assert app.focused.id == "cmp-table"
        assert "4 of 9 sessions" in str(scr.query_one("#cmp-notice").render())
        scr.query_one("#cmp-filter").value = "status:running"
        await pilot.pause()
        assert names(scr) == ["live-run"]
        scr.query_one("#cmp-filter").value = "date:2026-11-03"
        await pilot.pause()
        assert names(scr) == ["vit-h14"]
        scr.query_one("#cmp-filter").value = "date:garbage"
        await pilot.pause()
        assert "not a date" in str(scr.query_one("#cmp-notice").render())
        assert len(names(scr)) == 9  # a bad filter shows everything, and says why


async def test_selection_drives_the_plot(store):
    app = CompareApp(store, refresh_s=0, sort="start")  # rows in start order
    async with app.run_test(size=SIZE) as pilot:
        scr = await compare_loaded(pilot)
        plot = scr.query_one(ScatterPlot)
        n_all = len(plot.points)
        assert n_all == 8  # every session with energy and accuracy
        await pilot.press("space", "space")  # resnet50, mobilenet-v2
        await pilot.pause()
        assert scr.selected == {"20261101-080000-a001", "20261102-090000-a002"}
        assert len(plot.points) == 2 and all(p.selected for p in plot.points)
        assert "2 selected" in plot.title
        await pilot.press("up", "space")  # unselect mobilenet
        await pilot.pause()
        assert scr.selected == {"20261101-080000-a001"}
        await pilot.press("escape")
        await pilot.pause()
        assert not scr.selected and len(plot.points) == n_all
        front = {p.label.split(" ", 1)[1] for p in plot.points if p.front}
        assert "vit-h14" in front and "resnet50" not in front


@pytest.mark.slow
async def test_alpha_beta_unit_keys_rerank(store):
    app = CompareApp(store, refresh_s=0)
    async with app.run_test(size=SIZE) as pilot:
        scr = await compare_loaded(pilot)
        r0 = scr._ranks()
        await pilot.press(*["right_square_bracket"] * 5)
        await pilot.pause()
        assert scr.params.alpha == 10
        assert "α=10" in str(scr.query_one("#cmp-ranking").render())
        await pilot.press("u")
        await pilot.pause()
        assert scr.params.unit == "Wh"
        r1 = scr._ranks()
        assert r1 != r0 and len(r1) > len(r0)  # in Wh every session is above 1 unit
        await pilot.press("right_curly_bracket")
        await pilot.pause()
        assert scr.params.beta == 6 and scr._ranks() == r1  # beta never reranks
        assert "SAM α=10 β=6 Wh" in str(scr.query_one("#cmp-notice").render())
        await pilot.press("0")
        await pilot.pause()
        assert scr.params.alpha == 5 and scr.params.unit == "kWh" and scr._ranks() == r0
        await pilot.press(*["left_square_bracket"] * 8)
        await pilot.pause()
        assert scr.params.alpha == 0
        ranking = str(scr.query_one("#cmp-ranking").render())
        assert "▲" in ranking or "▼" in ranking


@pytest.mark.slow
async def test_details_screen(store):
    app = CompareApp(store, refresh_s=0, sort="start")  # rows in start order
    async with app.run_test(size=SIZE) as pilot:
        await compare_loaded(pilot)
        await pilot.press("down", "down", "enter")  # vit-h14: 8 GPUs
        det = await details_loaded(pilot)
        assert det.session_id == "20261103-100000-a003"
        power = det.query_one("#det-power", LineChart)
        assert len(power.series) == 8 and all(len(s.xs) > 10 for s in power.series)
        meta = str(det.query_one("#det-meta-text").render())
        for want in (
            "python train.py",
            "GPU-a003-0007",
            "550.54.15",
            "simulated",
            "alpha=5 beta=5 unit=kWh",
            "350 g/kWh",
            "idle",
            "SIMULATED",
        ):
            assert want in meta, want
        whole = det.window
        assert whole[1] - whole[0] == pytest.approx(24 * 3600)
        await pilot.press("plus")  # the live screen's windows: all -> 1h -> 10m -> 1m
        assert det.window_name == "1h" and det.window == (whole[1] - 3600, whole[1])
        await pilot.press("left", "left")
        assert det.window == (whole[1] - 7200, whole[1] - 3600)
        for _ in range(60):
            det.action_pan(-1)
        await pilot.press("left")
        assert det.window == (whole[0], whole[0] + 3600)  # scrolled to the start
        power = det.query_one("#det-power", LineChart)
        assert all(
            min(s.xs) >= whole[0] - 600 and max(s.xs) <= whole[0] + 4200 for s in power.series
        )
        await pilot.press("plus")
        assert det.window_name == "10m" and det.window[1] - det.window[0] == 600
        await pilot.press("minus", "minus")
        assert det.window_name == "all" and det.window == whole
        await pilot.press("w")
        assert det.window_name == "1m"
        await pilot.press("end")
        assert det.window[1] == whole[1]
        total = det.query_one("#det-total")
        assert total.window == "1m" and total._method == "simulated"
        await pilot.press("f")
        assert det.window == whole
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)


@pytest.mark.slow
async def test_details_of_running_and_interrupted_sessions(store):
    app = CompareApp(store, refresh_s=0)
    async with app.run_test(size=SIZE) as pilot:
        scr = await compare_loaded(pilot)
        for sid in ("20261109-100000-r009", "20261107-140000-a007"):
            scr.open_details(sid)
            det = await details_loaded(pilot)
            assert det.query_one("#det-power", LineChart).series
            await pilot.press("escape")
            await pilot.pause()


@pytest.mark.slow
async def test_rename_tag_delete_from_the_screen(store):
    app = CompareApp(store, refresh_s=0, sort="start")  # rows in start order
    async with app.run_test(size=SIZE) as pilot:
        scr = await compare_loaded(pilot)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, AskText)
        app.screen.query_one("Input").value = "resnet50-renamed"
        n = scr.loads_applied
        await pilot.press("enter")
        await reloaded(pilot, scr, n)
        assert "resnet50-renamed" in names(scr)
        # tag two selected sessions, removing one tag
        await pilot.press("space", "space", "t")
        await pilot.pause()
        app.screen.query_one("Input").value = "best -paper"
        n = scr.loads_applied
        await pilot.press("enter")
        await reloaded(pilot, scr, n)
        tags = dict(zip(scr.view_df["name"], scr.view_df["tags"]))
        assert tags["resnet50-renamed"] == "cnn, best"
        assert tags["mobilenet-v2"] == "mobile, best"
        # delete, cancelled then confirmed
        await pilot.press("escape")
        scr.query_one(SessionTable).move_cursor(0)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")
        await pilot.pause()
        assert len(names(scr)) == 9
        await pilot.press("d")
        await pilot.pause()
        n = scr.loads_applied
        await pilot.press("y")
        await reloaded(pilot, scr, n)
        assert "resnet50-renamed" not in names(scr) and len(names(scr)) == 8
        assert not (sessions_dir(store) / "20261101-080000-a001").exists()
        # a running session cannot be deleted: it says so and stays
        scr.query_one("#cmp-filter").value = "status:running"
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        n = scr.loads_applied
        await pilot.press("y")
        await reloaded(pilot, scr, n)
        assert names(scr) == ["live-run"]


async def test_empty_and_missing_store(tmp_path):
    app = CompareApp(tmp_path / "nothing-here", refresh_s=0)
    async with app.run_test(size=(100, 30)) as pilot:
        scr = await compare_loaded(pilot)
        assert scr.view_df.height == 0
        await pilot.press("enter", "space", "s", "right_square_bracket", "u", "n", "d", "p")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)


@pytest.mark.slow
async def test_table_cursor_scroll_and_click_to_open(tmp_path):
    from compare_fixtures import make_session

    for i in range(60):
        make_session(
            tmp_path,
            f"20261101-{i:06d}-x{i:03d}",
            name=f"run{i:02d}",
            duration_s=600,
            period_s=300,
            accs=(0.5,),
            started_at=T0 + i * 60,
        )
    app = CompareApp(tmp_path, refresh_s=0)
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await compare_loaded(pilot)
        t = scr.query_one(SessionTable)
        assert t.row_count == 60
        await pilot.press("end")
        assert t.cursor_row == 59 and t.scroll_y > 0  # scrolled to keep the cursor in view
        await pilot.press("home", "pagedown")
        assert t.cursor_row > 5
        await pilot.press("home")
        assert t.scroll_y == 0
        await pilot.click(SessionTable, offset=(5, 3))  # the third row: moves the cursor
        assert t.cursor_row == 2 and isinstance(app.screen, CompareScreen)
        await pilot.click(SessionTable, offset=(5, 3))  # again: opens it
        det = await details_loaded(pilot)
        assert det.session_id.endswith("x002")
