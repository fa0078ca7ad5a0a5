"""The live screen's panels: the header, the GPU table, energy, accuracy, SAM and the
run's process. Each takes plain data and redraws only when its text changed."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Static

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
from wattui.tui.chart import spark

if TYPE_CHECKING:  # the view model loads in the viewer's worker, after the first frame
    from wattui.view.metric_tracker import MetricsSummary
    from wattui.view.snapshot import CpuRow, GpuRow, LiveSnapshot


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
