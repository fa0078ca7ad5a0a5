"""Waits on the comparison and details screens, which read the store in a thread and apply
what they read later: tests and screenshots wait for that, never for a fixed time."""

from __future__ import annotations

import time


async def until(pilot, cond, what: str = "condition", timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not reached in {timeout:g} s")
        await pilot.pause(0.02)
    await pilot.pause()


async def compare_loaded(pilot, reads: int = 1):
    """The app's comparison screen once it has shown ``reads`` reads of the store."""
    from wattui.tui.compare import CompareScreen

    app = pilot.app

    def ready() -> bool:
        scr = app.screen
        return isinstance(scr, CompareScreen) and scr.loads_applied >= reads

    await until(pilot, ready, f"the comparison screen's read #{reads}")
    return app.screen


async def reloaded(pilot, scr, after: int):
    """``scr`` (a comparison screen) once it has shown a read later than its ``after``-th."""
    await until(pilot, lambda: scr.loads_applied > after, "the comparison screen's reload")
    return scr


async def details_loaded(pilot):
    """The app's details screen once its session has been read and shown."""
    from wattui.tui.details import DetailsScreen

    app = pilot.app

    def ready() -> bool:
        return isinstance(app.screen, DetailsScreen) and app.screen.loaded

    await until(pilot, ready, "the details screen's read")
    return app.screen
