"""Reusable widgets of the live screen (and of any other screen that shows a session).

Every widget takes plain data (numbers, ``session_record`` dicts, the frozen rows of
:mod:`wattui.view.snapshot`) and never reads files or devices itself, so updating one is
cheap and safe on the event loop. Stable API:

    PowerChart(window="10m")      .set_points(points, now=None, method=None, end_label=None)
                                  .set_window("1m"|"10m"|"1h"|"all"), .cycle_window()
    GpuTable()                    .update_gpus(rows: Sequence[GpuRow])
    EnergyPanel()                 .update_energy(record, total_w=None, power_method=None)
    AccuracyPanel()               .update_metrics(summary: MetricsSummary)
    SamPanel()                    .update_sam(record)
    ProcessPanel()                .update_process(cpu_pct, rss_b, cpus: Sequence[CpuRow], running)
    SessionHeader()               .update_header(snapshot: LiveSnapshot)
    OutputPanel()                 .append(lines), .search(text), .next_match(step)

Figures always carry the method that produced them; simulated ones say SIMULATED.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Input, Label, Log, Static

from wattui.format import (
    fmt_acc,
    fmt_bytes,
    fmt_duration,
    fmt_energy,
    fmt_joules,
    fmt_num,
    fmt_pct,
    fmt_watts,
    method_label,
)
from wattui.sanitize import strip_sgr
from wattui.view.metric_tracker import MetricsSummary
from wattui.view.snapshot import CpuRow, GpuRow, LiveSnapshot

__all__ = [
    "WINDOWS",
    "AccuracyPanel",
    "EnergyPanel",
    "GpuTable",
    "OutputPanel",
    "PowerChart",
    "ProcessPanel",
    "SamPanel",
    "SessionHeader",
    "spark",
]

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
    for i, (t, w) in enumerate(pts):
        prev_gap = t - pts[i - 1][0] if i > 0 else math.inf
        next_gap = pts[i + 1][0] - t if i + 1 < n else math.inf
        half = min(prev_gap, next_gap) / 2
        if not math.isfinite(half):
            half = 0.0
        a, b = t - half, t + half
        if i + 1 == n and live_end is not None and half > 0 and live_end - t <= 4 * half:
            b = max(b, live_end)
        if b < start or a > end:
            continue
        if b - a <= eps:  # an instant: it counts in its column only
            k = min(width - 1, max(0, int((t - start) / dt)))
            sums[k] += w * eps
            cover[k] += eps
            continue
        k0 = max(0, int((max(a, start) - start) / dt))
        k1 = min(width - 1, int((min(b, end) - start) / dt))
        for k in range(k0, k1 + 1):
            c0 = start + k * dt
            ov = min(b, c0 + dt) - max(a, c0)
            if ov > 0:
                sums[k] += w * ov
                cover[k] += ov
    return [s / c if c > 0 else None for s, c in zip(sums, cover, strict=True)]


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
    PowerChart { height: 8; min-height: 4; color: $success; }
    """

    window: reactive[str] = reactive("10m")

    def __init__(self, window: str = "10m", title: str = "Power", **kwargs):
        super().__init__(**kwargs)
        self._points: tuple[tuple[float, float], ...] = ()
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
        pts = [(t, w) for t, w in self._points if w is not None]
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
        vals = [w for t, w in self._points if w is not None and start <= t <= end]
        if self._latest is not None and self._now is not None:
            vals.append(self._latest)
        return max(vals) if vals else None

    AXIS_W = 7  # at least: "600 W ┤"; wider when the top label is ("1200 W", "12.5 kW")

    def axis_width(self) -> int:
        """Columns left of the plot: the widest y label, a space and the axis line."""
        vals = [w for _, w in self._points if w is not None]
        if self._latest is not None:
            vals.append(self._latest)
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
        for r in range(rows):
            level_hi = (rows - r) * 8
            y_label = ""
            if r == 0:
                y_label = fmt_watts(top)
            elif r == rows - 1:
                y_label = "0 W"
            line = Text(f"{y_label:>{label_w}} ┤", style="dim")
            chars = []
            for c in cols:
                if c is None:
                    chars.append(" ")
                    continue
                eighths = int(round(max(0.0, c) / top * rows * 8))
                if c > 0:
                    eighths = max(1, eighths)
                fill = eighths - (level_hi - 8)
                chars.append(_BLOCKS[max(0, min(8, fill))])
            line.append("".join(chars))
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


class GpuTable(Static):
    """One row per GPU in fixed-width columns (no jitter as figures change, and far
    cheaper to redraw than a DataTable). Methods are named in the caption line under
    the table, and in the cells when GPUs disagree."""

    DEFAULT_CSS = """
    GpuTable { height: auto; max-height: 10; padding: 0 1; }
    """

    # key, label, width (narrow), width (wide: >= 100 columns)
    COLUMNS = (
        ("gpu", "GPU", 3, 3),
        ("name", "Name", 13, 24),
        ("power", "Power", 6, 8),
        ("util", "Util", 4, 5),
        ("mem", "Mem", 8, 9),
        ("temp", "Temp", 4, 6),
        ("limit", "Limit", 5, 6),
        ("energy", "Energy", 10, 11),
        ("others", "Others", 6, 10),
        ("run", "Run (est.)", 10, 14),  # only when the session splits shared GPUs
    )
    MIXED_EXTRA = {"power": 10, "energy": 11}
    RIGHT = {"power", "util", "mem", "temp", "limit", "energy"}

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.rows: tuple[GpuRow, ...] = ()

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def cells(self, row: GpuRow, show_methods: bool, name_w: int = 24) -> dict[str, str]:
        power = fmt_watts(row.watts)
        energy = fmt_energy(row.energy_j)
        if show_methods:
            power += f" {method_label(row.power_method)}"
            energy += f" {method_label(row.energy_method)}"
        name = row.name.removeprefix("NVIDIA ")
        return {
            "gpu": str(row.index if row.index is not None else row.key),
            "name": name[:name_w],
            "power": power,
            "util": fmt_pct(row.util_pct),
            "mem": fmt_bytes(row.mem_used_b),
            "temp": f"{row.temp_c:.0f}°C" if row.temp_c is not None else "n/a",
            "limit": fmt_watts(row.power_limit_w),
            "energy": energy,
            "others": row.others,
            "run": _run_share_cell(row),
        }

    def update_gpus(self, rows: Sequence[GpuRow]) -> None:
        self.rows = tuple(rows)
        rows = self.rows
        mixed = len({(r.power_method, r.energy_method) for r in rows}) > 1
        wide = self.app.size.width >= 100
        widths = {
            k: (ww if wide else nw) + (self.MIXED_EXTRA.get(k, 0) if mixed else 0)
            for k, _, nw, ww in self.COLUMNS
        }
        # a multi-node run names its GPUs "host:gpu0": widen the GPU column, narrow the name
        ids = [str(r.index if r.index is not None else r.key) for r in rows]
        extra = min(max([len(i) for i in ids] + [widths["gpu"]]), 24) - widths["gpu"]
        if extra > 0:
            widths["gpu"] += extra
            widths["name"] = max(8, widths["name"] - extra)

        shown = list(self.COLUMNS)
        if not any(r.has_run_share for r in rows):
            shown = [c for c in shown if c[0] != "run"]
        elif not wide:  # make room at 80 columns: the limit is static, the run's share is not
            shown = [c for c in shown if c[0] != "limit"]
            widths["name"] = max(8, widths["name"] - 2)

        def line(values: dict[str, str]) -> str:
            parts = []
            for k, *_ in shown:
                v = values[k][: widths[k]]
                parts.append(v.rjust(widths[k]) if k in self.RIGHT else v.ljust(widths[k]))
            return "  ".join(parts).rstrip()

        t = Text(line({k: label for k, label, *_ in shown}), style="bold")
        for r in rows:
            t.append("\n")
            t.append(line(self.cells(r, mixed, widths["name"])))
        set_if_changed(self, t)


def gpu_caption(rows: Sequence[GpuRow]) -> str:
    if not rows:
        return "no GPU is measured in this session"
    pm = sorted({method_label(r.power_method) for r in rows})
    em = sorted({method_label(r.energy_method) for r in rows})
    known = any(r.others not in ("n/a", "") for r in rows)
    others = "" if known else " · others: n/a (no per-GPU process list recorded)"
    if any(r.has_run_share for r in rows):
        others += " · run: estimated share (SM utilisation, idle shared)"
    if any(r.mig for r in rows):
        others += " · MIG: energy is per parent GPU"
    return f"power: {'/'.join(pm)} · energy: {'/'.join(em)}{others}"


def _run_share_cell(row: GpuRow) -> str:
    """The run's estimated energy on a GPU, with its latest share when running."""
    if not row.has_run_share:
        return ""
    cell = fmt_energy(row.run_energy_j)
    if row.run_share_pct is not None:
        cell += f" {row.run_share_pct:.0f}%"
    return cell


def set_if_changed(widget: Static, text: Text | str) -> bool:
    """Update a Static/Label only when its content changed, and ask for a layout pass
    only when its number of lines did (a redraw of one widget is cheap; a layout of
    the screen is not)."""
    prev = getattr(widget, "_wattui_last", None)
    if prev is not None and prev == text:
        return False
    plain = text.plain if isinstance(text, Text) else str(text)
    lines = plain.count("\n")
    layout = getattr(widget, "_wattui_lines", None) != lines
    widget._wattui_last = text.copy() if isinstance(text, Text) else text
    widget._wattui_lines = lines
    widget.update(text, layout=layout)
    return True


class _Panel(Static):
    DEFAULT_CSS = """
    _Panel { height: auto; }
    """

    def set_text(self, text: Text | str) -> None:
        set_if_changed(self, text)


def _kv(t: Text, key: str, value: str, tag: str | None = None) -> None:
    t.append(f"{key} ", style="dim")
    t.append(value, style="bold")
    if tag:
        t.append(f" [{tag}]", style="bold reverse" if tag == "SIMULATED" else "italic")


def energy_methods_tag(record: Mapping) -> str | None:
    """How a session's energy was obtained, e.g. ``counter`` or ``SIMULATED``."""
    devices = list(record.get("gpus") or []) + list(record.get("cpu") or [])
    methods = sorted({g.get("method") for g in devices} - {None})
    return "+".join(method_label(m) for m in methods) or None


class EnergyPanel(_Panel):
    """Energy so far, above idle, total watts now, CO2 and cost (from a session record)."""

    def update_energy(
        self,
        record: Mapping,
        total_w: float | None = None,
        power_method: str | None = None,
        metrics: MetricsSummary | None = None,
    ) -> None:
        t = Text()
        _kv(t, "Energy", fmt_energy(record.get("energy_j")), energy_methods_tag(record))
        t.append("\n")
        above = record.get("energy_above_idle_j")
        if above is not None:
            _kv(t, "above idle", fmt_energy(above))
        else:
            _kv(t, "above idle", "n/a", "no baseline" if not record.get("baseline") else None)
        t.append("\n")
        if total_w is not None:
            _kv(t, "now", fmt_watts(total_w), method_label(power_method) if power_method else None)
        else:
            dur = record.get("duration_s")
            e = record.get("energy_j")
            mean = e / dur if e is not None and dur else None
            _kv(t, "mean", fmt_watts(mean))
        t.append("\n")
        co2 = record.get("co2_g")
        _kv(t, "CO2", f"{co2:.1f} g" if isinstance(co2, (int, float)) else "n/a")
        cost = record.get("cost")
        cur = record.get("currency") or ""
        t.append("  ")
        _kv(t, "cost", f"{cost:.4f} {cur}".strip() if isinstance(cost, (int, float)) else "n/a")
        if metrics is not None and metrics.est_step_j is not None:
            # wattui.watch(): the architecture's estimate beside what was measured
            t.append("\n")
            _kv(t, "step", fmt_joules(metrics.est_step_j), "estimated")
            t.append("\n")
            meas = metrics.measured_step_j
            _kv(t, "step", fmt_joules(meas) if meas is not None else "n/a", "measured")
            if metrics.est_split:
                t.append("\n")
                split = " ".join(f"{k} {v:.0%}" for k, v in metrics.est_split[:3])
                t.append(split, style="dim")
        if metrics is not None and metrics.window is not None:
            # wattui.measure("name"): the latest finished block, as the script measured it
            name, e, dur, sim = metrics.window
            t.append("\n")
            label = f"{name[:16]}" + (f" x{metrics.windows}" if metrics.windows > 1 else "")
            fig = fmt_joules(e) if e is not None else "n/a"
            if dur is not None:
                fig += f" in {dur:.3g} s"
            _kv(t, label, fig, "SIMULATED" if sim else "measured")
        self.set_text(t)


class AccuracyPanel(_Panel):
    """Latest and best accuracy and other reported numbers, each with a short history."""

    def update_metrics(self, m: MetricsSummary) -> None:
        t = Text()
        if not m.count:
            t.append("Accuracy ", style="dim")
            t.append("n/a", style="bold")
            t.append(" (no metrics reported yet)", style="dim")
            self.set_text(t)
            return
        _kv(t, "Accuracy", fmt_acc(m.latest_accuracy))
        t.append("  ")
        best = fmt_acc(m.best_accuracy)
        if m.best_epoch is not None:
            best += f" @ep {fmt_num(m.best_epoch, 3)}"
        _kv(t, "best", best)
        if m.epoch is not None or m.step is not None:
            t.append("\n")
            ep = fmt_num(m.epoch, 3) if m.epoch is not None else "n/a"
            if m.total_epochs:
                ep += f"/{m.total_epochs}"
            _kv(t, "epoch", ep)
            if m.step is not None:
                t.append("  ")
                _kv(t, "step", str(m.step))
        if m.accuracy_history:
            t.append("\n")
            t.append("acc ", style="dim")
            t.append(spark(m.accuracy_history, 24))
        for name, latest, hist in m.others[:3]:
            t.append("\n")
            t.append(f"{name[:10]} ", style="dim")
            t.append(fmt_num(latest), style="bold")
            t.append(" " + spark(hist, 16))
        self.set_text(t)


class SamPanel(_Panel):
    """SAM now and projected, with its parameters, and the energy projection."""

    def update_sam(self, record: Mapping) -> None:
        t = Text()
        if "sam" not in record and "projected_energy_j" not in record:
            t.append("SAM ", style="dim")
            t.append("n/a", style="bold")
            t.append(" (metrics not available)", style="dim")
            self.set_text(t)
            return
        params = (
            f"α={fmt_num(record.get('sam_alpha'), 3)} β={fmt_num(record.get('sam_beta'), 3)}"
            f" {record.get('sam_unit') or ''}".rstrip()
        )
        sam = record.get("sam")
        _kv(t, "SAM", fmt_num(sam) if sam is not None else "n/a")
        t.append(f"  {params}", style="dim")
        note = None
        if sam is None:
            note = str(record.get("sam_undefined_reason") or "undefined")
        elif record.get("sam_flag"):  # just above 1 unit: the log, not accuracy, rules it
            from wattui.metrics.sam import meaningful_unit

            t.append("*", style="bold")
            unit = record.get("sam_unit") or ""
            better = meaningful_unit([record.get("energy_j")])
            note = f"* under 2 {unit}: log10 dominates; --sam-unit {better} to compare"
        if note:
            room = max(16, (self.size.width or 40) - 2)
            if len(note) > room:
                note = note[: room - 1] + "…"
            t.append("\n")
            t.append(note, style="dim italic")
        t.append("\n")
        _kv(t, "projected SAM", fmt_num(record.get("projected_sam")))
        t.append("\n")
        pe = record.get("projected_energy_j")
        lo, hi = record.get("projected_energy_low_j"), record.get("projected_energy_high_j")
        if record.get("status") in ("finished", "failed", "interrupted"):
            # The run is over: its final energy is the measured one, not a projection.
            _kv(t, "final energy", fmt_energy(record.get("energy_j")), energy_methods_tag(record))
            self.set_text(t)
            return
        _kv(t, "final energy", fmt_energy(pe), "estimated" if pe is not None else None)
        t.append("\n")
        if lo is not None and hi is not None:
            _kv(t, "band", f"{fmt_energy(lo)} – {fmt_energy(hi)}")
            t.append("  ")
        end = record.get("projected_end_time")
        end_s = "n/a"
        if isinstance(end, (int, float)) and math.isfinite(end):
            end_s = time.strftime("%H:%M", time.localtime(end))
        _kv(t, "ends", end_s)
        self.set_text(t)


class ProcessPanel(_Panel):
    """CPU and memory of the run's process tree, and CPU/DRAM energy where measured."""

    def update_process(
        self,
        cpu_pct: float | None,
        rss_b: float | None,
        cpus: Sequence[CpuRow] = (),
        running: bool = True,
    ) -> None:
        t = Text()
        _kv(t, "Run CPU", fmt_pct(cpu_pct) if running else "-")
        t.append("  ")
        _kv(t, "RSS", fmt_bytes(rss_b) if running else "-")
        t.append("\n")
        if not cpus:
            _kv(t, "CPU energy", "n/a")
            t.append(" (not measured: see wattui doctor)", style="dim")
        else:
            for i, c in enumerate(cpus[:3]):
                if i:
                    t.append("\n")
                _kv(t, c.key, fmt_energy(c.energy_j), method_label(c.method))
                if c.watts is not None:
                    t.append(f" {fmt_watts(c.watts)}")
        self.set_text(t)


class SessionHeader(Horizontal):
    """Command or PID, host, elapsed time, status (and exit code), SIMULATED badge."""

    DEFAULT_CSS = """
    SessionHeader { height: 1; background: $panel; }
    SessionHeader > #sim-badge {
        background: $warning; color: $background; text-style: bold reverse;
        padding: 0 1; display: none; width: auto;
    }
    SessionHeader.-simulated > #sim-badge { display: block; }
    SessionHeader > #hdr-text {
        width: 1fr; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    SessionHeader > #hdr-status {
        width: 30; padding: 0 1; text-style: bold; text-align: right;
    }
    SessionHeader.-running > #hdr-status { color: $success; }
    SessionHeader.-failed > #hdr-status, SessionHeader.-interrupted > #hdr-status {
        color: $error;
    }
    """

    def compose(self) -> ComposeResult:
        yield Label("SIMULATED", id="sim-badge")
        yield Label("wattui: opening session...", id="hdr-text")
        yield Label("", id="hdr-status")

    def update_header(self, s: LiveSnapshot) -> None:
        self.set_class(s.simulated, "-simulated")
        for st in ("running", "finished", "failed", "interrupted", "starting"):
            self.set_class(s.status == st, f"-{st}")
        text = Text()
        text.append(s.command or "(no command)", style="bold")
        text.append(f" · {s.host}" if s.host else "", style="dim")
        text.append(f" · {s.session_id}", style="dim")
        set_if_changed(self.query_one("#hdr-text", Label), text)
        status = s.status
        if s.exit_code is not None and s.status != "running":
            status += f" (exit {s.exit_code})"
        set_if_changed(
            self.query_one("#hdr-status", Label), f"{fmt_duration(s.elapsed_s)} {status}"
        )


class AnsiLog(Log):
    """A ``Log`` that shows the SGR colours of its lines. Lines come from
    :func:`wattui.sanitize.clean_output`, which leaves no other escape sequence."""

    @classmethod
    def _process_line(cls, line: str) -> str:  # widths and plain rendering: no SGR
        return super()._process_line(strip_sgr(line) if "\x1b" in line else line)

    def _render_line_strip(self, y: int, rich_style) -> Strip:
        raw = self._lines[y]
        if "\x1b[" not in raw:
            return super()._render_line_strip(y, rich_style)
        text = Text.from_ansi(raw.expandtabs(), no_wrap=True)
        text.stylize_before(rich_style)
        return Strip(text.render(self.app.console), text.cell_len)


class OutputPanel(Vertical):
    """The run's output, tail-followed, scrollable and searchable."""

    DEFAULT_CSS = """
    OutputPanel { height: 1fr; min-height: 3; }
    /* Log's scrollbars drew an empty row under the last line and a column of blocks at
       the right edge: none (the keys and the mouse wheel still scroll, f follows) */
    OutputPanel > Log {
        height: 1fr; scrollbar-size-vertical: 0; scrollbar-size-horizontal: 0;
    }
    OutputPanel > #output-live {
        height: auto; max-height: 2; color: $text-muted; display: none;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    OutputPanel.-has-live > #output-live { display: block; }
    OutputPanel > #search { display: none; height: 1; border: none; padding: 0 1; }
    OutputPanel.-searching > #search { display: block; }
    OutputPanel > #search-status { height: 1; color: $text-muted; display: none; }
    OutputPanel.-has-status > #search-status { display: block; }
    """

    def __init__(self, max_lines: int = 5000, **kwargs):
        super().__init__(**kwargs)
        self.max_lines = max_lines
        self.query_text = ""
        self.matches: list[int] = []
        self.match_index = -1

    def compose(self) -> ComposeResult:
        yield AnsiLog(max_lines=self.max_lines, id="output-log", highlight=False, auto_scroll=True)
        yield Static("", id="output-live")
        yield Input(placeholder="search the output (Enter: find, Esc: close)", id="search")
        yield Label("", id="search-status")

    @property
    def log_widget(self) -> Log:
        return self.query_one("#output-log", Log)

    def append(self, lines: Sequence[str]) -> None:
        """Finished lines (already cleaned by ``snapshot.clean_line``), one per row: each
        is cut at the pane's edge (scroll sideways to read on), never wrapped or merged."""
        if lines:
            log = self.log_widget
            log.write_lines(lines)
            if log.auto_scroll:  # also when written before the pane had its size
                log.call_after_refresh(log.scroll_end, animate=False, x_axis=False)

    def on_resize(self, _event=None) -> None:
        """A pane that grew or shrank (a notes line came or went) still shows the end."""
        log = self.log_widget
        if log.auto_scroll:
            log.call_after_refresh(log.scroll_end, animate=False, x_axis=False)

    def set_live(self, lines: Sequence[str]) -> None:
        """Each stream's unfinished line (a progress bar mid-epoch), under the finished
        ones, as the terminal's cursor line would show it."""
        if not lines and not self.has_class("-has-live"):
            return  # nothing shown, nothing to lay out
        # lines keep the run's colours (clean_output leaves SGR sequences only)
        t = Text("\n", no_wrap=True, overflow="ellipsis").join(
            Text.from_ansi(x, no_wrap=True, overflow="ellipsis") for x in lines
        )
        set_if_changed(self.query_one("#output-live", Static), t)
        if self.has_class("-has-live") != bool(lines):
            self.set_class(bool(lines), "-has-live")

    def open_search(self) -> None:
        self.add_class("-searching")
        inp = self.query_one("#search", Input)
        inp.value = self.query_text
        inp.focus()

    def close_search(self) -> None:
        self.remove_class("-searching")
        self.log_widget.focus()

    def follow(self) -> None:
        """Stop browsing matches and follow the end of the output again."""
        log = self.log_widget
        log.auto_scroll = True
        log.scroll_end(animate=False)
        self.remove_class("-has-status")

    def search(self, text: str) -> int:
        """Find ``text`` (case-insensitive); jump to the last match. Returns the count."""
        self.query_text = text
        needle = text.lower()
        lines = self.log_widget.lines
        self.matches = [
            i for i, line in enumerate(lines) if needle and needle in strip_sgr(line).lower()
        ]
        self.match_index = len(self.matches) - 1
        self._show_match()
        return len(self.matches)

    def next_match(self, step: int = 1) -> None:
        if not self.matches:
            return
        self.match_index = (self.match_index + step) % len(self.matches)
        self._show_match()

    def _show_match(self) -> None:
        status = self.query_one("#search-status", Label)
        self.add_class("-has-status")
        if not self.matches:
            status.update(Text(f"no match for {self.query_text!r}"))  # not markup
            return
        log = self.log_widget
        line_no = self.matches[self.match_index]
        log.auto_scroll = False
        log.scroll_to(y=max(0, line_no - log.size.height // 2), animate=False)
        text = strip_sgr(log.lines[line_no]) if line_no < len(log.lines) else ""
        t = Text(f"match {self.match_index + 1}/{len(self.matches)} line {line_no + 1}: ")
        t.append(text[:200], style="reverse")
        t.append("  (n/N: next/previous, f: follow)")
        status.update(t)
