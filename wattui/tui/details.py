"""One session in detail: its timeline (power per GPU, accuracy, energy) over the whole
run, which can be zoomed and scrolled, and its metadata (command, GPUs with UUID and
driver, energy method, baseline, SAM parameters, carbon intensity).

Keys: ``left``/``right`` scroll, ``+``/``-`` zoom, ``f`` whole run, ``escape`` back.
Samples are read once, when the screen opens, by a thread worker (``analysis.timeline``);
the screen applies what it read in one ``batch_update()``. The comparison table never
reads them.

A multi-node run (``group:<ID>``) is shown as one: each node's timeline is read and the
power and energy are summed across the nodes (:meth:`Timeline.merge`); GPUs are named
``host:gpu0`` and the metadata lists every node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from wattui.analysis import table as cmp
from wattui.analysis.timeline import OpenedTimeline, Timeline, open_timeline
from wattui.tui.plot import LineChart
from wattui.tui.widgets import WINDOWS, AccuracyPanel, EnergyPanel, PowerChart, SamPanel
from wattui.view.metric_tracker import MetricsSummary, metrics_summary


def _utc(t) -> str:
    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def metadata_text(rec: dict, meta: dict, params: cmp.SamParams, problems=()) -> Text:
    t = Text()

    def kv(k: str, v, style: str = "") -> None:
        t.append(f"{k:<11}", style="bold")
        t.append(f"{v}\n", style=style)

    if rec.get("simulated"):
        t.append(
            " SIMULATED GPUs: figures come from a model, not a meter \n",
            style="bold reverse #c792ea",
        )
    kv("id", rec.get("id"))
    kv("name", rec.get("name") or rec.get("model") or "-")
    cmd = rec.get("command")
    kv("command", " ".join(cmd) if isinstance(cmd, list) else (cmd or "-"))
    kv(
        "status",
        rec.get("status")
        + (f" (exit {rec['exit_code']})" if rec.get("exit_code") is not None else ""),
        "bold #ffb454" if rec.get("status") != "finished" else "",
    )
    nodes = rec.get("nodes") if rec.get("kind") == "group" else None
    if nodes:
        kv("group", f"{rec.get('group')} ({len(nodes)} nodes)")
        kv("hosts", ", ".join(rec.get("hosts") or []) or "-")
    else:
        kv("host", rec.get("host") or "-")
    kv("tags", ", ".join(rec.get("tags") or []) or "-")
    kv("started", _utc(rec.get("started_at")))
    kv("ended", _utc(rec.get("ended_at")))
    kv("duration", cmp.fmt_duration(rec.get("duration_s")) or "-")
    row = cmp.row_of(rec)
    kv("method", row["method"])
    if row["projected_energy_j"] is not None:
        kv("projected", cmp.fmt_energy(row["projected_energy_j"]) + " at the end (estimated)")
    kv("SAM with", f"alpha={params.alpha:g} beta={params.beta:g} unit={params.unit}")
    ci = rec.get("carbon_g_per_kwh")
    src = f" ({rec['carbon_source']})" if rec.get("carbon_source") else ""
    kv("carbon", f"{ci:g} g/kWh{src}" if ci is not None else "-")
    base = rec.get("baseline") or meta.get("baseline")
    if nodes:
        pass  # each node measured its own baseline (see the node's session)
    elif base and base.get("watts"):
        w = sum(v for v in base["watts"].values() if isinstance(v, (int, float)))
        kv("baseline", f"{w:.0f} W idle over {base.get('seconds', 0):g} s")
    else:
        kv("baseline", "not measured")
    if nodes:
        t.append("\nNodes\n", style="bold underline")
        for n in nodes:
            t.append(f"{n.get('label') or n.get('host') or '?'} ", style="bold")
            t.append(f"{n.get('status') or '?'}\n")
            t.append(f"  session {n.get('id') or '-'}\n")
            gp = n.get("gpus") or 0
            energy = cmp.fmt_energy(n.get("energy_j")) or "n/a"
            t.append(f"  {gp} GPU{'s' if gp != 1 else ''}, {energy}\n")
    t.append("\nGPUs\n", style="bold underline")
    for g in rec.get("gpus") or []:
        t.append(f"{g.get('key')} ", style="bold")
        t.append(f"{g.get('name') or '?'}\n")
        t.append(f"  uuid   {g.get('uuid') or '-'}\n")
        t.append(f"  driver {g.get('driver') or '-'}\n")
        mean = f"{g['mean_w']:.0f} W" if g.get("mean_w") is not None else "n/a"
        peak = f"{g['peak_w']:.0f} W" if g.get("peak_w") is not None else "n/a"
        t.append(f"  {cmp.fmt_energy(g.get('energy_j')) or 'n/a'} mean {mean} peak {peak}\n")
        t.append(
            f"  energy: {g.get('method')}, power: {g.get('power_method')}\n",
            style="#c792ea" if g.get("simulated") else "",
        )
    for c in rec.get("cpu") or []:
        t.append(
            f"{c.get('key')} {cmp.fmt_energy(c.get('energy_j')) or 'n/a'} [{c.get('method')}]\n"
        )
    for n in list(rec.get("notes") or []) + list(problems):
        t.append(f"note: {n}\n", style="italic #ffb454")
    return t


@dataclass(frozen=True)
class DetailsData:
    """What the loading thread read: the session (or group) and its metrics' summary."""

    opened: OpenedTimeline
    metrics: MetricsSummary | None


class DetailsLoaded(Message):
    """The details' data, read off the event loop (posted by the loading thread)."""

    def __init__(self, data: DetailsData) -> None:
        super().__init__()
        self.data = data


class DetailsScreen(Screen):
    """One session: the live screen's widgets (PowerChart, energy/accuracy/SAM panels) over
    the stored run, per-GPU power, accuracy and energy timelines, and the metadata."""

    DEFAULT_CSS = """
    DetailsScreen #det-title { height: 1; padding: 0 1; background: $boost; }
    DetailsScreen #det-body { height: 1fr; }
    DetailsScreen #det-side { width: 54; border: round $panel; padding: 0 1; }
    DetailsScreen #det-side > _Panel { margin-bottom: 1; }
    DetailsScreen #det-charts { width: 1fr; }
    DetailsScreen #det-total { height: 8; border: round $panel; }
    DetailsScreen #det-power { height: 2fr; border: round $panel; }
    DetailsScreen #det-acc, DetailsScreen #det-energy { height: 1fr; border: round $panel; }
    """
    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("left", "pan(-1)", "◀ Scroll"),
        Binding("right", "pan(1)", "Scroll ▶"),
        Binding("plus,equals_sign", "zoom(-1)", "Zoom in"),
        Binding("minus", "zoom(1)", "Zoom out"),
        Binding("w", "zoom(0)", "Window"),
        Binding("f,home", "whole", "Whole run"),
        Binding("end", "to_end", "End", show=False),
        Binding("up", "meta_scroll(-1)", "Scroll info", show=False),
        Binding("down", "meta_scroll(1)", "Scroll info", show=False),
    ]

    def __init__(
        self,
        store_root: Path,
        session_id: str,
        params: cmp.SamParams | None = None,
        record: dict | None = None,
        **kw,
    ) -> None:
        super().__init__(**kw)
        self.store_root = Path(store_root)
        self.session_id = session_id
        self.params = params or cmp.SamParams()
        self.record = record
        self.timeline: Timeline | None = None
        self.loaded = False  # True once the worker's read has been applied (or failed)
        self.window_name = "all"  # one of the live screen's windows
        self.right = 0.0  # the window's right edge (unix time)
        self.window = (0.0, 1.0)

    def compose(self) -> ComposeResult:
        yield Static(id="det-title")
        with Horizontal(id="det-body"):
            with VerticalScroll(id="det-side", can_focus=False):
                yield EnergyPanel(id="det-energy-panel")
                yield AccuracyPanel(id="det-acc-panel")
                yield SamPanel(id="det-sam-panel")
                yield Static(id="det-meta-text")
            with Vertical(id="det-charts"):
                yield PowerChart(window="all", title="GPU power (sum)", id="det-total")
                yield LineChart("Power per GPU", " W", y_min=0, id="det-power")
                yield LineChart("Accuracy", "", id="det-acc")
                yield LineChart("Energy (all devices)", "", y_min=0, id="det-energy")
        yield Footer()

    def on_mount(self) -> None:
        self._load()

    # -- loading: a thread reads the store, the screen applies what it read ---------------
    @work(thread=True, exclusive=True, group="details-load")
    def _load(self) -> None:
        opened = open_timeline(self.store_root, self.session_id, self.record)
        tl = opened.timeline
        metrics = metrics_summary(tl.metric_events) if tl is not None else None
        self.post_message(DetailsLoaded(DetailsData(opened, metrics)))

    @on(DetailsLoaded)
    def _loaded(self, message: DetailsLoaded) -> None:
        try:
            with self.app.batch_update():
                self._apply(message.data)
        finally:
            self.loaded = True

    def _apply(self, data: DetailsData) -> None:
        title = self.query_one("#det-title", Static)
        opened = data.opened
        if opened.error is not None:
            title.update(Text(opened.error, style="bold red"))
            return
        self.record, meta, tl = opened.record, opened.meta, opened.timeline
        self.timeline = tl
        rec = self.record
        t = Text()
        name = rec.get("name") or rec.get("model")
        t.append(f"{name or rec['id']}", style="bold")
        t.append((f"  {rec['id']}" if name and name != rec["id"] else "") + f"  {rec.get('status')}")
        if rec.get("kind") == "group":
            t.append(f"  {len(rec.get('nodes') or [])} nodes")
        if rec.get("simulated"):
            t.append("  SIMULATED", style="bold reverse #c792ea")
        title.update(t)
        self.query_one(EnergyPanel).update_energy(rec)
        self.query_one(AccuracyPanel).update_metrics(data.metrics)
        val, why = cmp.sam_value(rec.get("accuracy"), rec.get("energy_j"), self.params)
        self.query_one(SamPanel).update_sam(
            {
                **rec,
                "sam": val,
                "sam_undefined_reason": why,
                "sam_alpha": self.params.alpha,
                "sam_beta": self.params.beta,
                "sam_unit": self.params.unit,
            }
        )
        self.query_one("#det-meta-text", Static).update(
            metadata_text(rec, meta, self.params, tl.problems)
        )
        self.right = tl.t1
        for w in self.query(LineChart):
            w.t_origin = tl.t0
        self.query_one("#det-energy", LineChart).y_unit = f" {tl.energy_unit}"
        self._draw()

    def on_resize(self) -> None:
        if self.timeline is not None:
            self._draw()

    def _bounds(self) -> tuple[float, float]:
        tl = self.timeline
        secs = WINDOWS[self.window_name]
        if secs is None or secs >= tl.t1 - tl.t0:
            return tl.t0, tl.t1
        self.right = min(max(self.right, tl.t0 + secs), tl.t1)
        return self.right - secs, self.right

    def _draw(self) -> None:
        tl = self.timeline
        if tl is None:
            return
        self.window = x0, x1 = self._bounds()
        total = self.query_one(PowerChart)
        whole = (x0, x1) == (tl.t0, tl.t1)
        total.window = "all" if whole else self.window_name
        cols = max(10, (total.size.width or 80) - total.AXIS_W)
        pts = [p for p in tl.total_points if x0 <= p[0] <= x1]
        if len(pts) < cols:  # sparser than the columns: hold each value, no gaps
            pts = tl.total_in(x0, x1, cols)
        running = (self.record or {}).get("status") == "running"
        if x1 >= tl.t1 and not running:
            right = "end"
        else:  # the window's right edge, as time into the run like the charts below
            right = cmp.fmt_duration(x1 - tl.t0)  # (not "now": this is the stored run)
        total.set_points(pts, now=x1, method=tl.power_method, end_label=right)
        n = max(20, (self.query_one("#det-power", LineChart).size.width or 80) * 2)
        charts = (
            ("#det-power", tl.power_series(x0, x1, n)),
            ("#det-acc", tl.accuracy_series(x0, x1)),
            ("#det-energy", tl.energy_series(x0, x1, n)),
        )
        for sel, series in charts:
            w = self.query_one(sel, LineChart)
            w.series = tuple(series)
            w.window = self.window

    # -- actions -------------------------------------------------------------------------
    def action_back(self) -> None:
        self.app.pop_screen()

    def action_meta_scroll(self, d: int) -> None:
        self.query_one("#det-side", VerticalScroll).scroll_relative(y=3 * d, animate=False)

    def action_pan(self, direction: int) -> None:
        if self.timeline is None:
            return
        x0, x1 = self.window
        self.right = x1 + (x1 - x0) / 2 * direction
        self._draw()

    def action_zoom(self, step: int) -> None:
        """-1: a shorter window, 1: a longer one, 0: the next (cycling, like the live ``w``)."""
        if self.timeline is None:
            return
        names = list(WINDOWS)  # short to long, "all" last
        i = names.index(self.window_name)
        if step == 0:
            i = (i + 1) % len(names)
        else:
            i = min(max(0, i + step), len(names) - 1)
        if self.window_name == "all" and names[i] != "all":
            self.right = self.timeline.t1
        elif names[i] != "all":
            x0, x1 = self.window
            self.right = (x0 + x1) / 2 + (WINDOWS[names[i]] or 0) / 2
        self.window_name = names[i]
        self._draw()

    def action_whole(self) -> None:
        self.window_name = "all"
        self._draw()

    def action_to_end(self) -> None:
        if self.timeline is not None:
            self.right = self.timeline.t1
            self._draw()
