"""The comparison screen: every recorded session in one table, a plot of accuracy against
energy, and the SAM ranking under the alpha, beta and unit of the moment.

Keys: ``/`` filter, ``space`` select, ``enter`` details, ``s``/``S`` sort column and
order (or click a header), ``[``/``]`` alpha, ``{``/``}`` beta, ``u`` unit, ``0`` reset,
``p`` large plot, ``n`` rename, ``t`` tag, ``d`` delete, ``r`` reload, ``q`` quit.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Static

from .. import compare as cmp
from .plot import Point, ScatterPlot

DEFAULT_PARAMS = cmp.SamParams()
STATUS_STYLE = {
    "running": "bold #8ae234",
    "finished": "",
    "failed": "bold #f07178",
    "interrupted": "bold #ffb454",
}


# -- modals ------------------------------------------------------------------------------
class AskText(ModalScreen[str | None]):
    """One line of text, or None when cancelled."""

    DEFAULT_CSS = """
    AskText { align: center middle; }
    AskText > Vertical { width: 70; height: auto; border: thick $accent; background: $surface;
        padding: 1 2; }
    AskText Label { width: 100%; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prompt: str, value: str = "", hint: str = "") -> None:
        super().__init__()
        self.prompt, self.value, self.hint = prompt, value, hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.prompt)
            yield Input(value=self.value, id="ask")
            if self.hint:
                yield Label(Text(self.hint, style="italic"))

    @on(Input.Submitted)
    def _done(self, ev: Input.Submitted) -> None:
        self.dismiss(ev.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical { width: 70; height: auto; border: thick $error; background: $surface;
        padding: 1 2; }
    Confirm Horizontal { height: auto; margin-top: 1; }
    Confirm Button { margin-right: 2; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            with Horizontal():
                yield Button("Delete (y)", variant="error", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, ev: Button.Pressed) -> None:
        self.dismiss(ev.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


# -- the screen --------------------------------------------------------------------------
class CompareScreen(Screen):
    """All sessions of ``store_root``: table, plot, ranking."""

    DEFAULT_CSS = """
    CompareScreen { layout: vertical; }
    CompareScreen #notice { height: auto; max-height: 3; padding: 0 1; background: $boost; }
    CompareScreen #filter { height: 3; border: tall $panel; }
    CompareScreen #table { height: 1fr; }
    CompareScreen #bottom { height: 45%; min-height: 10; }
    CompareScreen #plot { width: 2fr; padding: 0 1; border: round $panel; }
    CompareScreen #ranking { width: 1fr; min-width: 30; padding: 0 1; border: round $panel; }
    CompareScreen.plot-max #table { display: none; }
    CompareScreen.plot-max #bottom { height: 1fr; }
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
        Binding("c", "clear_selection", "Clear sel.", show=False),
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
        **kw,
    ) -> None:
        super().__init__(**kw)
        self.store_root = Path(store_root)
        self.store_label = store_label or str(self.store_root)
        self.params = (params or DEFAULT_PARAMS).checked()
        self.filter_text = filter_text
        self.sort_key, desc = cmp.resolve_sort(sort) if sort else ("started_at", False)
        self.sort_desc = desc ^ reverse
        self.selected: set[str] = set()
        self.table_data: cmp.Table | None = None
        self.view_df = None
        self.prev_ranks: dict[str, int] = {}
        self.refresh_s = refresh_s
        self._filter_error: str | None = None

    # -- layout ------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="notice")
        yield Input(
            value=self.filter_text,
            placeholder="filter: words, tag:T status:S host:H date:YYYY-MM-DD since:D until:D "
            "sim:yes|no, -term negates   (/ to focus, enter to return)",
            id="filter",
        )
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="bottom"):
            yield ScatterPlot(id="plot")
            yield Static(id="ranking")
        yield Footer()

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_column("✓", key="sel", width=1)
        for c in cmp.COLUMNS:
            t.add_column(self._label(c), key=c.key)
        self._set_table(cmp.load_table(self.store_root, self.params))
        t.focus()
        self.call_after_refresh(self.on_resize)
        if self.refresh_s:
            self.set_interval(self.refresh_s, self._auto_refresh)

    def on_resize(self, _event=None) -> None:
        if self.view_df is not None:
            self._render_plot(self.view_df)

    def _label(self, c: cmp.Column) -> Text:
        text = cmp.sam_label(self.params) if c.key == "sam" else c.label
        if c.key == self.sort_key:
            text += " ▼" if self.sort_desc else " ▲"
        return Text(text, justify="right" if c.numeric else "left")

    # -- data --------------------------------------------------------------------------
    def _set_table(self, table: cmp.Table) -> None:
        self.table_data = table
        self.selected &= set(table.records)
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
        assert self.table_data is not None
        try:
            df = cmp.filter_frame(self.table_data.frame, self.filter_text)
            self._filter_error = None
        except cmp.FilterError as e:
            df = self.table_data.frame
            self._filter_error = str(e)
        df = cmp.sort_frame(df, self.sort_key, self.sort_desc)
        self.view_df = df
        t = self.query_one(DataTable)
        cur = self.current_id() if keep_cursor else None
        for c in cmp.COLUMNS:
            t.columns[c.key].label = self._label(c)
        t.clear()
        for r in df.iter_rows(named=True):
            t.add_row(*self._cells(r), key=r["id"])
        if cur is not None and cur in set(df["id"].to_list()):
            t.move_cursor(row=t.get_row_index(cur), animate=False)
        t.refresh()
        self._render_notice(df)
        self._render_plot(df)

    def _cells(self, r: dict) -> list:
        cells: list = [Text("✓", style="bold #ffb454") if r["id"] in self.selected else ""]
        for c in cmp.COLUMNS:
            s = c.fmt(r)
            style = ""
            if c.key == "status":
                style = STATUS_STYLE.get(s, "")
            elif c.key == "name" and r["simulated"]:
                style = "#c792ea"
            elif c.key == "sam" and r["pareto"]:
                style = "bold"
            cells.append(Text(s, style=style, justify="right" if c.numeric else "left"))
        return cells

    def _render_notice(self, df) -> None:
        tb = self.table_data
        n_all = tb.frame.height
        t = Text()
        t.append(f"{df.height} of {n_all} sessions", style="bold")
        t.append(f"  ·  {self.store_label}")
        t.append(f"  ·  SAM {self.params.label()}", style="bold #4fc1ff")
        nsim = int(df["simulated"].sum()) if df.height else 0
        if nsim:
            t.append(f"  ·  {nsim} SIMULATED [SIM]", style="bold #c792ea")
        if self.selected:
            t.append(f"  ·  {len(self.selected)} selected", style="bold #ffb454")
        if self._filter_error:
            t.append(f"\nfilter: {self._filter_error}", style="bold #f07178")
        if tb.problems:
            more = f" (+{len(tb.problems) - 1} more)" if len(tb.problems) > 1 else ""
            t.append(
                f"\n⚠ {len(tb.problems)} unreadable session(s) not listed: {tb.problems[0]}{more}",
                style="#ffb454",
            )
        self.query_one("#notice", Static).update(t)

    def plotted(self):
        """The sessions in the plot: the selected ones, else all that pass the filter."""
        df = self.view_df
        if self.selected:
            import polars as pl

            sel = self.table_data.frame.filter(pl.col("id").is_in(list(self.selected)))
            return cmp.sort_frame(sel, self.sort_key, self.sort_desc)
        return df

    def _render_plot(self, df) -> None:
        import polars as pl

        sub = self.plotted()
        front = cmp.pareto_front(sub["energy_j"].to_list(), sub["accuracy"].to_list())
        rows = sub.to_dicts()
        ranked = sub.with_columns(
            sub_rank=pl.col("sam").rank("min", descending=True).cast(pl.Int64),
            sub_front=pl.Series([i in front for i in range(sub.height)], dtype=pl.Boolean),
        ).to_dicts()
        pts = []
        for i, r in enumerate(rows):
            if r["energy_j"] is None or r["accuracy"] is None:
                continue
            rank = ranked[i]["sub_rank"]
            pts.append(
                Point(
                    r["energy_j"],
                    r["accuracy"],
                    f"{rank if rank is not None else '-'} {r['name']}",
                    front=i in front,
                    selected=r["id"] in self.selected,
                    simulated=r["simulated"],
                )
            )
        plot = self.query_one(ScatterPlot)
        what = f"{len(self.selected)} selected" if self.selected else f"{sub.height} shown"
        plot.title = f"Accuracy vs energy, log x · {what} · SAM {self.params.label()}"
        plot.points = tuple(pts)
        self._render_ranking(ranked)

    def _render_ranking(self, ranked: list[dict]) -> None:
        t = Text()
        t.append("SAM ranking", style="bold")
        t.append(f"  {self.params.label()}\n", style="bold #4fc1ff")
        rows = sorted(
            (r for r in ranked if r["sub_rank"] is not None),
            key=lambda r: (r["sub_rank"], r["name"]),
        )
        if not rows:
            t.append("no session has a defined SAM under these settings\n", style="italic")
        width = max(30, self.query_one("#ranking", Static).content_size.width or 40)
        name_w = max(8, width - 18)
        for r in rows:
            prev = self.prev_ranks.get(r["id"])
            now = r["sub_rank"]
            if prev is None or now is None or prev == now:
                delta, dst = "  ", ""
            elif now < prev:
                delta, dst = f"▲{prev - now}", "#8ae234"
            else:
                delta, dst = f"▼{now - prev}", "#f07178"
            t.append(f"{r['sub_rank']:>3} ")
            t.append(f"{delta:<3}", style=dst)
            name = r["name"][: name_w - 1] + ("*" if r["simulated"] else "")
            t.append(f"{name:<{name_w}}", style="bold #8ae234" if r["sub_front"] else "")
            t.append(f"{r['sam']:>9.3f}\n")
        undefined = [r for r in ranked if r["sub_rank"] is None]
        if undefined:
            t.append(f"n/a: {len(undefined)} (", style="italic")
            t.append(undefined[0]["sam_reason"] or "", style="italic")
            t.append(")\n", style="italic")
        t.append(
            "▲▼ rank change at the last α/β/unit key; bold green: Pareto front", style="#808080"
        )
        self.query_one("#ranking", Static).update(t)

    def _auto_refresh(self) -> None:
        if self.table_data is None:
            return
        if "running" in set(self.table_data.frame["status"].to_list()):
            self._reload_in_background()

    @work(thread=True, exclusive=True, group="reload")
    def _reload_in_background(self) -> None:
        table = cmp.load_table(self.store_root, self.params)
        self.app.call_from_thread(self._apply_reload, table)

    def _apply_reload(self, table: cmp.Table) -> None:
        prev = self.prev_ranks
        self._set_table(table)
        self.prev_ranks = prev
        self._render_plot(self.view_df)

    # -- helpers -------------------------------------------------------------------------
    def current_id(self) -> str | None:
        t = self.query_one(DataTable)
        if t.row_count == 0:
            return None
        try:
            return t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - empty table or cursor out of range
            return None

    def targets(self) -> list[str]:
        """The selected sessions, else the one under the cursor."""
        if self.selected:
            order = self.view_df["id"].to_list() if self.view_df is not None else []
            return [i for i in order if i in self.selected] + sorted(self.selected - set(order))
        cur = self.current_id()
        return [cur] if cur else []

    def _session_name(self, sid: str) -> str:
        rows = self.table_data.frame.filter(self.table_data.frame["id"] == sid)
        return rows["name"][0] if rows.height else sid

    # -- actions -------------------------------------------------------------------------
    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, ev: Input.Changed) -> None:
        self.filter_text = ev.value
        self.prev_ranks = {}
        if self.table_data is not None:
            self._render_all()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(DataTable).focus()

    def action_escape(self) -> None:
        f = self.query_one("#filter", Input)
        if f.has_focus:
            self.query_one(DataTable).focus()
        elif self.selected:
            self.action_clear_selection()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_toggle_select(self) -> None:
        if self.query_one("#filter", Input).has_focus:
            return
        sid = self.current_id()
        if sid is None:
            return
        self.selected ^= {sid}
        self.prev_ranks = {}
        t = self.query_one(DataTable)
        t.update_cell(sid, "sel", Text("✓", style="bold #ffb454") if sid in self.selected else "")
        if t.cursor_row < t.row_count - 1:
            t.move_cursor(row=t.cursor_row + 1, animate=False)
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

    @on(DataTable.HeaderSelected)
    def _header(self, ev: DataTable.HeaderSelected) -> None:
        key = ev.column_key.value
        if key in cmp.COLUMN_BY_KEY:
            self.sort_by(key)

    def set_params(self, params: cmp.SamParams) -> None:
        try:
            params = params.checked()
        except ValueError as e:
            self.notify(str(e), severity="warning")
            return
        self.prev_ranks = self._sub_ranks()
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
        p = self.params
        self.set_params(cmp.SamParams(p.alpha, p.beta, "Wh" if p.unit == "kWh" else "kWh"))

    def action_reset_params(self) -> None:
        self.set_params(DEFAULT_PARAMS)

    def action_toggle_plot(self) -> None:
        self.toggle_class("plot-max")
        if self.has_class("plot-max"):
            self.query_one(ScatterPlot).focus()
        else:
            self.query_one(DataTable).focus()

    def action_reload(self) -> None:
        self._set_table(cmp.load_table(self.store_root, self.params))

    @on(DataTable.RowSelected)
    def _row_selected(self, ev: DataTable.RowSelected) -> None:
        self.open_details(ev.row_key.value)

    def action_details(self) -> None:
        sid = self.current_id()
        if sid:
            self.open_details(sid)

    def open_details(self, sid: str) -> None:
        from .details import DetailsScreen

        rec = self.table_data.records.get(sid)
        if rec is None:
            return
        self.app.push_screen(DetailsScreen(self.store_root, sid, params=self.params, record=rec))

    def action_rename(self) -> None:
        sid = self.current_id()
        if not sid:
            return

        def done(name: str | None) -> None:
            if name is None:
                return
            from ..manage import ManageError, rename

            try:
                rename(self.store_root, sid, name)
            except ManageError as e:
                self.notify(str(e), severity="error")
                return
            self.notify(f"renamed {sid} to {name.strip()!r}")
            self.action_reload()

        self.app.push_screen(
            AskText(
                f"New name for {sid}:", self._session_name(sid), "enter to save, escape to cancel"
            ),
            done,
        )

    def action_tag(self) -> None:
        ids = self.targets()
        if not ids:
            return

        def done(text: str | None) -> None:
            if not text or not text.strip():
                return
            from ..manage import ManageError, tag

            words = text.replace(",", " ").split()
            add = [w for w in words if not w.startswith("-")]
            remove = [w[1:] for w in words if w.startswith("-") and len(w) > 1]
            try:
                for sid in ids:
                    if add:
                        tag(self.store_root, sid, add)
                    if remove:
                        tag(self.store_root, sid, remove, remove=True)
            except ManageError as e:
                self.notify(str(e), severity="error")
            else:
                self.notify(f"tags changed on {len(ids)} session(s)")
            self.action_reload()

        self.app.push_screen(
            AskText(
                f"Tags for {len(ids)} session(s): words add, -word removes",
                "",
                "e.g. 'paper baseline -draft'",
            ),
            done,
        )

    def action_delete(self) -> None:
        ids = self.targets()
        if not ids:
            return
        names = ", ".join(self._session_name(i) for i in ids[:5]) + (" ..." if len(ids) > 5 else "")

        def done(yes: bool | None) -> None:
            if not yes:
                return
            from ..manage import ManageError, delete

            errors = []
            for sid in ids:
                try:
                    delete(self.store_root, sid)
                except ManageError as e:
                    errors.append(str(e))
            self.selected -= set(ids)
            if errors:
                self.notify(errors[0], severity="error")
            else:
                self.notify(f"deleted {len(ids)} session(s)")
            self.action_reload()

        self.app.push_screen(
            Confirm(f"Delete {len(ids)} session(s) for good?\n{names}\nThis cannot be undone."),
            done,
        )


class CompareApp(App):
    """The comparison screen on its own (``wattui compare``)."""

    TITLE = "wattui compare"

    def __init__(self, store_root: Path, **screen_kw) -> None:
        super().__init__()
        self.store_root = Path(store_root)
        self.screen_kw = screen_kw

    def get_default_screen(self) -> Screen:
        return CompareScreen(self.store_root, **self.screen_kw)
