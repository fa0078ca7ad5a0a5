"""Metric intake: the event record, accuracy validation, log-line parsing, metrics-file following.

Three ways accuracy reaches wattui, all producing :class:`MetricEvent`:

- ``report``: ``wattui.report(...)`` lines read by :class:`wattui.metrics.channel.ReportChannel`;
- ``log``: lines of the training script's output fed to
  :class:`wattui.metrics.lineparser.LineParser`;
- ``file``: a metrics file (CSV with header, or JSON lines) followed by
  :class:`MetricsFileFollower`.

Everything here treats its input as hostile: binary junk, megabyte lines, ``NaN``, ``1e309``,
negative or ``150%`` accuracies never crash anything and never become an accuracy. Rejected
values are counted in a :class:`Rejections` object.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field

from wattui.model.values import finite_float

__all__ = [
    "MetricEvent",
    "Rejections",
    "validate_accuracy",
    "choose_accuracy",
    "is_accuracy_key",
    "make_event",
    "MetricsFileFollower",
    "ACCURACY_PREFERENCE",
    "MAX_LINE_CHARS",
]

MAX_EPOCH = 1_000_000  # an epoch (or total) above this is no real run's
MAX_LINE_CHARS = 4096  # longer segments of a log line are not parsed (counted as too long)
MAX_RAW_CHARS = 1 << 16  # a raw line beyond this is cut before splitting on \r
MAX_KEY_CHARS = 64
MAX_TEXT_CHARS = 200
TEXT_KEYS = ("model", "name")

# Which metric SAM uses when --accuracy-key is not given, best first.
ACCURACY_PREFERENCE = (
    "val_accuracy",
    "eval_accuracy",
    "val_acc",
    "eval_acc",
    "valid_accuracy",
    "valid_acc",
    "validation_accuracy",
    "val_acc1",
    "val_top1",
    "test_accuracy",
    "test_acc",
    "accuracy",
    "acc",
    "acc1",
    "top1",
    "top1_accuracy",
)
_ACC_TOKENS = frozenset(("acc", "accuracy", "acc1", "top1"))
VAL_TOKENS = frozenset(
    ("val", "valid", "validation", "eval", "evaluation", "test", "testing", "dev")
)
_SCORE_TOKENS = frozenset(("score",))  # scikit-learn's "Validation score" of a classifier
# Words that make an accuracy-looking name something else: a goal, a statistic of the
# accuracy, a difference, an error rate, a summary of the run, another top-k.
_NOT_ACC_TOKENS = frozenset(
    (
        "target", "baseline", "threshold", "thresh", "min", "max", "minimum", "maximum",
        "required", "req", "goal", "std", "stddev", "var", "variance", "sem", "ci",
        "drop", "delta", "diff", "gap", "change", "gain", "improvement", "ratio", "loss",
        "err", "error", "best", "final", "prev", "previous", "top5", "acc5", "top_5",
        "balanced", "per", "class", "weighted", "macro", "micro", "expected", "random",
        "chance", "majority", "lr", "time", "count", "n", "num", "samples", "tol",
    )
)
TRAIN_TOKENS = frozenset(("train", "training", "trn"))
STEP_SUFFIXES = ("_step", "/step", ".step", "_batch")


@functools.lru_cache(maxsize=4096)
def name_tokens(name: str) -> tuple[str, ...]:
    return tuple(t for t in re.split(r"[_/.\-\s@:]+", name.lower()) if t)


class Rejections:
    """Counts what was refused and why (``reason -> count``)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, reason: str, n: int = 1) -> None:
        self.counts[reason] += n

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)

    def __repr__(self) -> str:
        return f"Rejections({dict(self.counts)!r})"


def validate_accuracy(x, rejections: Rejections | None = None) -> float | None:
    """An accuracy as a fraction in [0, 1], or None.

    Fractions (0 <= x <= 1) pass; percentages (1 < x <= 100) become fractions; negative,
    above 100, NaN, infinite and non-numbers are rejected (and counted when ``rejections``
    is given). Strings are not parsed: pass numbers.
    """
    f = _checked_accuracy(x, rejections)
    if f is None:
        return None
    return f / 100.0 if f > 1.0 else f


def _checked_accuracy(x, rejections: Rejections | None) -> float | None:
    """``x`` as a number that can be an accuracy (0 to 100, fraction or percent), else None
    with the reason counted in ``rejections``."""
    f = finite_float(x)
    reason = None
    if f is None:
        reason = "accuracy_not_finite_number"
    elif f < 0:
        reason = "accuracy_negative"
    elif f > 100:
        reason = "accuracy_above_100"
    if reason is not None:
        if rejections is not None:
            rejections.add(reason)
        return None
    return f


def is_accuracy_key(name: str) -> bool:
    """True for names that denote a top-1 style accuracy (``val_acc``, ``eval_accuracy``...).

    Not: goals and statistics of an accuracy (``target_accuracy``, ``val_acc_std``,
    ``max_acc``, ``accuracy_drop``, ``acc_loss_ratio``), error rates (``top1_err``), top-5."""
    if not isinstance(name, str):
        return False
    return _is_accuracy_name(name)


@functools.lru_cache(maxsize=4096)
def _is_accuracy_name(name: str) -> bool:
    t = name_tokens(name)
    if not t or any(x in _NOT_ACC_TOKENS for x in t):
        return False
    if any(x in _ACC_TOKENS for x in t):
        return True
    return any(x in _SCORE_TOKENS for x in t) and any(x in VAL_TOKENS for x in t)


def accuracy_rank(name: str | None) -> int:
    """Which figures the run's accuracy is, lower first: 0 an epoch-level validation/eval
    (or plainly named) accuracy; 1 a test one (``test_acc``: the accuracy when the run has
    no validation, a final test of a checkpoint when it has); 2 a training accuracy; 3 a
    validation figure on a per-batch line (``val_acc_step``: a bar redrawn mid-epoch with the
    last validation's figure); 4 a per-batch training one."""
    if not name:
        return 4
    t = name_tokens(name)
    val = any(x in VAL_TOKENS for x in t)
    if name.lower().endswith(STEP_SUFFIXES):
        return 3 if val else 4
    if any(x in TRAIN_TOKENS for x in t) and not val:
        return 2
    if val and all(x in _TEST_TOKENS for x in t if x in VAL_TOKENS):
        return 1
    return 0


_TEST_TOKENS = frozenset(("test", "testing"))
ACCURACY_KINDS = (
    "validation",
    "test",
    "training",
    "validation (per batch)",
    "training (per batch)",
)


class PercentJudge:
    """Percent or fraction, decided per (source, key) and kept: a key printed with ``%`` or in
    a percent format (``Acc@1``), or that ever showed a value above 1, is a percentage from
    then on, so a later ``0.78`` of it is 0.78 %, not 78 %."""

    def __init__(self) -> None:
        self._percent: set[tuple[str, str]] = set()

    def is_percent(self, source: str, key: str) -> bool:
        return (source, _unstep(key)) in self._percent

    def fraction(self, source: str, key: str, value: float, printed_percent: bool = False,
                 rejections: Rejections | None = None) -> float | None:
        f = _checked_accuracy(value, rejections)
        if f is None:
            return None
        k = (source, _unstep(key))
        if printed_percent or f > 1.0:
            self._percent.add(k)
        return f / 100.0 if k in self._percent else f


def _unstep(key: str) -> str:
    low = key.lower()
    for suf in STEP_SUFFIXES:
        if low.endswith(suf):
            return key[: -len(suf)]
    return key


def choose_accuracy(values: dict, accuracy_key: str | None = None) -> str | None:
    """The key in ``values`` that SAM uses as accuracy, or None.

    With ``accuracy_key`` (``--accuracy-key NAME``) only that key counts. Otherwise the first
    of :data:`ACCURACY_PREFERENCE` present, then any other accuracy-looking key, preferring
    keys that are not training-set accuracies.
    """
    if accuracy_key:
        return accuracy_key if accuracy_key in values else None
    for k in ACCURACY_PREFERENCE:
        if k in values:
            return k
    lower = {k.lower(): k for k in values if isinstance(k, str)}
    for k in ACCURACY_PREFERENCE:
        if k in lower:
            return lower[k]
    for k in ACCURACY_PREFERENCE:  # the same names with a prefix: "test_acc1", "val/acc"
        for low, orig in lower.items():
            if low.endswith(("_" + k, "/" + k, "." + k)) and is_accuracy_key(orig):
                if accuracy_rank(orig) == 0:
                    return orig
    candidates = [k for k in values if isinstance(k, str) and is_accuracy_key(k)]
    if not candidates:
        return None
    return min(candidates, key=accuracy_rank)


@dataclass(frozen=True)
class MetricEvent:
    """One batch of metrics seen at one moment, from one source."""

    t_wall: float
    source: str  # 'report' | 'log' | 'file'
    values: dict[str, float]
    epoch: float | None = None
    step: int | None = None
    total_epochs: int | None = None
    accuracy: float | None = None  # validated fraction
    pid: int | None = None
    text: dict[str, str] = field(default_factory=dict)
    kind: str = "metric"  # 'metric' | 'watch'
    accuracy_key: str | None = None

    def to_row(self) -> dict:
        """A flat dict for storage; :func:`event_from_row` reads it back."""
        payload = dict(self.values)
        for k, v in self.text.items():
            payload.setdefault(k, v)
        return {
            "t_wall": self.t_wall,
            "source": self.source,
            "kind": self.kind,
            "epoch": self.epoch,
            "step": self.step,
            "total_epochs": self.total_epochs,
            "accuracy": self.accuracy,
            "accuracy_key": self.accuracy_key,
            "values_json": json.dumps(payload, sort_keys=True, allow_nan=False),
            "pid": self.pid,
        }


def event_from_row(row: dict, accuracy_key: str | None = None) -> MetricEvent:
    """Rebuild an event from a stored row (``to_row()`` fields). With ``accuracy_key`` the
    accuracy is recomputed from the stored values under that key."""
    raw = row.get("values_json") or "{}"
    try:
        payload = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (ValueError, TypeError):
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    values = {k: v for k, v in payload.items() if finite_float(v) is not None}
    text = {k: v for k, v in payload.items() if isinstance(v, str)}
    acc = row.get("accuracy")
    key = row.get("accuracy_key")
    if accuracy_key is not None:
        key = choose_accuracy(values, accuracy_key)
        acc = validate_accuracy(values[key]) if key else None
    else:
        acc = validate_accuracy(acc) if acc is not None else None
    t = finite_float(row.get("t_wall"))
    return MetricEvent(
        t_wall=t if t is not None else 0.0,
        source=str(row.get("source") or "report"),
        values=values,
        epoch=finite_float(row.get("epoch")),
        step=_as_int(row.get("step")),
        total_epochs=_as_int(row.get("total_epochs")),
        accuracy=acc,
        pid=_as_int(row.get("pid")),
        text=text,
        kind=str(row.get("kind") or "metric"),
        accuracy_key=key,
    )


def _as_int(x) -> int | None:
    f = finite_float(x)
    if f is None or abs(f) > 2**53:
        return None
    return int(f)


def make_event(
    raw: dict,
    t_wall: float,
    source: str,
    *,
    pid: int | None = None,
    kind: str = "metric",
    accuracy_key: str | None = None,
    rejections: Rejections | None = None,
    percent: PercentJudge | None = None,
    printed_percent: frozenset | set = frozenset(),
) -> MetricEvent | None:
    """Validate a name -> value mapping into an event (None when nothing usable is left).

    Non-finite or non-numeric values are dropped (strings kept only for ``model``/``name``);
    accuracy-named values that fail :func:`validate_accuracy` are dropped from ``values``
    too, so a rejected figure is never stored where an accuracy could be read back from it.
    With ``percent`` the percent-or-fraction decision is made per source and key (keys in
    ``printed_percent`` were printed as percentages); without it, per value.
    An epoch or total beyond any real run (``1e308``) is refused and counted.
    """

    def frac(k: str, f: float, rej) -> float | None:
        if percent is None:
            return validate_accuracy(f, rej)
        return percent.fraction(source, k, f, k in printed_percent, rej)

    values: dict[str, float] = {}
    text: dict[str, str] = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not k or len(k) > MAX_KEY_CHARS:
            if rejections is not None:
                rejections.add("bad_key")
            continue
        if isinstance(v, str):
            if k in TEXT_KEYS:
                text[k] = v[:MAX_TEXT_CHARS]
            elif rejections is not None:
                rejections.add("not_a_number")
            continue
        f = finite_float(v)
        if f is None:
            if rejections is not None:
                rejections.add("not_finite" if isinstance(v, (int, float)) else "not_a_number")
            continue
        if (accuracy_key == k or is_accuracy_key(k)) and (
            finite_float(f) is None or f < 0 or f > 100
        ):
            validate_accuracy(f, rejections)
            continue
        if k in ("epoch", "total_epochs") and abs(f) > MAX_EPOCH:
            if rejections is not None:
                rejections.add(f"{k}_absurd")
            continue
        values[k] = int(f) if isinstance(v, int) and not isinstance(v, bool) else f
    if not values and not text:
        return None
    key = choose_accuracy(values, accuracy_key)
    acc = frac(key, values[key], rejections) if key is not None else None
    epoch = values.get("epoch")
    if epoch is not None and epoch < 0:
        epoch = None
    step = _as_int(values.get("step", values.get("global_step")))
    total = _as_int(values.get("total_epochs"))
    if total is not None and total <= 0:
        total = None
    return MetricEvent(
        t_wall=float(t_wall),
        source=source,
        values=values,
        epoch=epoch,
        step=step if step is None or step >= 0 else None,
        total_epochs=total,
        accuracy=acc,
        pid=pid,
        text=text,
        kind=kind,
        accuracy_key=key if acc is not None else None,
    )


def _to_float(s: str) -> float | None:
    try:
        return float(s)
    except (ValueError, OverflowError):
        return None


# ---------------------------------------------------------------------------- metrics file


class MetricsFileFollower:
    """Follows a metrics file as it grows: CSV with a header row (Lightning's CSVLogger
    ``metrics.csv``, where most cells of a row are empty) or JSON lines (one object a line).

    The file may not exist yet. A partial last line waits for its newline. Truncation,
    replacement (new inode) or a rewritten header restarts reading from the top; when the
    rewritten file still holds at least as many rows as were already read (CSVLogger rewrites
    the whole file when a new column appears), those rows are skipped rather than repeated.
    """

    MAX_READ = 4 << 20  # bytes per poll

    def __init__(
        self,
        path: str | os.PathLike,
        accuracy_key: str | None = None,
        rejections: Rejections | None = None,
        percent: PercentJudge | None = None,
    ) -> None:
        self.percent = percent
        self.path = os.fspath(path)
        self.accuracy_key = accuracy_key
        self.rejections = rejections if rejections is not None else Rejections()
        self._ino: tuple[int, int] | None = None
        self._offset = 0
        self._partial = b""
        self._prefix = b""  # the first bytes seen, to notice a rewrite
        self._header: list[str] | None = None
        self._format: str | None = None  # 'csv' | 'jsonl'
        self._rows = 0  # data rows consumed since the file (as we know it) began
        self._skip = 0

    def _restart(self, skip_rows: int) -> None:
        self._offset = 0
        self._partial = b""
        self._prefix = b""
        self._header = None
        self._format = None
        self._skip = skip_rows
        self._rows = 0

    def poll(self, t_wall: float) -> list[MetricEvent]:
        try:
            return self._poll(t_wall)
        except Exception:  # noqa: BLE001
            self.rejections.add("file_error")
            return []

    def _poll(self, t_wall: float) -> list[MetricEvent]:
        # Non-blocking open, then fstat: a FIFO or a device in its place is refused at
        # once instead of hanging the recorder (a FIFO's open blocks for a writer).
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return []
        with open(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self.rejections.add("file_not_regular")
                return []
            ino = (st.st_dev, st.st_ino)
            changed = (self._ino is not None and ino != self._ino) or st.st_size < self._offset
            if not changed and self._prefix:
                changed = f.read(len(self._prefix)) != self._prefix
            if changed:
                # rewritten with at least the old content (CSVLogger adding a column): skip
                # the rows already read; truncated or rotated to something smaller: start over
                self._restart(self._rows if st.st_size >= self._offset else 0)
            self._ino = ino
            f.seek(self._offset)
            data = f.read(self.MAX_READ)
        if not data:
            return []
        if not self._prefix:
            self._prefix = data[:256]
        self._offset += len(data)
        buf = self._partial + data
        lines = buf.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > 1 << 20:  # a runaway line without newline: give up on it
            self._partial = b""
            self.rejections.add("line_too_long")
        events: list[MetricEvent] = []
        for bline in lines:
            ev = self._line(bline, t_wall)
            if ev is not None:
                events.append(ev)
        return events

    def _line(self, bline: bytes, t_wall: float) -> MetricEvent | None:
        if len(bline) > 1 << 16:
            self.rejections.add("line_too_long")
            return None
        text = bline.decode("utf-8", "replace").rstrip("\r")
        if not text.strip():
            return None
        if self._format is None:
            self._format = "jsonl" if text.lstrip().startswith("{") else "csv"
            if self._format == "csv":
                try:
                    self._header = [h.strip() for h in next(csv.reader([text]))]
                except (csv.Error, StopIteration):
                    self._header = None
                    self._format = None
                return None
        raw: dict | None
        if self._format == "jsonl":
            try:
                obj = json.loads(text)
            except ValueError:
                self.rejections.add("bad_json_line")
                return None
            raw = obj if isinstance(obj, dict) else None
            if raw is None:
                return None
        else:
            try:
                cells = next(csv.reader([text]))
            except (csv.Error, StopIteration):
                self.rejections.add("bad_csv_line")
                return None
            raw = {}
            for name, cell in zip(self._header or [], cells, strict=False):
                cell = cell.strip()
                if not cell or not name:
                    continue
                f = _to_float(cell)
                if f is None:
                    if name in TEXT_KEYS:
                        raw[name] = cell
                    continue
                raw[name] = f
        self._rows += 1
        if self._rows <= self._skip:
            return None
        return make_event(
            raw,
            t_wall,
            "file",
            accuracy_key=self.accuracy_key,
            rejections=self.rejections,
            percent=self.percent,
        )
