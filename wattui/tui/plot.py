"""Terminal plots for the comparison and details screens.

* :class:`ScatterPlot`: accuracy against energy on a log-x axis, points labelled with
  their SAM rank and name, the Pareto front (least energy for its accuracy) marked ◆ and
  joined by a dotted line.
* :class:`LineChart`: a few time series drawn with braille dots (2x4 per cell), used by
  the details screen when the live screen's widgets are not available.

The drawing itself (``scatter_lines``, ``line_chart_lines``) is plain Rich text, so it
can be tested without running an app.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from wattui.analysis.timeline import Series
from wattui.format import fmt_energy_cell as fmt_energy

FRONT_STYLE = "bold #8ae234"
POINT_STYLE = "#4fc1ff"
SELECTED_STYLE = "bold #ffb454"
AXIS_STYLE = "#808080"


@dataclass(frozen=True)
class Point:
    energy_j: float
    accuracy: float
    label: str
    front: bool = False
    selected: bool = False
    simulated: bool = False


def _decades(lo: float, hi: float) -> list[float]:
    return [10.0**k for k in range(math.floor(lo), math.ceil(hi) + 1)]


def energy_ticks(lo: float, hi: float) -> list[float]:
    """Tick values (Wh) for a log axis over [lo, hi] (log10 Wh): the decades, and when
    fewer than two of them fall inside, 2x and 5x, then every integer multiple, so a range
    inside one decade still has ticks to read it by."""
    inside = [d for d in _decades(lo, hi) if lo <= math.log10(d) <= hi]
    for mults in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        if len(inside) >= 2:
            break
        inside = sorted(
            d * m for d in _decades(lo - 1, hi) for m in mults if lo <= math.log10(d * m) <= hi
        )
    return inside


def _energy_tick(j: float) -> str:
    wh = j / 3600
    if wh >= 1000:
        v, u = wh / 1000, "kWh"
    else:
        v, u = wh, "Wh"
    return f"{v:g}{u}" if v >= 1 else f"{v:.2g}{u}"


LEGEND = (
    ("◆", FRONT_STYLE, " Pareto front  "),
    ("●", POINT_STYLE, " other  "),
    ("", "", "label: SAM rank, name (* SIMULATED)"),
)


def scatter_lines(points: list[Point], width: int, height: int, title: str = "") -> list[Text]:
    """The scatter as ``height`` lines of ``width`` cells."""
    width, height = max(width, 20), max(height, 6)
    lines: list[Text] = []
    if title:
        lines.append(Text(title[:width], style="bold"))
    if height >= 12:
        leg = Text()
        for glyph, style, words in LEGEND:
            leg.append(glyph, style=style)
            leg.append(words, style=AXIS_STYLE)
        leg.truncate(width)
        lines.append(leg)
    pts = [p for p in points if p.energy_j and p.energy_j > 0 and p.accuracy is not None]
    plot_h = height - len(lines) - 2
    if not pts or plot_h < 3:
        msg = "no session has both an energy figure and an accuracy to plot"
        lines.append(Text(msg[:width], style="italic " + AXIS_STYLE))
        return lines + [Text("")] * (height - len(lines))
    ylab_w = 7
    plot_w = width - ylab_w - 1
    xs = [math.log10(p.energy_j / 3600.0) for p in pts]  # log10(Wh)
    ys = [p.accuracy for p in pts]
    x0, x1 = min(xs), max(xs)
    if x1 - x0 < 0.5:
        mid = (x0 + x1) / 2
        x0, x1 = mid - 0.25, mid + 0.25
    pad = (x1 - x0) * 0.06
    x0, x1 = x0 - pad, x1 + pad
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 0.02:
        y0, y1 = y0 - 0.01, y1 + 0.01
    ypad = (y1 - y0) * 0.08
    y0, y1 = max(0.0, y0 - ypad), min(1.0, y1 + ypad) if y1 <= 1 else y1 + ypad

    def col(x: float) -> int:
        return min(plot_w - 1, max(0, round((x - x0) / (x1 - x0) * (plot_w - 1))))

    def row(y: float) -> int:
        return min(plot_h - 1, max(0, round((y1 - y) / (y1 - y0) * (plot_h - 1))))

    grid: list[list[tuple[str, str]]] = [[(" ", "")] * plot_w for _ in range(plot_h)]
    # decade grid lines
    for d in _decades(x0, x1):
        lx = math.log10(d)
        if x0 <= lx <= x1:
            c = col(lx)
            for r in range(plot_h):
                grid[r][c] = ("┊", "#3a3a3a")
    # Pareto front: a dotted line through the front, least energy first
    front = sorted((p for p in pts if p.front), key=lambda p: p.energy_j)
    for a, b in zip(front, front[1:]):
        ca, ra = col(math.log10(a.energy_j / 3600)), row(a.accuracy)
        cb, rb = col(math.log10(b.energy_j / 3600)), row(b.accuracy)
        n = max(abs(cb - ca), abs(rb - ra), 1)
        for k in range(1, n):
            c = round(ca + (cb - ca) * k / n)
            r = round(ra + (rb - ra) * k / n)
            grid[r][c] = ("·", FRONT_STYLE)
    # points, then labels where they fit
    placed = []
    order = sorted(pts, key=lambda p: (p.selected, p.front))  # selected drawn last
    for p in order:
        c, r = col(math.log10(p.energy_j / 3600)), row(p.accuracy)
        glyph = "◆" if p.front else "●"
        style = SELECTED_STYLE if p.selected else (FRONT_STYLE if p.front else POINT_STYLE)
        grid[r][c] = (glyph, style)
        placed.append((p, r, c, style))
    occupied = {(r, c) for _, r, c, _ in placed}
    for p, r, c, style in sorted(placed, key=lambda t: (not t[0].selected, not t[0].front)):
        label = p.label + ("*" if p.simulated else "")
        label = label[: max(4, min(len(label), 18))]
        spans = []
        right = c + 2
        if right + len(label) <= plot_w:
            spans.append(range(right, right + len(label)))
        left = c - 1 - len(label)
        if left >= 0:
            spans.append(range(left, c - 1))
        for sp in spans:
            if all(grid[r][i][0] in (" ", "┊", "·") and (r, i) not in occupied for i in sp):
                for i, ch in zip(sp, label):
                    grid[r][i] = (ch, style if p.selected else "")
                    occupied.add((r, i))
                break
    # y labels every few rows
    ytick_rows = {0, plot_h - 1, plot_h // 2}
    if plot_h >= 10:
        ytick_rows |= {plot_h // 4, 3 * plot_h // 4}
    for r in range(plot_h):
        t = Text()
        if r in ytick_rows:
            y = y1 - (y1 - y0) * r / (plot_h - 1)
            t.append(f"{y:>6.3f} ", style=AXIS_STYLE)
        else:
            t.append(" " * ylab_w, style=AXIS_STYLE)
        t.append("┤" if r in ytick_rows else "│", style=AXIS_STYLE)
        for ch, st in grid[r]:
            t.append(ch, style=st or None)
        lines.append(t)
    axis = Text(" " * ylab_w + "└" + "─" * plot_w, style=AXIS_STYLE)
    ticks = [" "] * (plot_w + ylab_w + 1)
    for d in energy_ticks(x0, x1):
        lx = math.log10(d)
        if x0 <= lx <= x1:
            s = _energy_tick(d * 3600)
            start = ylab_w + 1 + col(lx) - len(s) // 2
            start = max(ylab_w + 1, min(start, len(ticks) - len(s)))
            if all(ch == " " for ch in ticks[max(0, start - 1) : start + len(s) + 1]):
                ticks[start : start + len(s)] = list(s)
    tick_text = "".join(ticks)
    xt = "energy (log) →"
    if len(tick_text.rstrip()) + len(xt) + 2 <= width:
        tick_text = tick_text[: width - len(xt)] + xt
    lines.append(axis)
    lines.append(Text(tick_text[:width], style=AXIS_STYLE))
    return lines[:height]


class ScatterPlot(Widget, can_focus=True):
    """Accuracy against energy (log x), Pareto front marked."""

    DEFAULT_CSS = """
    ScatterPlot { height: 1fr; min-height: 8; }
    """
    points: reactive[tuple[Point, ...]] = reactive((), layout=False)
    title: reactive[str] = reactive("")

    def render(self):
        lines = scatter_lines(list(self.points), self.size.width, self.size.height, self.title)
        return Text("\n").join(lines)


# -- line chart ---------------------------------------------------------------------------
_BRAILLE = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def _fmt_y(v: float) -> str:
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 10000:
        return f"{v / 1000:.0f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _fmt_t(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(abs(s), 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def line_chart_lines(
    series: list[Series],
    width: int,
    height: int,
    x0: float,
    x1: float,
    title: str = "",
    y_unit: str = "",
    y_min: float | None = None,
    y_max: float | None = None,
    t_origin: float = 0.0,
) -> list[Text]:
    """Series over ``[x0, x1]`` (x in seconds; tick labels relative to ``t_origin``)."""
    width, height = max(width, 20), max(height, 4)
    head = Text(title, style="bold")
    for s in series[:8]:
        last = next((y for y in reversed(s.ys) if y is not None), None)
        if len(series) > 1 or last is not None:
            head.append("  ")
            head.append("━ ", style=s.color)
            head.append(s.label + (f" {_fmt_y(last)}{y_unit}" if last is not None else ""))
    head.truncate(width)
    lines = [head]
    plot_h = height - 2
    ylab_w = 7
    plot_w = width - ylab_w - 1
    vals = [y for s in series for x, y in zip(s.xs, s.ys) if y is not None and x0 <= x <= x1]
    if plot_h < 2 or not vals or x1 <= x0:
        lines.append(Text("no data in this window", style="italic " + AXIS_STYLE))
        return lines + [Text("")] * (height - len(lines))
    lo = min(vals) if y_min is None else y_min
    hi = max(vals) if y_max is None else y_max
    if hi - lo < 1e-9:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    W, H = plot_w * 2, plot_h * 4
    cells = [[0] * plot_w for _ in range(plot_h)]
    colors: list[list[str | None]] = [[None] * plot_w for _ in range(plot_h)]

    def dot(px: int, py: int, color: str) -> None:
        if 0 <= px < W and 0 <= py < H:
            r, c = py // 4, px // 2
            cells[r][c] |= _BRAILLE[py % 4][px % 2]
            colors[r][c] = color

    for s in series:
        prev = None
        for x, y in zip(s.xs, s.ys):
            if y is None or x < x0 or x > x1:
                prev = None if y is None else prev
                continue
            px = round((x - x0) / (x1 - x0) * (W - 1))
            py = round((hi - min(max(y, lo), hi)) / (hi - lo) * (H - 1))
            if prev is None:
                dot(px, py, s.color)
            else:
                qx, qy = prev
                n = max(abs(px - qx), abs(py - qy), 1)
                for k in range(1, n + 1):
                    dot(round(qx + (px - qx) * k / n), round(qy + (py - qy) * k / n), s.color)
            prev = (px, py)
    for r in range(plot_h):
        t = Text()
        if r == 0:
            t.append(f"{_fmt_y(hi):>6} ", style=AXIS_STYLE)
        elif r == plot_h - 1:
            t.append(f"{_fmt_y(lo):>6} ", style=AXIS_STYLE)
        else:
            t.append(" " * ylab_w)
        t.append("┤" if r in (0, plot_h - 1) else "│", style=AXIS_STYLE)
        for c in range(plot_w):
            v = cells[r][c]
            t.append(chr(0x2800 + v) if v else " ", style=colors[r][c])
        lines.append(t)
    left, right = _fmt_t(x0 - t_origin), _fmt_t(x1 - t_origin)
    mid = _fmt_t((x0 + x1) / 2 - t_origin)
    gap = plot_w - len(left) - len(right) - len(mid)
    if gap >= 2:
        ticks = left + " " * (gap // 2) + mid + " " * (gap - gap // 2) + right
    else:
        ticks = left + " " * max(1, plot_w - len(left) - len(right)) + right
    lines.append(Text(" " * (ylab_w + 1) + ticks, style=AXIS_STYLE))
    return lines[:height]


class LineChart(Widget):
    """A braille line chart over a time window."""

    DEFAULT_CSS = """
    LineChart { height: 1fr; min-height: 5; }
    """
    series: reactive[tuple[Series, ...]] = reactive(())
    window: reactive[tuple[float, float]] = reactive((0.0, 1.0))

    def __init__(self, title: str = "", y_unit: str = "", y_min=None, y_max=None, **kw):
        super().__init__(**kw)
        self.title = title
        self.y_unit = y_unit
        self.y_min, self.y_max = y_min, y_max
        self.t_origin = 0.0

    def render(self):
        x0, x1 = self.window
        lines = line_chart_lines(
            list(self.series),
            self.size.width,
            self.size.height,
            x0,
            x1,
            self.title,
            self.y_unit,
            self.y_min,
            self.y_max,
            self.t_origin,
        )
        return Text("\n").join(lines)


__all__ = [
    "Point",
    "ScatterPlot",
    "Series",
    "LineChart",
    "scatter_lines",
    "line_chart_lines",
    "fmt_energy",
]
