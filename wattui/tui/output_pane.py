"""The run's output pane: tail-followed, scrollable, searchable, in the run's colours."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.strip import Strip
from textual.widgets import Input, Label, Log, Static

from wattui.sanitize import strip_sgr
from wattui.tui.panels import set_if_changed


class AnsiLog(Log):
    """A ``Log`` that shows the SGR colours of its lines. Lines come from
    :func:`wattui.sanitize.clean_output`, which leaves no other escape sequence."""

    @classmethod
    def _process_line(cls, line: str) -> str:  # widths and plain rendering: no SGR
        return super()._process_line(strip_sgr(line) if "\x1b" in line else line)

    def _render_line_strip(self, y: int, rich_style) -> Strip:
        raw = self._lines[y]
        if "\x1b[" not in raw:
            return super()._render_line_strip(y, rich_style)
        text = Text.from_ansi(raw.expandtabs(), no_wrap=True)
        text.stylize_before(rich_style)
        return Strip(text.render(self.app.console), text.cell_len)


class OutputPanel(Vertical):
    """The run's output, tail-followed, scrollable and searchable."""

    DEFAULT_CSS = """
    OutputPanel { height: 1fr; min-height: 3; }
    /* Log's scrollbars drew an empty row under the last line and a column of blocks at
       the right edge: none (the keys and the mouse wheel still scroll, f follows) */
    OutputPanel > Log {
        height: 1fr; scrollbar-size-vertical: 0; scrollbar-size-horizontal: 0;
    }
    OutputPanel > #output-live {
        height: auto; max-height: 2; color: $text-muted; display: none;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    OutputPanel.-has-live > #output-live { display: block; }
    OutputPanel > #search { display: none; height: 1; border: none; padding: 0 1; }
    OutputPanel.-searching > #search { display: block; }
    OutputPanel > #search-status { height: 1; color: $text-muted; display: none; }
    OutputPanel.-has-status > #search-status { display: block; }
    """

    def __init__(self, max_lines: int = 5000, **kwargs):
        super().__init__(**kwargs)
        self.max_lines = max_lines
        self.query_text = ""
        self.matches: list[int] = []
        self.match_index = -1

    def compose(self) -> ComposeResult:
        yield AnsiLog(max_lines=self.max_lines, id="output-log", highlight=False, auto_scroll=True)
        yield Static("", id="output-live")
        yield Input(placeholder="search the output (Enter: find, Esc: close)", id="search")
        yield Label("", id="search-status")

    @property
    def log_widget(self) -> Log:
        return self.query_one("#output-log", Log)

    def append(self, lines: Sequence[str]) -> None:
        """Finished lines (already cleaned by ``snapshot.clean_line``), one per row: each
        is cut at the pane's edge (scroll sideways to read on), never wrapped or merged."""
        if lines:
            log = self.log_widget
            log.write_lines(lines)
            if log.auto_scroll:  # also when written before the pane had its size
                log.call_after_refresh(log.scroll_end, animate=False, x_axis=False)

    def on_resize(self, _event=None) -> None:
        """A pane that grew or shrank (a notes line came or went) still shows the end."""
        log = self.log_widget
        if log.auto_scroll:
            log.call_after_refresh(log.scroll_end, animate=False, x_axis=False)

    def set_live(self, lines: Sequence[str]) -> None:
        """Each stream's unfinished line (a progress bar mid-epoch), under the finished
        ones, as the terminal's cursor line would show it."""
        if not lines and not self.has_class("-has-live"):
            return  # nothing shown, nothing to lay out
        # lines keep the run's colours (clean_output leaves SGR sequences only)
        t = Text("\n", no_wrap=True, overflow="ellipsis").join(
            Text.from_ansi(x, no_wrap=True, overflow="ellipsis") for x in lines
        )
        set_if_changed(self.query_one("#output-live", Static), t)
        if self.has_class("-has-live") != bool(lines):
            self.set_class(bool(lines), "-has-live")

    def open_search(self) -> None:
        self.add_class("-searching")
        inp = self.query_one("#search", Input)
        inp.value = self.query_text
        inp.focus()

    def close_search(self) -> None:
        self.remove_class("-searching")
        self.log_widget.focus()

    def follow(self) -> None:
        """Stop browsing matches and follow the end of the output again."""
        log = self.log_widget
        log.auto_scroll = True
        log.scroll_end(animate=False)
        self.remove_class("-has-status")

    def search(self, text: str) -> int:
        """Find ``text`` (case-insensitive); jump to the last match. Returns the count."""
        self.query_text = text
        needle = text.lower()
        lines = self.log_widget.lines
        self.matches = [
            i for i, line in enumerate(lines) if needle and needle in strip_sgr(line).lower()
        ]
        self.match_index = len(self.matches) - 1
        self._show_match()
        return len(self.matches)

    def next_match(self, step: int = 1) -> None:
        if not self.matches:
            return
        self.match_index = (self.match_index + step) % len(self.matches)
        self._show_match()

    def _show_match(self) -> None:
        status = self.query_one("#search-status", Label)
        self.add_class("-has-status")
        if not self.matches:
            status.update(Text(f"no match for {self.query_text!r}"))  # not markup
            return
        log = self.log_widget
        line_no = self.matches[self.match_index]
        log.auto_scroll = False
        log.scroll_to(y=max(0, line_no - log.size.height // 2), animate=False)
        text = strip_sgr(log.lines[line_no]) if line_no < len(log.lines) else ""
        t = Text(f"match {self.match_index + 1}/{len(self.matches)} line {line_no + 1}: ")
        t.append(text[:200], style="reverse")
        t.append("  (n/N: next/previous, f: follow)")
        status.update(t)
