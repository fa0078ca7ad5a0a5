"""The wattui application: a live screen per session and, when installed, a comparison
screen, as independent modes (``c`` switches between them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, TextArea

from wattui.tui.live import DEFAULT_REFRESH_S, LiveScreen, QuitScreen
from wattui.tui.textual_compat import SafeApp


def compare_screen_class():
    """``wattui.tui.compare.CompareScreen``, imported when first needed: it loads the
    comparison table's dependencies (Polars), which the live screen's first frame must
    not wait for."""
    from wattui.tui.compare import CompareScreen

    return CompareScreen


class WattuiApp(SafeApp[str]):
    """``WattuiApp(store_root, session_dir=...)`` watches one session.

    ``starter`` (instead of ``session_dir``) is called in the worker thread and returns
    the session directory: the first frame is drawn while a recorder starts.
    ``clock`` is the viewer's notion of now (tests freeze it).
    """

    CSS_PATH = str(Path(__file__).with_name("wattui.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "wattui"
    DEFAULT_MODE: ClassVar[str] = "live"
    MODES: ClassVar[dict] = {}  # filled per instance: "live" and "compare"
    # Not a priority binding: a widget or screen that uses `c` itself keeps it. It works on
    # the live screen and on the comparison screen (to come back), nowhere else: not in an
    # input, a dialog, or a screen pushed over either (details, help).
    # Two bindings of `c`, one shown at a time: "Compare" on the live screen, "Back" on
    # the comparison screen (where "Compare" read as if it did something else).
    BINDINGS = [
        Binding("c", "toggle_compare", "Compare"),
        Binding("c", "back_to_live", "Back"),
    ]

    def __init__(
        self,
        store_root: Path,
        session_dir: Path | None = None,
        *,
        starter: Callable[[], Path] | None = None,
        clock: Callable[[], float] | None = None,
        refresh_s: float = DEFAULT_REFRESH_S,
        window: str = "10m",
        record_fn: Callable | None = None,
        group: str | None = None,
    ) -> None:
        super().__init__()
        self.store_root = Path(store_root)
        self.clock = clock or time.time
        self._live_kwargs = dict(
            session_dir=session_dir,
            starter=starter,
            clock=self.clock,
            refresh_s=refresh_s,
            window=window,
            record_fn=record_fn,
            group=(self.store_root, group) if group else None,
        )
        self.add_mode("live", self._make_live)
        self.add_mode("compare", self._make_compare)

    def _make_live(self) -> LiveScreen:
        self._live_screen = LiveScreen(**self._live_kwargs)
        return self._live_screen

    def _make_compare(self) -> Screen:
        self._compare_screen = compare_screen_class()(self.store_root)
        return self._compare_screen

    _live_screen: LiveScreen | None = None
    _compare_screen: Screen | None = None

    @property
    def live(self) -> LiveScreen | None:
        """The live screen (also after the app has exited)."""
        return self._live_screen

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("toggle_compare", "back_to_live"):
            if isinstance(self.focused, Input | TextArea) or isinstance(self.screen, ModalScreen):
                return False  # the key goes to the input / dialog instead
            if action == "back_to_live":
                return self.screen is self._compare_screen
            return isinstance(self.screen, LiveScreen)
        return True

    def action_back_to_live(self) -> None:
        if self.current_mode == "compare":
            self.switch_mode("live")

    def quit_viewer(self) -> None:
        """``q`` anywhere in the app: the live screen's quit, which asks whether to stop the
        run or leave it running when the watched session still runs (the comparison
        screen calls this too, so `q` there is not a quiet way around the question)."""
        if self.live is not None:
            self.live.action_quit_viewer()
        else:
            self.exit(result="closed")

    # Ctrl+Q, Ctrl+C and the command palette's Quit all ask, like `q`: none of them is a
    # quiet way to close the viewer without saying what happens to the run.
    async def action_quit(self) -> None:
        if isinstance(self.screen, QuitScreen):
            return  # the question is on screen already
        self.quit_viewer()

    def action_help_quit(self) -> None:
        if isinstance(self.screen, QuitScreen):
            self.screen.dismiss("cancel")  # a second Ctrl+C: back to the screen
            return
        self.quit_viewer()

    def get_system_commands(self, screen: Screen):
        """The palette (Ctrl+P): wattui's own commands first, then Textual's."""
        live = self.live if isinstance(screen, LiveScreen) else None
        if live is not None:
            if live.running_snapshot() is not None:
                yield SystemCommand(
                    "Stop the run",
                    "Stop the run (Ctrl+C to it) and close the viewer",
                    live.action_stop_run,
                )
                yield SystemCommand(
                    "Leave the run running",
                    "Close the viewer; the run and its recording go on",
                    live.action_leave_run,
                )
            for name, label in (("1m", "1 min"), ("10m", "10 min"), ("1h", "1 h"), ("all", "whole run")):
                yield SystemCommand(
                    f"Power window: {label}",
                    f"The power chart over {'the whole run' if name == 'all' else 'the last ' + label}",
                    lambda n=name: live.action_window(n),
                )
            yield SystemCommand(
                "Search the output", "Find text in the run's output (n/N: next/previous)",
                live.action_search,
            )
        if isinstance(screen, LiveScreen) or screen is self._compare_screen:
            yield SystemCommand(
                "Back to the live screen" if self.current_mode == "compare" else "Compare sessions",
                "Switch between the live and the comparison screen",
                self.action_toggle_compare,
            )
        for cmd in super().get_system_commands(screen):
            if cmd.title == "Quit":  # through the question, not around it
                yield SystemCommand(
                    "Quit", "Quit the viewer (asks what to do with a running run)", self.quit_viewer
                )
            else:
                yield cmd

    def action_toggle_compare(self) -> None:
        self.switch_mode("live" if self.current_mode == "compare" else "compare")
