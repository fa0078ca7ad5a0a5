"""Regenerate the SVG screenshots in screenshots/ from the real app.

    python scripts/screenshots.py            # all
    python scripts/screenshots.py live-80x24 # some, by name

Each entry of SHOTS is (name, app factory, terminal size, pilot actions). A factory gets a
fresh temporary directory and returns an App; the actions are an async callable run
with the Pilot before the screenshot is taken. Other screens append their own entries.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the fixtures and waits the tests use
OUT = REPO / "screenshots"


class Shot(NamedTuple):
    name: str
    factory: Callable[[Path], object]  # tmp dir -> App
    size: tuple[int, int]
    actions: Callable[[object], Awaitable[None]] | None = None  # async (pilot) -> None


# -- the live screen ------------------------------------------------------------------------
def live_app(tmp: Path, running: bool = True, duration: float = 900.0):
    """The live screen on a deterministic simulated session (2 GPUs, 15 min, frozen clock)."""
    from wattui.tui.app import WattuiApp
    from wattui.tui.demo_data import T0, demo_record_fn, write_demo_session

    d = write_demo_session(tmp / "store", running=running, duration_s=duration)
    return WattuiApp(tmp / "store", d, clock=lambda: T0 + duration, record_fn=demo_record_fn)


async def wait_live(pilot, n: int = 1) -> None:
    """Until the live screen has applied ``n`` snapshots and its output pane has scrolled to
    its end (which follows a refresh: on a loaded machine it can come after the snapshot)."""
    from screen_waits import until

    app = pilot.app
    await until(pilot, lambda: getattr(app, "live", None) is not None
                and app.live.snapshots_applied >= n, f"the live screen's snapshot #{n}")
    logs = app.screen.query("#output-log")
    await until(pilot, lambda: all(log.is_vertical_scroll_end for log in logs),
                "the output pane at its end")


async def _replay(pilot) -> None:
    await wait_live(pilot, 2)


async def _help(pilot) -> None:
    await wait_live(pilot)
    await pilot.press("question_mark")
    await pilot.pause()


async def _quit(pilot) -> None:
    await wait_live(pilot)
    await pilot.press("q")  # the run is going: the viewer asks what to do with it
    await pilot.pause()


SHOTS: list[Shot] = [
    Shot("live-80x24", live_app, (80, 24), wait_live),
    Shot("live-quit-80x24", live_app, (80, 24), _quit),
    Shot("live-160x48", live_app, (160, 48), wait_live),
    Shot("live-replay-120x36", lambda tmp: live_app(tmp, running=False), (120, 36), _replay),
    Shot("live-help-80x24", live_app, (80, 24), _help),
]


# -- the comparison screen ------------------------------------------------------------------
def compare_app(tmp: Path, **kw):
    """The comparison screen on the deterministic demo store of tests/compare_fixtures.py
    (8 sessions at fixed times, one corrupt directory)."""
    from compare_fixtures import make_demo_store

    from wattui.tui.compare import CompareApp

    root = make_demo_store(tmp / "store")
    return CompareApp(root, refresh_s=0, store_label="~/.local/share/wattui", **kw)


def _keys(*keys: str, details: bool = False, then: tuple[str, ...] = ()):
    """Once the screen has read the store: ``keys``; with ``details``, then wait until the
    details screen has read its session (both screens read in a thread) and press ``then``."""

    async def run(pilot) -> None:
        from screen_waits import compare_loaded, details_loaded  # tests/, as compare_app

        await compare_loaded(pilot)
        await pilot.press(*keys)
        if details:
            await details_loaded(pilot)
            await pilot.press(*then)
        await pilot.pause()

    return run


SHOTS += [
    Shot("compare-table-160x45", lambda tmp: compare_app(tmp, sort="-sam"), (160, 45), _keys()),
    Shot("compare-table-80x24", compare_app, (80, 24), _keys()),
    Shot(
        "compare-plot-120x36",
        compare_app,
        (120, 36),
        _keys("down", "space", "space", "down", "space", "space", "u", *["left_square_bracket"] * 3, "p"),
    ),
    Shot(
        "compare-filtered-100x30",
        lambda tmp: compare_app(tmp, filter_text="tag:paper status:finished"),
        (100, 30),
        _keys(),
    ),
    Shot("details-160x48", compare_app, (160, 48), _keys("down", "down", "enter", details=True)),
    Shot("details-zoomed-120x36", compare_app, (120, 36), _keys("enter", details=True, then=("plus", "left", "left"))),
]


# -- a multi-node run (group) ---------------------------------------------------------------
def group_live_app(tmp: Path):
    """`wattui view group:ID` on three simulated nodes (2 + 1 + 1 GPUs), frozen clock."""
    from wattui.tui.app import WattuiApp
    from wattui.tui.demo_data import DEMO_GROUP, T0, demo_record_fn, write_demo_group

    write_demo_group(tmp / "store", running=True)
    return WattuiApp(
        tmp / "store", group=DEMO_GROUP, clock=lambda: T0 + 900.0, record_fn=demo_record_fn
    )


def group_compare_app(tmp: Path):
    """The demo comparison store plus a finished three-node group (its last row)."""
    from compare_fixtures import make_group

    app = compare_app(tmp)
    make_group(app.store_root)
    return app


SHOTS += [
    Shot("group-live-120x36", group_live_app, (120, 36), wait_live),
    Shot("group-details-120x36", group_compare_app, (120, 36), _keys("end", "enter", details=True)),
]


# -- running them ---------------------------------------------------------------------------
async def take(shot: Shot, out_dir: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        app = shot.factory(Path(tmp))
        async with app.run_test(size=shot.size) as pilot:
            if shot.actions is not None:
                await shot.actions(pilot)
            path = app.save_screenshot(filename=f"{shot.name}.svg", path=str(out_dir))
        return Path(path)


# -- the output of `wattui estimate` -------------------------------------------------------
ESTIMATE_ARGS = [
    "sample_runs/models.py:cnn", "--input-shape", "3,16,16", "--batch-size", "64",
    "--samples", "20000",
]


def estimate_app(tmp: Path):
    """The real `wattui estimate` output on the sample CNN, shown in a terminal."""
    import contextlib
    import io

    from textual.app import App
    from textual.widgets import Static

    from wattui.estimate.cli import run_estimate

    buf = io.StringIO()
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        with contextlib.redirect_stdout(buf):
            run_estimate(ESTIMATE_ARGS)
    finally:
        os.chdir(cwd)
    text = f"$ wattui estimate {' '.join(ESTIMATE_ARGS)}\n\n" + buf.getvalue()
    text = text.replace(str(REPO) + "/", "")

    class EstimateOutput(App):
        TITLE = "wattui estimate"

        def compose(self):
            yield Static(text, markup=False)

    return EstimateOutput()


SHOTS.append(Shot("estimate-110x26", estimate_app, (110, 26)))


def main(argv: list[str]) -> int:
    os.environ["TZ"] = "UTC"  # projected end times and the like: the same on every machine
    time.tzset()
    names = set(argv)
    OUT.mkdir(exist_ok=True)
    chosen = [s for s in SHOTS if not names or s.name in names]
    unknown = names - {s.name for s in SHOTS}
    if unknown:
        print(f"unknown screenshot(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for shot in chosen:
        path = asyncio.run(take(shot, OUT))
        print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
