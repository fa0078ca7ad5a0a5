"""Metric intake: the event record, accuracy validation, log-line parsing, metrics-file following.

Three ways accuracy reaches wattui, all producing :class:`MetricEvent`:

- ``report``: ``wattui.report(...)`` lines read by :class:`wattui.metrics.channel.ReportChannel`;
- ``log``: lines of the training script's output fed to :class:`LineParser`;
- ``file``: a metrics file (CSV with header, or JSON lines) followed by
  :class:`MetricsFileFollower`.

Everything here treats its input as hostile: binary junk, megabyte lines, ``NaN``, ``1e309``,
negative or ``150%`` accuracies never crash anything and never become an accuracy. Rejected
values are counted in a :class:`Rejections` object.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field

__all__ = [
    "MetricEvent",
    "Rejections",
    "validate_accuracy",
    "choose_accuracy",
    "is_accuracy_key",
    "make_event",
    "LineParser",
    "MetricsFileFollower",
    "compile_extra_patterns",
    "ACCURACY_PREFERENCE",
    "MAX_LINE_CHARS",
]

MAX_LINE_CHARS = 4096  # longer segments of a log line are not parsed (counted as too long)
MAX_RAW_CHARS = 1 << 16  # a raw line beyond this is cut before splitting on \r
MAX_DICT_CHARS = 4096  # dict-looking lines up to this length go to ast.literal_eval
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
_ACC_KEY = re.compile(r"(^|[_/.\- ])(acc|accuracy|acc1|top1|top_1)([_/.\- ]|$)", re.I)
_NOT_TOP1 = re.compile(r"top5|top_5|acc5|balanced", re.I)
_TRAIN = re.compile(r"(^|[_/.\- ])train", re.I)


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


def _finite_number(x) -> float | None:
    """``x`` as a finite float, or None (bools, strings, NaN, inf are not numbers here)."""
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        try:
            f = float(x)
        except (OverflowError, ValueError):
            return None
        return f if math.isfinite(f) else None
    return None


def validate_accuracy(x, rejections: Rejections | None = None) -> float | None:
    """An accuracy as a fraction in [0, 1], or None.

    Fractions (0 <= x <= 1) pass; percentages (1 < x <= 100) become fractions; negative,
    above 100, NaN, infinite and non-numbers are rejected (and counted when ``rejections``
    is given). Strings are not parsed: pass numbers.
    """
    f = _finite_number(x)
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
    return f / 100.0 if f > 1.0 else f


def is_accuracy_key(name: str) -> bool:
    """True for names that denote a top-1 style accuracy (``val_acc``, ``eval_accuracy``...)."""
    return bool(_ACC_KEY.search(name)) and not _NOT_TOP1.search(name)


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
    candidates = [k for k in values if isinstance(k, str) and is_accuracy_key(k)]
    if not candidates:
        return None
    non_train = [k for k in candidates if not _TRAIN.search(k)]
    return (non_train or candidates)[0]


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
    values = {k: v for k, v in payload.items() if _finite_number(v) is not None}
    text = {k: v for k, v in payload.items() if isinstance(v, str)}
    acc = row.get("accuracy")
    key = row.get("accuracy_key")
    if accuracy_key is not None:
        key = choose_accuracy(values, accuracy_key)
        acc = validate_accuracy(values[key]) if key else None
    else:
        acc = validate_accuracy(acc) if acc is not None else None
    t = _finite_number(row.get("t_wall"))
    return MetricEvent(
        t_wall=t if t is not None else 0.0,
        source=str(row.get("source") or "report"),
        values=values,
        epoch=_finite_number(row.get("epoch")),
        step=_as_int(row.get("step")),
        total_epochs=_as_int(row.get("total_epochs")),
        accuracy=acc,
        pid=_as_int(row.get("pid")),
        text=text,
        kind=str(row.get("kind") or "metric"),
        accuracy_key=key,
    )


def _as_int(x) -> int | None:
    f = _finite_number(x)
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
) -> MetricEvent | None:
    """Validate a name -> value mapping into an event (None when nothing usable is left).

    Non-finite or non-numeric values are dropped (strings kept only for ``model``/``name``);
    accuracy-named values that fail :func:`validate_accuracy` are dropped from ``values``
    too, so a rejected figure is never stored where an accuracy could be read back from it.
    """
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
        f = _finite_number(v)
        if f is None:
            if rejections is not None:
                rejections.add("not_finite" if isinstance(v, (int, float)) else "not_a_number")
            continue
        if (accuracy_key == k or is_accuracy_key(k)) and validate_accuracy(f, rejections) is None:
            continue
        values[k] = int(f) if isinstance(v, int) and not isinstance(v, bool) else f
    if not values and not text:
        return None
    key = choose_accuracy(values, accuracy_key)
    acc = validate_accuracy(values[key], rejections) if key is not None else None
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


# ---------------------------------------------------------------------------- log lines

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf(?:inity)?)\b"
# name: value / name=value, for metric-looking names (Keras, Lightning, generic loggers)
_KV = re.compile(r"(?<![\w/.\-])([A-Za-z][\w/.\-]{0,63})\s*[:=]\s*(" + _NUM + r")(\s*%)?", re.I)
_METRIC_NAME = re.compile(
    r"acc|accuracy|loss|top\d|f1|precision|recall|auc|map|iou|bleu|rouge|ppl|perplexity"
    r"|^lr$|learning_rate|^epoch$|^step$|^global_step$|^total_epochs$",
    re.I,
)
# "accuracy 91.2%", "Test accuracy 0.9", "acc 0.91" (no separator)
_PLAIN_ACC = re.compile(
    r"(?<![\w/.\-])((?:(?:val|valid|validation|test|eval|train)[ _])?(?:accuracy|acc))"
    r"\s+(?:of\s+|is\s+)?(" + _NUM + r")(\s*%)?",
    re.I,
)
# PyTorch tutorial style: "Accuracy of the network on the 10000 test images: 54 %"
_LOOSE_ACC = re.compile(r"\b(accuracy)\b[^:=\n]{0,60}?[:=]\s*(" + _NUM + r")(\s*%)?", re.I)
_EPOCH_OF = re.compile(r"\bepoch\s*[:#]?\s*(\d{1,7})\s*(?:/|of)\s*(\d{1,7})\b", re.I)
_EPOCH_ALONE = re.compile(r"\bepoch\s+(\d{1,7})\s*:", re.I)  # Lightning "Epoch 3: 100%|..."
_DICT_LINE = re.compile(r"^\s*\{.*\}\s*$", re.S)


def compile_extra_patterns(extra: dict[str, str] | None) -> dict[str, re.Pattern]:
    """Compile ``--metric NAME=REGEX`` patterns; a bad one raises ValueError (one line)."""
    out: dict[str, re.Pattern] = {}
    for name, rx in (extra or {}).items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w.\-/]{0,63}", name):
            raise ValueError(f"--metric {name!r}: the name must be a word like val_acc")
        try:
            pat = re.compile(rx)
        except (re.error, TypeError) as e:
            raise ValueError(f"--metric {name}={rx!r}: bad regular expression: {e}") from None
        if pat.groups < 1:
            raise ValueError(
                f"--metric {name}={rx!r}: the regular expression needs one capture group "
                "around the number, e.g. 'top1: ([0-9.]+)'"
            )
        out[name] = pat
    return out


def _to_float(s: str) -> float | None:
    try:
        f = float(s)
    except (ValueError, OverflowError):
        return None
    return f


class LineParser:
    """Turns lines of a training script's output into metric events.

    Built in: Keras (``- val_accuracy: 0.9120``), Hugging Face Trainer dict lines
    (``{'eval_accuracy': 0.91, 'epoch': 3.0}``, read with ``ast.literal_eval`` only when the
    line looks like a dict and is short), Lightning progress bars (``val_acc=0.912``), plain
    ``accuracy 91.2%`` / ``acc: 0.91``, epochs ``Epoch 3/10``, ``epoch=3``, ``'epoch': 3.0``.
    ``extra_patterns`` maps a metric name to a regex with one group capturing the number.

    ``feed`` returns at most one event per segment (a line split on carriage returns);
    a segment whose values repeat the previous event exactly (progress-bar redraws) is
    not emitted again.
    """

    def __init__(
        self,
        extra_patterns: dict[str, str] | None = None,
        accuracy_key: str | None = None,
        rejections: Rejections | None = None,
    ) -> None:
        self.extra = compile_extra_patterns(extra_patterns)
        self.accuracy_key = accuracy_key
        self.rejections = rejections if rejections is not None else Rejections()
        self._last: dict | None = None
        self._epoch: float | None = None  # the last epoch seen, carried to later lines
        self._total: int | None = None

    def feed(self, line: str | bytes, t_wall: float) -> list[MetricEvent]:
        try:
            return self._feed(line, t_wall)
        except Exception:  # noqa: BLE001 - a parser must never take the recorder down
            self.rejections.add("parser_error")
            return []

    def _feed(self, line, t_wall: float) -> list[MetricEvent]:
        if isinstance(line, (bytes, bytearray, memoryview)):
            line = bytes(line[:MAX_RAW_CHARS]).decode("utf-8", "replace")
        elif not isinstance(line, str):
            return []
        if len(line) > MAX_RAW_CHARS:
            line = line[:MAX_RAW_CHARS]
            self.rejections.add("line_too_long")
        events = []
        for seg in line.replace("\x00", "").split("\r"):
            if not seg.strip():
                continue
            if len(seg) > MAX_LINE_CHARS:
                self.rejections.add("line_too_long")
                continue
            raw = self._parse_segment(seg)
            if not raw:
                continue
            if "epoch" in raw:
                self._epoch = raw["epoch"]
                self._total = raw.get("total_epochs", self._total)
            elif self._epoch is not None:
                # Keras prints "Epoch 3/10" on its own line before that epoch's metrics
                raw["epoch"] = self._epoch
                if self._total is not None:
                    raw.setdefault("total_epochs", self._total)
            if raw == self._last:
                continue
            self._last = dict(raw)
            ev = make_event(
                raw, t_wall, "log", accuracy_key=self.accuracy_key, rejections=self.rejections
            )
            if ev is not None:
                events.append(ev)
        return events

    def _put(self, raw: dict, key: str, num: str, pct: str | None) -> None:
        f = _to_float(num)
        if f is None or not math.isfinite(f):
            self.rejections.add("not_finite")
            return
        if pct:
            if f < 0 or f > 100:
                self.rejections.add("percent_out_of_range")
                return
            f = f / 100.0
        raw.setdefault(key, f)

    def _parse_segment(self, seg: str) -> dict:
        raw: dict = {}
        # user patterns first: they win over built-ins for the same name
        for name, pat in self.extra.items():
            m = pat.search(seg)
            if m:
                g = m.group(1)
                if g is not None:
                    self._put(raw, name, g, None)
        s = seg.strip()
        if len(s) <= MAX_DICT_CHARS and _DICT_LINE.match(s):
            d = self._literal_dict(s)
            if d:
                for k, v in d.items():
                    if isinstance(k, str) and len(k) <= MAX_KEY_CHARS:
                        f = _finite_number(v)
                        if f is None:
                            if isinstance(v, (int, float)) and not isinstance(v, bool):
                                self.rejections.add("not_finite")
                            continue
                        raw.setdefault(k, f)
                return raw
        m = _EPOCH_OF.search(seg)
        if m:
            raw.setdefault("epoch", float(m.group(1)))
            tot = int(m.group(2))
            if tot > 0:
                raw.setdefault("total_epochs", tot)
        else:
            m = _EPOCH_ALONE.search(seg)
            if m:
                raw.setdefault("epoch", float(m.group(1)))
        for m in _KV.finditer(seg):
            key = m.group(1)
            if not _METRIC_NAME.search(key):
                continue
            self._put(
                raw,
                key.lower() if key.lower() in ("epoch", "step") else key,
                m.group(2),
                m.group(3),
            )
        if not any(is_accuracy_key(k) for k in raw):
            for m in _PLAIN_ACC.finditer(seg):
                key = re.sub(r"\s+", "_", m.group(1).strip().lower())
                self._put(raw, key, m.group(2), m.group(3))
        if not any(is_accuracy_key(k) for k in raw):
            m = _LOOSE_ACC.search(seg)
            if m:
                self._put(raw, "accuracy", m.group(2), m.group(3))
        return raw

    def _literal_dict(self, s: str) -> dict | None:
        try:
            d = ast.literal_eval(s)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            self.rejections.add("unparseable_dict")
            return None
        return d if isinstance(d, dict) else None


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
    ) -> None:
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
            raw, t_wall, "file", accuracy_key=self.accuracy_key, rejections=self.rejections
        )
