"""The power chart: total watts over a selectable window, drawn with block characters,
and the one-line sparklines the panels use."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from operator import itemgetter

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from wattui.format import fmt_watts, method_label

# Chart windows: name -> seconds (None: the whole run)
WINDOWS: dict[str, float | None] = {"1m": 60.0, "10m": 600.0, "1h": 3600.0, "all": None}
_BLOCKS = " ▁▂▃▄▅▆▇█"
_SPARK = "▁▂▃▄▅▆▇█"


def spark(values: Sequence[float], width: int = 20) -> str:
    """A one-line sparkline of the last ``width`` values (blocks read without colour)."""
    vals = [v for v in values if v is not None and math.isfinite(v)][-width:]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    span = hi - lo
    if span <= 0:
        return _SPARK[3] * len(vals)
    return "".join(_SPARK[min(7, int((v - lo) / span * 7.999))] for v in vals)


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * exp >= v:
            return m * exp
    return 10 * exp


def resample(
    pts: Sequence[tuple[float, float]],
    start: float,
    end: float,
    width: int,
    live_end: float | None = None,
) -> list[float | None]:
    """``width`` columns over [start, end]: each the time-weighted mean of the intervals
    of ``pts`` (sorted ``(t, watts)``) it overlaps; None where no interval reaches.

    A point's interval reaches half-way to its nearer neighbour on both sides (a lone
    point is an instant). The newest point of a live run (``live_end``) is held up to
    ``live_end`` when that is less than one sampling interval away."""
    dt = (end - start) / width
    sums = [0.0] * width
    cover = [0.0] * width
    n = len(pts)
    eps = dt * 1e-6
    inf = math.inf
    last_k = width - 1
    # Only the points whose intervals can reach the window: an interval ends before the
    # next point and starts after the previous one (a long run's hour of history, drawn
    # over a 1-minute window, costs the minute). The arithmetic is the definition's
    # (tests/test_chart.py), term for term; min/max are spelled out: this runs for
    # every point in the window at every redraw.
    first = max(0, bisect_left(pts, start, key=itemgetter(0)) - 1)
    stop = min(n, bisect_right(pts, end, key=itemgetter(0)) + 1)
    prev_t = pts[first - 1][0] if first > 0 else None
    for i in range(first, stop):
        t, w = pts[i]
        prev_gap = t - prev_t if prev_t is not None else inf
        prev_t = t
        next_gap = pts[i + 1][0] - t if i + 1 < n else inf
        half = (next_gap if next_gap < prev_gap else prev_gap) / 2
        if half == inf:
            half = 0.0
        a, b = t - half, t + half
        if i + 1 == n and live_end is not None and half > 0 and live_end - t <= 4 * half:
            b = b if b >= live_end else live_end
        if b < start or a > end:
            continue
        if b - a <= eps:  # an instant: it counts in its column only
            k = int((t - start) / dt)
            k = 0 if k < 0 else last_k if k > last_k else k
            sums[k] += w * eps
            cover[k] += eps
            continue
        k0 = int(((a if a > start else start) - start) / dt)
        k1 = int(((b if b < end else end) - start) / dt)
        if k1 > last_k:
            k1 = last_k
        for k in range(k0 if k0 > 0 else 0, k1 + 1):
            c0 = start + k * dt
            c1 = c0 + dt
            ov = (b if b <= c1 else c1) - (a if a >= c0 else c0)
            if ov > 0:
                sums[k] += w * ov
                cover[k] += ov
    return [s / c if c > 0 else None for s, c in zip(sums, cover, strict=True)]


def bar_rows(cols: Sequence[float | None], top: float, rows: int) -> list[str]:
    """The bars of ``cols`` (watts, None: no data) on a scale of ``top`` watts, ``rows``
    rows high in eighths of a row, as ``rows`` strings, top row first. Each column is
    built once as a string and the rows are read across them (a redraw of a wide chart
    costs one pass over its columns, not one per row)."""
    blank = " " * rows
    columns = []
    for c in cols:
        if c is None:
            columns.append(blank)
            continue
        eighths = int(round(max(0.0, c) / top * rows * 8))
        if c > 0:
            eighths = max(1, eighths)
        full, part = divmod(eighths, 8)
        if full >= rows:
            columns.append("█" * rows)
            continue
        columns.append(" " * (rows - full - 1) + _BLOCKS[part] + "█" * full)
    return ["".join(row) for row in zip(*columns, strict=True)] if columns else [""] * rows


def _span_label(seconds: float) -> str:
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f}h"
    if seconds >= 120:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"


class PowerChart(Widget):
    """Total power over a selectable time window, drawn with block characters.

    ``points`` are ``(unix time, watts)`` pairs, oldest first (any density: they are
    averaged into one column each). ``now`` is the right edge of the window (default:
    the last point).
    """

    DEFAULT_CSS = """
    PowerChart { height: 8; min-height: 4; color: $success; text-wrap: nowrap; }
    """

    window: reactive[str] = reactive("10m")

    def __init__(self, window: str = "10m", title: str = "Power", **kwargs):
        super().__init__(**kwargs)
        self._points: tuple[tuple[float, float], ...] = ()
        self._valid: list[tuple[float, float]] = []
        self._valid_max: float | None = None
        self._now: float | None = None
        self._method: str | None = None
        self._end_label: str | None = None
        self._latest: float | None = None
        self.empty_message = "waiting for samples..."  # drawn while there is nothing to draw
        self.title = title
        self.set_window(window)

    # -- API ----------------------------------------------------------------------------
    def set_points(
        self,
        points: Sequence[tuple[float, float]],
        now: float | None = None,
        method: str | None = None,
        end_label: str | None = None,
        latest: float | None = None,
    ) -> None:
        """``now``: the window's right edge (None: the last point). The footer names that
        edge ``end_label``, else "now" when ``now`` is given (a live run), else "end".
        ``latest``: the newest reading (a live run's watts now), which the header's max
        and the scale include."""
        self._points = tuple(points)
        # the points with a reading and their highest, once per update, not per draw
        self._valid = [(t, w) for t, w in self._points if w is not None]
        self._valid_max = max((w for _, w in self._valid), default=None)
        self._now = now
        self._method = method
        self._end_label = end_label
        self._latest = latest if latest is not None and math.isfinite(latest) else None
        self.refresh()

    def set_window(self, name: str) -> None:
        if name not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
        self.window = name

    def cycle_window(self) -> str:
        names = list(WINDOWS)
        self.window = names[(names.index(self.window) + 1) % len(names)]
        return self.window

    def watch_window(self, _old: str, _new: str) -> None:
        self.refresh()

    # -- drawing ------------------------------------------------------------------------
    def columns(self, width: int) -> tuple[list[float | None], float, float]:
        """Mean watts per column for the current window, and the window's start and end.

        Each point stands for the interval around it (half-way to its nearer neighbour:
        a one-second bucket covers its second), and a column is the time-weighted mean
        of the intervals it overlaps. So a column narrower than the sampling is never
        drawn empty between two samples, and only a real hole in the measurements (a
        gap longer than the sampling on both sides) leaves columns blank."""
        pts = self._valid
        if not pts:
            return [None] * width, 0.0, 0.0
        end = self._now if self._now is not None else pts[-1][0]
        secs = WINDOWS[self.window]
        start = pts[0][0] if secs is None else end - secs
        if end <= start:
            end = start + 1.0
        return resample(pts, start, end, width, live_end=self._now), start, end

    def latest_watts(self) -> float | None:
        return self._latest

    def _window_peak(self, start: float, end: float) -> float | None:
        pts = self._valid  # sorted by time: the window's slice
        lo = bisect_left(pts, start, key=itemgetter(0))
        vals = [w for _t, w in pts[lo : bisect_right(pts, end, key=itemgetter(0))]]
        if self._latest is not None and self._now is not None:
            vals.append(self._latest)
        return max(vals) if vals else None

    AXIS_W = 7  # at least: "600 W ┤"; wider when the top label is ("1200 W", "12.5 kW")

    def axis_width(self) -> int:
        """Columns left of the plot: the widest y label, a space and the axis line."""
        vals = [v for v in (self._valid_max, self._latest) if v is not None]
        top = _nice_max(max(vals)) if vals else 1.0
        return max(self.AXIS_W, len(fmt_watts(top)) + 2)

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        axis_w = self.axis_width()
        plot_w = max(1, width - axis_w)
        rows = max(1, height - 2)
        cols, start, end = self.columns(plot_w)
        vals = [c for c in cols if c is not None]
        peak = self._window_peak(start, end)
        top = _nice_max(peak) if peak is not None else 1.0
        label_w = max(axis_w - 2, len(fmt_watts(top)))
        if label_w + 2 != axis_w:  # the window's top label is wider than the run's: make room
            axis_w = label_w + 2
            plot_w = max(1, width - axis_w)
            cols, start, end = self.columns(plot_w)
            vals = [c for c in cols if c is not None]
        method = method_label(self._method) if self._method else ""
        head = Text()
        head.append(f"{self.title} ", style="bold")
        if method:
            head.append(f"[{method}] ", style="bold" if method == "SIMULATED" else "")
        head.append(f"window {self.window} (w)", style="dim")
        if peak is not None and head.cell_len + 12 <= width:
            # the highest reading in the window (its per-second means and the newest one),
            # not the highest column: averaging columns must not hide the peak
            head.append(f"  max {fmt_watts(peak)}", style="dim")
        head.truncate(width)
        lines = [head]
        for r, body in enumerate(bar_rows(cols, top, rows)):
            y_label = ""
            if r == 0:
                y_label = fmt_watts(top)
            elif r == rows - 1:
                y_label = "0 W"
            line = Text(f"{y_label:>{label_w}} ┤", style="dim")
            line.append(body)
            lines.append(line)
        if not vals:
            msg = self.empty_message
            mid = Text(f"{'':>{axis_w - 2}} ┤ {msg}", style="dim")
            mid.truncate(width, overflow="ellipsis")  # one row, never wrapped
            if len(lines) > 1:
                lines[min(len(lines) - 1, 1 + rows // 2)] = mid
        span = _span_label(end - start) if vals else self.window
        right = self._end_label or ("now" if self._now is not None else "end")
        foot = f"-{span}".ljust(max(1, plot_w - len(right))) + right
        if height >= 3:
            lines.append(Text(" " * axis_w + foot, style="dim"))
        out = Text("\n").join(lines[:height])
        out.no_wrap = True
        out.overflow = "crop"
        return out
