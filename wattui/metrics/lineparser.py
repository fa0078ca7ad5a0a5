"""Lines of a training script's output -> metric events, with the state kept across lines.

The formats themselves are in :mod:`wattui.metrics.lineformats`; this module keeps the current
epoch, 0- or 1-based counters, percent or fraction per key, Rich's wrapped blocks and tables,
and names each value for what it is.
"""

from __future__ import annotations

import math
import re

from wattui.metrics.intake import (
    MAX_EPOCH,
    MAX_LINE_CHARS,
    MAX_RAW_CHARS,
    STEP_SUFFIXES,
    TRAIN_TOKENS,
    VAL_TOKENS,
    MetricEvent,
    PercentJudge,
    Rejections,
    is_accuracy_key,
    make_event,
    name_tokens,
)
from wattui.metrics.lineformats import Parsed, is_keras_bar, parse_segment

__all__ = ["LineParser", "compile_extra_patterns"]


def _to_float(s: str) -> float | None:
    try:
        return float(s)
    except (ValueError, OverflowError):
        return None


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


_RICH_KEY = re.compile(r"(?<![\w/.\-])[A-Za-z][\w/.\-]*:(?=\s|$)")


class LineParser:
    """Turns lines of a training script's output into metric events.

    The formats are in :mod:`wattui.metrics.lineformats`. Across lines it keeps the current
    epoch (carried to later lines: Keras prints ``Epoch 3/10`` before that epoch's metrics),
    whether each epoch counter is 0- or 1-based (events carry 1-based epochs: the counter of
    a format whose first value is 0, or that is 0-based by design, is shifted), the largest
    total seen, and percent or fraction per key (:class:`PercentJudge`). Metric names are
    made to say what they are: a bar's own accuracy becomes ``train_acc``, a per-batch one
    ``..._step``, a ``Test:`` line's ``acc1`` ``test_acc1``, a summary's ``best_val_acc``.

    ``feed`` returns the events of a line (one per segment split on carriage returns); a
    segment whose values repeat the previous event exactly (progress-bar redraws) is not
    emitted again. Lightning's Rich bar, printed on a pipe with its metrics column wrapped
    over several lines, is held until the block ends (or :meth:`flush`).
    """

    def __init__(
        self,
        extra_patterns: dict[str, str] | None = None,
        accuracy_key: str | None = None,
        rejections: Rejections | None = None,
        percent: PercentJudge | None = None,
    ) -> None:
        self.extra = compile_extra_patterns(extra_patterns)
        self.accuracy_key = accuracy_key
        self.rejections = rejections if rejections is not None else Rejections()
        self.percent = percent if percent is not None else PercentJudge()
        self._last: dict | None = None
        self._epoch: float | None = None  # the current epoch (1-based), carried to later lines
        self._total: int | None = None
        self._shift: dict[str, int] = {}
        self._rich: list | None = None  # [text, metrics column, t_wall] of a wrapped Rich bar
        self._in_eval = False
        self._table: list[str] | None = None  # the header of a table (fastai prints one)
        # called with (epoch, "val" | "train", t_wall): the first line of a validation/test
        # phase, and every other line of an epoch
        self.on_phase = None

    def feed(self, line: str | bytes, t_wall: float) -> list[MetricEvent]:
        try:
            return self._feed(line, t_wall)
        except Exception:  # noqa: BLE001 - a parser must never take the recorder down
            self.rejections.add("parser_error")
            return []

    def flush(self, t_wall: float | None = None) -> list[MetricEvent]:
        """The end of the output: emit what a wrapped block still holds."""
        if self._rich is None:
            return []
        text, _col, t = self._rich
        self._rich = None
        try:
            return self._segment(text, t if t_wall is None else t_wall)
        except Exception:  # noqa: BLE001
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
        events: list[MetricEvent] = []
        for seg in line.replace("\x00", "").split("\r"):
            if len(seg) > MAX_LINE_CHARS:
                self.rejections.add("line_too_long")
                continue
            if self._rich is not None:
                text, col, t = self._rich
                if (
                    seg[:1].isspace()
                    and len(seg) > col
                    and "━" not in seg[:col]
                    and len(text) < MAX_LINE_CHARS
                ):
                    self._rich[0] = text + " " + seg[col:].strip()
                    continue
                events.extend(self.flush(t))
            if not seg.strip():
                continue
            if "━" in seg and not is_keras_bar(seg):  # Rich's table, maybe wrapped
                bar_end = seg.rfind("━")
                m = _RICH_KEY.search(seg, bar_end)
                if m is not None:
                    self._rich = [seg, m.start(), t_wall]
                    continue
            events.extend(self._segment(self._table_row(seg), t_wall))
        return events

    def _table_row(self, seg: str) -> str:
        """Tables (fastai's ``epoch train_loss valid_loss accuracy time`` then one row per
        epoch): a header of names is remembered and a row of as many cells becomes
        ``name=value`` pairs."""
        cells = seg.split()
        if 3 <= len(cells) <= 32 and "epoch" in (c.lower() for c in cells):
            if all(re.fullmatch(r"[A-Za-z_][\w/.\-@]*", c) for c in cells) and any(
                is_accuracy_key(c) or "loss" in c.lower() for c in cells
            ):
                self._table = cells
                return seg
        if self._table is not None and len(cells) == len(self._table):
            pairs = [
                f"{name}={cell}"
                for name, cell in zip(self._table, cells, strict=True)
                if _to_float(cell) is not None
            ]
            if len(pairs) >= 2 and _to_float(cells[0]) is not None:
                return " ".join(pairs)
        elif self._table is not None and cells:
            self._table = None
        return seg

    def _name(self, k: str, p: Parsed) -> str:
        if k in self.extra or k == "step":
            return k
        if p.summary:
            return k if k.lower().startswith(p.summary) else f"{p.summary}_{k}"
        if not (is_accuracy_key(k) or k in p.percent):
            return k
        t = set(name_tokens(k))
        if not (t & VAL_TOKENS or t & TRAIN_TOKENS):
            if p.phase == "val":
                k = f"{p.phase_word}_{k}"
            elif p.phase == "train" or p.bar:
                k = f"train_{k}"
        if (p.batch or (p.stepped and not t & VAL_TOKENS)) and not k.lower().endswith(
            STEP_SUFFIXES + ("_epoch",)
        ):
            k += "_step"
        return k

    def _segment(self, seg: str, t_wall: float) -> list[MetricEvent]:
        p = parse_segment(seg, self.extra)
        if p is None:
            return []
        for r in p.rejected:
            self.rejections.add(r)
        if p.epoch is not None and p.summary is None:
            if not math.isfinite(p.epoch) or p.epoch < 0 or p.epoch > MAX_EPOCH:
                self.rejections.add("epoch_absurd")
            else:
                fmt = p.epoch_format or "?"
                if fmt not in self._shift:
                    zero = p.zero_based or (p.epoch == 0 and fmt != "dict")
                    self._shift[fmt] = 1 if zero else 0
                self._epoch = p.epoch + self._shift[fmt]
        if p.total is not None and p.summary is None:
            if 0 < p.total <= MAX_EPOCH:
                self._total = max(self._total or 0, p.total)
            else:
                self.rejections.add("total_epochs_absurd")
        phase = p.phase
        if phase is None and not p.batch and any(
            set(name_tokens(k)) & VAL_TOKENS for k in p.values
        ):
            phase = "val"  # "epoch 3 val_loss 0.4 val_acc 0.9": validation figures
        if p.summary is None and self.on_phase is not None and self._epoch is not None:
            if phase == "val":
                if not self._in_eval:
                    self.on_phase(self._epoch, "val", t_wall)
            elif p.values or p.epoch is not None:
                self.on_phase(self._epoch, "train", t_wall)
        if phase == "val" and p.summary is None:
            self._in_eval = True
        elif phase == "train" or (p.epoch is not None and p.epoch_format != "dict"):
            self._in_eval = False
        raw: dict = {}
        pct: set[str] = set()
        for k, v in p.values.items():
            if k == "epoch":
                continue
            nk = self._name(k, p)
            if nk in raw:
                continue
            raw[nk] = v
            if k in p.percent:
                pct.add(nk)
        if not raw and (p.epoch is None or p.summary is not None):
            return []
        if p.summary is None:
            if self._epoch is not None:
                raw["epoch"] = self._epoch
            if self._total is not None:
                raw["total_epochs"] = self._total
        if raw == self._last:
            return []
        self._last = dict(raw)
        ev = make_event(
            raw,
            t_wall,
            "log",
            accuracy_key=self.accuracy_key,
            rejections=self.rejections,
            percent=self.percent,
            printed_percent=pct,
        )
        return [ev] if ev is not None else []
