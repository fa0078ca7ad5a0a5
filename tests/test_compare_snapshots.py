"""SVG snapshots of the comparison table, plot and details screens (pytest-textual-snapshot)
on the deterministic demo store of ``compare_fixtures`` (fixed ids and times, UTC, metric
results stored in meta.json). Update with:
    pytest tests/test_compare_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest
from compare_fixtures import make_demo_store, make_group
from screen_waits import compare_loaded, details_loaded

from wattui.tui.compare import CompareApp

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def app_for(tmp_path, **kw) -> CompareApp:
    root = make_demo_store(tmp_path / "store")
    return CompareApp(root, refresh_s=0, store_label="demo-store", **kw)


def keys(*press: str, details: bool = False):
    """Once the store is read: ``press``, then (``details``) wait for the details' read."""

    async def run(pilot) -> None:
        await compare_loaded(pilot)
        await pilot.press(*press)
        if details:
            await details_loaded(pilot)

    return run


def test_compare_table_160x45(snap_compare, tmp_path):
    assert snap_compare(app_for(tmp_path, sort="-sam"), run_before=keys(), terminal_size=(160, 45))


@pytest.mark.slow
def test_compare_plot_selected_wh_120x36(snap_compare, tmp_path):
    # four selected sessions, SAM in Wh with alpha 2: the plot is maximised
    press = ["down", "space", "space", "down", "space", "space", "u", "left_square_bracket"]
    press += ["left_square_bracket", "left_square_bracket", "p"]
    assert snap_compare(app_for(tmp_path), run_before=keys(*press), terminal_size=(120, 36))


def test_compare_filtered_narrow_100x30(snap_compare, tmp_path):
    app = app_for(tmp_path, filter_text="tag:paper status:finished")
    assert snap_compare(app, run_before=keys(), terminal_size=(100, 30))


@pytest.mark.slow
def test_details_160x48(snap_compare, tmp_path):
    # vit-h14: eight simulated GPUs over 24 hours
    run = keys("down", "down", "enter", details=True)
    assert snap_compare(app_for(tmp_path), run_before=run, terminal_size=(160, 48))


@pytest.mark.slow
def test_details_zoomed_120x36(snap_compare, tmp_path):
    async def run(pilot) -> None:
        await keys("enter", details=True)(pilot)
        await pilot.press("plus", "left", "left")

    assert snap_compare(app_for(tmp_path), run_before=run, terminal_size=(120, 36))


def test_group_details_120x36(snap_compare, tmp_path):
    # a multi-node run (3 nodes, 5 GPUs) is the last row: its details list the nodes
    app = app_for(tmp_path)
    make_group(app.store_root)
    assert snap_compare(app, run_before=keys("end", "enter", details=True), terminal_size=(120, 36))
