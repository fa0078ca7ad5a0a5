"""The comparison screen: every recorded session in one table, a plot of accuracy against
energy, and the SAM ranking under the alpha, beta and unit of the moment.

Keys: ``/`` filter, ``space`` select, ``enter`` details, ``s``/``S`` sort column and
order (or click a header), ``[``/``]`` alpha, ``{``/``}`` beta, ``u`` unit, ``0`` reset,
``p`` large plot, ``n`` rename, ``t`` tag, ``d`` delete, ``r`` reload, ``q`` quit.

A multi-node run (sessions sharing a ``group``) is one row, ``group:<ID>``; rename, tag and
delete on it apply to every session of the group (the notice says how many).

The store is read (and edited) in a thread worker, never on the event loop: it posts an
immutable :class:`TableUpdate`, which the screen applies in one ``batch_update()``. The
table widget is in ``session_table``, the dialogs in ``dialogs``, the notice, plot points
and ranking text in ``compare_panels``, the store edits in ``store_edits``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from wattui.analysis import table as cmp
from wattui.model.group import is_group_ref
from wattui.tui.compare_panels import (
    SEL_MARK,
    notice_text,
    plot_points,
    ranking_text,
    row_cells,
)
from wattui.tui.dialogs import AskText, Confirm
from wattui.tui.plot import ScatterPlot
from wattui.tui.session_table import SessionTable, TableColumn
from wattui.tui.store_edits import StoreChange, delete_job, rename_job, tag_job
from wattui.tui.textual_compat import SafeApp

DEFAULT_PARAMS = cmp.SamParams()
MAX_COL_W = 32


@dataclass(frozen=True)
class TableUpdate:
    """One read of the store, made in the loading thread: the table (under the parameters
    the sessions agree on when ``resolved``), and what a store edit before it had to say."""

    seq: int  # reads are numbered as started: an older one arriving late is not applied
    table: cmp.Table
    resolved: tuple[cmp.SamParams, tuple[str, ...]] | None = None
    keep_ranks: bool = False  # an automatic refresh keeps the last ▲▼ rank changes
    notice: tuple[str, str] | None = None
    deselect: frozenset[str] = frozenset()


class TableRead(Message):
    def __init__(self, update: TableUpdate) -> None:
        super().__init__()
        self.update = update


class RecordRead(Message):
    """A row's full record, read for its details screen."""

    def __init__(self, sid: str, record: dict, params: cmp.SamParams) -> None:
        super().__init__()
        self.sid, self.record, self.params = sid, record, params


# -- the screen --------------------------------------------------------------------------
class CompareScreen(Screen):
    """All sessions of ``store_root``: table, plot, ranking."""

    DEFAULT_CSS = """
    CompareScreen { layout: vertical; }
    CompareScreen #cmp-notice { height: auto; max-height: 3; padding: 0 1; background: $boost; }
    CompareScreen #cmp-filter { height: 3; border: tall $panel; }
    CompareScreen #cmp-table { height: 1fr; }
    CompareScreen #cmp-bottom { height: 45%; min-height: 10; }
    CompareScreen #cmp-plot { width: 2fr; padding: 0 1; border: round $panel; }
    CompareScreen #cmp-ranking {
        width: 1fr; min-width: 30; padding: 0 1; border: round $panel;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    CompareScreen.plot-max #cmp-table { display: none; }
    CompareScreen.plot-max #cmp-bottom { height: 1fr; }
    """
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("space", "toggle_select", "Select", show=True),
        Binding("enter", "details", "Details", show=False),
        Binding("s", "sort_next", "Sort"),
        Binding("S", "sort_reverse", "Order", show=False),
        Binding("left_square_bracket", "alpha(-1)", "α-", show=False),
        Binding("right_square_bracket", "alpha(1)", "α+"),
        Binding("left_curly_bracket", "beta(-1)", "β-", show=False),
        Binding("right_curly_bracket", "beta(1)", "β+"),
        Binding("u", "unit", "Unit"),
        Binding("0", "reset_params", "Reset SAM", show=False),
        Binding("p", "toggle_plot", "Plot"),
        Binding("n", "rename", "Rename"),
        Binding("t", "tag", "Tag"),
        Binding("d,delete", "delete", "Delete"),
        Binding("r", "reload", "Reload", show=False),
        Binding("escape", "escape", "Back", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        store_root: Path,
        params: cmp.SamParams | None = None,
        filter_text: str = "",
        sort: str | None = None,
        reverse: bool = False,
        refresh_s: float = 5.0,
        store_label: str | None = None,
        param_notes: list[str] | None = None,
        **kw,
    ) -> None:
        super().__init__(**kw)
        self.store_root = Path(store_root)
        self.store_label = store_label or str(self.store_root)
        # None: the parameters the sessions were recorded with, when they agree
        self._resolve_params = params is None
        self.params = (params or DEFAULT_PARAMS).checked()
        self.start_params = self.params
        self.param_notes = list(param_notes or [])
        self.filter_text = filter_text
        # by SAM rank (the leftmost column): what a comparison is for, and visible at 80x24
        self.sort_key, desc = cmp.resolve_sort(sort) if sort else ("sam_rank", False)
        self.sort_desc = desc ^ reverse
        self.selected: set[str] = set()
        self.table_data: cmp.Table | None = None
        self.view_df = None
        self.prev_ranks: dict[str, int] = {}
        self.refresh_s = refresh_s
        self._filter_error: str | None = None
        self._ranked: list[dict] | None = None
        self._store_lock = threading.Lock()  # one store read (or edit) at a time
        self._loads_started = 0
        self._seq_applied = 0
        self.loads_applied = 0  # reads of the store shown so far (tests wait on it)

    # -- layout ------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="cmp-notice")
        yield Input(
            value=self.filter_text,
            placeholder="filter: words, tag:T status:S host:H date:YYYY-MM-DD since:D until:D "
            "sim:yes|no, -term negates   (/ to focus, enter to return)",
            id="cmp-filter",
        )
        yield SessionTable(id="cmp-table")
        with Horizontal(id="cmp-bottom"):
            yield ScatterPlot(id="cmp-plot")
            yield Static(id="cmp-ranking")
        yield Footer()

    def on_mount(self) -> None:
        self._load(resolve=self._resolve_params)
        self.query_one(SessionTable).focus()
        if self.refresh_s:
            # (not ``_auto_refresh``: Textual's own attribute of that name, None, hid the
            # method and this timer never fired)
            self.set_interval(self.refresh_s, self._refresh_running)

    def on_resize(self, _event=None) -> None:
        if self._ranked is not None:
            self._render_ranking(self._ranked)

    def _label(self, c: cmp.Column) -> Text:
        # SAM's α, β and unit are on the notice line above: the header stays narrow
        text = c.label
        if c.key == self.sort_key:
            text += " ▼" if self.sort_desc else " ▲"
        return Text(text, justify="right" if c.numeric else "left")

    # -- loading: a thread reads the store, the screen applies what it read ---------------
    def _load(self, change: StoreChange | None = None, resolve=False, keep_ranks=False) -> None:
        """Read the store in a thread, after ``change`` (a store edit, run there too); the
        table arrives as a :class:`TableRead` message."""
        self._loads_started += 1
        self._read_store(self._loads_started, change, resolve, keep_ranks)

    @work(thread=True, group="compare-load")
    def _read_store(self, seq: int, change, resolve: bool, keep_ranks: bool) -> None:
        with self._store_lock:
            notice, deselect = change() if change is not None else (None, frozenset())
            table = cmp.load_table(self.store_root, self.params)
        resolved = None
        if resolve:
            params, notes = cmp.resolve_params(table.rows)
            if params != table.params:
                table = table.with_params(params)
            resolved = (params, tuple(notes))
        update = TableUpdate(seq, table, resolved, keep_ranks, notice, deselect)
        self.post_message(TableRead(update))

    @on(TableRead)
    def _table_read(self, message: TableRead) -> None:
        u = message.update
        if u.notice is not None:
            self.notify(u.notice[0], severity=u.notice[1])
        self.selected -= u.deselect
        if u.seq < self._seq_applied:
            return  # a later read already arrived
        self._seq_applied = u.seq
        with self.app.batch_update():
            self._apply_table(u)
        self.loads_applied += 1
        self.call_after_refresh(self.on_resize)

    def _apply_table(self, u: TableUpdate) -> None:
        table = u.table
        if u.resolved is not None:
            self.params = self.start_params = u.resolved[0]
            self.param_notes = list(u.resolved[1])
        if table.params != self.params:  # changed (α, β, unit keys) while it was read
            table = table.with_params(self.params)
        prev = self.prev_ranks
        self._set_table(table)
        if u.keep_ranks:
            self.prev_ranks = prev
            self._render_plot(self.view_df)

    # -- data --------------------------------------------------------------------------
    def _set_table(self, table: cmp.Table) -> None:
        self.table_data = table
        self.selected &= set(table.ids)
        self.prev_ranks = {}
        self._render_all()

    def _ranks(self) -> dict[str, int]:
        if self.table_data is None:
            return {}
        f = self.table_data.frame
        return {i: r for i, r in zip(f["id"].to_list(), f["sam_rank"].to_list()) if r is not None}

    def _sub_ranks(self) -> dict[str, int]:
        """SAM ranks among the plotted sessions."""
        import polars as pl

        sub = self.plotted()
        if sub is None:
            return {}
        r = sub.select("id", pl.col("sam").rank("min", descending=True).cast(pl.Int64).alias("k"))
        return {i: k for i, k in zip(r["id"].to_list(), r["k"].to_list()) if k is not None}

    def _render_all(self, keep_cursor: bool = True) -> None:
        if self.table_data is None:
            return  # not read yet: the sort and filter apply when it arrives
        try:
            df = cmp.filter_frame(self.table_data.frame, self.filter_text)
            self._filter_error = None
        except cmp.FilterError as e:
            df = self.table_data.frame
            self._filter_error = str(e)
        df = cmp.sort_frame(df, self.sort_key, self.sort_desc)
        self.view_df = df
        t = self.query_one(SessionTable)
        cur = self.current_id() if keep_cursor else None
        rows = df.to_dicts()
        texts = {c.key: [c.fmt(r) for r in rows] for c in cmp.COLUMNS}
        cols = [TableColumn("sel", Text("✓"), 1)]
        # the name is pinned with the rank: narrower on a narrow screen, so the figures fit
        name_cap = max(12, min(MAX_COL_W, (self.app.size.width or 80) // 4))
        for c in cmp.COLUMNS:
            label = self._label(c)
            w = max(max(map(cell_len, texts[c.key]), default=0), label.cell_len)
            cap = name_cap if c.key == "name" else MAX_COL_W
            cols.append(TableColumn(c.key, label, min(w, cap), c.numeric))
        cells = [
            row_cells(r, {k: v[i] for k, v in texts.items()}, cols, self.selected)
            for i, r in enumerate(rows)
        ]
        pinned = 1 + next((i + 1 for i, c in enumerate(cmp.COLUMNS) if c.key == "name"), 0)
        t.set_rows(cols, [r["id"] for r in rows], cells, pinned=pinned)
        if cur is not None and t.row_index(cur) is not None:
            t.move_cursor(t.row_index(cur))
        t.show_column(self.sort_key)
        self._render_notice(df)
        self._render_plot(df)

    def _render_notice(self, df) -> None:
        t = notice_text(
            self.table_data,
            df,
            store_label=self.store_label if self.app.size.width >= 100 else None,
            params=self.params,
            sort=(self.sort_key, self.sort_desc),
            selected=len(self.selected),
            notes=self.param_notes,
            filter_error=self._filter_error,
        )
        self.query_one("#cmp-notice", Static).update(t)

    def plotted(self):
        """The sessions in the plot: the selected ones, else all that pass the filter."""
        df = self.view_df
        if self.selected:
            import polars as pl

            sel = self.table_data.frame.filter(pl.col("id").is_in(list(self.selected)))
            return cmp.sort_frame(sel, self.sort_key, self.sort_desc)
        return df

    def _render_plot(self, df) -> None:
        sub = self.plotted()
        pts, ranked = plot_points(sub, self.selected)
        plot = self.query_one(ScatterPlot)
        what = f"{len(self.selected)} selected" if self.selected else f"{sub.height} shown"
        plot.title = f"Accuracy vs energy, log x · {what} · SAM {self.params.label()}"
        plot.points = pts
        self._ranked = ranked
        self._render_ranking(ranked)

    def _render_ranking(self, ranked: list[dict]) -> None:
        panel = self.query_one("#cmp-ranking", Static)
        box = panel.content_size
        panel.update(ranking_text(ranked, self.params, self.prev_ranks, box.width, box.height))

    def _refresh_running(self) -> None:
        if self.table_data is None:
            return
        if self._loads_started > self._seq_applied:
            return  # still reading
        if "running" in set(self.table_data.frame["status"].to_list()):
            self._load(keep_ranks=True)  # a running session's figures move: keep the ▲▼

    # -- helpers -------------------------------------------------------------------------
    def current_id(self) -> str | None:
        return self.query_one(SessionTable).cursor_key

    def targets(self) -> list[str]:
        """The selected sessions, else the one under the cursor."""
        if self.selected:
            order = self.view_df["id"].to_list() if self.view_df is not None else []
            return [i for i in order if i in self.selected] + sorted(self.selected - set(order))
        cur = self.current_id()
        return [cur] if cur else []

    def part_ids(self, ids: list[str]) -> list[str]:
        """Session ids behind table rows: a group's row stands for all its sessions."""
        out: list[str] = []
        for sid in ids:
            if is_group_ref(sid):
                # a group's merged record is always in the table (never cached): no disk read
                rec = self.table_data.records.get(sid) if self.table_data else None
                parts = [p for p in (rec or {}).get("session_ids") or [] if p]
            else:
                parts = [sid]
            out += [p for p in parts if p not in out]
        return out

    def _what(self, ids: list[str]) -> str:
        """``3 session(s)``, or with groups ``2 row(s) = 4 session(s)``."""
        parts = self.part_ids(ids)
        if len(parts) == len(ids):
            return f"{len(ids)} session(s)"
        return f"{len(ids)} row(s) = {len(parts)} session(s) of multi-node runs"

    def _session_name(self, sid: str) -> str:
        rows = self.table_data.frame.filter(self.table_data.frame["id"] == sid)
        return rows["name"][0] if rows.height else sid

    # -- actions -------------------------------------------------------------------------
    def action_focus_filter(self) -> None:
        self.query_one("#cmp-filter", Input).focus()

    @on(Input.Changed, "#cmp-filter")
    def _filter_changed(self, ev: Input.Changed) -> None:
        self.filter_text = ev.value
        self.prev_ranks = {}
        if self.table_data is not None:
            self._render_all()

    @on(Input.Submitted, "#cmp-filter")
    def _filter_done(self) -> None:
        self.query_one(SessionTable).focus()

    def action_escape(self) -> None:
        f = self.query_one("#cmp-filter", Input)
        if f.has_focus:
            self.query_one(SessionTable).focus()
        elif self.selected:
            self.action_clear_selection()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_toggle_select(self) -> None:
        if self.query_one("#cmp-filter", Input).has_focus:
            return
        sid = self.current_id()
        if sid is None:
            return
        self.selected ^= {sid}
        self.prev_ranks = {}
        t = self.query_one(SessionTable)
        t.set_cell(sid, 0, *(SEL_MARK if sid in self.selected else ("", "")))
        t.move_cursor(t.cursor_row + 1)
        self._render_notice(self.view_df)
        self._render_plot(self.view_df)

    def action_clear_selection(self) -> None:
        self.selected.clear()
        self.prev_ranks = {}
        self._render_all()

    def action_sort_next(self) -> None:
        keys = [c.key for c in cmp.COLUMNS]
        i = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.sort_key = keys[(i + 1) % len(keys)]
        self.sort_desc = cmp.COLUMN_BY_KEY[self.sort_key].numeric and self.sort_key != "sam_rank"
        self._render_all()

    def action_sort_reverse(self) -> None:
        self.sort_desc = not self.sort_desc
        self._render_all()

    def sort_by(self, key: str) -> None:
        if key == self.sort_key:
            self.sort_desc = not self.sort_desc
        else:
            self.sort_key = key
            self.sort_desc = cmp.COLUMN_BY_KEY[key].numeric and key != "sam_rank"
        self._render_all()

    @on(SessionTable.HeaderSelected)
    def _header(self, ev: SessionTable.HeaderSelected) -> None:
        key = ev.column_key
        if key in cmp.COLUMN_BY_KEY:
            self.sort_by(key)

    def set_params(self, params: cmp.SamParams) -> None:
        if self.table_data is None:
            return  # not read yet (the parameters may come from the sessions)
        try:
            params = params.checked()
        except ValueError as e:
            self.notify(str(e), severity="warning")
            return
        self.prev_ranks = self._sub_ranks()
        if params != self.params:
            self.param_notes = []  # they were about the parameters the screen opened with
        self.params = params
        self.table_data = self.table_data.with_params(params)
        self._render_all()

    def action_alpha(self, step: float) -> None:
        p = self.params
        self.set_params(cmp.SamParams(max(0.0, min(100.0, p.alpha + step)), p.beta, p.unit))

    def action_beta(self, step: float) -> None:
        p = self.params
        self.set_params(cmp.SamParams(p.alpha, max(1.0, p.beta + step), p.unit))

    def action_unit(self) -> None:
        from wattui.metrics.sam import UNITS

        p = self.params
        units = list(UNITS)
        nxt = units[(units.index(p.unit) + 1) % len(units)] if p.unit in units else units[0]
        self.set_params(cmp.SamParams(p.alpha, p.beta, nxt))

    def action_reset_params(self) -> None:
        self.set_params(self.start_params)

    def action_toggle_plot(self) -> None:
        self.toggle_class("plot-max")
        if self.has_class("plot-max"):
            self.query_one(ScatterPlot).focus()
        else:
            self.query_one(SessionTable).focus()

    def action_reload(self) -> None:
        self._load()

    @on(SessionTable.RowSelected)
    def _row_selected(self, ev: SessionTable.RowSelected) -> None:
        self.open_details(ev.row_key)

    def action_details(self) -> None:
        sid = self.current_id()
        if sid:
            self.open_details(sid)

    def open_details(self, sid: str) -> None:
        """The details of row ``sid``, once its record is read (a cached row's is read from
        its session, in a thread); none when the session has gone since the listing."""
        if self.table_data is not None:
            self._read_record(self.table_data, sid, self.params)

    @work(thread=True, group="compare-record")
    def _read_record(self, table: cmp.Table, sid: str, params: cmp.SamParams) -> None:
        rec = table.record(sid)
        if rec is not None:
            self.post_message(RecordRead(sid, rec, params))

    @on(RecordRead)
    def _record_read(self, message: RecordRead) -> None:
        from wattui.tui.details import DetailsScreen

        if self.app.screen is not self:
            return  # the user went elsewhere meanwhile
        sid, rec, params = message.sid, message.record, message.params
        self.app.push_screen(DetailsScreen(self.store_root, sid, params=params, record=rec))

    def action_quit(self) -> None:
        """Inside the live app, the live screen's quit (which asks whether to stop or leave a
        running session); on its own, close the app."""
        quit_viewer = getattr(self.app, "quit_viewer", None)
        if callable(quit_viewer):
            quit_viewer()
        else:
            self.app.exit()

    def action_rename(self) -> None:
        sid = self.current_id()
        if not sid:
            return

        parts = self.part_ids([sid])
        if not parts:
            return

        def done(name: str | None) -> None:
            if name is not None:
                self._load(rename_job(self.store_root, sid, parts, name))

        hint = "enter to save, escape to cancel"
        if is_group_ref(sid):
            hint = f"renames all {len(parts)} sessions of the group; " + hint
        self.app.push_screen(
            AskText(f"New name for {sid}:", self._session_name(sid), hint),
            done,
        )

    def action_tag(self) -> None:
        rows = self.targets()
        ids = self.part_ids(rows)
        if not ids:
            return

        def done(text: str | None) -> None:
            if text and text.strip():
                self._load(tag_job(self.store_root, ids, text))

        self.app.push_screen(
            AskText(
                f"Tags for {self._what(rows)}: words add, -word removes",
                "",
                "e.g. 'paper baseline -draft'",
            ),
            done,
        )

    def action_delete(self) -> None:
        rows = self.targets()
        ids = self.part_ids(rows)
        if not ids:
            return
        names = ", ".join(self._session_name(i) for i in rows[:5]) + (
            " ..." if len(rows) > 5 else ""
        )
        what = self._what(rows)

        def done(yes: bool | None) -> None:
            if yes:
                self._load(delete_job(self.store_root, ids, rows))

        self.app.push_screen(
            Confirm(f"Delete {what} for good?\n{names}\nThis cannot be undone."),
            done,
        )


class CompareApp(SafeApp):
    """The comparison screen on its own (``wattui compare``)."""

    TITLE = "wattui compare"

    def __init__(self, store_root: Path, **screen_kw) -> None:
        super().__init__()
        self.store_root = Path(store_root)
        self.screen_kw = screen_kw

    def get_default_screen(self) -> Screen:
        return CompareScreen(self.store_root, **self.screen_kw)
