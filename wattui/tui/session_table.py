"""The comparison screen's session table: a ScrollView that draws only the rows on screen,
with pinned leading columns, whole-column sideways scrolling and a row cursor."""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip


@dataclass
class TableColumn:
    key: str
    label: Text
    width: int
    numeric: bool = False


class SessionTable(ScrollView, can_focus=True):
    """A table that draws only the rows on screen (Textual's line API), so a store of
    thousands of sessions opens at once; DataTable measures every cell up front.

    Header fixed on top; one row per session; a row cursor; click a header to sort, click
    the highlighted row (or press enter) to open it."""

    DEFAULT_CSS = """
    SessionTable { background: $surface; scrollbar-size-horizontal: 1; }
    SessionTable > .sessiontable--header { text-style: bold; background: $panel; color: $foreground; }
    SessionTable > .sessiontable--cursor { background: $block-cursor-blurred-background; }
    SessionTable:focus > .sessiontable--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
    }
    SessionTable > .sessiontable--odd { background: $surface; }
    SessionTable > .sessiontable--even { background: $surface-lighten-1 20%; }
    """
    COMPONENT_CLASSES = {
        "sessiontable--header",
        "sessiontable--cursor",
        "sessiontable--odd",
        "sessiontable--even",
    }
    BINDINGS = [
        Binding("up", "cursor(-1)", show=False),
        Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "cursor_to(0)", show=False),
        Binding("end", "cursor_to(-1)", show=False),
        Binding("left", "scroll_left", show=False),
        Binding("right", "scroll_right", show=False),
        Binding("enter", "select", show=False),
    ]
    PAD = 1

    class RowSelected(Message):
        def __init__(self, table: SessionTable, row_key: str) -> None:
            super().__init__()
            self.table, self.row_key = table, row_key

    class HeaderSelected(Message):
        def __init__(self, table: SessionTable, column_key: str) -> None:
            super().__init__()
            self.table, self.column_key = table, column_key

    cursor_row: reactive[int] = reactive(0, always_update=True)

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.pinned = 0  # leading columns that stay put when the rest scrolls sideways
        self.columns: list[TableColumn] = []
        self.row_keys: list[str] = []
        self._cells: list[list[tuple[str, str]]] = []
        self._index: dict[str, int] = {}
        self._cache: dict[tuple, Strip] = {}

    # -- data ----------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self.row_keys)

    def set_rows(self, columns: list[TableColumn], keys: list[str], cells, pinned: int = 0) -> None:
        """``cells[i][j]``: (text, rich style) of row i, column j (text already fitted).
        The first ``pinned`` columns never scroll; the others scroll a column at a time."""
        self.pinned = min(pinned, len(columns))
        self.columns = columns
        self.row_keys = list(keys)
        self._cells = cells
        self._index = {k: i for i, k in enumerate(self.row_keys)}
        self._cache.clear()
        widths = [self.col_width(c) for c in columns]
        self._stops = [0]
        for w in widths[self.pinned :]:
            self._stops.append(self._stops[-1] + w)
        # room to scroll until the last column is the first one shown (whole columns only)
        slack = max(widths[self.pinned :], default=0)
        self.virtual_size = Size(sum(widths) + slack, len(keys) + 1)
        self.cursor_row = min(self.cursor_row, max(0, len(keys) - 1))
        self.refresh()

    def set_cell(self, key: str, col: int, text: str, style: str = "") -> None:
        i = self._index.get(key)
        if i is None:
            return
        self._cells[i][col] = (text, style)
        self._cache.clear()
        self.refresh()

    def row_index(self, key: str) -> int | None:
        return self._index.get(key)

    @property
    def cursor_key(self) -> str | None:
        if 0 <= self.cursor_row < len(self.row_keys):
            return self.row_keys[self.cursor_row]
        return None

    def move_cursor(self, row: int) -> None:
        if not self.row_keys:
            self.cursor_row = 0
            return
        self.cursor_row = min(max(0, row), len(self.row_keys) - 1)

    def watch_cursor_row(self, _old: int, new: int) -> None:
        self._cache.clear()
        h = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_y)
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + h:
            self.scroll_to(y=new - h + 1, animate=False)
        self.refresh()

    # -- drawing --------------------------------------------------------------------------
    def col_width(self, c: TableColumn) -> int:
        return c.width + 2 * self.PAD

    @property
    def pinned_width(self) -> int:
        return sum(self.col_width(c) for c in self.columns[: self.pinned])

    _stops: list[int] = [0]

    def scroll_stops(self) -> list[int]:
        """The scroll offsets at which an unpinned column starts (and where the last ends)."""
        return self._stops

    def _line(self, cells, style: Style, scroll_x: int = 0, width: int | None = None) -> Strip:
        """The pinned columns, then the others from ``scroll_x`` on, ``width`` cells."""
        p = self.pinned
        left = self._segments(self.columns[:p], cells[:p], style)
        right = self._segments(self.columns[p:], cells[p:], style)
        if width is None:
            return Strip(left + right)
        lstrip = Strip(left)
        lw = min(lstrip.cell_length, width)
        avail = width - lw
        # whole columns only: a column that does not fit is left out, not cut at the edge
        # (one wider than the whole view is cut, or it could never be read)
        end = max((s for s in self.scroll_stops() if s <= scroll_x + avail), default=0)
        if end <= scroll_x:
            end = scroll_x + avail
        rstrip = Strip(right).crop_extend(scroll_x, end, style).extend_cell_length(avail, style)
        return Strip.join([lstrip.crop_extend(0, lw, style), rstrip])

    def _segments(self, columns, cells, style: Style) -> list[Segment]:
        segs = []
        pad = " " * self.PAD
        for c, (text, st) in zip(columns, cells):
            w = c.width
            n = cell_len(text)
            if n > w:
                text = set_cell_size(text, w - 1) + "…"
                n = w
            pad_w = " " * (w - n)
            body = pad_w + text if c.numeric else text + pad_w
            segs.append(Segment(pad, style))
            segs.append(Segment(body, style + Style.parse(st) if st else style))
            segs.append(Segment(pad, style))
        return segs

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            key = ("h", scroll_x, width)
            if key not in self._cache:
                hs = self.get_component_rich_style("sessiontable--header")
                cells = [(c.label.plain, str(c.label.style or "")) for c in self.columns]
                self._cache[key] = self._line(cells, base + hs, scroll_x, width)
            return self._cache[key]
        i = scroll_y + y - 1
        if i >= len(self.row_keys):
            return Strip.blank(width, base)
        key = (i, scroll_x, width, self.has_focus)
        if key not in self._cache:
            if i == self.cursor_row:
                st = self.get_component_rich_style("sessiontable--cursor")
            else:
                st = self.get_component_rich_style(
                    "sessiontable--even" if i % 2 else "sessiontable--odd"
                )
            self._cache[key] = self._line(self._cells[i], base + st, scroll_x, width)
        return self._cache[key]

    def on_focus(self) -> None:
        self._cache.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._cache.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    def watch_scroll_x(self, old: float, new: float) -> None:
        super().watch_scroll_x(old, new)
        self._cache.clear()

    # -- input -------------------------------------------------------------------------
    def column_at(self, x: int) -> str | None:
        pw = self.pinned_width
        if x >= pw:
            x += int(self.scroll_x)
        edge = 0
        for i, c in enumerate(self.columns):
            edge += self.col_width(c)
            if x < edge and (i < self.pinned or x >= pw):
                return c.key
        return None

    def action_scroll_right(self) -> None:
        """One whole column to the right (the pinned ones stay)."""
        x = int(self.scroll_x)
        stops = self.scroll_stops()
        nxt = next((s for s in stops[:-1] if s > x), None)  # never past the last column
        if nxt is not None and nxt <= self.max_scroll_x:
            self.scroll_to(x=nxt, animate=False)

    def action_scroll_left(self) -> None:
        x = int(self.scroll_x)
        prev = [s for s in self.scroll_stops() if s < x]
        self.scroll_to(x=prev[-1] if prev else 0, animate=False)

    def show_column(self, key: str) -> None:
        """Scroll so that column ``key`` is in view (a pinned one always is)."""
        keys = [c.key for c in self.columns]
        if key not in keys or keys.index(key) < self.pinned:
            return
        i = keys.index(key) - self.pinned
        stops = self.scroll_stops()
        left, right = stops[i], stops[i + 1]
        if self.scrollable_content_region.width <= self.pinned_width:
            return  # not laid out yet
        view = self.scrollable_content_region.width - self.pinned_width
        x = int(self.scroll_x)
        if left < x:
            self.scroll_to(x=left, animate=False)
        elif right > x + view:
            fit = next((s for s in stops if s >= right - view), left)
            self.scroll_to(x=min(fit, left), animate=False)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            key = self.column_at(event.x)
            if key is not None:
                self.post_message(self.HeaderSelected(self, key))
            return
        i = int(self.scroll_y) + event.y - 1
        if 0 <= i < len(self.row_keys):
            if i == self.cursor_row:
                self.post_message(self.RowSelected(self, self.row_keys[i]))
            self.cursor_row = i

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def action_page(self, step: int) -> None:
        h = max(1, self.scrollable_content_region.height - 1)
        self.move_cursor(self.cursor_row + step * h)

    def action_cursor_to(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else len(self.row_keys) - 1)

    def action_select(self) -> None:
        if self.cursor_key is not None:
            self.post_message(self.RowSelected(self, self.cursor_key))
