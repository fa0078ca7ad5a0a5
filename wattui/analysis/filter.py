"""The comparison's filter language: words match name, tags, host, id, command, model,
status and method; ``key:value`` terms (tag, status, host, method, date, since, until,
sim) and ``-`` to negate, as one Polars expression."""

from __future__ import annotations

import calendar
import shlex
import time

import polars as pl

TEXT_COLS = ("name", "tags", "host", "id", "command", "model", "status", "method")


class FilterError(ValueError):
    pass


def _date_bound(v: str, end: bool) -> float:
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            tm = time.strptime(v, fmt)
        except ValueError:
            continue
        t = float(calendar.timegm(tm))
        if end:  # the end of the period given
            if fmt == "%Y":
                t = float(calendar.timegm((tm.tm_year + 1, 1, 1, 0, 0, 0)))
            elif fmt == "%Y-%m":
                y, m = (tm.tm_year + 1, 1) if tm.tm_mon == 12 else (tm.tm_year, tm.tm_mon + 1)
                t = float(calendar.timegm((y, m, 1, 0, 0, 0)))
            elif fmt == "%Y-%m-%d":
                t += 86400
            else:
                t += 60
        return t
    raise FilterError(f"not a date (UTC, YYYY-MM-DD[ HH:MM]): {v!r}")


def filter_expr(text: str) -> pl.Expr | None:
    """``text`` as a filter. Words match name, tags, host, id, command (case-insensitive);
    ``tag:T``, ``status:S``, ``host:H``, ``method:M``, ``date:YYYY-MM[-DD]`` (UTC),
    ``since:D``, ``until:D``, ``sim:yes|no``; a leading ``-`` negates a term."""
    try:
        terms = shlex.split(text or "")
    except ValueError:
        terms = (text or "").split()
    exprs = []
    for term in terms:
        neg = term.startswith("-") and len(term) > 1
        if neg:
            term = term[1:]
        key, sep, val = term.partition(":")
        key = key.lower()
        if sep and key in ("tag", "status", "host", "method", "date", "since", "until", "sim"):
            v = val.lower()
            if key == "tag":
                e = pl.col("tag_list").list.eval(pl.element().str.to_lowercase() == v).list.any()
            elif key == "status":
                e = pl.col("status").str.starts_with(v)
            elif key in ("host", "method"):
                e = pl.col(key).str.to_lowercase().str.contains(v, literal=True)
            elif key == "sim":
                e = pl.col("simulated") == (v in ("1", "y", "yes", "true"))
            elif key == "date":
                e = pl.col("started_at").is_between(
                    _date_bound(val, False), _date_bound(val, True), closed="left"
                )
            elif key == "since":
                e = pl.col("started_at") >= _date_bound(val, False)
            else:
                e = pl.col("started_at") < _date_bound(val, True)
        else:
            low = term.lower()
            e = pl.any_horizontal(
                [
                    pl.col(c).fill_null("").str.to_lowercase().str.contains(low, literal=True)
                    for c in TEXT_COLS
                ]
            )
        e = e.fill_null(False)
        exprs.append(~e if neg else e)
    if not exprs:
        return None
    return pl.all_horizontal(exprs)


def filter_frame(df: pl.DataFrame, text: str) -> pl.DataFrame:
    e = filter_expr(text)
    return df if e is None else df.filter(e)
