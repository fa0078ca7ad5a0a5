"""The accuracy stream under a real ``wattui record``: output arrives when printed, reports made
just before exit all reach the session, rejections are counted and shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wattui.record.intake import RecorderIntake
from wattui.store.reader import list_sessions

ROOT = Path(__file__).resolve().parent.parent


def record(tmp_path, script: str, *args: str, env=None, timeout=300):
    store = tmp_path / "store"
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(script))
    e = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    e.update(env or {})
    p = subprocess.run(
        [sys.executable, "-m", "wattui", "record", "--simulate", "1", "--store", str(store),
         *args, "--", sys.executable, str(path)],
        capture_output=True, text=True, timeout=timeout, env=e, cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    (s,), _ = list_sessions(store)
    return store, s, p


def show(store, sid) -> dict:
    p = subprocess.run(
        [sys.executable, "-m", "wattui", "show", "--store", str(store), "--format", "json", sid],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return json.loads(p.stdout)


def test_child_env_sets_unbuffered_unless_the_user_did(monkeypatch, tmp_path):
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    monkeypatch.setenv("WATTUI_CHANNEL_DIR", str(tmp_path / "chan"))

    class Rec:
        def add_event(self, ev):
            pass

        def energy_now(self):
            return 0.0

    assert RecorderIntake(Rec()).child_env()["PYTHONUNBUFFERED"] == "1"
    monkeypatch.setenv("PYTHONUNBUFFERED", "")
    assert "PYTHONUNBUFFERED" not in RecorderIntake(Rec()).child_env()


@pytest.mark.slow
def test_plain_print_epoch_marks_carry_the_energy_at_the_print(tmp_path):
    """No flush, no -u: each epoch mark is within 1 s (and 1 s of energy) of its print."""
    store, s, _ = record(
        tmp_path,
        """
        import time
        for k in range(1, 5):
            time.sleep(1.5)
            print(f"epoch {k}/4 loss 0.5 val_acc 0.{k}0 printed_at {time.time():.3f}")
        time.sleep(1.5)
        """,
    )
    ev = s.events().to_dicts()
    logged = [r for r in ev if r["kind"] == "metric" and r["source"] == "log" and r["accuracy"] is not None]
    assert [r["epoch"] for r in logged] == [1, 2, 3, 4]
    assert all(r["accuracy"] == pytest.approx(r["epoch"] / 10) for r in logged), logged
    marks = [r for r in ev if r["kind"] == "epoch_end"]
    assert [m["epoch"] for m in marks] == [1, 2, 3, 4]
    out = s.output_path().read_text()
    at = {k: float(out.split(f"epoch {k}/4")[1].split("printed_at ")[1].split()[0])
          for k in (1, 2, 3, 4)}
    samples = s.samples().filter(s.samples()["device"] == "gpu0").sort("t_wall")
    ts, es = samples["t_wall"].to_list(), samples["energy_j"].to_list()
    peak = max(samples["power_w"].drop_nulls().to_list())

    def energy_at(t):
        for (t0, e0), (t1, e1) in zip(zip(ts, es), zip(ts[1:], es[1:]), strict=False):
            if t0 <= t <= t1:
                return e0 + (e1 - e0) * (t - t0) / (t1 - t0) - es[0]
        raise AssertionError(f"{t} outside the samples")

    for m in marks:
        k = int(m["epoch"])
        assert abs(m["t_wall"] - at[k]) < 1.0, (k, m["t_wall"], at[k])
        assert abs(m["energy_j"] - energy_at(at[k])) <= peak * 1.0
    # buffered, all four would carry the energy at exit: they really differ
    assert marks[0]["energy_j"] < marks[-1]["energy_j"] * 0.6


@pytest.mark.slow
def test_reports_just_before_exit_all_reach_the_session(tmp_path):
    store, s, _ = record(
        tmp_path,
        """
        import wattui
        for i in range(150_000):
            wattui.report(step=i, loss=1.0 / (i + 1), accuracy=0.6)
        wattui.report(accuracy=0.97, epoch=1, total_epochs=1)
        """,
    )
    ev = s.events()
    metric = ev.filter(ev["kind"] == "metric")
    rec = show(store, s.id)
    # every report stored, or (when the recorder is out of time at the end) counted
    unstored = rec["metric_rejections"].pop("report_not_stored_at_exit", 0)
    assert metric.height + unstored == 150_001 and rec["metric_rejections"] == {}
    assert unstored < 150_000 * 0.9  # most are stored, as they come, while the run goes
    assert rec["accuracy"] == pytest.approx(0.97) and rec["best_accuracy"] == pytest.approx(0.97)
    last = metric.sort("t_wall")[-1]
    assert last["accuracy"].item() == pytest.approx(0.97) and last["epoch"].item() == 1


@pytest.mark.slow
def test_rejections_are_counted_in_the_session_and_shown(tmp_path):
    store, s, _ = record(
        tmp_path,
        """
        import wattui
        print("epoch=1e308 val_acc=150")
        print("accuracy: nan")
        wattui.report(accuracy=0.5, epoch=1)
        print("epoch 1 val_acc 0.5000")
        """,
    )
    rec = show(store, s.id)
    rej = rec["metric_rejections"]
    assert rej["epoch_absurd"] == 1 and rej["accuracy_above_100"] == 1
    assert rec["accuracy"] == 0.5 and rec["accuracy_reports"] == 1
    p = subprocess.run(
        [sys.executable, "-m", "wattui", "show", "--store", str(store), s.id],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert "epoch_absurd 1" in p.stdout and "accuracy_above_100 1" in p.stdout


@pytest.mark.slow
def test_what_report_dropped_is_counted_at_exit(tmp_path):
    """A report() that could not keep everything says so at exit; the recorder counts it."""
    store, s, _ = record(
        tmp_path,
        """
        import wattui, wattui._report as r
        wattui.report(accuracy=0.5, epoch=1, bad=object())   # a value that is not a number
        r._st.truncated += 3                                 # as if the buffer had overflowed
        """,
    )
    rej = show(store, s.id)["metric_rejections"]
    assert rej["report_dropped_values"] == 1 and rej["report_buffer_overflow"] == 3


@pytest.mark.slow
def test_a_figure_reported_then_printed_is_stored_once_even_when_it_repeats(tmp_path):
    store, s, _ = record(
        tmp_path,
        """
        import time, wattui
        for k, a in enumerate((0.5, 0.7, 0.7, 0.7, 0.6), start=1):
            wattui.report(accuracy=a, epoch=k, total_epochs=5)
            print(f"epoch {k}/5 val_accuracy {a:.4f}")
            time.sleep(0.05)
        """,
    )
    ev = s.events()
    stored = ev.filter((ev["kind"] == "metric") & ev["accuracy"].is_not_null())
    assert stored["source"].to_list() == ["report"] * 5
    assert stored["epoch"].to_list() == [1, 2, 3, 4, 5]
