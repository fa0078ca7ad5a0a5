"""The wattui application: a live screen per session and, when installed, a comparison
screen, as independent modes (``c`` switches between them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input, TextArea

from .live import DEFAULT_REFRESH_S, LiveScreen
from .textual_compat import SafeApp


def compare_screen_class():
    """``wattui.tui.compare.CompareScreen`` if it exists (it is another module's)."""
    try:
        from .compare import CompareScreen
    except Exception:  # noqa: BLE001 - absent or broken: the live screen works without it
        return None
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
    MODES: ClassVar[dict] = {}  # filled per instance: "live" and, if available, "compare"
    # Not a priority binding: a widget or screen that uses `c` itself keeps it. It works on
    # the live screen and on the comparison screen (to come back), nowhere else: not in an
    # input, a dialog, or a screen pushed over either (details, help).
    BINDINGS = [Binding("c", "toggle_compare", "Compare")]

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
        self.compare_class = compare_screen_class()
        if self.compare_class is not None:
            self.add_mode("compare", lambda: self.compare_class(self.store_root))

    def _make_live(self) -> LiveScreen:
        self._live_screen = LiveScreen(**self._live_kwargs)
        return self._live_screen

    _live_screen: LiveScreen | None = None

    @property
    def live(self) -> LiveScreen | None:
        """The live screen (also after the app has exited)."""
        return self._live_screen

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "toggle_compare":
            if self.compare_class is None:
                return False
            if isinstance(self.focused, Input | TextArea) or isinstance(self.screen, ModalScreen):
                return False  # the key goes to the input / dialog instead
            return isinstance(self.screen, LiveScreen | self.compare_class)
        return True

    def quit_viewer(self) -> None:
        """``q`` anywhere in the app: the live screen's quit, which asks whether to stop the
        run or leave it running when the watched session still runs (the comparison
        screen calls this too, so `q` there is not a quiet way around the question)."""
        if self.live is not None:
            self.live.action_quit_viewer()
        else:
            self.exit(result="closed")

    def action_toggle_compare(self) -> None:
        if self.compare_class is None:
            return
        self.switch_mode("live" if self.current_mode == "compare" else "compare")
