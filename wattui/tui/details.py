"""One session in detail: its timeline (power per GPU, accuracy, energy) over the whole
run, which can be zoomed and scrolled, and its metadata (command, GPUs with UUID and
driver, energy method, baseline, SAM parameters, carbon intensity).

Keys: ``left``/``right`` scroll, ``+``/``-`` zoom, ``f`` whole run, ``escape`` back.
Samples are read here, once, when the screen opens (the comparison table never reads them).

A multi-node run (``group:<ID>``) is shown as one: each node's timeline is read and the
power and energy are summed across the nodes (:meth:`Timeline.merge`); GPUs are named
``host:gpu0`` and the metadata lists every node.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from wattui.analysis import table as cmp
from wattui.groups.merge import held_sum
from wattui.metrics.intake import event_from_row
from wattui.metrics.summary import pick_accuracies
from wattui.model.group import is_group_ref
from wattui.store.paths import sessions_dir
from wattui.store.reader import Session
from wattui.tui.plot import SERIES_COLORS, LineChart, Series
from wattui.tui.widgets import WINDOWS, AccuracyPanel, EnergyPanel, PowerChart, SamPanel
from wattui.view.metric_tracker import metrics_summary

MIN_SPAN_S = 10.0


def _utc(t) -> str:
    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


class Timeline:
    """The session's samples and metric events, binned for any window."""

    def __init__(self, session: Session):
        self.problems: list[str] = []
        try:
            df = session.samples()
        except Exception as e:  # noqa: BLE001 - show what can be shown
            self.problems.append(f"samples unreadable: {e}")
            df = pl.DataFrame(
                schema={
                    "t_wall": pl.Float64,
                    "device": pl.String,
                    "energy_j": pl.Float64,
                    "power_w": pl.Float64,
                    "seq": pl.Int64,
                }
            )
        self.metrics = metrics_summary([])
        try:
            ev = session.events()
            self.metrics = metrics_summary(ev.filter(pl.col("kind") == "metric"))
            stream = pick_accuracies(
                sorted(
                    (event_from_row(r) for r in ev.filter(pl.col("kind") == "metric").to_dicts()),
                    key=lambda e: e.t_wall,
                )
            )[0]
            self.acc = pl.DataFrame(
                {"t_wall": [e.t_wall for e in stream], "accuracy": [e.accuracy for e in stream]},
                schema={"t_wall": pl.Float64, "accuracy": pl.Float64},
            )
        except Exception as e:  # noqa: BLE001
            self.problems.append(f"events unreadable: {e}")
            self.acc = pl.DataFrame(schema={"t_wall": pl.Float64, "accuracy": pl.Float64})
        kinds = {d.get("key"): d.get("kind") for d in session.meta.get("devices", [])}
        df = df.select("t_wall", "seq", "device", "energy_j", "power_w").sort("t_wall")
        self.gpus = sorted(
            (
                k
                for k in df["device"].unique().to_list()
                if kinds.get(k, "") == "gpu" or (k not in kinds and k.startswith("gpu"))
            ),
            key=lambda k: (len(k), k),
        )
        energy_devs = [k for k, v in kinds.items() if v in ("gpu", "cpu", "dram")] or self.gpus
        self.power = df.filter(pl.col("device").is_in(self.gpus)).select(
            "t_wall", "device", "power_w"
        )
        e = (
            df.filter(pl.col("device").is_in(energy_devs) & pl.col("energy_j").is_not_null())
            .with_columns(e=pl.col("energy_j") - pl.col("energy_j").first().over("device"))
            .group_by("seq")
            .agg(pl.col("t_wall").min(), pl.col("e").sum())
            .sort("t_wall")
        )
        top = e["e"].max() if e.height else None
        self.energy_j = e.select("t_wall", v=pl.col("e"))  # joules since the start
        self._set_energy_unit(top)
        tot = (
            self.power.filter(pl.col("power_w").is_not_null())
            .group_by("t_wall")
            .agg(pl.col("power_w").sum())
            .sort("t_wall")
        )
        self.total_points = list(zip(tot["t_wall"].to_list(), tot["power_w"].to_list()))
        pms = [
            d.get("power_method")
            for d in session.meta.get("devices", [])
            if d.get("kind") == "gpu" and d.get("power_method")
        ]
        self.power_method = pms[0] if pms else None
        ts = df["t_wall"]
        started = session.meta.get("started_at")
        self.t0 = float(started) if started is not None else (ts.min() if len(ts) else 0.0)
        ends = [x for x in (ts.max() if len(ts) else None, session.meta.get("ended_at")) if x]
        self.t1 = max([float(x) for x in ends] + [self.t0 + MIN_SPAN_S])

    def _set_energy_unit(self, top: float | None) -> None:
        self.energy_unit = "kWh" if top is not None and top >= 3.6e6 else "Wh"
        div = 3.6e6 if self.energy_unit == "kWh" else 3600.0
        self.energy = self.energy_j.select("t_wall", v=pl.col("v") / div)

    @classmethod
    def merge(cls, parts: list[tuple[str, Timeline]]) -> Timeline:
        """One timeline for the nodes of a group: GPUs ``label:gpu0``, total power and
        energy summed across the nodes (each node's last value held between its samples;
        a node contributes no power before its first sample or after its last, and its
        final energy after it ended), accuracy from the node that reported the most."""
        tl = cls.__new__(cls)
        tl.problems = [f"{label}: {p}" for label, t in parts for p in t.problems]
        acc_from = max(parts, key=lambda lt: (lt[1].acc.height, lt[1].metrics.count))[1]
        tl.metrics, tl.acc = acc_from.metrics, acc_from.acc
        tl.gpus = [f"{label}:{g}" for label, t in parts for g in t.gpus]
        tl.power = pl.concat(
            [
                t.power.with_columns(device=pl.lit(f"{label}:") + pl.col("device"))
                for label, t in parts
            ]
        )
        tl.energy_j = _held_sum([t.energy_j for _, t in parts], zero_after_end=False)
        tl._set_energy_unit(tl.energy_j["v"].max() if tl.energy_j.height else None)
        totals = [
            pl.DataFrame(
                {"t_wall": [p[0] for p in t.total_points], "v": [p[1] for p in t.total_points]},
                schema={"t_wall": pl.Float64, "v": pl.Float64},
            )
            for _, t in parts
        ]
        tot = _held_sum(totals, zero_after_end=True)
        tl.total_points = list(zip(tot["t_wall"].to_list(), tot["v"].to_list()))
        tl.power_method = next((t.power_method for _, t in parts if t.power_method), None)
        tl.t0 = min(t.t0 for _, t in parts)
        tl.t1 = max(t.t1 for _, t in parts)
        return tl

    @staticmethod
    def _bin(df: pl.DataFrame, col: str, x0: float, x1: float, n: int, agg="mean", by=None):
        w = (x1 - x0) / max(n, 1)
        d = df.filter(pl.col("t_wall").is_between(x0 - w, x1 + w))
        if d.height == 0:
            return d
        keys = ["b"] + ([by] if by else [])
        e = pl.col(col).mean() if agg == "mean" else pl.col(col).max()
        return (
            d.with_columns(b=((pl.col("t_wall") - x0) / w).floor().cast(pl.Int64))
            .group_by(keys)
            .agg(pl.col("t_wall").mean(), e)
            .sort("t_wall")
        )

    def power_series(self, x0: float, x1: float, n: int) -> list[Series]:
        b = self._bin(self.power, "power_w", x0, x1, n, by="device")
        out = []
        for i, g in enumerate(self.gpus):
            part = b.filter(pl.col("device") == g) if b.height else b
            out.append(
                Series(
                    g,
                    tuple(part["t_wall"].to_list()) if part.height else (),
                    tuple(part["power_w"].to_list()) if part.height else (),
                    SERIES_COLORS[i % len(SERIES_COLORS)],
                )
            )
        return out

    def energy_series(self, x0: float, x1: float, n: int) -> list[Series]:
        b = self._bin(self.energy, "v", x0, x1, n, agg="max")
        if b.height == 0:
            return [Series("energy", (), (), SERIES_COLORS[2])]
        return [Series("energy", tuple(b["t_wall"]), tuple(b["v"]), SERIES_COLORS[2])]

    def accuracy_series(self, x0: float, x1: float) -> list[Series]:
        """Reported accuracy as steps: the value last reported holds until the next report."""
        ts, ys = self.acc["t_wall"].to_list(), self.acc["accuracy"].to_list()
        xs_out, ys_out = [], []
        prev = None
        for t, y in zip(ts, ys):
            if t < x0:
                prev = y
                continue
            if t > x1:
                break
            if prev is not None:
                xs_out.append(max(x0, t - 1e-6))
                ys_out.append(prev)
            elif not xs_out:
                pass
            xs_out.append(t)
            ys_out.append(y)
            prev = y
        if prev is not None:
            if not xs_out:
                xs_out.append(x0)
                ys_out.append(prev)
            xs_out.append(min(x1, self.t1))
            ys_out.append(prev)
        return [Series("accuracy", tuple(xs_out), tuple(ys_out), SERIES_COLORS[1])]

    def total_in(self, x0: float, x1: float, n: int) -> list[tuple[float, float]]:
        """Summed GPU power at ``n`` evenly spaced times in the window, each the last value
        recorded at or before that time (no gaps when samples are sparser than columns)."""
        import bisect

        pts = self.total_points
        if not pts or n <= 0:
            return []
        ts = [p[0] for p in pts]
        out = []
        step = (x1 - x0) / n
        for k in range(n):
            t = x0 + (k + 0.5) * step
            i = bisect.bisect_right(ts, t) - 1
            if i < 0 or t > ts[-1] + step:
                continue
            out.append((t, pts[i][1]))
        return out


def _held_sum(frames: list[pl.DataFrame], zero_after_end: bool) -> pl.DataFrame:
    """``(t_wall, v)`` frames summed by :func:`wattui.groups.merge.held_sum`, as the live
    group view sums them: after its last row a frame counts 0, or its value is held."""
    return held_sum(frames, [not zero_after_end] * len(frames))


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
        self.session: Session | None = None
        self.timeline: Timeline | None = None
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

    def _open_group(self) -> tuple[Timeline, dict] | None:
        """The merged record and timeline of a ``group:<ID>`` row, or None (title says why)."""
        title = self.query_one("#det-title", Static)
        rec = self.record or cmp.load_group_record(self.store_root, self.session_id)
        if rec is None:
            title.update(Text(f"no sessions of {self.session_id} in the store", style="bold red"))
            return None
        rec = dict(rec, notes=list(rec.get("notes") or []))  # notes added here stay here
        parts = []
        for n in rec.get("nodes") or []:
            label = n.get("label") or n.get("host") or str(n.get("id"))
            try:
                s = Session.open(sessions_dir(self.store_root) / str(n.get("id")))
            except Exception as e:  # noqa: BLE001 - a node deleted since: show the others
                rec["notes"].append(f"{label}: cannot open session: {e}")
                continue
            parts.append((label, Timeline(s)))
        if not parts:
            title.update(Text(f"cannot open any session of {self.session_id}", style="bold red"))
            return None
        self.record = rec
        return Timeline.merge(parts), {}

    def on_mount(self) -> None:
        title = self.query_one("#det-title", Static)
        if is_group_ref(self.session_id):
            opened = self._open_group()
            if opened is None:
                return
            tl, meta = opened
        else:
            try:
                self.session = Session.open(sessions_dir(self.store_root) / self.session_id)
            except Exception as e:  # noqa: BLE001 - deleted or corrupt since the table was read
                title.update(Text(f"cannot open session {self.session_id}: {e}", style="bold red"))
                return
            if self.record is None:
                self.record = cmp.load_record(self.session)
            tl = Timeline(self.session)
            meta = self.session.meta
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
        self.query_one(AccuracyPanel).update_metrics(tl.metrics)
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
