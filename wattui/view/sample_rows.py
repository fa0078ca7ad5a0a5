"""A second's worth of live samples, parsed and folded without Polars.

The live screen reads the rows the recorder appended since its last poll: about 50 a
second for 8 GPUs. Polars' fixed cost per call (a CSV read, a filter, three collects)
was most of the viewer's worker thread; these few rows are read here in plain Python
instead, into exactly what the Polars path gives: the same typed values, the latest row
of each device, and per-second buckets of the summed power (sums compensated like
Polars' own, so the figures are the same to the bit). Anything but a plain chunk (quotes,
carriage returns, ragged or non-ASCII lines, numbers written any other way, a device
seen twice in one tick) answers None, and the caller hands the chunk to Polars.
"""

from __future__ import annotations

import functools
import math
import re

from wattui.view.history import FINE_BUCKET_S

SMALL_CHUNK = 256 << 10  # bytes: larger chunks (a backlog) are Polars' to read

# the columns the screen needs, in this order (samples_tail._NEEDED)
NEEDED = ("t_wall", "seq", "device", "power_w", "util_pct", "mem_used_b", "temp_c",
          "power_method", "pids")
_FLOATS = frozenset(("t_wall", "power_w", "util_pct", "mem_used_b", "temp_c"))
_FLOAT = r"(?:-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?)?"  # or empty: null
_INT = r"(?:-?\d{1,18})?"
# the latest row of a device, keyed as Polars' group_by("device") names it
_LATEST_KEYS = ("device", "t_wall", "seq", "power_w", "util_pct", "mem_used_b", "temp_c",
                "power_method", "pids")
_LATEST_ORDER = tuple(NEEDED.index(k) for k in _LATEST_KEYS)


class SampleRows(list):
    """New sample rows (tuples in :data:`NEEDED` order), oldest first."""


def parse_rows(data: bytes, columns: list[str], after_seq: int) -> SampleRows | None:
    """The rows of complete CSV lines ``data`` (the file's ``columns``) with a time, a
    device and a ``seq`` above ``after_seq``, typed as Polars reads them with the session
    schema ('' is null); None when Polars must read the chunk."""
    if len(data) > SMALL_CHUNK or b'"' in data or b"\r" in data or not data.isascii():
        return None
    plain = _line_pattern(tuple(columns)).fullmatch
    # (column index, 0: float / 1: int / 2: string); -1: a column an older file lacks
    kinds = [(columns.index(c) if c in columns else -1, 0 if c in _FLOATS else 1 if c == "seq" else 2)
             for c in NEEDED]
    rows = SampleRows()
    seen: set[tuple] = set()
    for line in data.decode("ascii").split("\n"):
        if not line:
            continue
        if not plain(line):
            return None
        fields = line.split(",")
        row = []
        for i, kind in kinds:
            v = fields[i] if i >= 0 else ""
            if not v:
                row.append(None)  # '' is null
            elif kind == 0:
                x = float(v)
                if x - x != 0.0:
                    return None  # 1e999: whatever Polars makes of it
                row.append(x)
            else:
                row.append(int(v) if kind == 1 else v)
        row = tuple(row)
        t, seq, dev = row[0], row[1], row[2]
        if t is None or dev is None or seq is None or seq <= after_seq:
            continue
        if (dev, seq) in seen:
            return None  # which one is "last" is not defined: Polars decides
        seen.add((dev, seq))
        rows.append(row)
    return rows


@functools.lru_cache(maxsize=8)
def _line_pattern(columns: tuple[str, ...]) -> re.Pattern:
    """One plain CSV line of ``columns``: numbers as the recorder writes them (or empty)
    in the numeric columns the screen reads, anything without a comma elsewhere."""
    parts = [
        _FLOAT if c in _FLOATS else _INT if c == "seq" else "[^,]*" for c in columns
    ]
    return re.compile(",".join(f"(?:{p})" for p in parts))


def _sum(values) -> float:
    """Kahan-compensated sum, in order: what Polars computes for a float sum."""
    total = comp = 0.0
    for v in values:
        y = v - comp
        t = total + y
        comp = (t - total) - y
        total = t
    return total


def latest_rows(rows: SampleRows) -> dict[str, dict]:
    """Each device's row with the highest ``seq``, as a dict."""
    best: dict[str, tuple] = {}
    for r in rows:
        cur = best.get(r[2])
        if cur is None or r[1] > cur[1]:
            best[r[2]] = r
    return {dev: dict(zip(_LATEST_KEYS, (r[i] for i in _LATEST_ORDER), strict=True))
            for dev, r in best.items()}


def power_buckets(rows: SampleRows, energy_keys) -> tuple[list[tuple[float, float, int]], float | None]:
    """Per-second buckets ``(first time, mean total watts, ticks)`` of the summed power of
    ``energy_keys`` per tick, oldest first, and the newest tick's total (None: no power)."""
    keys = set(energy_keys)
    ticks: dict[int, tuple[float, list[float]]] = {}
    for r in rows:
        if r[2] in keys and r[3] is not None:
            tick = ticks.get(r[1])
            if tick is None:
                ticks[r[1]] = (r[0], [r[3]])
            else:
                tick[1].append(r[3])
    buckets: dict[float, list] = {}
    for seq in sorted(ticks):
        t, watts = ticks[seq]
        total = _sum(watts)
        b = math.floor(t / FINE_BUCKET_S)
        got = buckets.get(b)
        if got is None:
            buckets[b] = [t, [total], total]
        else:
            got[0] = min(got[0], t)
            got[1].append(total)
            got[2] = total  # ticks in seq order: the newest so far
    out = [(t, _sum(totals) / len(totals), len(totals))
           for _b, (t, totals, _last) in sorted(buckets.items())]
    last = buckets[max(buckets)][2] if buckets else None
    return out, last
