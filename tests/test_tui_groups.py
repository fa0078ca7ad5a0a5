"""Multi-node groups on the screens: a store with one group of three simulated nodes (each
written with the real SessionWriter, distinct hosts) next to ordinary sessions. The
comparison table, its exports, the details screen and the live screen show the group as
one run whose energy is the sum of its parts."""

from __future__ import annotations

import json

import pytest
from compare_fixtures import GROUP_ID, GROUP_PARTS, make_demo_store, make_group
from conftest import pilot_wait_until, run_wattui
from screen_waits import compare_loaded, details_loaded, reloaded

from wattui.analysis import table as cmp
from wattui.sessions import session_record
from wattui.store.paths import sessions_dir
from wattui.store.reader import Session

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
GID = f"group:{GROUP_ID}"
PART_IDS = [sid for sid, _ in GROUP_PARTS]
HOSTS = [kw["host"] for _, kw in GROUP_PARTS]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def store(tmp_path):
    root = make_demo_store(tmp_path / "store", corrupt=False)
    make_group(root)
    return root


def parts_energy(root) -> float:
    return sum(
        session_record(Session.open(sessions_dir(root) / sid), metrics=False)["energy_j"]
        for sid in PART_IDS
    )


def group_row(table: cmp.Table) -> dict:
    rows = table.frame.filter(table.frame["id"] == GID).to_dicts()
    assert len(rows) == 1
    return rows[0]


# -- the table and its exports -------------------------------------------------------------
def test_the_group_is_one_row_with_the_summed_energy(store):
    for cache in (True, True, False):  # first load writes the cache, the second reads it
        table = cmp.load_table(store, cache=cache)
        ids = table.frame["id"].to_list()
        assert ids.count(GID) == 1 and not set(PART_IDS) & set(ids)
        assert table.frame.height == 9  # 8 ordinary sessions + the group
        r = group_row(table)
        assert r["energy_j"] == pytest.approx(parts_energy(store), rel=1e-12)
        assert r["kind"] == "group" and r["node_count"] == 3
        assert r["host"] == "3 nodes" and r["gpu_count"] == 5
        assert r["name"] == "llm-ddp" and r["status"] == "finished"
        want, _ = cmp.sam_value(0.81, r["energy_j"], table.params)
        assert r["accuracy"] == 0.81 and r["sam"] == pytest.approx(want)
        ordinary = table.frame.filter(table.frame["kind"] == "session")
        assert ordinary["host"].to_list() == ["lab-a100"] * 4 + ["lab-h100"] + ["lab-a100"] * 3
    cached = {ln.split("\t")[0] for ln in cmp.cache_path(store).read_text().split("\n")[1:]}
    assert not set(PART_IDS) & cached and len(cached) == 8  # all but the group's parts


def test_record_of_the_group_row_reads_the_parts(store):
    table = cmp.load_table(store)
    table.records.clear()  # as if the row had come from elsewhere: read on demand
    rec = table.record(GID)
    assert rec["kind"] == "group" and [n["host"] for n in rec["nodes"]] == HOSTS
    assert rec["energy_j"] == pytest.approx(parts_energy(store), rel=1e-12)


@pytest.mark.slow
def test_exports_show_the_group_row(store):
    r = run_wattui(store, "compare", "--format", "json", "--store", str(store))
    assert r.returncode == 0, r.stderr
    rows = {x["id"]: x for x in json.loads(r.stdout)["sessions"]}
    assert GID in rows and not set(PART_IDS) & set(rows)
    g = rows[GID]
    assert g["kind"] == "group" and g["nodes"] == 3 and g["host"] == "3 nodes"
    assert g["gpu_count"] == 5
    assert g["energy_j"] == pytest.approx(parts_energy(store), rel=1e-12)
    assert g["energy_kwh"] == pytest.approx(g["energy_j"] / 3.6e6)
    assert rows["20261101-080000-a001"]["kind"] == "session"
    csv = run_wattui(store, "compare", "--format", "csv", "--store", str(store)).stdout
    assert csv.count(GID) == 1 and PART_IDS[0] not in csv
    md = run_wattui(store, "compare", "--format", "md", "--store", str(store)).stdout
    assert sum("llm-ddp" in line and "3 nodes" in line for line in md.splitlines()) == 1


# -- the comparison and details screens ----------------------------------------------------------
async def open_group_details(app, pilot):
    from wattui.tui.compare import SessionTable
    from wattui.tui.details import DetailsScreen

    scr = await compare_loaded(pilot)
    t = scr.query_one(SessionTable)
    assert t.row_keys.count(GID) == 1 and not set(PART_IDS) & set(t.row_keys)
    t.move_cursor(t.row_index(GID))
    await pilot.press("enter")
    det = await details_loaded(pilot)
    assert isinstance(det, DetailsScreen) and det.timeline is not None
    return det


async def test_details_of_a_group_lists_its_nodes_and_sums_their_power(store):
    from textual.widgets import Static

    from wattui.analysis.timeline import Timeline
    from wattui.tui.compare import CompareApp
    from wattui.tui.widgets import PowerChart

    app = CompareApp(store, refresh_s=0)
    async with app.run_test(size=(160, 48)) as pilot:
        det = await open_group_details(app, pilot)
        meta = det.query_one("#det-meta-text", Static).render().plain
        assert "group:ddp-42" in meta and "ddp-42 (3 nodes)" in meta
        for sid, host in zip(PART_IDS, HOSTS):
            assert f"session {sid}" in meta and host in meta
        assert "node-a:gpu1" in meta and "node-c:gpu0" in meta
        title = det.query_one("#det-title", Static).render().plain
        assert "3 nodes" in title
        tl = det.timeline
        assert tl.gpus == ["node-a:gpu0", "node-a:gpu1", "node-b:gpu0", "node-b:gpu1", "node-c:gpu0"]
        # the summed power at a time all nodes sampled is the sum of the nodes' totals
        parts = [Timeline(Session.open(sessions_dir(store) / sid)) for sid in PART_IDS]
        t, w = tl.total_points[len(tl.total_points) // 2]
        held = []
        for p in parts:
            before = [v for s, v in p.total_points if s <= t]
            held.append(before[-1])
        assert w == pytest.approx(sum(held))
        assert tl.energy_j["v"].max() == pytest.approx(parts_energy(store), rel=1e-6)
        assert app.screen.query_one(PowerChart).render().plain.splitlines()[-1].endswith("end")
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "CompareScreen"


@pytest.mark.slow
async def test_tag_rename_and_delete_on_a_group_row_apply_to_every_part(store):
    from wattui.tui.compare import AskText, CompareApp, Confirm, SessionTable

    def metas():
        return [json.loads((sessions_dir(store) / s / "meta.json").read_text()) for s in PART_IDS]

    app = CompareApp(store, refresh_s=0)
    async with app.run_test(size=(160, 48)) as pilot:
        scr = await compare_loaded(pilot)
        t = scr.query_one(SessionTable)
        t.move_cursor(t.row_index(GID))
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, AskText) and "3 session(s)" in app.screen.prompt
        n = scr.loads_applied
        await pilot.press(*"multi", "enter")
        await reloaded(pilot, scr, n)
        assert all("multi" in m["tags"] for m in metas())
        t.move_cursor(t.row_index(GID))
        await pilot.press("n")
        await pilot.pause()
        app.screen.query_one("#ask").value = ""
        n = scr.loads_applied
        await pilot.press(*"llm-3n", "enter")
        await reloaded(pilot, scr, n)
        assert [m["name"] for m in metas()] == ["llm-3n"] * 3
        assert group_row(scr.table_data)["name"] == "llm-3n"
        t.move_cursor(t.row_index(GID))
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, Confirm) and "3 session(s)" in app.screen.question
        n = scr.loads_applied
        await pilot.press("y")
        await reloaded(pilot, scr, n)
        assert not any((sessions_dir(store) / s).exists() for s in PART_IDS)
        assert GID not in t.row_keys and t.row_count == 8


# -- the live screen ------------------------------------------------------------------------------
async def until_applied(pilot, n: int = 1):
    app = pilot.app
    await pilot_wait_until(pilot, lambda: app.live is not None and app.live.snapshots_applied >= n,
                           step=0.025, what=f"{n} snapshot(s) applied")
    await pilot.pause()


async def test_live_view_of_a_group_is_one_run(tmp_path):
    from textual.widgets import Label

    from wattui.tui.app import WattuiApp
    from wattui.tui.demo_data import (
        DEMO_GROUP,
        DEMO_GROUP_PARTS,
        T0,
        demo_record_fn,
        write_demo_group,
        write_demo_session,
    )
    from wattui.tui.widgets import GpuTable, PowerChart, SessionHeader
    from wattui.view.snapshot import SnapshotBuilder

    root = tmp_path / "store"
    write_demo_session(root, running=True)  # an ordinary session beside the group
    dirs = write_demo_group(root, running=True)
    clock = lambda: T0 + 900  # noqa: E731
    app = WattuiApp(root, group=DEMO_GROUP, clock=clock, record_fn=demo_record_fn)
    async with app.run_test(size=(120, 36)) as pilot:
        await until_applied(pilot)
        s = app.live.snapshot
        assert s.session_id == f"group:{DEMO_GROUP}" and s.node_count == 3
        assert s.status == "running" and s.host == "3 nodes"
        hosts = [h for _, h, _, _ in DEMO_GROUP_PARTS]
        assert [g.key for g in s.gpus] == [
            f"{hosts[0]}:gpu0", f"{hosts[0]}:gpu1", f"{hosts[1]}:gpu0", f"{hosts[2]}:gpu0"
        ]
        table = app.live.query_one(GpuTable)
        assert table.row_count == 4
        lines = table.render().plain.splitlines()
        assert [ln.split()[0] for ln in lines[1:]] == [g.key for g in s.gpus]
        header = app.live.query_one(SessionHeader).query_one("#hdr-text", Label).render().plain
        assert "3 nodes" in header and f"group:{DEMO_GROUP}" in header
        # each node on its own: the group's energy and power are their sums
        singles = [SnapshotBuilder(d, clock=clock, record_fn=demo_record_fn).poll() for d in dirs]
        total = sum(x.record["energy_j"] for x in singles)
        assert s.record["energy_j"] == pytest.approx(total, rel=1e-12)
        assert s.total_w == pytest.approx(sum(x.total_w for x in singles))
        last = {x.history[-1][0] for x in singles}
        assert len(last) == 1 and s.history[-1][0] in last
        assert s.history[-1][1] == pytest.approx(sum(x.history[-1][1] for x in singles))
        assert s.record["accuracy"] is not None  # from the node that reported it
        assert s.record["sam_undefined_reason"] or s.record["sam"] is not None
        chart = app.live.query_one(PowerChart).render().plain.splitlines()
        assert chart[1].startswith("1000 W ┤") and chart[-1].endswith("now")
        await pilot.press("q")  # the nodes' recorders are not ours: quit leaves them be
        await pilot.pause()
    assert app.return_value == "left-running"


def test_view_of_an_unknown_group_says_so(store):
    r = run_wattui(store, "view", "group:nope", "--store", str(store))
    assert r.returncode != 0 and "no session of group 'nope'" in r.stderr


# -- small fixes ---------------------------------------------------------------------------------
async def test_power_chart_labels_fit_and_footer_names_the_end():
    from textual.app import App

    from wattui.tui.widgets import PowerChart

    class One(App):
        def compose(self):
            yield PowerChart(window="all", id="pc")

    app = One()
    async with app.run_test(size=(60, 8)) as pilot:
        pc = app.query_one(PowerChart)
        pts = [(1000.0 + i, 1100.0 + (i % 7) * 10) for i in range(100)]
        pc.set_points(pts)  # a finished run: no "now"
        await pilot.pause()
        lines = pc.render().plain.splitlines()
        assert lines[1].startswith("1200 W ┤")
        bars = [ln.index("┤") for ln in lines[1:-1]]
        assert len(set(bars)) == 1  # every row's axis in the same column
        assert lines[-1].endswith("end") and len(lines[-1]) <= 60
        pc.set_points(pts, now=1099.0)
        await pilot.pause()
        assert pc.render().plain.splitlines()[-1].endswith("now")
        pc.set_points([(t, w * 10) for t, w in pts], now=1099.0, end_label="1:23:45")
        await pilot.pause()
        lines = pc.render().plain.splitlines()
        assert lines[1].startswith("12.0 kW ┤") and lines[-1].endswith("1:23:45")
        assert len({ln.index("┤") for ln in lines[1:-1]}) == 1


@pytest.mark.slow
async def test_c_and_q_on_the_compare_screen_inside_the_live_app(tmp_path):
    from wattui.tui.app import WattuiApp
    from wattui.tui.compare import CompareScreen
    from wattui.tui.demo_data import T0, demo_record_fn, write_demo_session
    from wattui.tui.details import DetailsScreen
    from wattui.tui.live import QuitScreen

    d = write_demo_session(tmp_path / "store", running=True)
    app = WattuiApp(tmp_path / "store", d, clock=lambda: T0 + 900, record_fn=demo_record_fn)
    async with app.run_test(size=(120, 36)) as pilot:
        await until_applied(pilot)
        await pilot.press("c")
        assert isinstance(await compare_loaded(pilot), CompareScreen)
        await pilot.press("enter")  # the details of the session
        assert isinstance(await details_loaded(pilot), DetailsScreen)
        await pilot.press("c")  # not here: the details screen stays
        await pilot.pause()
        assert isinstance(app.screen, DetailsScreen) and app.current_mode == "compare"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("slash", "c")  # typing in the filter: a letter, not a switch
        await pilot.pause()
        assert app.current_mode == "compare" and app.screen.filter_text == "c"
        await pilot.press("backspace", "escape")
        await pilot.pause()
        await pilot.press("q")  # the watched run still runs: asked, not closed
        await pilot.pause()
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen) and app.is_running
        await pilot.press("c")
        await pilot.pause()
        assert app.current_mode == "live" and app.screen is app.live
