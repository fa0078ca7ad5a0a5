"""A stored session's timeline: its samples and metric events, binned for any window of the
run (per-GPU power, summed power, energy, reported accuracy), and a multi-node group's
timeline merged from its nodes'. Read once, off the event loop, by the details screen.

:func:`open_timeline` opens a session (or a ``group:<ID>``'s sessions) and returns what the
details screen shows, or why it cannot; nothing here imports Textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from wattui.analysis import table as cmp
from wattui.groups.merge import held_sum
from wattui.metrics.intake import event_from_row
from wattui.metrics.summary import pick_accuracies
from wattui.model.group import is_group_ref
from wattui.model.kinds import ENERGY_KINDS
from wattui.store.paths import sessions_dir
from wattui.store.reader import Session

MIN_SPAN_S = 10.0
# The charts' palette: a timeline's series arrive coloured, one colour per GPU in order.
SERIES_COLORS = (
    "#4fc1ff",
    "#ffb454",
    "#8ae234",
    "#f07178",
    "#c792ea",
    "#89ddff",
    "#f78c6c",
    "#c3e88d",
)


@dataclass(frozen=True)
class Series:
    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    color: str = SERIES_COLORS[0]


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
        self.metric_events = pl.DataFrame()
        try:
            ev = session.events()
            self.metric_events = ev.filter(pl.col("kind") == "metric")
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
        energy_devs = [k for k, v in kinds.items() if v in ENERGY_KINDS] or self.gpus
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
        acc_from = max(parts, key=lambda lt: (lt[1].acc.height, lt[1].metric_events.height))[1]
        tl.metric_events, tl.acc = acc_from.metric_events, acc_from.acc
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


@dataclass(frozen=True)
class OpenedTimeline:
    """What the details screen shows of one row: the record (a group's with its notes), the
    session's meta (``{}`` for a group) and the timeline; or ``error``, the one line that
    says why nothing can be shown."""

    record: dict | None
    meta: dict
    timeline: Timeline | None
    error: str | None = None


def _open_group(store_root: Path, session_id: str, record: dict | None) -> OpenedTimeline:
    """The merged record and timeline of a ``group:<ID>`` row."""
    rec = record or cmp.load_group_record(store_root, session_id)
    if rec is None:
        return OpenedTimeline(record, {}, None, f"no sessions of {session_id} in the store")
    rec = dict(rec, notes=list(rec.get("notes") or []))  # notes added here stay here
    parts = []
    for n in rec.get("nodes") or []:
        label = n.get("label") or n.get("host") or str(n.get("id"))
        try:
            s = Session.open(sessions_dir(store_root) / str(n.get("id")))
        except Exception as e:  # noqa: BLE001 - a node deleted since: show the others
            rec["notes"].append(f"{label}: cannot open session: {e}")
            continue
        parts.append((label, Timeline(s)))
    if not parts:
        return OpenedTimeline(record, {}, None, f"cannot open any session of {session_id}")
    return OpenedTimeline(rec, {}, Timeline.merge(parts))


def open_timeline(store_root: Path, session_id: str, record: dict | None = None) -> OpenedTimeline:
    """Read one table row's session (or group) from the store: its record (``record`` when
    the caller has it), meta and timeline. Never raises for a missing or damaged session."""
    store_root = Path(store_root)
    if is_group_ref(session_id):
        return _open_group(store_root, session_id, record)
    try:
        session = Session.open(sessions_dir(store_root) / session_id)
    except Exception as e:  # noqa: BLE001 - deleted or corrupt since the table was read
        return OpenedTimeline(record, {}, None, f"cannot open session {session_id}: {e}")
    if record is None:
        record = cmp.load_record(session)
    return OpenedTimeline(record, session.meta, Timeline(session))
