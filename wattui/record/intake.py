"""The recorder's metrics intake: report channel + output parsing + metrics file, epoch marks.

The recorder (``wattui/record/recorder.py``) uses this module through
``RecorderIntake(host, options)`` (``options``: a :class:`~wattui.record.options.MetricOptions`)
with ``child_env()``, ``follow_pid(pid)``, ``feed_line(line, t_wall)`` /
``feed_lines(lines, t_wall)`` (any thread: complete lines of the run's stdout or stderr, with
the time they were read), ``poll(t_wall)``, ``close()`` (drains every report the run made and
what the parser still holds), ``settings_meta()`` and ``final_meta()``. The host is an
:class:`IntakeHost` (the recorder's public ``add_event`` and ``energy_now``); the recorder
also passes ``run_pids``, the run's process tree as it follows it.

Every metric event is stored as a ``kind: "metric"`` row (:meth:`MetricEvent.to_row`); each
finished epoch as a ``kind: "epoch_end"`` row with the session's cumulative energy then, so
SAM and the projection can be recomputed from the stored events alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from wattui.metrics.carbon import make_settings
from wattui.metrics.channel import (
    ReportChannel,
    UnsafeChannelDir,
    ensure_channel_dir,
    private_fallback_dir,
)
from wattui.metrics.intake import (
    MetricEvent,
    MetricsFileFollower,
    PercentJudge,
    Rejections,
    accuracy_rank,
    is_accuracy_key,
)
from wattui.metrics.lineparser import LineParser
from wattui.metrics.sam import check_params
from wattui.metrics.summary import summarize_metrics
from wattui.record.options import MetricOptions

__all__ = ["RecorderIntake", "EpochTracker", "IntakeHost"]

MAX_EVENTS = 50_000  # kept in memory for the end-of-run summary
LOG_EVERY_S = 1.0  # log events without accuracy or a new epoch: at most one a second
DESCENDANTS_EVERY_S = 2.0


class IntakeHost(Protocol):
    """What the intake needs of the recorder: store a session event (any thread) and the
    session's energy now."""

    def add_event(self, event: dict) -> None: ...

    def energy_now(self) -> float | None: ...


# ---------------------------------------------------------------------------- epochs


class EpochTracker:
    """Turns the epoch numbers seen in metric events into epoch-end marks.

    The last event carrying epoch ``k`` marks the end of epoch ``k`` once a later epoch
    appears (or the run ends). The current epoch counts as ended already when its latest
    event carried an accuracy (a validation at the end of the epoch). Fractional epochs
    (Hugging Face logs 0.5, 1.0, ...) mark only at whole numbers.
    """

    def __init__(self) -> None:
        self.closed: list[tuple[float, float, float]] = []  # (epoch, t_wall, energy_j)
        self.cur: float | None = None
        self.cur_mark: tuple[float, float, float] | None = None
        self.cur_has_acc = False

    def add(self, epoch: float | None, t_wall: float, energy_j: float | None, has_acc: bool):
        """Returns the mark of an epoch that just ended, or None."""
        if epoch is None or energy_j is None or not float(epoch).is_integer():
            return None
        ended = None
        if self.cur is None or epoch > self.cur:
            if self.cur_mark is not None:
                ended = self.cur_mark
                self.closed.append(ended)
            self.cur, self.cur_has_acc = epoch, False
        elif epoch < self.cur:
            return None  # a late line from an earlier epoch: ignore
        self.cur_mark = (epoch, t_wall, energy_j)
        self.cur_has_acc = self.cur_has_acc or has_acc
        return ended

    def finish(self):
        """The run ended: the current epoch's mark, once."""
        m = self.cur_mark
        if m is not None:
            self.closed.append(m)
        self.cur_mark = None
        return m

    def marks(self) -> list[tuple[float, float, float]]:
        out = list(self.closed)
        if self.cur_mark is not None and self.cur_has_acc:
            out.append(self.cur_mark)
        return out


# ---------------------------------------------------------------------------- intake


DRAIN_FULL_S = 1.0  # at the run's end, every report is stored for this long
SAME_VALUE = 6e-5  # two sources' accuracies this close are one figure (printed to 4 places)


class RecorderIntake:
    """Collects metric events for one recording and hands them to the recorder as rows."""

    def __init__(
        self,
        host: IntakeHost,
        options: MetricOptions | None = None,
        *,
        run_pids: Callable[[], tuple[int, ...]] | None = None,
    ) -> None:
        """``run_pids``: the run's processes as the recorder follows them (else the intake
        scans the followed processes' descendants itself)."""
        self.host = host
        self.run_pids = run_pids
        self.options = (options or MetricOptions()).given()
        self.rejections = Rejections()
        self.notes: list[str] = []
        o = self.options
        self.accuracy_key = o.get("accuracy_key")
        self.alpha, self.beta, self.unit = check_params(
            o.get("sam_alpha", 5.0), o.get("sam_beta", 5.0), o.get("sam_unit", "kWh")
        )
        self.settings = make_settings(
            g_per_kwh=o.get("carbon_g_per_kwh"),
            country=o.get("country"),
            price_per_kwh=o.get("price_per_kwh"),
            currency=o.get("currency") or "USD",
            pue=o.get("pue", 1.0),
        )
        self.total_epochs = o.get("total_epochs")
        self.data_fraction = float(o.get("data_fraction", 1.0))
        self.percent = PercentJudge()
        self.parser = (
            LineParser(
                o.get("metric_patterns"), self.accuracy_key, self.rejections, self.percent
            )
            if o.get("parse_output", True)
            else None
        )
        self._eval_start: dict[float, float] = {}  # epoch -> energy when its evaluation began
        self._train_last: dict[float, float] = {}  # epoch -> energy at its last training event
        self._eval_parts: list[float] = []
        if self.parser is not None:
            self.parser.on_phase = self._line_phase
        self.follower = (
            MetricsFileFollower(
                o["metrics_file"], self.accuracy_key, self.rejections, self.percent
            )
            if o.get("metrics_file")
            else None
        )
        self._pids: set[int] = set()
        self._desc: set[int] = set()
        self._desc_at = 0.0
        self.channel = ReportChannel(
            self._pids_now,
            accuracy_key=self.accuracy_key,
            rejections=self.rejections,
            percent=self.percent,
        )
        self.events: deque[MetricEvent] = deque(maxlen=MAX_EVENTS)
        self.epochs = EpochTracker()
        self._lock = threading.Lock()
        self._t0 = time.time()
        self._closed = False
        self._best_rank: int | None = None  # the best kind of accuracy accepted so far
        self._synced: set = set()  # the printed figures the reports were last read for
        self._shift: dict[str, int] = {}  # per source: 1 when its epochs count from 0
        self._accs: dict[float | None, list[tuple[str, str, float]]] = {}
        self._last_log_t = -math.inf
        self._last_log_epoch: float | None = None

    def settings_meta(self) -> dict:
        """The settings kept with the session (``metric_settings``), so a crashed one can be
        summarized the same way."""
        return {
            **self.options,
            "sam_alpha": self.alpha,
            "sam_beta": self.beta,
            "sam_unit": self.unit,
            "carbon_g_per_kwh_used": self.settings.g_per_kwh,
            "carbon_source": self.settings.source_note,
            "pue": self.settings.pue,
        }

    # -- processes
    def child_env(self) -> dict:
        """Environment for a launched script: report() writes from its first call."""
        env = {}
        if "PYTHONUNBUFFERED" not in os.environ:
            # a Python child's stdout on a pipe is block-buffered: its epoch lines would all
            # arrive at exit, each epoch mark with the final energy
            env["PYTHONUNBUFFERED"] = "1"
        try:
            d = ensure_channel_dir(self.channel.directory)
        except (OSError, UnsafeChannelDir) as e:
            # Never silent, never followed: say so, and give this run a fresh private one.
            try:
                d = private_fallback_dir()
            except OSError as e2:
                self._refuse(f"wattui.report() disabled: {e} (no private fallback: {e2})")
                return env
            self._refuse(f"{e}; using {d} for this run")
            self.channel.directory = d
            self._fallback_dir = d
        env["WATTUI_CHANNEL_DIR"] = str(d)
        return env

    def _refuse(self, msg: str) -> None:
        """Loud: stderr, the session's notes, and a warning event (the live screen's notes;
        a background recorder's stderr is only its log)."""
        self.notes.append(msg)
        print(f"wattui: warning: {msg}", file=sys.stderr, flush=True)
        try:
            self.host.add_event({"kind": "warning", "message": msg})
        except Exception:  # noqa: BLE001 - a warning must never end a recording
            pass

    def follow_pid(self, pid: int) -> None:
        self._pids.add(int(pid))
        try:
            self.channel.start_watching(pid)
        except (OSError, UnsafeChannelDir) as e:
            self._refuse(f"wattui.report() not followed: {e}")

    def watch_dirs(self) -> list[str]:
        """Directories whose changes mean new input for :meth:`poll` (and a metrics file
        that is a symbolic link: inotify watches its target)."""
        dirs = [str(self.channel.directory)]
        if self.follower is not None:
            path = os.path.abspath(self.follower.path)
            dirs.append(os.path.dirname(path))
            if os.path.islink(path):  # its target, elsewhere (and the link marks it linked)
                dirs.append(path)
        return dirs

    def _pids_now(self) -> set[int]:
        if self.run_pids is not None:  # the recorder follows the run's tree: no second scan
            return self._pids | set(self.run_pids())
        now = time.monotonic()
        if now - self._desc_at >= DESCENDANTS_EVERY_S and self._pids:
            self._desc_at = now
            desc: set[int] = set()
            try:
                import psutil

                for pid in list(self._pids):
                    try:
                        desc |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
                    except psutil.Error:
                        continue
            except ImportError:
                pass
            self._desc = desc
        return self._pids | self._desc

    # -- input
    def feed_line(self, line: bytes | str, t_wall: float) -> None:
        self.feed_lines((line,), t_wall)

    def feed_lines(self, lines, t_wall: float) -> None:
        """Complete lines of the run's stdout or stderr read at ``t_wall`` (the narrow
        interface for the recorder's drain; any thread)."""
        if self.parser is None:
            return
        with self._lock:
            for line in lines:
                evs = self.parser.feed(line, t_wall)
                new = {
                    (e.accuracy_key, e.accuracy, e.epoch)
                    for e in evs
                    if e.accuracy is not None and accuracy_rank(e.accuracy_key) <= 1
                }
                if new and not new <= self._synced:
                    self._synced = new
                    self._sync_reports()
                for ev in evs:
                    self._handle(ev)

    def _sync_reports(self) -> None:
        """Before a newly printed accuracy: the reports made before it was printed (a script
        that reports, then prints the same figure), so the stream keeps their order and
        stores the figure once, from the report. A bar redrawn with the same figure does
        not read them again."""
        try:
            for ev in self.channel.poll():
                self._handle(ev)
        except Exception:  # noqa: BLE001 - the regular poll will report what is wrong
            pass

    def _drain_reports(self, max_rounds: int = 100_000) -> None:
        """Everything the run reported before it exited (a poll reads a bounded chunk per
        process). The recorder waits a few seconds at most for the intake to close: after
        :data:`DRAIN_FULL_S` the rest is skipped to each file's last reports, the run's last
        accuracy among them, and the skipped lines are counted
        (``report_not_stored_at_exit``)."""
        full_until = time.monotonic() + DRAIN_FULL_S
        skipped = False
        for _ in range(max_rounds):
            if not skipped and time.monotonic() > full_until:
                skipped = True
                with self._lock:
                    self.channel.skip_to_tail()
            with self._lock:
                evs = self.channel.poll()
                for ev in evs:
                    self._handle(ev)
            if not evs and not self.channel.pending():
                return
        self.rejections.add("reports_left_unread")

    def poll(self, t_wall: float) -> None:
        with self._lock:
            for ev in self.channel.poll():
                self._handle(ev)
            if self.follower is not None:
                for ev in self.follower.poll(t_wall):
                    self._handle(ev)

    def _energy(self) -> float | None:
        try:
            e = self.host.energy_now()
        except Exception:  # noqa: BLE001
            return None
        return e if isinstance(e, (int, float)) and math.isfinite(e) else None

    def _reconcile(self, ev: MetricEvent) -> MetricEvent:
        """Epochs of reports and metrics files counted from 0 become 1-based (the parser
        does the same for each printed format)."""
        if ev.source != "log" and ev.epoch is not None and float(ev.epoch).is_integer():
            if ev.source not in self._shift:
                self._shift[ev.source] = 1 if ev.epoch == 0 else 0
            if self._shift[ev.source]:
                ev = dataclasses.replace(ev, epoch=ev.epoch + 1)
        return ev

    def _stream(self, ev: MetricEvent) -> MetricEvent:
        """One accuracy stream: once an epoch-level validation accuracy has appeared,
        training and per-batch accuracies are no longer the accuracy; a log line repeating
        what a report (or another line) already gave for the same epoch is not stored as a
        second accuracy; a report wins over parsed lines, and of a parsed key the epoch's
        last figure counts (see ``summary.pick_accuracies``)."""
        if ev.accuracy is None or ev.kind != "metric" or self.accuracy_key:
            return ev
        rank = accuracy_rank(ev.accuracy_key)
        strip = False
        best = self._best_rank
        if best is not None and best <= 1 and rank > best:
            strip = True
        elif rank <= 1:
            seen = self._accs.setdefault(ev.epoch, []) if ev.epoch is not None else []
            same = [s for s in seen if abs(s[2] - ev.accuracy) <= SAME_VALUE]
            if ev.source == "log":
                if any(s[0] != "log" for s in seen):
                    strip = True  # a report for this epoch wins
                elif same:
                    strip = True
            elif any(s[0] == ev.source and s[1] == (ev.accuracy_key or "") for s in same):
                strip = True  # one evaluation sent twice (a callback's on_log and on_evaluate)
            if not strip:
                self._best_rank = rank if best is None else min(best, rank)
                if ev.epoch is not None and len(seen) < 64:
                    seen.append((ev.source, ev.accuracy_key or "", ev.accuracy))
        if strip:
            self.rejections.add("accuracy_repeated" if rank <= 1 else "accuracy_not_validation")
            return dataclasses.replace(ev, accuracy=None, accuracy_key=None)
        return ev

    def _throttled(self, ev: MetricEvent) -> bool:
        """Progress-bar redraws: a log event with no (or a per-batch) accuracy and no new
        epoch is stored at most once per LOG_EVERY_S."""
        if ev.source != "log" or ev.kind != "metric":
            return False
        if ev.accuracy is not None and accuracy_rank(ev.accuracy_key) < 3:
            return False
        if ev.epoch is not None and ev.epoch != self._last_log_epoch:
            self._last_log_epoch = ev.epoch
            self._last_log_t = ev.t_wall
            return False
        if ev.t_wall - self._last_log_t < LOG_EVERY_S:
            self.rejections.add("log_throttled")
            return True
        self._last_log_t = ev.t_wall
        return False

    def _phases(self, ev: MetricEvent) -> None:
        """Where each epoch's evaluation began: at its first validation figure, the energy of
        its last training event before it (or the parser's first validation line)."""
        if ev.kind != "metric" or ev.epoch is None:
            return
        k = float(math.ceil(ev.epoch))  # Hugging Face's 0.5 is in the first epoch
        e = self._energy()
        if e is None or k in self._eval_start:
            return
        if ev.accuracy is not None and accuracy_rank(ev.accuracy_key) <= 1:
            if k in self._train_last:
                self._eval_start[k] = self._train_last[k]
        elif ev.source != "log" and not any(
            accuracy_rank(n) in (0, 1, 3) for n in ev.values if is_accuracy_key(n)
        ):
            self._note_training(k, e)

    def _handle(self, ev: MetricEvent) -> None:
        ev = self._reconcile(ev)
        self._phases(ev)
        ev = self._stream(ev)
        if self._throttled(ev):
            return
        row = ev.to_row()
        # The session's energy when the event arrived: gives measured energy per step
        # (beside wattui.watch()'s estimate) without joining samples later.
        energy = self._energy()
        row["energy_j"] = energy
        self.host.add_event(row)
        if ev.kind != "metric":
            return
        self.events.append(ev)
        ended = self.epochs.add(ev.epoch, ev.t_wall, energy, ev.accuracy is not None)
        if ended is not None:
            self._epoch_end(ended)

    def _line_phase(self, epoch: float, phase: str, t_wall: float) -> None:
        e = self._energy()
        if e is None:
            return
        k = float(math.ceil(epoch))
        if phase == "val":
            self._eval_start.setdefault(k, self._train_last.get(k, e))
        elif k not in self._eval_start:
            self._note_training(k, e)

    def _note_training(self, k: float, e: float) -> None:
        self._train_last[k] = e
        if len(self._train_last) > 4:
            self._train_last.pop(min(self._train_last))

    def _epoch_end(self, mark: tuple[float, float, float]) -> None:
        k, t, e = mark
        row = {"kind": "epoch_end", "t_wall": t, "epoch": k, "energy_j": e}
        e0 = self._eval_start.get(k)
        if e0 is not None and e >= e0:
            # the energy of this epoch's evaluation: it does not grow with the training data
            self._eval_parts.append(e - e0)
            row["values_json"] = json.dumps({"eval_j": e - e0})
        self.host.add_event(row)

    # -- results
    def summary(self, energy_j: float | None = None) -> dict:
        """The live summary (SAM, projection, CO2, cost); exporters read it through
        ``Recorder.live_metrics``."""
        with self._lock:
            evs = list(self.events)
            marks = self.epochs.marks()
        if energy_j is None:
            energy_j = self._energy()
        return summarize_metrics(
            evs,
            energy_j,
            marks,
            self.settings,
            self.alpha,
            self.beta,
            self.unit,
            self.total_epochs,
            accuracy_key=self.accuracy_key,
            data_fraction=self.data_fraction,
            start=(self._t0, 0.0),
            eval_parts=list(self._eval_parts),
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            with self._lock:
                if self.parser is not None:  # a block the output ended in (Rich's bar)
                    for ev in self.parser.flush():
                        self._handle(ev)
            self._drain_reports()  # every report the run made before it exited
            self.poll(time.time())  # the metrics file's last lines
        except Exception:  # noqa: BLE001
            pass
        with self._lock:
            m = self.epochs.finish()
            if m is not None:
                self._epoch_end(m)
        self.channel.close()
        fallback = getattr(self, "_fallback_dir", None)
        if fallback is not None:
            try:
                os.rmdir(fallback)  # empty once the channel removed its files
            except OSError:
                pass

    def final_meta(self) -> dict:
        """Fields for meta.json at the end of the run."""
        out = self.summary()
        out.pop("energy_j", None)  # the recorder's own figure stays authoritative
        out["price_per_kwh"] = self.settings.price_per_kwh
        out["data_fraction"] = self.data_fraction
        out["metric_rejections"] = self.rejections.as_dict()
        if self.notes:
            out["metric_notes"] = list(self.notes)
        return out
