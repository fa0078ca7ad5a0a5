"""What the comparison screen's table cells, notice line, plot and SAM ranking panel say,
built from the table's frame (plain Rich text and plot points: no widget, no store)."""

from __future__ import annotations

import polars as pl
from rich.text import Text

from wattui.analysis import table as cmp
from wattui.tui.plot import Point
from wattui.tui.session_table import TableColumn

SEL_MARK = ("✓", "bold #ffb454")
STATUS_STYLE = {
    "running": "bold #8ae234",
    "finished": "",
    "failed": "bold #f07178",
    "interrupted": "bold #ffb454",
}


def row_cells(r: dict, texts: dict[str, str], cols: list[TableColumn], selected: set[str]) -> list:
    """One row's (text, style) cells: the selection mark, then each column's text (cut
    to its width) styled by status, SIMULATED and the Pareto front."""
    cells = [SEL_MARK if r["id"] in selected else ("", "")]
    for c, col in zip(cmp.COLUMNS, cols[1:]):
        s = texts[c.key]
        if len(s) > col.width:
            s = s[: col.width - 1] + "…"
        style = ""
        if c.key == "status":
            style = STATUS_STYLE.get(r["status"], "")
        elif c.key == "name" and r["simulated"]:
            style = "#c792ea"
        elif c.key == "sam" and r["pareto"]:
            style = "bold"
        cells.append((s, style))
    return cells


def notice_text(
    tb: cmp.Table,
    df: pl.DataFrame,
    *,
    store_label: str | None,
    params: cmp.SamParams,
    sort: tuple[str, bool],
    selected: int,
    notes: list[str],
    filter_error: str | None,
) -> Text:
    """The line above the table: how many rows of how many, the store (``None`` at 80
    columns, where the figures matter more than the path), SAM's parameters, the sort,
    and below it anything the user should know (flagged SAMs, notes, filter errors,
    unreadable sessions)."""
    sort_key, sort_desc = sort
    n_all = tb.frame.height
    t = Text()
    t.append(f"{df.height} of {n_all} sessions", style="bold")
    if store_label is not None:
        t.append(f"  ·  {store_label}")
    t.append(f"  ·  SAM {params.label()}", style="bold #4fc1ff")
    col = cmp.COLUMN_BY_KEY.get(sort_key)
    if col is not None:
        t.append(f"  ·  sort {col.label} {'▼' if sort_desc else '▲'} (s/S)")
    nsim = int(df["simulated"].sum()) if df.height else 0
    if nsim:
        t.append(f"  ·  {nsim} SIMULATED [SIM]", style="bold #c792ea")
    if selected:
        t.append(f"  ·  {selected} selected", style="bold #ffb454")
    flagged = int(df["sam_flag"].is_not_null().sum()) if df.height else 0
    if flagged:
        from wattui.metrics.sam import meaningful_unit

        unit = meaningful_unit(df["energy_j"].to_list())
        t.append(
            f"\nSAM* ({flagged}): energy under 2 {params.unit}, SAM dominated by the log;"
            f" compare in {unit} (u)",
            style="#ffb454",
        )
    for n in notes:
        t.append(f"\n{n}", style="italic")
    if filter_error:
        t.append(f"\nfilter: {filter_error}", style="bold #f07178")
    if tb.problems:
        more = f" (+{len(tb.problems) - 1} more)" if len(tb.problems) > 1 else ""
        t.append(
            f"\n⚠ {len(tb.problems)} unreadable session(s) not listed: {tb.problems[0]}{more}",
            style="#ffb454",
        )
    return t


def plot_points(sub: pl.DataFrame, selected: set[str]) -> tuple[tuple[Point, ...], list[dict]]:
    """The plotted sessions' points (labelled with their SAM rank among them) and their
    rows with that rank (``sub_rank``) and whether they are on the Pareto front."""
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
                selected=r["id"] in selected,
                simulated=r["simulated"],
            )
        )
    return tuple(pts), ranked


def ranking_text(
    ranked: list[dict], params: cmp.SamParams, prev_ranks: dict[str, int], width: int, height: int
) -> Text:
    """The SAM ranking panel in a ``width`` x ``height`` box (0: not laid out yet), with
    each rank's change since ``prev_ranks``."""
    t = Text(no_wrap=True, overflow="ellipsis")  # a narrow panel cuts, never wraps, a row
    t.append("SAM ranking", style="bold")
    t.append(f"  {params.label()}\n", style="bold #4fc1ff")
    rows = sorted(
        (r for r in ranked if r["sub_rank"] is not None),
        key=lambda r: (r["sub_rank"], r["name"]),
    )
    if not rows:
        t.append("no session has a defined SAM under these settings\n", style="italic")
    width = width or 40
    name_w = max(6, width - 18)
    room = max(5, (height or 20) - 4)
    if len(rows) > room:
        rest = len(rows) - room + 1
        rows = rows[: room - 1]
    else:
        rest = 0
    for r in rows:
        prev = prev_ranks.get(r["id"])
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
        t.append(f"{r['sam']:>9.3f}{'*' if r.get('sam_flag') else ''}\n")
    if rest:
        t.append(f"    … {rest} more (sort the table by Rank)\n", style="#808080")
    undefined = [r for r in ranked if r["sub_rank"] is None]
    if undefined:
        t.append(f"n/a: {len(undefined)} (", style="italic")
        t.append(undefined[0]["sam_reason"] or "", style="italic")
        t.append(")\n", style="italic")
    t.append("▲▼ rank change at the last α/β/unit key; bold green: Pareto front", style="#808080")
    return t
