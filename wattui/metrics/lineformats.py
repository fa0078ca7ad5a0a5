"""What one segment of a training script's output says: metrics, epoch, phase, level.

Pure functions, no state: :func:`parse_segment` turns one line (a segment between ``\\r`` /
``\\n``) into a :class:`Parsed`; :class:`wattui.metrics.intake.LineParser` keeps the state
across lines (the current epoch, 0- or 1-based counters, percent or fraction per key).

Formats recognised (from the libraries' current versions):

- Keras 3 progbar: ``Epoch 3/10`` then ``469/469 ━━━━ 3s 6ms/step - accuracy: 0.87 - ...
  - val_accuracy: 0.95`` (a bar before its last step is per batch);
- Hugging Face Trainer dicts, numbers or strings: ``{'eval_accuracy': '0.5703', 'epoch': '1'}``;
- Lightning TQDM bar ``Epoch 3: 100%|███| 50/50 [..., val_acc=0.912]`` (0-based epoch) and
  Rich bar ``Epoch 6/6 ━━━ 32/32 ... val_acc: 0.812`` (0-based, of ``max_epochs - 1``);
  sanity-check bars are skipped;
- tqdm loops: ``Epoch 1: 100%|███| 938/938 [..., loss=0.3, acc=0.91]`` (a bar's own metrics
  are training metrics unless its description says validation/eval/test);
- torchvision references (MetricLogger): ``Epoch: [0]  [ 10/782] ... acc1: 10.0 (9.5)``,
  ``Test:  Acc@1 27.800 Acc@5 60.000`` (percent); timm ``Train: 0 [ 0/390 (0%)]``,
  ``Test: [  78/78] ... Acc@1:  6.2000 (  6.2000)`` (percent, the running mean in brackets);
- PyTorch tutorials: ``Epoch 1`` on its own line, ``Accuracy: 54.3%, Avg loss: 1.2``;
- scikit-learn verbose: ``Iteration 3, loss = 0.41``, ``Validation score: 0.78``,
  ``-- Epoch 1``;
- ``logging`` lines: dates and times are blanked before anything is read (``12:30`` is a time,
  not an accuracy of 0.12);
- summaries (``Best val_acc: 0.95 at epoch 2``, ``final``, ``summary``): kept as
  ``best_...``/``final_...`` values, never an epoch nor the run's accuracy.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field

from wattui.metrics.intake import name_tokens

__all__ = [
    "Parsed", "parse_segment", "clean_segment", "literal_dict", "is_keras_bar", "MAX_EPOCH"
]

MAX_EPOCH = 1_000_000  # an epoch or total above this is not an epoch counter
MAX_DICT_CHARS = 4096
MAX_KEY_CHARS = 64

NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf(?:inity)?)\b"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]")
# dates and clock times (logging prefixes, ETAs, "accuracy 12:30"): blanked before parsing
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?=[T\s_,\]]|$)")
_TIME = re.compile(r"(?<![\w.])\d{1,3}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?![\w.])")
_PHASE_WORD = r"val|valid|validation|validating|eval|evaluation|evaluating|test|testing|dev"
_VAL_TOKEN = re.compile(rf"^(?:{_PHASE_WORD})$", re.I)
_TRAIN_TOKEN = re.compile(r"^(?:train|training)$", re.I)
_QUALIFIER = rf"(?:{_PHASE_WORD}|train|training|best|final|mean|avg|average)"
# name: value / name=value; a qualifier word may precede the name ("Validation score: 0.78")
_KV = re.compile(
    rf"(?<![\w/.\-@])([A-Za-z][\w/.\-@]{{0,63}})\s*[:=]\s*"
    rf"({NUM})(?:\s*/\s*(\d+)(?![\w.]))?(?![\w./])(\s*%)?(?:\s*\(\s*({NUM})\s*(%)?\s*\))?",
    re.I,
)
_QUALIFIED = re.compile(rf"(?<![\w/.\-@])({_QUALIFIER})[ \t]+$", re.I)
# "Acc@1 27.800" (torchvision's epoch summary: no separator)
_AT_KV = re.compile(rf"(?<![\w@])([A-Za-z]+@\d+)\s+({NUM})(?![\w.])(\s*%)?", re.I)
_METRIC_NAME = re.compile(
    r"acc|accuracy|loss|top\d|f1|precision|recall|auc|map|iou|bleu|rouge|ppl|perplexity"
    r"|score|^lr$|learning_rate|^epoch$|^step$|^global_step$|^total_epochs$",
    re.I,
)
# "accuracy 91.2%", "Test accuracy 0.9", "acc 0.91" (no separator)
_PLAIN_ACC = re.compile(
    rf"(?<![\w/.\-])((?:(?:{_PHASE_WORD}|train|training)[ _])?(?:accuracy|acc))"
    rf"\s+(?:of\s+|is\s+)?({NUM})(?![\w.:])(\s*%)?",
    re.I,
)
# PyTorch tutorial style: "Accuracy of the network on the 10000 test images: 54 %"
_LOOSE_ACC = re.compile(rf"\b(accuracy)\b[^:=\n]{{0,60}}?[:=]\s*({NUM})(?![\w.])(\s*%)?", re.I)

# epoch counters
_RICH_BAR = re.compile(r"━|╸|╺")
# its batches and elapsed-time columns ("32/32 0:00:01 •"; the rest may wrap)
_LIGHTNING_RICH = re.compile(r"\d+/[\d-]+\s+(?:-|\d+):[\d-]{2}:[\d-]{2}\s+•")
_TQDM_BAR = re.compile(r"(\d{1,3})%\|[^|]*\|\s*(\d+)/(\d+)")
# Keras: "469/469 ━━━━ 3s 6ms/step - accuracy: ..." (verbose=1), "469/469 - 3s - ..." (2)
_KERAS_BAR = re.compile(r"^\s*(\d+)/(\d+)\s+(?:━|\[[=>.]*\]|-\s+\d+(?:\.\d+)?m?s\b)")
_BATCH_IDX = re.compile(r"\[\s*(\d+)\s*/\s*(\d+)\s*(?:\(\s*\d+%\s*\))?\]")
_EPOCH_OF = re.compile(
    r"\bepoch\s*[:#=]?\s*[\[(]?\s*(\d{1,7}|" + NUM + r")\s*(?:/|of)\s*(\d{1,7})\b", re.I
)
# a total announced on its own: "epochs=4", "max_epochs: 10", "Num Epochs = 3"
_TOTAL_KV = re.compile(
    r"(?<![\w/.\-])(?:epochs|num[_ ]epochs|max[_ ]epochs|n[_ ]epochs|total[_ ]epochs"
    r"|num[_ ]train[_ ]epochs)\s*[:=]\s*(\d{1,7})(?![\w.])",
    re.I,
)
# mmengine (OpenMMLab): "Epoch(val) [3][79/79]  accuracy/top1: 35.2000"
_EPOCH_MM = re.compile(r"\bepoch\((train|val|test)\)\s*\[\s*(\d{1,7})\s*\]", re.I)
# a row of a boxed table (Lightning's test/validate summary): "│  test_acc  │  0.85  │"
_BOX_ROW = re.compile(
    rf"^[\s│┃|]*([A-Za-z][\w/.\-@]{{0,63}})\s*[│┃|]\s*({NUM})\s*[│┃|]?\s*$", re.I
)
_EPOCH_TV = re.compile(r"\bepoch:\s*\[\s*(\d{1,7})\s*\]", re.I)  # torchvision MetricLogger
_EPOCH_TIMM = re.compile(r"^\s*train:\s*(\d{1,7})\s+\[", re.I)
_EPOCH_COLON = re.compile(r"\bepoch\s+(\d{1,7})\s*:", re.I)
_EPOCH_HEADING = re.compile(r"^[\s\-=#*>|]*epoch\s*[:#]?\s*(\d{1,7})\s*[\-=#*:]*\s*$", re.I)
_EPOCH_WORD = re.compile(r"^[\s\-=#*>|\[]*epoch\s*[:#]?\s*(\d{1,7})\b", re.I)
_ITERATION = re.compile(r"^\s*iteration\s+(\d{1,7})\s*,", re.I)
# scikit-learn's HistGradientBoosting: "[3/60] 3 trees, 93 leaves ..., val score: 0.74833"
_ROUNDS = re.compile(r"^\s*\[\s*(\d{1,7})\s*/\s*(\d{1,7})\s*\]\s+\d+\s+trees?\b", re.I)
# Lightning's ModelCheckpoint: "Epoch 0, global step 25: 'val_acc' reached 0.54000 (best ...)"
_REACHED = re.compile(rf"'([A-Za-z][\w/.\-@]{{0,63}})'\s+reached\s+({NUM})(?![\w.])", re.I)
_SUMMARY = re.compile(
    r"(?<![\w/.\-])(best|final|summary|overall|highest)(?![\w/.\-])", re.I
)
_PHASE_HEADER = re.compile(
    rf"^[\s\-=#*>|\[]*({_PHASE_WORD}|train|training)(?:ing)?\b(?:\s+dataloader\b)?", re.I
)
_STEP_KV = re.compile(r"(?<![\w/.\-])(?:global_step|step|iter|it|batch)\s*[:=]\s*\d", re.I)
_PERCENT_NAME = re.compile(r"@1|^acc1$|^top1$|^prec1$|^prec@1$", re.I)
_HINT = re.compile(r"[:=@%│┃]|acc|epoch|iteration", re.I)
_SANITY = re.compile(r"^\s*sanity\s+check", re.I)


@dataclass
class Parsed:
    """What a segment says. ``values`` are numbers as printed (percent not yet scaled)."""

    values: dict[str, float] = field(default_factory=dict)
    percent: set[str] = field(default_factory=set)  # keys printed as percent (% or Acc@1)
    epoch: float | None = None  # as printed
    epoch_format: str | None = None  # which counter: 'of', 'rich', 'colon', 'tv', ...
    zero_based: bool | None = None  # known from the format
    total: int | None = None  # total epochs (already corrected for 0-based formats)
    phase: str | None = None  # 'val' | 'train' | None, from the line's header
    phase_word: str = "val"  # the header's word for a validation phase: val, eval, test
    batch: bool = False  # a per-batch line (a bar before its last step)
    summary: str | None = None  # 'best' | 'final' | ... for summary lines
    bar: bool = False  # a progress bar (its own metrics are training ones)
    stepped: bool = False  # the line counts steps ("step=25 acc=0.59"): a training step's
    rejected: list[str] = field(default_factory=list)


def clean_segment(seg: str) -> str:
    """The segment without terminal escapes, dates and clock times."""
    seg = _ANSI.sub("", seg)
    if ":" in seg or "-" in seg:
        seg = _DATE.sub(" ", seg)
        seg = _TIME.sub(" ", seg)
    return seg


def literal_dict(s: str) -> dict | None:
    """A dict literal (``ast.literal_eval`` only, never code), or None."""
    try:
        d = ast.literal_eval(s)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return d if isinstance(d, dict) else None


def _num(s: str) -> float | None:
    try:
        f = float(s)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def canonical_key(key: str) -> str:
    """``Acc@1`` -> ``acc1``, ``Validation score`` -> ``validation_score``; else as printed."""
    k = key.strip()
    if "@" in k:
        k = k.lower().replace("@", "")
    if " " in k or "\t" in k:
        k = re.sub(r"\s+", "_", k.lower())
    if k.lower() in ("epoch", "step", "iteration"):
        k = k.lower()
    return k


def _put(p: Parsed, key: str, num: str, pct: bool) -> None:
    f = _num(num)
    if f is None:
        p.rejected.append("not_finite")
        return
    key = canonical_key(key)
    if key in p.values:
        return
    p.values[key] = f
    if pct:
        p.percent.add(key)


def _dict_segment(p: Parsed, s: str) -> bool:
    if len(s) > MAX_DICT_CHARS or not (s.startswith("{") and s.endswith("}")):
        return False
    d = literal_dict(s)
    if d is None:
        p.rejected.append("unparseable_dict")
        return True
    for k, v in d.items():
        if not isinstance(k, str) or not k or len(k) > MAX_KEY_CHARS:
            continue
        if isinstance(v, bool):
            continue
        if isinstance(v, str):  # transformers 5.x formats values as strings ('%.4g')
            v = v.strip()
            pct = v.endswith("%")
            f = _num(v.rstrip("%").strip())
            if f is None:
                continue
            p.values[k] = f
            if pct:
                p.percent.add(k)
            continue
        if isinstance(v, (int, float)):
            f = _num(v)
            if f is None:
                p.rejected.append("not_finite")
                continue
            p.values[k] = f
    ep = p.values.get("epoch")
    if ep is not None:
        p.epoch, p.epoch_format = ep, "dict"
    return True


def _epoch(p: Parsed, s: str, raw: str = "") -> None:
    m = _EPOCH_MM.search(s)
    if m:
        p.epoch, p.epoch_format = float(m.group(2)), "mm"
        p.phase = "train" if m.group(1).lower() == "train" else "val"
        p.phase_word = "test" if m.group(1).lower() == "test" else "val"
        return
    m = _EPOCH_TV.search(s)
    if m:
        p.epoch, p.epoch_format, p.zero_based = float(m.group(1)), "tv", True
        p.phase = "train"  # MetricLogger's header of a training epoch
        return
    m = _EPOCH_TIMM.search(s)
    if m:
        p.epoch, p.epoch_format, p.zero_based, p.phase = float(m.group(1)), "timm", True, "train"
        return
    m = _EPOCH_OF.search(s)
    if m:
        k, tot = _num(m.group(1)), int(m.group(2))
        if k is None:
            return
        if _RICH_BAR.search(s[m.end() :]) and _LIGHTNING_RICH.search(raw):
            # Lightning's Rich bar: "Epoch k/max_epochs-1", then batches, "0:00:01 • 0:00:00"
            p.epoch, p.epoch_format, p.zero_based = k, "rich", True
            p.total = tot + 1
        else:
            p.epoch, p.epoch_format = k, "of"
            p.total = tot if tot > 0 else None
        return
    m = _EPOCH_COLON.search(s)
    if m:
        p.epoch = float(m.group(1))
        if _TQDM_BAR.search(s[m.end() :]):  # Lightning's TQDM bar: current_epoch, 0-based
            p.epoch_format, p.zero_based = "lightning", True
        else:
            p.epoch_format = "colon"
        return
    m = _EPOCH_HEADING.match(s) or _EPOCH_WORD.match(s)
    if m:
        p.epoch, p.epoch_format = float(m.group(1)), "heading"
        return
    m = _ITERATION.match(s)
    if m:
        p.epoch, p.epoch_format = float(m.group(1)), "iteration"
        return
    m = _ROUNDS.match(s)
    if m:
        p.epoch, p.epoch_format = float(m.group(1)), "rounds"
        p.total = int(m.group(2)) or None


def _total(p: Parsed, s: str) -> None:
    if p.total is None:
        m = _TOTAL_KV.search(s)
        if m and int(m.group(1)) > 0:
            p.total = int(m.group(1))


def _level(p: Parsed, s: str) -> None:
    m = _TQDM_BAR.search(s)
    if m:
        p.bar = True
        p.batch = int(m.group(2)) < int(m.group(3))
        return
    m = _KERAS_BAR.match(s)
    if m:
        p.bar = True
        p.batch = int(m.group(1)) < int(m.group(2))
        return
    if _RICH_BAR.search(s):
        p.bar = True
        m = re.search(r"(?<![\w/])(\d+)/(\d+)(?![\w/])", s[s.find("━") :] if "━" in s else s)
        if m:
            p.batch = int(m.group(1)) < int(m.group(2))
        return
    m = _BATCH_IDX.search(s)
    if m and p.epoch_format != "rounds":
        i, n = int(m.group(1)), int(m.group(2))
        # MetricLogger counts i of n (last n-1); timm i of last_idx (last == n)
        p.batch = i < n - 1


def is_keras_bar(seg: str) -> bool:
    return _KERAS_BAR.match(_ANSI.sub("", seg)) is not None


def _phase(p: Parsed, s: str) -> None:
    if p.phase is not None:
        return
    m = _PHASE_HEADER.match(s)
    if m:
        w = m.group(1).lower()
        p.phase = "train" if w.startswith("train") else "val"
        if w.startswith("eval"):
            p.phase_word = "eval"
        elif w.startswith("test"):
            p.phase_word = "test"


def parse_segment(seg: str, extra: dict | None = None) -> Parsed | None:
    """Parse one segment; None when it is nothing wattui reads (a sanity-check bar)."""
    p = Parsed()
    raw = _ANSI.sub("", seg)
    for name, pat in (extra or {}).items():  # user patterns see the segment as printed
        m = pat.search(raw)
        if m and m.group(1) is not None:
            _put(p, name, m.group(1), False)
            p.values[name] = p.values.pop(canonical_key(name), p.values.get(name))
    s = clean_segment(raw).strip()
    if not s:
        return p
    if _SANITY.match(s):
        return None
    if _dict_segment(p, s):
        return p
    if not _HINT.search(s):  # nothing any format below could read: most output lines
        return p
    summ = _SUMMARY.search(s)
    first_metric = None
    _epoch(p, s, raw)
    _total(p, s)
    _level(p, s)
    _phase(p, s)
    m = _BOX_ROW.match(s)
    if m and _METRIC_NAME.search(m.group(1)):
        _put(p, m.group(1), m.group(2), False)
        first_metric = m.start()
    for m in _REACHED.finditer(s):
        _put(p, m.group(1), m.group(2), False)
        first_metric = m.start() if first_metric is None else min(first_metric, m.start())
    for m in _AT_KV.finditer(s):
        _put(p, m.group(1), m.group(2), True)
        first_metric = m.start() if first_metric is None else min(first_metric, m.start())
    for m in _KV.finditer(s):
        key = name = m.group(1)
        if not _METRIC_NAME.search(name) and "@" not in name:
            continue
        start = m.start()
        q = _QUALIFIED.search(s, max(0, start - 16), start)
        if q is not None and name.lower() not in ("epoch", "step", "iteration"):
            key, start = f"{q.group(1)} {name}", q.start()
        if first_metric is None or start < first_metric:
            first_metric = start
        if m.group(3) is not None:  # "Accuracy: 9844/10000 (98%)": a count of a total
            num, den = _num(m.group(2)), int(m.group(3))
            if num is not None and den > 0 and 0 <= num <= den:
                _put(p, key, repr(num / den), False)
            else:
                p.rejected.append("bad_ratio")
        elif m.group(5) is not None:  # "acc1: 10.0 (9.5)": the running mean, in brackets
            # MetricLogger's acc1 and timm's Acc@1 are percentages
            pct = bool(m.group(6) or m.group(4)) or bool(_PERCENT_NAME.search(name))
            _put(p, key, m.group(5), pct)
        else:
            _put(p, key, m.group(2), bool(m.group(4)))
    if not any(_accuracy_like(k) for k in p.values):
        for m in _PLAIN_ACC.finditer(s):
            _put(p, m.group(1), m.group(2), bool(m.group(3)))
            if first_metric is None or m.start() < first_metric:
                first_metric = m.start()
    if not any(_accuracy_like(k) for k in p.values):
        m = _LOOSE_ACC.search(s)
        if m:
            _put(p, "accuracy", m.group(2), bool(m.group(3)))
            if first_metric is None or m.start() < first_metric:
                first_metric = m.start()
    for k in [k for k in p.values if k.lower() in ("epoch", "step", "iteration")]:
        v = p.values.pop(k)
        if k.lower() == "epoch" and p.epoch is None:
            p.epoch, p.epoch_format = v, "kv"
        elif k.lower() == "step":
            p.values["step"] = v
            p.stepped = True
    if _STEP_KV.search(s):
        p.stepped = True
    if summ is not None and (first_metric is None or summ.start() <= first_metric):
        # "Best val_acc: 0.95 at epoch 2", "Restoring ... from the best epoch: 2": a summary,
        # never the run's accuracy nor its epoch
        p.summary = summ.group(1).lower()
    return p


def _accuracy_like(key: str) -> bool:
    t = name_tokens(key)
    return any(x in ("acc", "accuracy", "acc1", "top1") for x in t)
