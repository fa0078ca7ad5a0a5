"""The comparison table's columns as shown and exported (label, cell text, numeric or
not) and sorting by any of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from wattui.format import fmt_acc, fmt_clock, fmt_cost, fmt_energy_cell, fmt_opt


@dataclass(frozen=True)
class Column:
    key: str  # a frame column: what sorting uses
    label: str
    fmt: Callable[[dict], str]
    numeric: bool = False


def fmt_sam(r: dict) -> str:
    """SAM to 3 decimals; ``*`` when the log dominates it (energy just above 1 unit)."""
    if r["sam"] is None:
        return "n/a"
    return format(r["sam"], ".3f") + ("*" if r.get("sam_flag") else "")


# The columns that matter first (rank, name, accuracy, energy, SAM): at 80 columns they
# are what the screen shows, and the screen keeps the first ones pinned when it scrolls.
COLUMNS: tuple[Column, ...] = (
    Column("sam_rank", "Rank", lambda r: fmt_opt(r["sam_rank"], "d"), True),
    Column("name", "Name", lambda r: r["name"] + (" [SIM]" if r["simulated"] else "")),
    Column("accuracy", "Acc", lambda r: fmt_acc(r["accuracy"], ""), True),
    Column("energy_j", "Energy", lambda r: fmt_energy_cell(r["energy_j"]), True),
    Column("sam", "SAM", fmt_sam, True),
    Column("status", "Status", lambda r: r["status"]),
    Column("best_accuracy", "Best", lambda r: fmt_acc(r["best_accuracy"], ""), True),
    Column("method", "Method", lambda r: r["method"]),
    Column("tags", "Tags", lambda r: r["tags"]),
    Column("projected_energy_j", "Projected", lambda r: fmt_energy_cell(r["projected_energy_j"]), True),
    Column("duration_s", "Duration", lambda r: fmt_clock(r["duration_s"]), True),
    Column("mean_w", "Mean W", lambda r: fmt_opt(r["mean_w"], ".0f"), True),
    Column("peak_w", "Peak W/GPU", lambda r: fmt_opt(r["peak_w"], ".0f"), True),
    Column("gpu_count", "GPUs", lambda r: r["gpus"]),
    Column("host", "Host", lambda r: r["host"]),
    Column("started_at", "Start (UTC)", lambda r: r["start"]),
    Column("co2_g", "CO2 g", lambda r: fmt_opt(r["co2_g"], ",.0f"), True),
    Column("cost", "Cost", lambda r: fmt_cost(r["cost"], r.get("currency")), True),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
SORT_ALIASES = {
    "energy": "energy_j",
    "start": "started_at",
    "started": "started_at",
    "date": "started_at",
    "duration": "duration_s",
    "gpus": "gpu_count",
    "acc": "accuracy",
    "best": "best_accuracy",
    "rank": "sam_rank",
    "projected": "projected_energy_j",
    "co2": "co2_g",
    "mean": "mean_w",
    "peak": "peak_w",
}


def resolve_sort(col: str) -> tuple[str, bool]:
    """``col`` (a column key, label or alias; a leading ``-`` means descending)."""
    desc = col.startswith("-")
    c = col.lstrip("-+").strip().lower()
    c = SORT_ALIASES.get(c, c)
    for k in COLUMN_BY_KEY:
        if c in (k, COLUMN_BY_KEY[k].label.lower()):
            return k, desc
    raise ValueError(
        f"cannot sort by {col!r}; columns: "
        + ", ".join(sorted(set(COLUMN_BY_KEY) | set(SORT_ALIASES)))
    )


def sort_frame(df: pl.DataFrame, col: str, descending: bool = False) -> pl.DataFrame:
    key, neg = resolve_sort(col)
    desc = descending ^ neg
    return df.sort([key, "started_at"], descending=[desc, False], nulls_last=True)


def display_rows(df: pl.DataFrame) -> list[dict]:
    return df.to_dicts()
