"""SVG snapshots of the live screen (pytest-textual-snapshot) on a deterministic simulated
session written with SessionWriter from SimulatedSource readings on a fixed clock, with
the viewer's clock frozen. Update with: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import os
import time

import pytest
from conftest import pilot_wait_until

from wattui.tui.demo_data import T0, demo_record_fn, write_demo_session

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def utc():
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def make_app(tmp_path, running=True, duration=900.0):
    from wattui.tui.app import WattuiApp

    d = write_demo_session(tmp_path / "store", running=running, duration_s=duration)
    return WattuiApp(tmp_path / "store", d, clock=lambda: T0 + duration, record_fn=demo_record_fn)


async def until_applied(pilot, n: int = 1):
    app = pilot.app
    await pilot_wait_until(pilot, lambda: app.live is not None and app.live.snapshots_applied >= n,
                           step=0.025, what=f"{n} snapshot(s) applied")
    await pilot.pause()


def test_live_80x24(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path), terminal_size=(80, 24), run_before=until_applied)


def test_live_160x48(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path), terminal_size=(160, 48), run_before=until_applied)


def test_replay_finished_80x24(snap_compare, tmp_path):
    app = make_app(tmp_path, running=False)

    async def before(pilot):
        await until_applied(pilot, 2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_help_80x24(snap_compare, tmp_path):
    async def before(pilot):
        await until_applied(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_app(tmp_path), terminal_size=(80, 24), run_before=before)


def test_live_group_120x36(snap_compare, tmp_path):
    """`wattui view group:ID`: three nodes' sessions (2 + 1 + 1 GPUs) as one run."""
    from wattui.tui.app import WattuiApp
    from wattui.tui.demo_data import DEMO_GROUP, write_demo_group

    write_demo_group(tmp_path / "store", running=True)
    app = WattuiApp(
        tmp_path / "store", group=DEMO_GROUP, clock=lambda: T0 + 900.0, record_fn=demo_record_fn
    )
    assert snap_compare(app, terminal_size=(120, 36), run_before=until_applied)
