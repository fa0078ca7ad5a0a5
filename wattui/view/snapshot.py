"""The live screen's view model: immutable snapshots built off the event loop.

    session files --SessionTail/session_record--> SnapshotBuilder (worker thread)
        --LiveSnapshot (frozen)--> post_message --> the UI applies it in batch_update()

Nothing here imports Textual, so it can be tested and benchmarked on its own, and it
is the only place that touches the disk on behalf of the viewer. Memory is bounded
whatever the session's length: the power history keeps per-second buckets for the
last hour and coarser buckets (merged as they fill) for everything before.

A multi-node run (``group:<ID>``) is followed by :class:`GroupSnapshotBuilder`: one
``SnapshotBuilder`` per node's session, their snapshots merged into one
(:func:`merge_snapshots`): GPUs named ``host:gpu0``, power and energy summed, SAM on
the group's total.
"""

from __future__ import annotations

import codecs
import json
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from wattui.metrics.intake import accuracy_rank
from wattui.sanitize import clean_output, clean_text
from wattui.store import schema
from wattui.store.reader import parse_event_lines
from wattui.store.safeio import MAX_META, check_regular, open_regular, read_json

ENERGY_KINDS = ("gpu", "cpu", "dram")

FINE_BUCKET_S = 1.0
FINE_POINTS = 3600  # one hour at one point a second
COARSE_POINTS = 2048  # everything older, merged pairwise as it fills
COARSE_START_S = 10.0

OUTPUT_FIRST_READ = 256 * 1024  # on opening, show at most this much of output.log's tail
OUTPUT_MAX_READ = 1 << 20  # per poll
OUTPUT_MAX_LINE = 16 * 1024
METRIC_HISTORY = 120
OTHER_METRICS = 8


# -- formatting (shared by the widgets; no Textual) ---------------------------------------
def fmt_energy(j: float | None) -> str:
    if j is None or not math.isfinite(j):
        return "n/a"
    wh = j / 3600.0
    if abs(wh) >= 1000:
        return f"{wh / 1000:.3f} kWh"
    if abs(wh) >= 100:
        return f"{wh:.1f} Wh"
    return f"{wh:.2f} Wh"


def fmt_watts(w: float | None) -> str:
    if w is None or not math.isfinite(w):
        return "n/a"
    if abs(w) >= 10000:
        return f"{w / 1000:.1f} kW"
    return f"{w:.0f} W"


def fmt_bytes(b: float | None) -> str:
    if b is None or not math.isfinite(b):
        return "n/a"
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= div:
            return f"{b / div:.1f} {unit}"
    return f"{b:.0f} B"


def fmt_pct(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.0f}%"


def fmt_duration(s: float | None) -> str:
    if s is None or not math.isfinite(s) or s < 0:
        return "n/a"
    s = int(s)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    return f"{d}d {h:02d}:{m:02d}:{sec:02d}" if d else f"{h:02d}:{m:02d}:{sec:02d}"


def fmt_num(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(x):
        return "n/a"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 10 ** -(digits - 1)):
        return f"{x:.{max(1, digits - 1)}e}"
    return f"{x:.{digits}g}" if abs(x) >= 1000 else f"{x:.{digits}f}".rstrip("0").rstrip(".")


def method_label(m: str | None) -> str:
    """How a figure was obtained, as shown next to it. Simulated is shouted."""
    if not m or m == "none":
        return "n/a"
    return "SIMULATED" if m == "simulated" else m


# -- power history ----------------------------------------------------------------------------
class PowerHistory:
    """Total watts over time in bounded memory (owned by the builder's thread).

    The last ``fine_points`` seconds are kept as one-second means; older buckets fold
    into coarse ones whose width doubles whenever there are more than ``coarse_points``.
    A 72-hour run therefore holds at most ~5,700 points.
    """

    def __init__(
        self,
        fine_s: float = FINE_BUCKET_S,
        fine_points: int = FINE_POINTS,
        coarse_points: int = COARSE_POINTS,
        coarse_s: float = COARSE_START_S,
    ):
        self.fine_s = fine_s
        self.fine_points = fine_points
        self.coarse_points = coarse_points
        self.coarse_s = coarse_s
        self.fine: deque[list[float]] = deque()  # [bucket start, sum, n]
        self.coarse: list[list[float]] = []

    def __len__(self) -> int:
        return len(self.fine) + len(self.coarse)

    def add(self, t: float, w: float, n: float = 1.0) -> None:
        """Add ``n`` readings whose sum is ``w * n`` at time ``t``."""
        b = math.floor(t / self.fine_s) * self.fine_s
        fine = self.fine
        if fine and b <= fine[-1][0]:
            last = fine[-1]  # same bucket (or a late row): fold into the newest
            last[1] += w * n
            last[2] += n
            return
        fine.append([b, w * n, n])
        while len(fine) > self.fine_points:
            t0, s, k = fine.popleft()
            self._add_coarse(t0, s, k)

    def _add_coarse(self, t: float, s: float, n: float) -> None:
        cb = math.floor(t / self.coarse_s) * self.coarse_s
        c = self.coarse
        if c and cb <= c[-1][0]:
            c[-1][1] += s
            c[-1][2] += n
            return
        c.append([cb, s, n])
        if len(c) > self.coarse_points:
            self.coarse_s *= 2
            merged: list[list[float]] = []
            for t0, s0, n0 in c:
                nb = math.floor(t0 / self.coarse_s) * self.coarse_s
                if merged and merged[-1][0] == nb:
                    merged[-1][1] += s0
                    merged[-1][2] += n0
                else:
                    merged.append([nb, s0, n0])
            self.coarse = merged

    def points(self) -> tuple[tuple[float, float], ...]:
        """(time at the bucket's middle, mean watts), oldest first."""
        hc, hf = self.coarse_s / 2, self.fine_s / 2
        out = [(t + hc, s / n) for t, s, n in self.coarse if n]
        out.extend((t + hf, s / n) for t, s, n in self.fine if n)
        return tuple(out)


# -- metrics ----------------------------------------------------------------------------------
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


# -- the snapshot -----------------------------------------------------------------------------
@dataclass(frozen=True)
class GpuRow:
    key: str
    index: int | None
    name: str
    watts: float | None
    power_method: str | None
    util_pct: float | None
    mem_used_b: float | None
    temp_c: float | None
    power_limit_w: float | None
    energy_j: float | None
    energy_method: str | None
    others: str = "n/a"  # other processes on the GPU: "none", "2 (pids ...)" or "n/a"
    run_energy_j: float | None = None  # the run's estimated share (shared GPUs)
    run_share_pct: float | None = None  # the run's share of the GPU's latest energy, %
    has_run_share: bool = False  # the session records the run's share of this GPU
    mig: bool = False  # selected through a MIG instance: figures are per parent GPU


@dataclass(frozen=True)
class CpuRow:
    key: str
    name: str
    watts: float | None
    energy_j: float | None
    method: str | None


@dataclass(frozen=True)
class LiveSnapshot:
    session_id: str
    now: float
    status: str = "starting"
    exit_code: int | None = None
    mode: str | None = None
    command: str = ""
    pid: int | None = None
    host: str = ""
    simulated: bool = False
    started_at: float | None = None
    elapsed_s: float | None = None
    gpus: tuple[GpuRow, ...] = ()
    cpus: tuple[CpuRow, ...] = ()
    total_w: float | None = None
    power_method: str | None = None
    history: tuple[tuple[float, float], ...] = ()
    proc_cpu_pct: float | None = None
    proc_rss_b: float | None = None
    metrics: MetricsSummary = field(default_factory=MetricsSummary)
    record: Mapping = field(default_factory=lambda: MappingProxyType({}))
    notes: tuple[str, ...] = ()
    output_lines: tuple[str, ...] = ()  # new lines of output.log since the last snapshot
    output_live: tuple[str, ...] = ()  # each stream's unfinished line (a progress bar), now
    has_output: bool = False
    recorder_pid: int | None = None
    recorder_started: float | None = None
    error: str | None = None
    reason: str | None = None  # why the run failed or was interrupted (sessions.failure_reason)
    seq: int = 0  # snapshot number
    group: str | None = None  # a multi-node run: its group id (session_id is "group:<ID>")
    node_count: int = 0  # a multi-node run: how many nodes' sessions it merges


# -- output.log -------------------------------------------------------------------------------
def clean_line(raw: str) -> str:
    """The one place where a line of the run's output is made safe for the screen (every
    line the output pane shows, finished or live, passes here once): colours kept, every
    other escape and control dropped (:func:`wattui.sanitize.clean_output`)."""
    return clean_output(raw)


_BREAK = re.compile(r"(\r\n|\n|\r)")
STREAMS = ("stdout", "stderr")


class TerminalLine:
    """One stream's current line, as a terminal shows it: text is appended, a ``\r``
    makes the next text replace the line (a progress bar's redraw), a newline ends it."""

    def __init__(self, skip_first: bool = False):
        self.text = ""
        self._cr = False
        self._skip = skip_first  # opened mid-file: the first line is a fragment
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, data: bytes) -> list[str]:
        """The lines ``data`` finishes (raw text, not yet cleaned)."""
        done: list[str] = []
        for piece in _BREAK.split(self._decoder.decode(data)):
            if piece in ("\n", "\r\n"):
                if not self._skip:
                    done.append(self.text)
                self._skip = False
                self.text, self._cr = "", False
            elif piece == "\r":
                self._cr = True
            elif piece:
                self.text = piece if self._cr else self.text + piece
                self._cr = False
                if len(self.text) > OUTPUT_MAX_LINE:  # a huge line with no end: show it cut
                    done.append(self.text[:OUTPUT_MAX_LINE])
                    self.text = ""
        return done


class OutputTail:
    """Follows output.log from its end (at most the last 256 KB on opening), keeping
    stdout and stderr apart (``output.streams`` says where output.log switches stream).

    ``poll()`` returns the lines finished since the last poll, in the order they were
    finished; ``live`` holds each stream's unfinished line (a progress bar mid-epoch), as
    a terminal would show it at its cursor. A stderr redraw never overwrites a stdout
    line, and lines of the two streams never merge into one."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.streams_path = self.path.with_name(schema.OUTPUT_STREAMS)
        self.offset: int | None = None
        self.lines: dict[str, TerminalLine] = {}
        self._marks: list[tuple[int, str]] = []  # (offset, stream), trimmed as we read
        self._marks_off = 0
        self._skip = False

    @property
    def partial(self) -> bytes:  # compatibility: the unfinished stdout line
        line = self.lines.get("stdout")
        return line.text.encode() if line else b""

    @property
    def live(self) -> tuple[str, ...]:
        """Each stream's unfinished line (cleaned), stdout first; empty ones left out."""
        out = []
        for name in STREAMS:
            line = self.lines.get(name)
            if line is not None and line.text and not line._skip:
                text = clean_line(line.text)
                if text.strip():
                    out.append(text)
        return tuple(out)

    def _read_marks(self) -> None:
        try:
            with open_regular(self.streams_path) as f:  # never a FIFO, a device or a symlink
                f.seek(self._marks_off)
                data = f.read()
        except OSError:
            return
        cut = data.rfind(b"\n")
        if cut < 0:
            return
        self._marks_off += cut + 1
        for row in data[: cut + 1].split(b"\n"):
            parts = row.split()
            if len(parts) == 2 and parts[0].isdigit():
                mark = (int(parts[0]), parts[1].decode("ascii", "replace"))
                if not self._marks or mark[0] > self._marks[-1][0]:  # a retried write repeats
                    self._marks.append(mark)

    def _line(self, stream: str) -> TerminalLine:
        line = self.lines.get(stream)
        if line is None:
            line = self.lines[stream] = TerminalLine(skip_first=self._skip)
        return line

    def poll(self) -> list[str]:
        try:
            size = check_regular(self.path).st_size  # never a FIFO, a device or a symlink
        except OSError:
            return []
        if self.offset is None:
            self.offset = max(0, size - OUTPUT_FIRST_READ)
            self._skip = self.offset > 0
        if size < self.offset:  # truncated or replaced
            self.offset, self.lines, self._marks, self._marks_off = 0, {}, [], 0
            self._skip = False
        if size == self.offset:
            return []
        try:
            with open_regular(self.path) as f:
                f.seek(self.offset)
                data = f.read(min(size - self.offset, OUTPUT_MAX_READ))
        except OSError:
            return []
        self._read_marks()
        start, end = self.offset, self.offset + len(data)
        self.offset = end
        marks = self._marks
        # the stream at ``start``: the last switch at or before it (stdout if none)
        i = 0
        while i + 1 < len(marks) and marks[i + 1][0] <= start:
            i += 1
        stream = marks[i][1] if marks and marks[i][0] <= start else "stdout"
        del marks[:i]  # earlier switches are behind us: bounded memory
        done: list[str] = []
        pos = start
        for off, name in marks:
            if off <= pos:
                stream = name
                continue
            if off >= end:
                break
            done += self._line(stream).feed(data[pos - start : off - start])
            pos, stream = off, name
        done += self._line(stream).feed(data[pos - start :])
        self._skip = False  # a stream first heard of later starts with a whole line
        return [clean_line(x) for x in done]


# -- following the session's samples in bounded memory -----------------------------------------
SAMPLES_CHUNK = 4 << 20  # bytes of the live CSV parsed per poll
ROWS_CHUNK = 100_000  # rows of a compacted session's Parquet read per poll
_NEEDED = (
    "t_wall",
    "seq",
    "device",
    "power_w",
    "util_pct",
    "mem_used_b",
    "temp_c",
    "power_method",
    "pids",
)


class BoundedTail:
    """Follows a session like :class:`wattui.store.reader.SessionTail`, but in bounded
    memory whatever the session's size: at most ``chunk`` bytes of the live CSV are
    parsed per poll (a viewer opened on a 72-hour run catches up over a few polls), and
    a compacted session is scanned lazily, only the columns the screen needs.

    ``poll()`` returns ``(samples, events)``: a Polars LazyFrame (or None) of the new
    sample rows, and the new event dicts. ``caught_up`` is False while a backlog remains.
    """

    def __init__(self, session_dir: Path, chunk: int | None = None, rows_chunk: int | None = None):
        self.dir = Path(session_dir)
        self.chunk = chunk or SAMPLES_CHUNK
        self.samples_off = 0
        self.columns: list[str] | None = None
        self.last_seq = -1
        self.events_off = 0
        self.events_seen = 0
        self.final_done = False
        self.caught_up = False
        self.final_rows = 0  # rows of samples.parquet already read
        self.rows_chunk = rows_chunk or ROWS_CHUNK
        self.events_final: list | None = None

    def _read_lines(self, path: Path, offset: int, limit: int | None) -> tuple[bytes, int]:
        with open_regular(path) as f:
            f.seek(offset)
            data = f.read() if limit is None else f.read(limit)
            while limit is not None and len(data) == limit and b"\n" not in data[-65536:]:
                more = f.read(65536)  # a chunk with no line end at all: read on to one
                if not more:
                    break
                data += more
        self.caught_up = limit is None or len(data) < limit
        cut = data.rfind(b"\n")
        if cut < 0:
            return b"", offset
        return data[: cut + 1], offset + cut + 1

    def poll(self):
        import polars as pl

        d = self.dir
        if self.final_done:
            self.caught_up = True
            return None, []
        live = d / schema.SAMPLES_LIVE
        events: list[dict] = []
        frame = None
        try:
            data, self.samples_off = self._read_lines(live, self.samples_off, self.chunk)
            if self.columns is None:
                nl = data.find(b"\n")
                if nl >= 0:  # the file's own header: older sessions have fewer columns
                    self.columns = data[:nl].decode("ascii", "replace").strip().split(",")
                data = data[nl + 1 :] if nl >= 0 else b""
            if data.strip() and self.columns:
                sch = schema.sample_schema()
                have = [c for c in _NEEDED if c in self.columns]
                df = pl.read_csv(
                    data,
                    has_header=False,
                    new_columns=self.columns,
                    schema={c: sch.get(c, pl.String) for c in self.columns},
                    truncate_ragged_lines=True,
                    ignore_errors=True,
                ).select(have)
                frame = _with_needed(df.lazy())
            caught = self.caught_up
            try:
                ev_data, self.events_off = self._read_lines(
                    d / schema.EVENTS_LIVE, self.events_off, self.chunk
                )
                events = parse_event_lines(ev_data)
            except FileNotFoundError:
                pass
            self.caught_up = caught and self.caught_up
        except FileNotFoundError:
            final = d / schema.SAMPLES_FINAL
            try:
                check_regular(final)
            except FileNotFoundError:
                return None, []
            # Compacted: scan the Parquet a slice of rows per poll (bounded memory).
            scan = pl.scan_parquet(final)
            have = [c for c in _NEEDED if c in scan.collect_schema().names()]
            frame = _with_needed(scan.select(have).slice(self.final_rows, self.rows_chunk))
            n = frame.select(pl.len()).collect().item()
            self.final_rows += n
            ev_final = d / schema.EVENTS_FINAL
            if self.events_final is None and os.path.lexists(ev_final):
                try:
                    with open_regular(ev_final) as f:
                        events = pl.read_parquet(f).slice(self.events_seen).to_dicts()
                finally:
                    self.events_final = []  # read once; an unreadable one is noted once
            self.caught_up = n < self.rows_chunk
            self.final_done = self.caught_up and self.events_final is not None
        if frame is not None:
            frame = frame.filter(
                pl.col("t_wall").is_not_null()
                & pl.col("device").is_not_null()
                & (pl.col("seq") > self.last_seq)
            )
            mx = frame.select(pl.col("seq").max()).collect(engine="streaming").item()
            if mx is None:
                frame = None
            else:
                self.last_seq = int(mx)
        self.events_seen += len(events)
        return frame, events


def _with_needed(frame):
    """Add the needed columns an older session file lacks, as nulls."""
    import polars as pl

    sch = schema.sample_schema()
    names = frame.collect_schema().names()
    missing = [pl.lit(None, dtype=sch[c]).alias(c) for c in _NEEDED if c not in names]
    return frame.with_columns(missing).select(_NEEDED) if missing else frame


def _other_processes(gpu_pids, run_pids) -> str:
    """Processes on a GPU that are not the run's: "none", "2 (pids 1, 2)", or "n/a"."""
    if not gpu_pids:
        return "n/a" if gpu_pids is None else "none"
    on_gpu = {p for p in str(gpu_pids).split(";") if p and p != "-"}
    mine = {p for p in str(run_pids or "").split(";") if p}
    others = sorted(on_gpu - mine, key=int)
    if not others:
        return "none"
    return f"{len(others)} (pids {', '.join(others[:3])}{'...' if len(others) > 3 else ''})"


# -- the builder ------------------------------------------------------------------------------
class SnapshotBuilder:
    """Reads one session incrementally and builds :class:`LiveSnapshot` objects.

    Call :meth:`poll` from one thread only (the viewer's worker). ``clock`` is the
    viewer's notion of now (tests freeze it).
    """

    def __init__(
        self,
        session_dir: Path,
        clock: Callable[[], float] = time.time,
        record_fn: Callable | None = None,
    ):
        from wattui.store.reader import Session

        self.dir = Path(session_dir)
        self.clock = clock
        self.session = Session.open(self.dir)
        self.tail = BoundedTail(self.dir)
        self.history = PowerHistory()
        self.metrics = MetricTracker()
        self.output = OutputTail(self.dir / schema.OUTPUT)
        self.latest: dict[str, dict] = {}
        self.notes: deque[str] = deque(maxlen=20)
        self._record_fn = record_fn
        self._record: dict = {}
        self._record_cost = 0.0
        self._record_at = -1e9
        self._seq = 0
        self._last_total: float | None = None

    @property
    def caught_up(self) -> bool:
        """False while a backlog of the session's files remains to be read."""
        return self.tail.caught_up

    def _record_of(self, session, force: bool) -> dict:
        """session_record, at most about once a second and less if it is slow."""
        now = time.monotonic()
        if not force and now - self._record_at < max(0.9, 10 * self._record_cost):
            return self._record
        fn = self._record_fn
        if fn is None:
            from wattui.sessions import session_record as fn
        t0 = time.monotonic()
        try:
            self._record = fn(session)
        except Exception as e:  # noqa: BLE001 - a metrics bug must not kill the viewer
            self.notes.append(f"cannot compute the session record: {e}")
        self._record_cost = time.monotonic() - t0
        self._record_at = now
        return self._record

    def poll(self) -> LiveSnapshot:
        from wattui.store.reader import CorruptSession, Session

        try:
            session = Session.open(self.dir)  # fresh meta: status, exit code, pid
        except CorruptSession as e:
            return LiveSnapshot(
                session_id=clean_text(self.dir.name), now=self.clock(), error=clean_text(str(e))
            )
        meta = session.meta
        status = session.status
        kinds = {d.get("key"): d.get("kind") for d in meta.get("devices", [])}
        try:
            frame, events = self.tail.poll()
            if frame is not None:
                self._fold_samples(frame, kinds)
        except Exception as e:  # noqa: BLE001 - a torn file: try again next time
            events = []
            self.notes.append(f"cannot read samples: {e}")
        for ev in events:
            self.metrics.add(ev)
            if ev.get("kind") in ("warning", "signal") and ev.get("message"):
                self.notes.append(str(ev["message"]))
        finished = status != "running"
        rec = self._record_of(session, force=finished or not self._record)
        lines = self.output.poll()
        return self._build(session, meta, status, rec, lines)

    def _fold_samples(self, frame, kinds: dict) -> None:
        """Fold new sample rows (a LazyFrame) into the latest readings and the history,
        materialising only small aggregates."""
        import polars as pl

        energy_keys = [k for k, v in kinds.items() if v in ENERGY_KINDS]
        last = (
            frame.group_by("device").agg(pl.all().sort_by("seq").last()).collect(engine="streaming")
        )
        for row in last.iter_rows(named=True):
            self.latest[row["device"]] = row
        tot = frame.filter(pl.col("device").is_in(energy_keys) & pl.col("power_w").is_not_null())
        per_tick = tot.group_by("seq").agg(pl.col("t_wall").first(), pl.col("power_w").sum())
        per_sec = (
            per_tick.with_columns(b=(pl.col("t_wall") / FINE_BUCKET_S).floor())
            .group_by("b")
            .agg(
                t=pl.col("t_wall").min(),
                w=pl.col("power_w").mean(),
                n=pl.len(),
                last_seq=pl.col("seq").max(),
                last_w=pl.col("power_w").sort_by("seq").last(),
            )
            .sort("b")
            .collect(engine="streaming")
        )
        if not per_sec.height:
            return
        add = self.history.add
        for t, w, n in zip(
            per_sec["t"].to_list(), per_sec["w"].to_list(), per_sec["n"].to_list(), strict=True
        ):
            add(t, w, n)
        self._last_total = float(per_sec["last_w"][-1])

    def _build(self, session, meta: dict, status: str, rec: dict, lines: list[str]) -> LiveSnapshot:
        now = self.clock()
        self._seq += 1
        started = meta.get("started_at")
        ended = meta.get("ended_at") if status != "running" else None
        if ended is None and status != "running":
            ended = rec.get("ended_at")
        elapsed = None
        if started is not None:
            elapsed = max(0.0, (ended if ended is not None else now) - started)
        rec_by_key = {g["key"]: g for g in (rec.get("gpus") or []) + (rec.get("cpu") or [])}
        gpus, cpus = [], []
        power_methods = set()
        for d in meta.get("devices", []):
            key = d.get("key")
            lat = self.latest.get(key, {})
            r = rec_by_key.get(key, {})
            if d.get("kind") == "gpu":
                pm = lat.get("power_method") or d.get("power_method")
                power_methods.add(pm)
                watts = _finite(lat.get("power_w"))
                if status != "running":  # a finished run: its mean, labelled so
                    watts, pm = _finite(r.get("mean_w")), "mean"
                gpus.append(
                    GpuRow(
                        key=key,
                        index=d.get("index"),
                        name=clean_text(d.get("name") or key),
                        watts=watts,
                        power_method=pm,
                        util_pct=_finite(lat.get("util_pct")) if status == "running" else None,
                        mem_used_b=_finite(lat.get("mem_used_b")) if status == "running" else None,
                        temp_c=_finite(lat.get("temp_c")) if status == "running" else None,
                        power_limit_w=_finite(d.get("power_limit_w")),
                        energy_j=_finite(r.get("energy_j")),
                        energy_method=d.get("energy_method"),
                        others=_other_processes(
                            lat.get("pids"), self.latest.get("proc", {}).get("pids")
                        )
                        if status == "running"
                        else "n/a",
                        run_energy_j=_finite(r.get("run_energy_j")),
                        run_share_pct=_finite(self.latest.get(f"{key}:run", {}).get("util_pct"))
                        if status == "running"
                        else None,
                        has_run_share="run_energy_j" in r,
                        mig=any(str(n).startswith("MIG:") for n in d.get("notes") or ()),
                    )
                )
            elif d.get("kind") in ("cpu", "dram"):
                power_methods.add(d.get("power_method"))
                cpus.append(
                    CpuRow(
                        key=key,
                        name=clean_text(d.get("name") or key),
                        watts=_finite(lat.get("power_w")) if status == "running" else None,
                        energy_j=_finite(r.get("energy_j")),
                        method=d.get("energy_method"),
                    )
                )
        proc = self.latest.get("proc", {}) if status == "running" else {}
        from wattui.sessions import command_label

        command = clean_text(" ".join(command_label(meta.get("command")).split()))  # one line
        if meta.get("mode") == "attach" and meta.get("pid"):
            command = f"PID {meta['pid']}" + (f" ({command})" if command else "")
        power_methods.discard(None)
        reason = None
        if status not in ("running", "finished"):
            from wattui.sessions import failure_reason

            reason = failure_reason(session)
        return LiveSnapshot(
            session_id=session.id,
            now=now,
            status=status,
            exit_code=meta.get("exit_code"),
            mode=meta.get("mode"),
            command=command,
            pid=meta.get("pid"),
            host=clean_text(meta.get("host")),
            simulated=bool(meta.get("simulated")),
            started_at=started,
            elapsed_s=elapsed,
            gpus=tuple(gpus),
            cpus=tuple(cpus),
            total_w=self._last_total if status == "running" else None,
            power_method="+".join(sorted(power_methods)) or None,
            history=self.history.points(),
            proc_cpu_pct=_finite(proc.get("util_pct")),
            proc_rss_b=_finite(proc.get("mem_used_b")),
            metrics=self.metrics.summary(),
            record=MappingProxyType(dict(rec)),
            notes=tuple(clean_text(n, 300) for n in list(self.notes)[-5:]),
            output_lines=tuple(lines),
            output_live=self.output.live,
            has_output=meta.get("mode") == "launch" or os.path.lexists(self.dir / schema.OUTPUT),
            recorder_pid=meta.get("recorder_pid"),
            recorder_started=meta.get("recorder_started"),
            reason=reason,
            seq=self._seq,
        )


# -- multi-node groups ------------------------------------------------------------------------
GROUP_RESCAN_S = 5.0  # how often a running group's store is looked at for nodes that joined


def _sum_histories(
    hists: Sequence[tuple[tuple[float, float], ...]], held: Sequence[bool]
) -> tuple[tuple[float, float], ...]:
    """Power histories of several nodes summed at every time any of them has a point: each
    node's last value at or before that time; nothing before its first point, nor after
    its last unless ``held`` (a node still running)."""
    series = [(h, keep) for h, keep in zip(hists, held) if h]
    if not series:
        return ()
    if len(series) == 1:
        return tuple(series[0][0])
    times = sorted({t for h, _ in series for t, _ in h})
    idx = [-1] * len(series)
    out = []
    for t in times:
        total = 0.0
        for k, (h, keep) in enumerate(series):
            i = idx[k]
            while i + 1 < len(h) and h[i + 1][0] <= t:
                i += 1
            idx[k] = i
            if i >= 0 and (keep or t <= h[-1][0]):
                total += h[i][1]
        out.append((t, total))
    return tuple(out)


def merge_snapshots(
    group_id: str, snaps: Sequence[LiveSnapshot], now: float, seq: int = 0
) -> LiveSnapshot:
    """One snapshot for the nodes of a group (``snaps``: one per node's session)."""
    from wattui.groups import GROUP_PREFIX, merge_group

    sid = f"{GROUP_PREFIX}{group_id}"
    if not snaps:
        return LiveSnapshot(session_id=sid, now=now, group=group_id, seq=seq)
    recs = [dict(s.record) for s in snaps if s.record and s.record.get("id")]
    merged: dict = merge_group(group_id, recs) if recs else {}
    nodes = merged.get("nodes") or []
    order = {n["id"]: i for i, n in enumerate(nodes)}
    label_of = {n["id"]: n["label"] for n in nodes}
    snaps = sorted(snaps, key=lambda s: (order.get(s.session_id, len(order)), s.session_id))
    labels = [label_of.get(s.session_id) or s.host or s.session_id for s in snaps]

    statuses = {s.status for s in snaps}
    status = next(
        (st for st in ("running", "starting", "failed", "interrupted", "finished") if st in statuses),
        snaps[0].status,
    )
    running = status == "running"
    starts = [s.started_at for s in snaps if s.started_at is not None]
    started = min(starts) if starts else None
    elapsed = None
    if started is not None:
        ends = [
            s.started_at + (s.elapsed_s or 0.0)
            for s in snaps
            if s.started_at is not None and s.status != "running"
        ]
        end = now if running or not ends else max(ends)
        elapsed = max(0.0, end - started)
    gpus = tuple(
        replace(g, key=f"{label}:{g.key}", index=None)
        for s, label in zip(snaps, labels)
        for g in s.gpus
    )
    cpus = tuple(
        replace(c, key=f"{label}:{c.key}") for s, label in zip(snaps, labels) for c in s.cpus
    )
    watts = [s.total_w for s in snaps if s.status == "running" and s.total_w is not None]
    methods = sorted({m for s in snaps if s.power_method for m in s.power_method.split("+")})
    cpu_pcts = [s.proc_cpu_pct for s in snaps if s.proc_cpu_pct is not None]
    rss = [s.proc_rss_b for s in snaps if s.proc_rss_b is not None]
    metrics = max((s.metrics for s in snaps), key=lambda m: m.count)
    notes = [f"{label}: {n}" for s, label in zip(snaps, labels) for n in s.notes]
    errors = [f"{label}: {s.error}" for s, label in zip(snaps, labels) if s.error]
    with_output = [(s, label) for s, label in zip(snaps, labels) if s.has_output]
    if len(with_output) > 1:  # several nodes print: say which line is whose
        lines = tuple(f"[{label}] {x}" for s, label in with_output for x in s.output_lines)
        live = tuple(f"[{label}] {x}" for s, label in with_output for x in s.output_live)
    else:
        lines = tuple(x for s, _ in with_output for x in s.output_lines)
        live = tuple(x for s, _ in with_output for x in s.output_live)
    if errors and len(errors) < len(snaps):
        notes += errors
    reasons = [f"{label}: {s.reason}" for s, label in zip(snaps, labels) if s.reason]
    n = len(snaps)
    return LiveSnapshot(
        session_id=sid,
        now=now,
        status=status,
        exit_code=merged.get("exit_code") if not running else None,
        mode=snaps[0].mode,
        command=snaps[0].command,
        pid=None,
        host=f"{n} node{'s' if n != 1 else ''}",
        simulated=any(s.simulated for s in snaps),
        started_at=started,
        elapsed_s=elapsed,
        gpus=gpus,
        cpus=cpus,
        total_w=sum(watts) if running and watts else None,
        power_method="+".join(methods) or None,
        history=_sum_histories([s.history for s in snaps], [s.status == "running" for s in snaps]),
        proc_cpu_pct=sum(cpu_pcts) if cpu_pcts else None,
        proc_rss_b=sum(rss) if rss else None,
        metrics=metrics,
        record=MappingProxyType(merged),
        notes=tuple(notes)[-5:],
        output_lines=lines,
        output_live=live,
        has_output=bool(with_output),
        recorder_pid=None,  # the nodes' recorders run elsewhere: the viewer stops none
        recorder_started=None,
        error="; ".join(errors) if errors and len(errors) == len(snaps) else None,
        reason="; ".join(reasons) or None,
        seq=seq,
        group=group_id,
        node_count=n,
    )


class GroupSnapshotBuilder:
    """Follows every session of one multi-node group in a shared store: one
    :class:`SnapshotBuilder` per node, polled in turn (same thread), merged into one
    :class:`LiveSnapshot` by :func:`merge_snapshots`. While the group runs, the store is
    looked at every few seconds for nodes that joined late."""

    def __init__(
        self,
        store_root: Path,
        group_id: str,
        clock: Callable[[], float] = time.time,
        record_fn: Callable | None = None,
    ):
        from wattui.groups import GROUP_PREFIX

        if group_id.startswith(GROUP_PREFIX):
            group_id = group_id[len(GROUP_PREFIX) :]
        self.root = Path(store_root)
        self.group = group_id
        self.clock = clock
        self._record_fn = record_fn
        self.parts: dict[str, SnapshotBuilder] = {}
        self._checked: set[str] = set()
        self._scan_at = time.monotonic()
        self._seq = 0
        self._last_status = "running"
        self._scan()
        if not self.parts:
            raise LookupError(f"no session of group {group_id!r} in {self.root}")

    @property
    def caught_up(self) -> bool:
        return all(b.caught_up for b in self.parts.values())

    def _scan(self) -> None:
        from wattui.store.paths import sessions_dir

        base = sessions_dir(self.root)
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if e.name in self._checked or e.name.startswith(".") or e.is_symlink():
                continue
            try:
                meta = read_json(os.path.join(e.path, schema.META), MAX_META)
            except (OSError, ValueError):
                continue  # not a session, or meta.json half written: look again next time
            self._checked.add(e.name)
            if not isinstance(meta, dict) or str(meta.get("group") or "") != self.group:
                continue
            try:
                self.parts[e.name] = SnapshotBuilder(
                    Path(e.path), clock=self.clock, record_fn=self._record_fn
                )
            except Exception:  # noqa: BLE001 - unreadable now: retry at the next scan
                self._checked.discard(e.name)

    def poll(self) -> LiveSnapshot:
        if self._last_status in ("running", "starting"):
            t = time.monotonic()
            if t - self._scan_at >= GROUP_RESCAN_S:
                self._scan_at = t
                self._scan()
        snaps = [b.poll() for b in self.parts.values()]
        self._seq += 1
        snap = merge_snapshots(self.group, snaps, self.clock(), self._seq)
        self._last_status = snap.status
        return snap


def stop_recorder(
    recorder_pid: int | None,
    recorder_started: float | None,
    grace_s: float = 10.0,
    wait_s: float = 5.0,
    should_stop: Callable[[], bool] | None = None,
    attached_pid: int | None = None,
) -> str:
    """Stop a run the way Ctrl+C would, then wait for its recorder to finish the session.

    Launch mode: SIGINT to the recorder, which forwards it to the run's process group.
    Attach mode (``attached_pid``): the recorder does not own the process, so SIGINT goes
    to the process itself; the recorder sees it end and finishes. Either way SIGTERM
    follows after ``grace_s`` if the recorder is still there. Blocking: call it from a
    thread. Returns what happened, in words."""
    import signal

    import psutil

    if not recorder_pid:
        return "no recorder to stop"
    try:
        p = psutil.Process(int(recorder_pid))
        if recorder_started is not None and abs(p.create_time() - float(recorder_started)) > 2.0:
            return "the recorder has already exited"
        os.kill(attached_pid or p.pid, signal.SIGINT)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return "the recorder has already exited"
    except (psutil.AccessDenied, PermissionError):
        return "not allowed to signal the run"

    def wait(seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if should_stop is not None and should_stop():
                return False
            try:
                if not p.is_running() or p.status() == psutil.STATUS_ZOMBIE:
                    return True
            except psutil.NoSuchProcess:
                return True
            time.sleep(0.1)
        return False

    if wait(grace_s):
        return "stopped"
    try:
        if attached_pid:
            os.kill(attached_pid, signal.SIGTERM)
            if wait(wait_s):
                return "stopped"
            os.kill(p.pid, signal.SIGINT)  # the process ignores us: stop recording it
        else:
            p.terminate()
    except (psutil.NoSuchProcess, ProcessLookupError):
        pass
    except (psutil.AccessDenied, PermissionError):
        return "not allowed to signal the run"
    return "stopped" if wait(wait_s) else "the recorder did not exit"
