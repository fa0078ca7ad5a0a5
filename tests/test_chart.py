"""The power chart's fast paths draw exactly what the plain definitions draw: the bars
built a column at a time, and the resampling that skips points outside the window."""

from __future__ import annotations

import math
import random

from wattui.tui.chart import _BLOCKS, bar_rows, resample


def bars_by_cell(cols, top, rows):
    """The definition: each cell is filled by the eighths of its column above its floor."""
    out = []
    for r in range(rows):
        floor = (rows - r - 1) * 8
        cells = []
        for c in cols:
            if c is None:
                cells.append(" ")
                continue
            eighths = int(round(max(0.0, c) / top * rows * 8))
            if c > 0:
                eighths = max(1, eighths)
            cells.append(_BLOCKS[max(0, min(8, eighths - floor))])
        out.append("".join(cells))
    return out


def resample_every_point(pts, start, end, width, live_end=None):
    """The definition: every point's interval, overlapped with every column."""
    dt = (end - start) / width
    sums, cover = [0.0] * width, [0.0] * width
    eps = dt * 1e-6
    for i, (t, w) in enumerate(pts):
        prev_gap = t - pts[i - 1][0] if i > 0 else math.inf
        next_gap = pts[i + 1][0] - t if i + 1 < len(pts) else math.inf
        half = min(prev_gap, next_gap) / 2
        half = half if math.isfinite(half) else 0.0
        a, b = t - half, t + half
        if i + 1 == len(pts) and live_end is not None and half > 0 and live_end - t <= 4 * half:
            b = max(b, live_end)
        if b < start or a > end:
            continue
        if b - a <= eps:
            k = min(width - 1, max(0, int((t - start) / dt)))
            sums[k] += w * eps
            cover[k] += eps
            continue
        for k in range(width):
            c0 = start + k * dt
            ov = min(b, c0 + dt) - max(a, c0)
            if ov > 0:
                sums[k] += w * ov
                cover[k] += ov
    return [s / c if c > 0 else None for s, c in zip(sums, cover, strict=True)]


def test_bars_match_the_cell_definition():
    rng = random.Random(1)
    for _ in range(1000):
        rows = rng.randint(1, 30)
        top = rng.choice([1.0, 12.0, 600.0, 1200.0, 0.3, 8000.0])
        cols = [
            None if rng.random() < 0.1
            else rng.choice([0.0, -1.0, 1e-9, top, 1.5 * top, rng.uniform(-top, 2 * top),
                             (k + 0.5) * top / (rows * 8)])
            for k in range(rng.randint(1, 160))
        ]
        assert bar_rows(cols, top, rows) == bars_by_cell(cols, top, rows)


def test_bars_by_hand():
    # 2 rows = 16 eighths: 0 W empty, 1/16 of the top one eighth, half a full bottom row,
    # the top full, a gap blank
    assert bar_rows([0.0, 1.0, 8.0, 16.0, None], 16.0, 2) == ["   █ ", " ▁██ "]


def test_resample_matches_every_point_definition():
    rng = random.Random(2)
    for _ in range(1000):
        t, pts = 1000.0, []
        for _ in range(rng.randint(1, 60)):
            t += rng.choice([0.0, 0.2, 1.0, 5.0, rng.uniform(0, 30)])
            pts.append((t, rng.uniform(0, 500)))
        start = rng.uniform(pts[0][0] - 40, pts[-1][0] + 5)
        end = start + rng.choice([1.0, 60.0, rng.uniform(0.1, 200)])
        width = rng.randint(1, 120)
        live = rng.choice([None, pts[-1][0] + rng.uniform(0, 3), end])
        got = resample(pts, start, end, width, live_end=live)
        want = resample_every_point(pts, start, end, width, live_end=live)
        assert got == want
