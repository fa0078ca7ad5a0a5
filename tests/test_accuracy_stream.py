"""One accuracy stream from reports, metrics files and output: formats, ranks, epochs, dedupe.

Transcripts here follow the libraries' real output formats (transformers 5 string dicts,
Lightning's TQDM and Rich bars, Keras 3's progbar, torchvision's MetricLogger, timm,
scikit-learn, the PyTorch tutorials); the captured corpus (tests/corpus) replays real runs.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import pytest
from conftest import FakeRecorder

from wattui.metrics.intake import (
    PercentJudge,
    accuracy_rank,
    event_from_row,
    is_accuracy_key,
    make_event,
)
from wattui.metrics.lineparser import LineParser
from wattui.metrics.projection import project
from wattui.metrics.session_metrics import metrics_from_rows
from wattui.metrics.summary import pick_accuracies
from wattui.record.intake import RecorderIntake
from wattui.record.options import MetricOptions


def run_lines(lines, *, reports=(), t0=100.0, dt=1.0, **opts):
    """Feed ``lines`` (one a second, energy 10 J a second) and ``reports`` ((index, values):
    sent by the script just before line ``index``) to an intake; return (intake, summary)."""
    rec = FakeRecorder()
    it = RecorderIntake(rec, MetricOptions(**opts))
    pending = {}
    for i, v in reports:
        pending.setdefault(i, []).append(v)
    for i, line in enumerate(lines):
        t = t0 + i * dt
        rec.energy = 10.0 * (t - t0)
        for v in pending.get(i, []):
            ev = make_event(v, t - 0.01, "report", percent=it.percent, rejections=it.rejections)
            with it._lock:
                it._handle(ev)
        it.feed_line(line, t)
    it.close()
    return it, rec, it.summary()


def accs(rec):
    """The run's accuracy stream, from the stored rows alone: (epoch, accuracy, source)."""
    evs = [event_from_row(r) for r in rec.rows if r["kind"] == "metric"]
    picked, _kind = pick_accuracies(sorted(evs, key=lambda e: e.t_wall))
    return [(e.epoch, e.accuracy, e.source) for e in picked]


# ----------------------------------------------------------------- names and numbers


@pytest.mark.parametrize(
    "name",
    [
        "target_accuracy", "baseline_accuracy", "accuracy_threshold", "min_accuracy_required",
        "val_acc_std", "accuracy_drop", "max_acc", "acc_loss_ratio", "top1_err",
        "best_val_acc", "final_accuracy", "top5_acc", "acc5", "balanced_accuracy",
    ],
)
def test_names_that_are_not_accuracies(name):
    assert not is_accuracy_key(name)
    ev = make_event({name: 0.99, "epoch": 1}, 1.0, "log")
    assert ev.accuracy is None and ev.values[name] == 0.99


@pytest.mark.parametrize(
    "name, rank",
    [
        ("val_acc", 0), ("eval_accuracy", 0), ("test_acc1", 1), ("accuracy", 0),
        ("validation_score", 0), ("train_acc", 2), ("train_accuracy", 2),
        ("train_acc_step", 4), ("val_acc_step", 3), ("val_test_acc", 0),
    ],
)
def test_ranks(name, rank):
    assert is_accuracy_key(name) and accuracy_rank(name) == rank


@pytest.mark.parametrize(
    "line", ["accuracy 12:30", "val_acc 09:45:10", "2026-12-01 17:33:30 accuracy"]
)
def test_times_are_not_accuracies(line):
    assert all(e.accuracy is None for e in LineParser().feed(line, 1.0))


def test_absurd_epochs_refused_and_counted():
    p = LineParser()
    (ev,) = p.feed("epoch=1e308 val_acc=0.5", 1.0)
    assert ev.epoch is None and ev.accuracy == 0.5
    assert p.rejections.counts["epoch_absurd"] == 1
    r = RecorderIntake(FakeRecorder())
    ev = make_event({"epoch": 1e308, "accuracy": 0.5}, 1.0, "report", rejections=r.rejections)
    assert ev.epoch is None and r.rejections.counts["epoch_absurd"] == 1


def test_percent_is_decided_per_source_and_key_not_per_value():
    j = PercentJudge()
    assert j.fraction("log", "val_acc", 45.0) == pytest.approx(0.45)
    assert j.fraction("log", "val_acc", 0.9) == pytest.approx(0.009)  # still percent
    assert j.fraction("report", "val_acc", 0.9) == pytest.approx(0.9)  # another source
    assert j.fraction("log", "other_acc", 0.9) == pytest.approx(0.9)
    # printed with % or in a percent format (torchvision's Acc@1): percent from the start
    p = LineParser()
    (ev,) = p.feed("Test:  Acc@1 0.780 Acc@5 3.000", 1.0)
    assert ev.accuracy == pytest.approx(0.0078)
    (ev,) = LineParser().feed("Test: [  78/78]  Loss: 6.9 (6.9)  Acc@1:   0.7800 (  0.7800)", 1)
    assert ev.accuracy == pytest.approx(0.0078)
    (ev,) = LineParser().feed("accuracy 0.78%", 1.0)
    assert ev.accuracy == pytest.approx(0.0078)


# ----------------------------------------------------------------- formats of real libraries

HF = [
    "{'loss': '0.6931', 'grad_norm': '1.234', 'learning_rate': '4e-05', 'epoch': '0.5'}",
    "{'eval_loss': '0.6882', 'eval_accuracy': '0.5703', 'eval_runtime': '1.2', 'epoch': '1'}",
    "{'loss': '0.6', 'grad_norm': '1.1', 'learning_rate': '2e-05', 'epoch': '1.5'}",
    "{'eval_loss': '0.61', 'eval_accuracy': '0.7', 'eval_runtime': '1.1', 'epoch': '2'}",
    "{'eval_loss': '0.63', 'eval_accuracy': '0.68', 'eval_runtime': '1.1', 'epoch': '3'}",
    "{'train_runtime': '30.1', 'train_samples_per_second': '99', 'train_loss': '0.6', "
    "'epoch': '3'}",
    # trainer.evaluate() after training: the same evaluation again
    "{'eval_loss': '0.63', 'eval_accuracy': '0.68', 'eval_runtime': '1.1', 'epoch': '3'}",
]


def test_hf_trainer_string_dicts():
    it, rec, s = run_lines(HF)
    assert s["accuracy"] == pytest.approx(0.68) and s["best_accuracy"] == pytest.approx(0.7)
    assert s["accuracy_reports"] == 3 and s["epochs_done"] == 3
    assert s["accuracy_key"] == "eval_accuracy" and s["accuracy_kind"] == "validation"


def lightning_tqdm(epochs=4, accs_=(0.61, 0.7, 0.75, 0.74)):
    out = ["Sanity Checking DataLoader 0: 100%|██████████| 2/2 [00:00<00:00, 50.0it/s]"]
    prev = None
    for ep in range(epochs):
        post = f"v_num=0, train_acc_step=1.000, train_loss=0.3{ep}"
        if prev is not None:
            post += f", val_acc={prev:.3f}"
        bars = [
            f"\rEpoch {ep}:  50%|█████     | 16/32 [00:01<00:01, 15.0it/s, {post}]",
            f"\rEpoch {ep}: 100%|██████████| 32/32 [00:02<00:00, 15.0it/s, {post}]",
            "\rValidation DataLoader 0:  50%|█████     | 4/8 [00:00<00:00, 80.0it/s]",
            f"\rEpoch {ep}: 100%|██████████| 32/32 [00:02<00:00, 15.0it/s, "
            f"v_num=0, train_acc_step=1.000, train_loss=0.3{ep}, val_acc={accs_[ep]:.3f}]",
        ]
        prev = accs_[ep]
        out.extend(bars)
    return out


def test_lightning_tqdm_bar_is_zero_based_and_train_step_is_never_accuracy():
    it, rec, s = run_lines(lightning_tqdm())
    assert s["epochs_done"] == 4
    assert s["accuracy"] == pytest.approx(0.74) and s["best_accuracy"] == pytest.approx(0.75)
    assert [a for _, a, _ in accs(rec)] == pytest.approx([0.61, 0.7, 0.75, 0.74])
    assert [e for e, _, _ in accs(rec)] == [1, 2, 3, 4]


def test_lightning_bar_with_the_callback_one_epoch_count_and_report_wins():
    lines = lightning_tqdm()
    # the callback: validation end (epoch k, 1-based) just before the bar's final redraw
    reports = [(4 * k + 4, {"accuracy": a, "epoch": k + 1, "total_epochs": 4})
               for k, a in enumerate((0.61, 0.7, 0.75, 0.74))]
    reports += [(4 * k + 4, {"epoch": k + 1, "total_epochs": 4, "step": 32 * (k + 1)})
                for k in range(4)]
    it, rec, s = run_lines(lines, reports=reports)
    assert s["epochs_done"] == 4 and s["total_epochs"] == 4 and s["epochs_note"] is None
    assert s["accuracy_reports"] == 4  # each epoch's accuracy once, from the report
    assert {src for _, _, src in accs(rec)} == {"report"}
    assert s["accuracy"] == pytest.approx(0.74)


def rich_bar_output(speed: str) -> bytes:
    """Lightning's RichProgressBar columns rendered by the real rich library on a pipe."""
    script = textwrap.dedent(
        """
        import sys
        from rich.console import Console
        from rich.progress import Progress, BarColumn, TextColumn, ProgressColumn
        from rich.text import Text
        class Batches(ProgressColumn):
            def render(self, task):
                return Text(f"{int(task.completed)}/{task.total}")
        class Times(ProgressColumn):
            def render(self, task):
                return Text("0:00:01 • 0:00:00")
        class Speed(ProgressColumn):
            def render(self, task):
                return Text(sys.argv[1])
        class Metrics(ProgressColumn):
            text = ""
            def render(self, task):
                return Text(self.text, justify="left")
        m = Metrics()
        console = Console(file=sys.stdout, width=80)
        cols = (TextColumn("{task.description}"), BarColumn(), Batches(), Times(), Speed(), m)
        with Progress(*cols, console=console, auto_refresh=False) as p:
            t = p.add_task("Epoch 0/6", total=32)
            for ep in range(7):
                p.reset(t, total=32, description=f"Epoch {ep}/6")
                for i in range(32):
                    m.text = (f"v_num: 0 train_acc_step: 1.000 train_loss: 0.4{ep} "
                              f"val_loss: 0.400 val_acc: {0.8 + ep / 100:.3f}")
                    p.update(t, advance=1)
                    p.refresh()
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script, speed], capture_output=True, check=True, timeout=60
    ).stdout


@pytest.mark.parametrize("speed", ["45.20it/s", "20029.86it/s"])  # the second wraps the times
def test_lightning_rich_bar_wrapped_on_a_pipe(speed):
    out = rich_bar_output(speed)
    assert b"val_acc:" in out and b"\n" in out.strip()  # wrapped over several lines
    it, rec, s = run_lines(out.split(b"\n"))
    assert s["accuracy"] == pytest.approx(0.86) and s["epochs_done"] == 7
    assert s["total_epochs"] == 7  # "Epoch 6/6" is the 7th of 7 (0-based, of max_epochs-1)


def keras_lines(val=True):
    out = []
    for ep in range(1, 4):
        out.append(f"Epoch {ep}/3")
        redraws = "".join(
            f"\r{i:>3}/10 ━━━━━━━━━━━━━━━━━━━━ 1s 50ms/step - accuracy: 0.9{i % 10} - loss: 1.{i}"
            for i in range(1, 10)
        )
        last = f"\r 10/10 ━━━━━━━━━━━━━━━━━━━━ 1s 60ms/step - accuracy: 0.{70 + ep} - loss: 0.9"
        if val:
            last += f" - val_accuracy: 0.{60 + 2 * ep} - val_loss: 1.0"
        out.append(redraws + last)
    return out


def test_keras_training_accuracy_never_replaces_validation():
    it, rec, s = run_lines(keras_lines())
    assert s["accuracy"] == pytest.approx(0.66) and s["best_accuracy"] == pytest.approx(0.66)
    assert s["accuracy_kind"] == "validation" and s["epochs_done"] == 3
    assert s["total_epochs"] == 3


def test_keras_without_validation_is_labelled_training():
    it, rec, s = run_lines(keras_lines(val=False))
    assert s["accuracy"] == pytest.approx(0.73) and s["accuracy_kind"] == "training"
    assert s["best_accuracy"] == pytest.approx(0.73)  # epoch-level, not a batch's 0.99


def test_keras_verbose_2():
    lines = []
    for ep in range(1, 4):
        lines += [f"Epoch {ep}/3", f"10/10 - 1s - 60ms/step - accuracy: 0.9{ep} - loss: 0.9 - "
                  f"val_accuracy: 0.{60 + ep} - val_loss: 1.0"]
    it, rec, s = run_lines(lines)
    assert s["accuracy"] == pytest.approx(0.63) and s["best_accuracy"] == pytest.approx(0.63)


def test_torchvision_reference_script():
    lines = []
    for ep in range(3):
        lines += [
            f"Epoch: [{ep}]  [  0/782]  eta: 0:10:00  lr: 0.1  img/s: 100.0  "
            f"loss: 2.3000 (2.3000)  acc1: 100.0000 (100.0000)  acc5: 100.0 (100.0)",
            f"Epoch: [{ep}]  [781/782]  eta: 0:00:00  lr: 0.1  img/s: 100.0  "
            f"loss: 2.0000 (2.1000)  acc1: 90.0000 (95.0000)  acc5: 100.0 (100.0)",
            f"Epoch: [{ep}] Total time: 0:01:00",
            "Test:   [ 0/79]  eta: 0:00:10  loss: 2.3 (2.3)  acc1: 10.0 (10.0)  acc5: 50 (50)",
            f"Test:   [78/79]  eta: 0:00:00  loss: 2.3 (2.3)  acc1: 20.0 (2{ep}.800)  "
            "acc5: 50 (60)",
            "Test:  Total time: 0:00:05",
            f"Test:  Acc@1 2{ep}.800 Acc@5 60.000",
        ]
    lines.append("Training time 0:03:20")
    it, rec, s = run_lines(lines)
    assert s["accuracy"] == pytest.approx(0.228) and s["best_accuracy"] == pytest.approx(0.228)
    assert s["accuracy_kind"] == "test" and s["epochs_done"] == 3
    assert [e for e, _, _ in accs(rec)] == [1, 2, 3]  # the summary line repeats the last batch


def test_timm_train_script_on_stderr_with_logging():
    lines = []
    for ep, top1 in enumerate((6.2, 9.5, 8.1)):
        lines += [
            f"Train: {ep} [   0/390 (  0%)]  Loss: 6.93 (6.93)  Time: 0.5s,  256/s  LR: 1e-3",
            f"Train: {ep} [ 389/390 (100%)]  Loss: 6.10 (6.50)  Time: 0.5s,  256/s  LR: 1e-3",
            "Test: [   0/78]  Time: 0.5 (0.5)  Loss:  6.9 (6.9)  Acc@1:   0.7800 (  0.7800)  "
            "Acc@5:   3.0 (3.0)",
            f"Test: [  78/78]  Time: 0.5 (0.5)  Loss:  6.9 (6.9)  Acc@1:  {top1:.4f} "
            f"({top1:8.4f})  Acc@5:   3.0 (3.0)",
        ]
    lines.append("*** Best metric: 9.5 (epoch 1)")
    it, rec, s = run_lines(lines)
    assert s["accuracy"] == pytest.approx(0.081) and s["best_accuracy"] == pytest.approx(0.095)
    assert s["epochs_done"] == 3


def test_pytorch_quickstart_and_sklearn():
    lines = []
    for ep, a in enumerate((14.5, 41.0, 55.2), start=1):
        lines += [f"Epoch {ep}", "-------------------------------",
                  "loss: 2.303470  [   64/60000]", "Test Error: ",
                  f" Accuracy: {a}%, Avg loss: 2.297858 ", ""]
    lines.append("Done!")
    it, rec, s = run_lines(lines)
    assert s["accuracy"] == pytest.approx(0.552) and s["epochs_done"] == 3
    sk = []
    for i, v in enumerate((0.71, 0.78, 0.77), start=1):
        sk += [f"Iteration {i}, loss = 0.{60 - i}", f"Validation score: {v:.6f}"]
    it, rec, s = run_lines(sk)
    assert s["accuracy"] == pytest.approx(0.77) and s["best_accuracy"] == pytest.approx(0.78)
    assert s["epochs_done"] == 3


def test_logging_lines_and_tqdm_loops():
    lines = []
    for ep in range(1, 4):
        lines.append(f"Epoch {ep}/3: 100%|██████████| 938/938 [00:10<00:00, 90.2it/s, "
                     f"loss=0.3, acc=0.9{ep}]")
        lines.append(f"2026-12-01 17:3{ep}:30,123 - __main__ - INFO - epoch={ep} "
                     f"val_acc=0.8{ep} val_loss=0.4")
    it, rec, s = run_lines(lines)
    assert s["accuracy"] == pytest.approx(0.83) and s["best_accuracy"] == pytest.approx(0.83)
    assert s["epochs_done"] == 3 and s["total_epochs"] == 3


def test_summary_lines_are_never_the_accuracy_nor_an_epoch():
    lines = [f"epoch {k}/3 loss 0.3 val_acc 0.{[90, 95, 90][k - 1]}" for k in (1, 2, 3)]
    lines += ["Best val_acc: 0.9500 at epoch 2", "final val_acc 0.99",
              "demo: done in 12.0 s, best val_accuracy 0.9500", "target_accuracy=0.99"]
    it, rec, s = run_lines(lines)
    assert s["accuracy"] == pytest.approx(0.90) and s["best_accuracy"] == pytest.approx(0.95)
    assert s["epochs_done"] == 3 and s["accuracy_reports"] == 3


def test_demo_reports_and_prints_each_epoch_once():
    lines, reports = [], []
    for k, a in enumerate((0.5, 0.8, 0.7), start=1):
        reports.append((len(lines), {"accuracy": a, "epoch": k, "total_epochs": 3}))
        lines.append(f"epoch {k}/3 loss 0.4000 val_accuracy {a:.4f}")
    lines.append("demo: done in 3.0 s, best val_accuracy 0.8000")
    it, rec, s = run_lines(lines, reports=reports)
    assert s["accuracy"] == pytest.approx(0.7) and s["best_accuracy"] == pytest.approx(0.8)
    assert s["accuracy_reports"] == 3 and len(accs(rec)) == 3
    ends = [r["epoch"] for r in rec.rows if r["kind"] == "epoch_end"]
    assert ends == [1, 2, 3]


def test_report_after_a_line_for_the_same_epoch_wins_and_order_is_by_event_time():
    rec = FakeRecorder()
    it = RecorderIntake(rec)
    it.feed_line(b"epoch 1/2 val_acc 0.500", 10.0)
    with it._lock:  # the callback's figure, sent before the line was read, polled later
        it._handle(make_event({"accuracy": 0.52, "epoch": 1}, 9.9, "report"))
    s = it.summary()
    assert s["accuracy"] == pytest.approx(0.52) and s["accuracy_reports"] == 1
    again = metrics_from_rows(rec.rows, 100.0)
    assert again["accuracy"] == pytest.approx(0.52) and again["accuracy_reports"] == 1


def test_totals_only_grow_and_epochs_above_total_are_said():
    lines = ["Epoch 1/5", "val_acc: 0.5", "Epoch 2/5", "val_acc: 0.6"]
    it, rec, s = run_lines(lines, reports=[(3, {"epoch": 2, "total_epochs": 3})])
    assert s["total_epochs"] == 5
    it, rec, s = run_lines([f"epoch {k}/2 val_acc 0.{k}" for k in (1, 2, 3, 4)])
    assert s["epochs_done"] == 4 and s["total_epochs"] == 2 and "more than" in s["epochs_note"]
    assert s["projected_energy_j"] >= 30.0  # never below what was spent


def test_zero_based_reports_and_metrics_file_are_shifted(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,val_acc\n0,10,0.5\n1,20,0.6\n2,30,0.7\n")
    rec = FakeRecorder()
    it = RecorderIntake(rec, MetricOptions(metrics_file=str(path)))
    it.poll(1.0)
    it.close()
    s = it.summary()
    assert s["epochs_done"] == 3 and s["accuracy"] == pytest.approx(0.7)
    assert [e for e, _, _ in accs(rec)] == [1, 2, 3]


# ----------------------------------------------------------------- projection at the edges


def fixed_eval_run(n_epochs, f, data_j=100.0, eval_j=30.0, startup_j=50.0):
    """Marks of a run whose epochs are ``data_j * f`` of training plus ``eval_j`` of
    evaluation, after ``startup_j``; and the full-data run's true total."""
    marks, e = [], startup_j
    for k in range(1, n_epochs + 1):
        e += data_j * f + eval_j
        marks.append((k, 100.0 + k, e))
    return marks


@pytest.mark.parametrize("f", [0.25, 0.1])
def test_data_fraction_scales_only_the_data_part(f):
    total = 10
    truth = 50.0 + total * (100.0 + 30.0)
    marks = fixed_eval_run(4, f)
    p = project(marks, total, f, (100.0, 0.0), fixed_per_epoch_j=30.0)
    assert p.final_energy_j == pytest.approx(truth, rel=0.02)
    assert p.low_j <= truth <= p.high_j


def test_data_fraction_through_the_intake_sees_where_validation_starts():
    """Lightning's TQDM bar shows when validation begins: its energy is not scaled."""
    rec = FakeRecorder()
    it = RecorderIntake(rec, MetricOptions(data_fraction=0.25, total_epochs=10))
    t, e = 100.0, 50.0
    for ep in range(4):
        rec.energy = e
        it.feed_line(f"Epoch {ep}:   0%|          | 0/8 [00:00<?, ?it/s, v_num=0]", t)
        e += 25.0  # training on a quarter of the data
        rec.energy = e
        it.feed_line(f"Epoch {ep}: 100%|██████████| 8/8 [00:01<00:00, v_num=0]", t + 1)
        it.feed_line("Validation DataLoader 0:   0%|          | 0/4 [00:00<?, ?it/s]", t + 1.1)
        e += 30.0
        rec.energy = e
        it.feed_line(f"Epoch {ep}: 100%|██████████| 8/8 [00:01<00:00, v_num=0, "
                     f"val_acc=0.{50 + ep}]", t + 2)
        t += 3
    rec.energy = e + 5  # into the next epoch
    it.feed_line("Epoch 4:   0%|          | 0/8 [00:00<?, ?it/s, v_num=0]", t)
    s = it.summary(energy_j=e + 5)
    truth = 50.0 + 10 * (100.0 + 30.0)
    assert s["projected_energy_j"] == pytest.approx(truth, rel=0.05)
    again = metrics_from_rows(rec.rows, e + 5, None, {"data_fraction": 0.25, "total_epochs": 10})
    assert again["projected_energy_j"] == pytest.approx(s["projected_energy_j"], rel=1e-6)


def test_finished_run_never_projects_less_than_spent_and_band_covers_the_tail():
    marks = [(k, 100.0 + k, 100.0 * k) for k in (1, 2, 3)]
    p = project(marks, 3, energy_now=400.0)  # a final test after the last epoch
    assert p.final_energy_j == 400.0 and p.low_j == 400.0 and p.high_j >= 400.0
    p = project(marks, 2, energy_now=350.0)  # past its announced total
    assert p.final_energy_j >= 350.0 and p.low_j >= 350.0
    p = project(marks, 5, energy_now=320.0, fixed_per_epoch_j=20.0)
    assert p.final_energy_j == pytest.approx(500.0)
    assert p.high_j >= 500.0 + 20.0  # the band leaves room for a final evaluation
    assert math.isfinite(p.low_j) and p.low_j >= 320.0


def test_live_screen_tracker_follows_the_same_stream():
    from wattui.view.metric_tracker import metrics_summary

    lines = lightning_tqdm()
    reports = [(4 * k + 4, {"accuracy": a, "epoch": k + 1, "total_epochs": 4})
               for k, a in enumerate((0.61, 0.7, 0.75, 0.74))]
    it, rec, s = run_lines(lines, reports=reports)
    m = metrics_summary([r for r in rec.rows if r["kind"] == "metric"])
    assert m.latest_accuracy == pytest.approx(s["accuracy"])
    assert m.best_accuracy == pytest.approx(s["best_accuracy"])  # not a batch's 1.0
    assert m.total_epochs == 4


def test_pytorch_examples_mnist_counts_and_bracketed_epochs():
    lines = []
    for ep, right in ((1, 9844), (2, 9880), (3, 9871)):
        lines += [f"Train Epoch: {ep} [0/60000 (0%)]\tLoss: 2.305",
                  f"Train Epoch: {ep} [59520/60000 (99%)]\tLoss: 0.05", "",
                  f"Test set: Average loss: 0.0481, Accuracy: {right}/10000 (98%)", ""]
    it, rec, s = run_lines(lines)
    assert s["accuracy"] == pytest.approx(0.9871) and s["best_accuracy"] == pytest.approx(0.988)
    assert s["epochs_done"] == 3
    lines = [f"Epoch [{ep}/5], Step [600/600], Loss: 0.2215" for ep in (1, 2)]
    lines.append("Accuracy of the model on the 10000 test images: 97.5 %")
    it, rec, s = run_lines(lines)
    assert s["accuracy"] == pytest.approx(0.975) and s["total_epochs"] == 5


def test_fastai_table():
    lines = ["epoch     train_loss  valid_loss  accuracy  time    "]
    for ep, a in enumerate((0.85, 0.87, 0.86)):
        lines.append(f"{ep:<10}0.41        0.35        {a:.6f}  00:09     ")
    lines.append("Better model found at epoch 1 with valid_loss value: 0.35.")
    it, rec, s = run_lines(lines)
    assert s["accuracy"] == pytest.approx(0.86) and s["best_accuracy"] == pytest.approx(0.87)
    assert s["epochs_done"] == 3


def test_a_percent_key_is_percent_from_its_first_value():
    lines = ["epoch 1/3 val_acc 0.78", "epoch 2/3 val_acc 12.5", "epoch 3/3 val_acc 20.0"]
    it, rec, s = run_lines(lines)
    assert s["best_accuracy"] == pytest.approx(0.2) and s["accuracy"] == pytest.approx(0.2)
    assert [a for _, a, _ in accs(rec)] == pytest.approx([0.0078, 0.125, 0.2])


@pytest.mark.parametrize("f", [0.25, 0.1])
def test_data_fraction_from_plain_lines_with_training_then_validation(f):
    """A script printing its training line, then evaluating, then its validation line: the
    evaluation between them is the fixed part of each epoch."""
    rec = FakeRecorder()
    it = RecorderIntake(rec, MetricOptions(data_fraction=f, total_epochs=10))
    t, e = 100.0, 50.0  # start-up
    for ep in range(1, 5):
        e += 100.0 * f  # training on f of the data
        rec.energy = e
        it.feed_line(f"epoch {ep}/10 train_loss 0.5", t + 1)
        e += 30.0  # evaluation: does not grow with the data
        rec.energy = e
        it.feed_line(f"epoch {ep}/10 val_loss 0.4 val_acc 0.{50 + ep}", t + 2)
        t += 2
    s = it.summary(energy_j=e)
    truth = 50.0 + 10 * (100.0 + 30.0)
    assert s["projected_energy_j"] == pytest.approx(truth, rel=0.05)
    assert s["projected_energy_low_j"] <= truth <= s["projected_energy_high_j"]


@pytest.mark.parametrize(
    "line, key, acc",
    [
        ("Epoch 1/10 | Train Loss: 0.5 | Train Acc: 80.00% | Val Loss: 0.4 | Val Acc: 85.00%",
         "val_acc", 0.85),
        ("Epoch: 1 Train acc: 0.8 Valid acc: 0.85", "valid_acc", 0.85),
        ("  eval_accuracy           =     0.8456", "eval_accuracy", 0.8456),  # log_metrics
        ("Epoch(val) [1][79/79]    accuracy/top1: 35.2000  accuracy/top5: 85.0000",
         "val_accuracy/top1", 0.352),  # mmengine
        ("│         test_acc          │    0.8500000238418579     │", "test_acc", 0.85),
    ],
)
def test_more_formats(line, key, acc):
    (ev,) = LineParser().feed(line, 1.0)
    assert ev.accuracy_key == key and ev.accuracy == pytest.approx(acc)
