"""Log-line patterns, metrics-file following, accuracy validation, hostile input."""

from __future__ import annotations

import json
import math
import os

import pytest

from wattui.metrics.intake import (
    MetricEvent,
    MetricsFileFollower,
    Rejections,
    choose_accuracy,
    event_from_row,
    make_event,
    validate_accuracy,
)
from wattui.metrics.lineparser import LineParser


def one(parser: LineParser, line) -> MetricEvent:
    evs = parser.feed(line, 100.0)
    assert len(evs) == 1, evs
    return evs[0]


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "x, want",
    [(0, 0.0), (0.0, 0.0), (1, 1.0), (0.91, 0.91), (91.2, 0.912), (100, 1.0), (1.5, 0.015)],
)
def test_validate_accuracy_accepts(x, want):
    assert validate_accuracy(x) == pytest.approx(want)


@pytest.mark.parametrize(
    "x", [-0.1, 100.01, 150, math.nan, math.inf, -math.inf, float("1e309"), "0.9", None, True]
)
def test_validate_accuracy_rejects_and_counts(x):
    r = Rejections()
    assert validate_accuracy(x, r) is None
    assert r.total == 1


def test_choose_accuracy_preference_and_override():
    assert choose_accuracy({"accuracy": 0.8, "val_accuracy": 0.7}) == "val_accuracy"
    assert choose_accuracy({"acc": 0.8, "eval_accuracy": 0.7, "loss": 1}) == "eval_accuracy"
    assert choose_accuracy({"train_acc": 0.9, "test/acc": 0.8}) == "test/acc"
    assert choose_accuracy({"top5_acc": 0.9, "loss": 1}) is None
    assert choose_accuracy({"loss": 1}) is None
    assert choose_accuracy({"acc": 0.8, "my_metric": 0.5}, "my_metric") == "my_metric"
    assert choose_accuracy({"acc": 0.8}, "my_metric") is None


def test_make_event_drops_bad_accuracy_from_values():
    r = Rejections()
    ev = make_event(
        {"val_acc": 150.0, "loss": math.nan, "step": 3, "epoch": 2}, 1.0, "report", rejections=r
    )
    assert ev.accuracy is None and "val_acc" not in ev.values and "loss" not in ev.values
    assert ev.step == 3 and ev.epoch == 2
    assert r.counts["accuracy_above_100"] == 1 and r.counts["not_finite"] == 1


def test_event_row_roundtrip_and_rekey():
    ev = make_event({"val_acc": 0.8, "acc": 0.6, "epoch": 1, "model": "m"}, 5.0, "report", pid=7)
    row = ev.to_row()
    assert set(row) >= {
        "t_wall",
        "source",
        "kind",
        "epoch",
        "step",
        "total_epochs",
        "accuracy",
        "values_json",
        "pid",
    }
    assert row["kind"] == "metric" and row["accuracy"] == 0.8 and row["pid"] == 7
    json.dumps(row, allow_nan=False)
    back = event_from_row(row)
    assert back.accuracy == 0.8 and back.text == {"model": "m"} and back.epoch == 1
    assert event_from_row(row, accuracy_key="acc").accuracy == 0.6


# ----------------------------------------------------------------- log lines


def test_keras_lines():
    p = LineParser()
    ev = one(p, "Epoch 3/10")
    assert ev.epoch == 3 and ev.total_epochs == 10 and ev.accuracy is None
    ev = one(
        p,
        "1563/1563 [====] - 5s 3ms/step - loss: 0.4123 - accuracy: 0.8512 - "
        "val_loss: 0.3000 - val_accuracy: 0.9120",
    )
    assert ev.accuracy == pytest.approx(0.912) and ev.values["loss"] == pytest.approx(0.4123)
    assert ev.epoch == 3 and ev.total_epochs == 10  # carried from the "Epoch 3/10" line
    ev = one(LineParser(), "accuracy: 0.9")
    assert ev.accuracy == pytest.approx(0.9)


def test_hf_trainer_dict_lines():
    p = LineParser()
    ev = one(p, "{'eval_loss': 0.25, 'eval_accuracy': 0.91, 'eval_runtime': 3.2, 'epoch': 3.0}")
    assert ev.accuracy == pytest.approx(0.91) and ev.epoch == 3.0
    ev = one(p, "{'loss': 0.5, 'learning_rate': 5e-05, 'epoch': 0.5}")
    assert ev.accuracy is None and ev.values["learning_rate"] == 5e-05


def test_hf_dict_never_evaluates_code(tmp_path):
    p = LineParser()
    marker = tmp_path / "pwned"
    assert p.feed(f"{{'a': __import__('os').system('touch {marker}')}}", 1.0) == []
    assert p.feed("{'accuracy': float('nan')}", 1.0) == []
    assert not marker.exists()


def test_lightning_progress_bar():
    p = LineParser()
    line = (
        "\rEpoch 3: 100%|██████████| 50/50 [00:05<00:00,  9.5it/s, v_num=0, val_acc=0.912, "
        "train_loss=0.300]"
    )
    ev = one(p, line)
    assert ev.accuracy == pytest.approx(0.912) and ev.epoch == 4  # the bar counts from 0
    assert p.feed(line, 101.0) == []  # identical redraw is not repeated


@pytest.mark.parametrize(
    "line, want",
    [
        ("accuracy 91.2%", 0.912),
        ("acc: 0.91", 0.91),
        ("Test accuracy: 0.88", 0.88),
        ("val_acc=91.5", 0.915),
        ("Accuracy of the network on the 10000 test images: 57 %", 0.57),
        ("loss 0.3 lr 0.1", None),
    ],
)
def test_plain_accuracy(line, want):
    evs = LineParser().feed(line, 1.0)
    got = evs[0].accuracy if evs else None
    assert got == (pytest.approx(want) if want is not None else None)


def test_epoch_forms():
    assert one(LineParser(), "epoch=3 step=1200 loss=0.3").epoch == 3
    assert one(LineParser(), "epoch=3 step=1200 loss=0.3").step == 1200
    assert one(LineParser(), "Epoch 7 of 90").total_epochs == 90


def test_extra_patterns():
    p = LineParser({"top1": r"Top-1: ([0-9.]+)", "wer": r"WER ([0-9.]+)"})
    ev = one(p, " * Top-1: 76.1 WER 12.5")
    assert ev.values["top1"] == pytest.approx(76.1) and ev.accuracy == pytest.approx(0.761)
    assert ev.values["wer"] == 12.5


@pytest.mark.parametrize(
    "rx, msg", [("([0-9", "bad regular expression"), ("acc [0-9.]+", "capture group")]
)
def test_bad_extra_pattern_is_a_clear_value_error(rx, msg):
    with pytest.raises(ValueError, match=msg) as e:
        LineParser({"acc": rx})
    assert "\n" not in str(e.value) and "--metric" in str(e.value)


@pytest.mark.parametrize(
    "line",
    [
        b"\xff\xfe\x00\x01\x02binary\x00\x00junk acc",
        "x" * 1_000_000,
        "acc: " + "9" * 1_000_000,
        "acc: nan",
        "val_accuracy: NaN",
        "accuracy: 1e309",
        "accuracy: -0.3",
        "acc 150%",
        "val_acc=150",
        "{'accuracy': 1e309}",
        "{'accuracy': -5}",
        "{" + "'a': 1, " * 200_000 + "}",
        "{'a': " + "[" * 5000 + "]" * 5000 + "}",
        "\r" * 100_000,
        "(" * 10_000 + "acc: 0.5",
    ],
)
def test_hostile_lines_never_crash_or_become_accuracy(line):
    p = LineParser()
    for ev in p.feed(line, 1.0):
        assert ev.accuracy is None or ev.accuracy == 0.5
        assert all(math.isfinite(v) for v in ev.values.values())


def test_hostile_counted():
    p = LineParser()
    for line in ["acc 150%", "accuracy: 1e309", "accuracy: -0.3", "x" * 1_000_000]:
        assert p.feed(line, 1.0) == []
    assert p.rejections.total >= 4


# ----------------------------------------------------------------- metrics files


def test_follow_lightning_csv(tmp_path):
    path = tmp_path / "metrics.csv"
    f = MetricsFileFollower(path)
    assert f.poll(1.0) == []  # not there yet
    path.write_text("epoch,step,train_loss,val_acc,val_loss\n0,49,0.9,,\n")
    evs = f.poll(2.0)
    assert len(evs) == 1 and evs[0].values == {"epoch": 0.0, "step": 49.0, "train_loss": 0.9}
    with open(path, "a") as fh:
        fh.write("0,49,,0.61,0.8\n1,99,0.7,,\n1,99,,0.7")  # last line torn
    evs = f.poll(3.0)
    assert [e.accuracy for e in evs] == [pytest.approx(0.61), None]
    assert evs[0].source == "file" and evs[0].t_wall == 3.0
    with open(path, "a") as fh:
        fh.write("2,0.65\n")
    (ev,) = f.poll(4.0)
    assert ev.accuracy == pytest.approx(0.72) and ev.epoch == 1


def test_follow_jsonl_truncation_and_rotation(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"epoch": 1, "acc": 0.5}\n{"epoch": 2, "acc": 0.6}\nnot json\n')
    f = MetricsFileFollower(path)
    assert [e.accuracy for e in f.poll(1.0)] == [0.5, 0.6]
    assert f.rejections.counts["bad_json_line"] == 1
    path.write_text('{"epoch": 1, "acc": 0.3}\n')  # truncated and restarted
    assert [e.accuracy for e in f.poll(2.0)] == [0.3]
    new = tmp_path / "m2.jsonl"
    new.write_text('{"acc": 0.2}\n')
    os.replace(new, path)  # rotated: a new inode
    assert [e.accuracy for e in f.poll(3.0)] == [0.2]


def test_follow_csv_rewritten_with_new_column_is_not_repeated(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,train_loss\n0,0.9\n")
    f = MetricsFileFollower(path)
    assert len(f.poll(1.0)) == 1
    path.write_text("epoch,train_loss,val_acc\n0,0.9,\n0,,0.55\n")  # CSVLogger rewrite
    evs = f.poll(2.0)
    assert [e.accuracy for e in evs] == [pytest.approx(0.55)]


def test_follow_hostile_file(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_bytes(
        b"epoch,acc\n"
        + b"\x00\xff" * 100_000
        + b"\n1,nan\n1,1e309\n1,-3\n1,150\n"
        + b"y" * (2 << 20)
    )
    f = MetricsFileFollower(path)
    evs = f.poll(1.0)
    assert all(e.accuracy is None for e in evs)
