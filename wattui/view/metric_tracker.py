"""The metrics a run reported (accuracy, loss, epochs), tracked from its events for the
live screen."""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from wattui.metrics.intake import accuracy_rank
from wattui.sanitize import clean_text

METRIC_HISTORY = 120
OTHER_METRICS = 8


@dataclass(frozen=True)
class MetricsSummary:
    count: int = 0
    latest_accuracy: float | None = None
    best_accuracy: float | None = None
    best_epoch: float | None = None
    epoch: float | None = None
    step: int | None = None
    total_epochs: int | None = None
    accuracy_history: tuple[float, ...] = ()
    # (name, latest value, short history) for other reported numbers (loss, ...)
    others: tuple[tuple[str, float, tuple[float, ...]], ...] = ()
    # wattui.watch(model, x): the estimated energy per training step and its split by
    # layer type (shares, largest first), beside the measured energy per step
    est_step_j: float | None = None
    est_split: tuple[tuple[str, float], ...] = ()
    measured_step_j: float | None = None
    # wattui.measure("name"): the latest finished window (name, energy J or None, duration s,
    # simulated) and how many windows there were
    window: tuple[str, float | None, float | None, bool] | None = None
    windows: int = 0


def _values(ev: Mapping) -> dict | None:
    raw = ev.get("values_json")
    if not raw:
        return None
    try:
        vals = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    return vals if isinstance(vals, dict) else None


class MetricTracker:
    """Folds metric events into a bounded summary."""

    def __init__(self, history: int = METRIC_HISTORY, max_others: int = OTHER_METRICS):
        self.count = 0
        self.latest: float | None = None
        self.best: float | None = None
        self.best_epoch: float | None = None
        self.epoch: float | None = None
        self.step: int | None = None
        self.total_epochs: int | None = None
        self.acc_hist: deque[float] = deque(maxlen=history)
        self.others: dict[str, deque[float]] = {}
        self.max_others = max_others
        self._hist = history
        self.est_step_j: float | None = None
        self.est_split: tuple[tuple[str, float], ...] = ()
        self.measured_step_j: float | None = None
        self._step_mark: tuple[float, float] | None = None  # (step, energy) of a report
        self.window: tuple[str, float | None, float | None, bool] | None = None
        self.windows = 0
        self._rank: int | None = None  # the accuracy stream's kind (metrics.summary's rules)
        self._reported: set[float] = set()  # epochs a report gave an accuracy for

    def _add_measure(self, ev: Mapping) -> None:
        vals = _values(ev) or {}
        name = vals.get("name")
        name = clean_text(name, 40) if isinstance(name, str) else ""  # from the run
        name = name or "block"
        self.windows += 1
        self.window = (name, _finite(vals.get("energy_j")), _finite(vals.get("duration_s")), bool(vals.get("simulated")))

    def _add_watch(self, ev: Mapping) -> None:
        vals = _values(ev) or {}
        est = _finite(vals.get("est_step_energy_j"))
        if est is None:
            return
        self.est_step_j = est
        parts = {
            clean_text(k[len("layer_") : -len("_j")], 40): x
            for k, v in vals.items()
            if k.startswith("layer_") and k.endswith("_j") and (x := _finite(v)) is not None
        }
        total = sum(parts.values())
        if total > 0:
            self.est_split = tuple(
                sorted(((k, v / total) for k, v in parts.items()), key=lambda kv: -kv[1])
            )

    def _add_step_energy(self, ev: Mapping) -> None:
        """Measured energy per step, between the last two reports that carried a step."""
        step, energy = _finite(ev.get("step")), _finite(ev.get("energy_j"))
        if step is None or energy is None:
            return
        if self._step_mark is not None:
            s0, e0 = self._step_mark
            if step > s0 and energy >= e0:
                self.measured_step_j = (energy - e0) / (step - s0)
        self._step_mark = (step, energy)

    def _add_accuracy(self, ev: Mapping, acc: float) -> None:
        """The same stream as the session's summary: validation figures once one appeared
        (training ones before are dropped from the history), a report's figure for an
        epoch over a parsed line's."""
        rank = accuracy_rank(ev.get("accuracy_key"))
        epoch = _finite(ev.get("epoch"))
        if self._rank is None or rank < self._rank:
            self._rank = rank
            self.latest = self.best = self.best_epoch = None
            self.acc_hist.clear()
        elif rank > self._rank:
            return
        if ev.get("source") not in (None, "log") and epoch is not None:
            self._reported.add(epoch)
        elif epoch is not None and epoch in self._reported:
            return
        self.latest = acc
        self.acc_hist.append(acc)
        if self.best is None or acc > self.best:
            self.best, self.best_epoch = acc, self.epoch

    def add(self, ev: Mapping) -> None:
        if ev.get("kind") == "watch":
            self._add_watch(ev)
            return
        if ev.get("kind") == "measure":
            self._add_measure(ev)
            return
        if ev.get("kind") != "metric":
            return
        self.count += 1
        self._add_step_energy(ev)
        for k in ("epoch", "step", "total_epochs"):
            v = ev.get(k)
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                if k == "total_epochs" and self.total_epochs is not None:
                    v = max(v, self.total_epochs)  # a total only grows
                setattr(self, k, v)
        acc = _finite(ev.get("accuracy"))
        if acc is not None:
            self._add_accuracy(ev, acc)
        raw = ev.get("values_json")
        if raw:
            try:
                vals = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                vals = None
            if isinstance(vals, dict):
                # Shown elsewhere already: the accuracy (under whatever name it came),
                # and the progress counters.
                skip = {"accuracy", "epoch", "step", "total_epochs", "global_step"}
                skip.add(ev.get("accuracy_key") or "accuracy")
                for name, v in vals.items():
                    x = _finite(v)
                    if x is None or name in skip:
                        continue
                    name = clean_text(name, 60)  # a run's own string, shown on screen
                    h = self.others.get(name)
                    if h is None:
                        if len(self.others) >= self.max_others:
                            continue
                        h = self.others[name] = deque(maxlen=self._hist)
                    h.append(x)

    def summary(self) -> MetricsSummary:
        return MetricsSummary(
            count=self.count,
            latest_accuracy=self.latest,
            best_accuracy=self.best,
            best_epoch=self.best_epoch,
            epoch=self.epoch,
            step=int(self.step) if self.step is not None else None,
            total_epochs=int(self.total_epochs) if self.total_epochs is not None else None,
            accuracy_history=tuple(self.acc_hist),
            others=tuple((k, h[-1], tuple(h)) for k, h in self.others.items() if h),
            est_step_j=self.est_step_j,
            est_split=self.est_split,
            measured_step_j=self.measured_step_j,
            window=self.window,
            windows=self.windows,
        )


def metrics_summary(events) -> MetricsSummary:
    """A summary from event rows (dicts) or an events DataFrame: for other screens."""
    rows = events.to_dicts() if hasattr(events, "to_dicts") else events
    tr = MetricTracker()
    for ev in rows:
        tr.add(ev)
    return tr.summary()


def _finite(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None
