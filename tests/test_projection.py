"""Projection (linear in epochs and data fraction), energy to a target, the session summary."""

from __future__ import annotations

import json
import math
import random

import pytest

from wattui.metrics.carbon import make_settings
from wattui.metrics.intake import make_event
from wattui.metrics.projection import energy_to_target, energy_to_target_detail, project, t975
from wattui.metrics.summary import summarize_metrics

KWH = 3.6e6


def marks_from(per_epoch_j, per_epoch_s, t0=1000.0):
    out, e, t = [], 0.0, t0
    for k, (pe, ps) in enumerate(zip(per_epoch_j, per_epoch_s, strict=True), start=1):
        e += pe
        t += ps
        out.append((k, t, e))
    return out


def test_exact_linear_run():
    marks = marks_from([1e5] * 4, [60.0] * 4)
    p = project(marks, 10, start=(1000.0, 0.0))
    assert p.final_energy_j == pytest.approx(1e6)
    assert p.low_j == pytest.approx(1e6) and p.high_j == pytest.approx(1e6)
    assert p.per_epoch_j == pytest.approx(1e5) and p.per_epoch_s == pytest.approx(60.0)
    assert p.end_time == pytest.approx(1000.0 + 600.0)
    assert p.epochs_used == 3 and "warm-up" in p.method_note
    assert p.duration_s == pytest.approx(600.0)


def test_slow_warmup_epoch_is_left_out():
    per = [4e5, 1e5, 1e5, 1e5, 1e5]  # epoch 1 compiles, caches, warms up
    marks = marks_from(per, [300, 60, 60, 60, 60])
    p = project(marks, 20)
    truth = 4e5 + 19 * 1e5
    assert p.final_energy_j == pytest.approx(truth)
    naive = marks[-1][2] / 5 * 20  # what extrapolating the average would say
    assert abs(naive - truth) > 0.25 * truth
    assert p.per_epoch_s == pytest.approx(60.0)
    assert p.end_time == pytest.approx(marks[-1][1] + 15 * 60)


def test_noisy_run_band_is_a_calibrated_95_percent_interval():
    """Over many simulated runs the band holds the true final energy ~95 % of the time."""
    for measured in (4, 15):
        hits, widths = 0, []
        for seed in range(300):
            rng = random.Random(seed)
            per = [1e5 + rng.gauss(0, 5e3) for _ in range(40)]
            p = project(marks_from(per[:measured], [60] * measured), 40)
            assert p.low_j < p.final_energy_j < p.high_j
            hits += p.low_j <= sum(per) <= p.high_j
            widths.append(p.high_j - p.low_j)
        assert 0.90 <= hits / 300 <= 0.99, (measured, hits)
        if measured == 4:
            short_width = sum(widths)
    assert sum(widths) < short_width  # more epochs measured, narrower band


def test_data_fraction_scales_to_full_data():
    marks = marks_from([2.5e4] * 3, [15] * 3)  # a quarter of the data
    p = project(marks, 10, data_fraction=0.25)
    assert p.final_energy_j == pytest.approx(10 * 1e5)
    assert p.per_epoch_j == pytest.approx(1e5)
    assert p.end_time is None and p.duration_s == pytest.approx(10 * 15 / 0.25)


def test_zero_based_indices_gaps_and_duplicates():
    marks = [(0, 10.0, 100.0), (1, 20.0, 200.0), (1, 21.0, 210.0), (3, 40.0, 410.0)]
    p = project(marks, 6)
    assert p.epochs_done == 4
    assert p.per_epoch_j == pytest.approx(105.0)  # (110 + 100 + 100 + ...) steady per epoch
    assert p.final_energy_j == pytest.approx(410.0 + 2 * 105.0)


def test_single_epoch_heuristic_band_and_finished_run():
    p = project([(1, 10.0, 100.0)], 5)
    assert p.final_energy_j == pytest.approx(500.0)
    assert p.low_j == pytest.approx(420.0) and p.high_j == pytest.approx(580.0)
    assert "heuristic" in p.method_note
    done = project(marks_from([1e5] * 5, [60] * 5), 3)
    assert done.final_energy_j == pytest.approx(5e5)


@pytest.mark.parametrize(
    "marks, total, frac",
    [
        ([], 10, 1.0),
        ([(1, 1.0, 1.0)], 0, 1.0),
        ([(1, 1.0, 1.0)], 10, 0.0),
        ([(1, math.nan, 1.0)], 10, 1.0),
    ],
)
def test_project_refuses_nonsense(marks, total, frac):
    with pytest.raises(ValueError):
        project(marks, total, frac)


def test_t_table():
    assert t975(1) == pytest.approx(12.706) and t975(10) == pytest.approx(2.228)
    assert 2.0 < t975(50) < 2.021 and t975(10_000) == pytest.approx(1.96)


# ----------------------------------------------------------------- energy to target


def curve(e):
    return 0.9 - 0.5 * math.exp(-e / 1e6)


def test_energy_to_target_known_curve():
    pts = [(e, curve(e)) for e in (2e5, 4e5, 6e5, 8e5, 1e6, 1.3e6)]
    want = -math.log(0.05 / 0.5) * 1e6
    assert energy_to_target(pts, 0.85) == pytest.approx(want, rel=0.02)


def test_energy_to_target_plateau_and_reached():
    pts = [(e, curve(e)) for e in (2e5, 4e5, 6e5, 8e5, 1e6, 3e6, 6e6)]
    d = energy_to_target_detail(pts, 0.95)
    assert d.energy_j is None and "below the target" in d.reason
    assert energy_to_target(pts, 0.5) == 4e5 and energy_to_target_detail(pts, 0.5).measured
    assert energy_to_target_detail(pts[:2], 0.85).energy_j is None
    falling = [(1.0, 0.5), (2.0, 0.4), (3.0, 0.3)]
    assert energy_to_target(falling, 0.8) is None


# ----------------------------------------------------------------- summary


def _rows():
    evs = []
    for ep, acc in [(1, 0.60), (2, 0.80), (3, 0.75)]:
        evs.append(
            make_event(
                {
                    "epoch": ep,
                    "val_acc": acc,
                    "acc": acc / 2,
                    "total_epochs": 10,
                    "model": "resnet18",
                },
                1000.0 + ep * 60,
                "report",
                pid=1,
            )
        )
    evs.append(make_event({"loss": 0.1}, 1300.0, "log"))
    return evs


def test_summary_fields():
    evs = _rows()
    marks = marks_from([2 * KWH] * 3, [60] * 3)
    s = summarize_metrics(
        evs, 6 * KWH, marks, make_settings(g_per_kwh=100, price_per_kwh=0.2), 5, 5, "kWh"
    )
    assert s["accuracy"] == 0.75 and s["best_accuracy"] == 0.80
    assert s["epochs_done"] == 3 and s["total_epochs"] == 10 and s["model"] == "resnet18"
    assert s["sam"] == pytest.approx(5 * 0.75**5 / math.log10(6))
    assert (s["sam_alpha"], s["sam_beta"], s["sam_unit"]) == (5, 5, "kWh")
    assert s["projected_energy_j"] == pytest.approx(20 * KWH)
    assert s["projected_energy_low_j"] <= s["projected_energy_j"] <= s["projected_energy_high_j"]
    assert s["projected_sam"] == pytest.approx(5 * 0.75**5 / math.log10(20))
    assert s["co2_g"] == pytest.approx(600) and s["cost"] == pytest.approx(1.2)
    assert s["currency"] == "USD"
    json.dumps(s, allow_nan=False)


def test_summary_recomputes_from_stored_rows():
    rows = [json.loads(json.dumps(e.to_row())) for e in _rows()]  # as stored
    marks = marks_from([0.2 * KWH] * 3, [60] * 3)
    s = summarize_metrics(rows, 0.6 * KWH, marks, None, 5, 5, "kWh")
    assert s["sam"] is None and "at or below 1 kWh" in s["sam_undefined_reason"]
    wh = summarize_metrics(rows, 0.6 * KWH, marks, None, 2, 1, "Wh")
    assert wh["sam"] == pytest.approx(0.75**2 / math.log10(600))
    other = summarize_metrics(rows, 0.6 * KWH, marks, None, 5, 5, "Wh", accuracy_key="acc")
    assert other["accuracy"] == pytest.approx(0.375)
    assert other["co2_g"] is None and other["currency"] is None


def test_summary_without_anything():
    s = summarize_metrics([], None, [], None, 5, 5, "kWh")
    assert s["accuracy"] is None and s["sam"] is None and s["sam_undefined_reason"]
    assert s["projected_energy_j"] is None and s["projection_note"]


@pytest.mark.slow  # a wattui process per sample session: 2 s here, more under load
def test_project_target_reads_accuracy_points_from_a_recorded_session():
    """`wattui project --target` on the committed sample sessions (real recorded events): the
    points pair each epoch end's cumulative energy with that epoch's accuracy, and a target
    already reached is the energy at the first epoch that reached it (measured, not fitted)."""
    import subprocess
    import sys

    from conftest import REPO

    from wattui.metrics.session_metrics import accuracy_points
    from wattui.store.reader import list_sessions

    store = REPO / "sample_runs" / "store"
    checked = 0
    for s in list_sessions(store)[0]:
        pts = accuracy_points(s.events().to_dicts())
        if len(pts) < 2:
            continue
        energies = [e for e, _ in pts]
        assert energies == sorted(energies) and energies[0] > 0
        assert all(0 < a <= 1 for _, a in pts)
        target = pts[-1][1]
        first = next(e for e, a in pts if a >= target)
        p = subprocess.run(
            [sys.executable, "-m", "wattui", "project", "--store", str(store), s.id,
             "--target", str(target), "--format", "json"],
            capture_output=True, text=True, timeout=60,
        )
        assert p.returncode == 0, p.stderr
        got = json.loads(p.stdout)["energy_to_target"]
        assert got["measured"] is True and got["energy_j"] == pytest.approx(first)
        checked += 1
    assert checked >= 2
