"""Workarounds for bugs in the Textual release wattui supports, each with its upstream cause."""

from __future__ import annotations

from textual.app import App, ReturnType, ScreenStackError


class SafeApp(App[ReturnType]):
    """``textual.app.App`` with a workaround for a crash on start-up.

    Textual 8.2.8 (and earlier 8.x): an ``Input``'s selection watcher calls
    ``App.clear_selection()``, which reads ``self.screen`` and catches ``NoScreen`` but not
    ``ScreenStackError``. When the watcher fires while the screen stack is still empty (as
    the first screen mounts; in a real terminal on Python 3.12 and 3.13, not under
    ``run_test()``), the app dies with "ScreenStackError: No screens on stack". With no
    screen there is no selection to clear, so the error is ignored here. Remove this when
    Textual catches it itself.
    """

    def clear_selection(self) -> None:
        try:
            super().clear_selection()
        except ScreenStackError:
            pass
