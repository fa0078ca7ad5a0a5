"""SAM = beta * accuracy**alpha / log10(electricity): values and edge cases."""

from __future__ import annotations

import math

import pytest

from wattui.metrics.sam import format_sam, sam

KWH = 3.6e6


def test_known_value_kwh():
    r = sam(0.9, 100 * KWH)  # 100 kWh: log10 = 2
    assert r.value == pytest.approx(5 * 0.9**5 / 2)
    assert (r.alpha, r.beta, r.unit, r.undefined_reason) == (5, 5, "kWh", None)


def test_exactly_one_kwh_is_undefined():
    r = sam(0.9, 1 * KWH)
    assert r.value is None and "at or below 1 kWh" in r.undefined_reason
    assert "--sam-unit Wh" in r.undefined_reason


def test_below_one_kwh_is_undefined_not_negative():
    r = sam(0.9, 0.42 * KWH)
    assert r.value is None and "0.42 kWh" in r.undefined_reason


def test_just_above_one_is_finite_and_positive():
    r = sam(0.9, KWH * (1 + 1e-12))
    assert r.value is not None and math.isfinite(r.value) and r.value > 0


def test_wh_unit():
    r = sam(0.8, 0.42 * KWH, unit="Wh")  # 420 Wh
    assert r.value == pytest.approx(5 * 0.8**5 / math.log10(420))
    assert r.unit == "Wh"
    assert sam(0.8, 3600.0, unit="wh").value is None  # exactly 1 Wh


def test_accuracy_bounds_and_percentages():
    assert sam(0.0, 10 * KWH).value == 0.0
    assert sam(1.0, 10 * KWH).value == pytest.approx(5.0)
    assert sam(91.2, 10 * KWH).value == pytest.approx(sam(0.912, 10 * KWH).value)
    for bad in (-0.1, 150, math.nan, math.inf):
        r = sam(bad, 10 * KWH)
        assert r.value is None and r.undefined_reason


def test_missing_accuracy_or_energy():
    assert "no accuracy" in sam(None, 10 * KWH).undefined_reason
    for e in (None, math.nan, -1.0, math.inf):
        assert sam(0.9, e).value is None


def test_alpha_beta_change_ranking():
    # a cheap, less accurate model vs an expensive, accurate one
    cheap, big = (0.60, 20 * KWH), (0.90, 100 * KWH)
    assert sam(*cheap, alpha=1).value > sam(*big, alpha=1).value
    assert sam(*cheap, alpha=5).value < sam(*big, alpha=5).value


@pytest.mark.parametrize("kw", [{"alpha": -1}, {"beta": 0}, {"beta": math.inf}, {"unit": "MJ"}])
def test_bad_parameters(kw):
    with pytest.raises(ValueError):
        sam(0.9, 10 * KWH, **kw)


def test_format_always_states_parameters():
    assert format_sam(sam(0.9, 100 * KWH)) == "SAM 1.48 (alpha=5, beta=5, kWh)"
    s = format_sam(sam(0.9, 0.5 * KWH, alpha=2, beta=1.5))
    assert s.startswith("SAM n/a (alpha=2, beta=1.5, kWh): energy 0.5 kWh")


def test_near_the_singularity_is_flagged_with_a_unit_that_makes_sense():
    """Just above 1 unit 1/log10 explodes: cnn at 1.31 Wh scored 25.9 beside wide-cnn's 2.79
    at 19.3 Wh. The value stays, flagged, naming the unit in which the log no longer rules."""
    cnn = sam(0.65, 1.31 * 3600, unit="Wh")
    wide = sam(0.70, 19.3 * 3600, unit="Wh")
    assert cnn.value > 5 * wide.value  # the artefact itself
    assert cnn.flag and "under 2 Wh" in cnn.flag and "--sam-unit J" in cnn.flag
    assert wide.flag is None and sam(0.7, 2.0 * 3600, unit="Wh").flag is None
    assert "near the singularity" in format_sam(cnn)
    assert cnn.to_dict()["sam_flag"] == cnn.flag
    # in joules the same two runs are far from it: both defined, neither flagged
    j1, j2 = sam(0.65, 1.31 * 3600, unit="J"), sam(0.70, 19.3 * 3600, unit="J")
    assert j1.flag is None and j2.flag is None and j2.value > j1.value


def test_meaningful_unit_is_the_largest_with_every_energy_at_least_ten_units():
    from wattui.metrics.sam import meaningful_unit

    assert meaningful_unit([50 * KWH, 12 * KWH]) == "kWh"
    assert meaningful_unit([50 * KWH, 0.5 * KWH]) == "Wh"  # 500 Wh
    assert meaningful_unit([19.3 * 3600, 1.31 * 3600]) == "J"
    assert meaningful_unit([None, float("nan")]) == "J"
    # below 1 kWh the undefined result names the unit that works
    r = sam(0.9, 0.42 * KWH)
    assert r.value is None and "--sam-unit Wh" in r.undefined_reason
    r = sam(0.9, 0.5 * 3600, unit="Wh")
    assert r.value is None and "--sam-unit J" in r.undefined_reason
