"""wattui.format: every formatter at its edges (None, NaN, infinities, 0, negative, huge),
and wattui.model.values.finite_float, the one reading of a number from JSON."""

from __future__ import annotations

import math

import pytest

from wattui import format as fmt
from wattui.model.values import finite_float, is_finite_number

NAN, INF = math.nan, math.inf
HUGE = 1e300


@pytest.mark.parametrize(
    "j, out",
    [
        (None, "n/a"),
        (NAN, "n/a"),
        (INF, "n/a"),
        (-INF, "n/a"),
        (0, "0.00 Wh"),
        (1915.2, "0.53 Wh"),  # 0.532 Wh
        # 99.99972 Wh: under the threshold, so 2 decimals, rounded up (kept as it shows today)
        (359_999.0, "100.00 Wh"),
        (360_000.0, "100.0 Wh"),
        (3_600_000.0, "1.000 kWh"),
        (-7200.0, "-2.00 Wh"),
        (3.6e15, "1000000000.000 kWh"),  # a TWh: no unit past kWh
    ],
)
def test_fmt_energy(j, out):
    assert fmt.fmt_energy(j) == out


@pytest.mark.parametrize(
    "j, unit, out",
    [
        (None, None, ""),
        (0, None, "0.00 Wh"),
        (1915.2, None, "0.53 Wh"),
        (36_000.0, None, "10.0 Wh"),  # one decimal from 10 Wh (the live screen: from 100)
        (3_600_000.0, None, "1.000 kWh"),
        (1915.2, "kWh", "0.001 kWh"),
        (3.6e15, None, "1000000000.000 kWh"),
    ],
)
def test_fmt_energy_cell(j, unit, out):
    assert fmt.fmt_energy_cell(j, unit) == out


@pytest.mark.parametrize(
    "j, out",
    [(None, "n/a"), (0, "0.000 Wh"), (1915.2, "0.532 Wh"), (3_599_999.0, "1000.000 Wh"),
     (3_600_000.0, "1.000 kWh"), (3.6e15, "1000000000.000 kWh")],
)
def test_fmt_energy_precise(j, out):
    assert fmt.fmt_energy_precise(j) == out


def test_one_session_in_three_formatters():
    """0.532 Wh in sessions/show, 0.53 Wh on the screens and in the table (kept as shown)."""
    j = 1915.2
    assert fmt.fmt_energy_precise(j) == "0.532 Wh"
    assert fmt.fmt_energy(j) == fmt.fmt_energy_cell(j) == "0.53 Wh"


@pytest.mark.parametrize(
    "s, out",
    [(None, "n/a"), (NAN, "n/a"), (INF, "n/a"), (-1, "n/a"), (0, "00:00:00"), (59.9, "00:00:59"),
     (3661, "01:01:01"), (86_400 * 3 + 5, "3d 00:00:05")],
)
def test_fmt_duration(s, out):
    assert fmt.fmt_duration(s) == out


@pytest.mark.parametrize(
    "s, out",
    [(None, ""), (0, "0:00"), (59.6, "1:00"), (61, "1:01"), (3600, "1:00:00"), (360_000, "100:00:00")],
)
def test_fmt_clock(s, out):
    assert fmt.fmt_clock(s) == out


@pytest.mark.parametrize(
    "x, missing, out",
    [(None, "n/a", "n/a"), (NAN, "n/a", "n/a"), (None, "", ""), (INF, "", ""), (0, "", "0.0000"),
     (0.91234, "n/a", "0.9123"), (1, "", "1.0000")],
)
def test_fmt_acc(x, missing, out):
    assert fmt.fmt_acc(x, missing) == out


@pytest.mark.parametrize(
    "w, out", [(None, "n/a"), (NAN, "n/a"), (0, "0 W"), (299.6, "300 W"), (12_345, "12.3 kW")]
)
def test_fmt_watts(w, out):
    assert fmt.fmt_watts(w) == out


@pytest.mark.parametrize(
    "b, out", [(None, "n/a"), (INF, "n/a"), (0, "0 B"), (1023, "1023 B"), (2**30 * 80, "80.0 GiB")]
)
def test_fmt_bytes(b, out):
    assert fmt.fmt_bytes(b) == out


@pytest.mark.parametrize(
    "x, out",
    [(None, "n/a"), ("x", "n/a"), (NAN, "n/a"), (0, "0"), (0.5, "0.5"), (1234.5, "1234"),
     (1e5, "1.000e+05"), (1e-5, "1.000e-05"), ("2.5", "2.5")],
)
def test_fmt_num(x, out):
    assert fmt.fmt_num(x) == out


def test_small_cells():
    assert fmt.fmt_pct(None) == "n/a" and fmt.fmt_pct(NAN) == "n/a" and fmt.fmt_pct(99.6) == "100%"
    assert fmt.fmt_opt(None, ".0f") == "" and fmt.fmt_opt(0, ".0f") == "0"
    assert fmt.fmt_cost(None, "EUR") == "" and fmt.fmt_cost(1.234, "EUR") == "1.23 EUR"
    assert fmt.fmt_cost(0, None) == "0.00"
    assert fmt.fmt_utc(None) == "" and fmt.fmt_utc(0) == "1970-01-01 00:00"
    assert fmt.method_label(None) == "n/a" and fmt.method_label("none") == "n/a"
    assert fmt.method_label("simulated") == "SIMULATED" and fmt.method_label("counter") == "counter"


@pytest.mark.parametrize(
    "x, out",
    [(None, None), (True, None), ("1", None), (NAN, None), (INF, None), (10**400, None),
     (0, 0.0), (-3, -3.0), (2.5, 2.5), (HUGE, HUGE)],
)
def test_finite_float(x, out):
    got = finite_float(x)
    assert got == out and (got is None or type(got) is float)
    assert is_finite_number(x) is (out is not None)


@pytest.mark.parametrize(
    "j, out",
    [(None, "n/a"), (NAN, "n/a"), (INF, "n/a"), (0, "0 mJ"), (0.0123, "12.3 mJ"), (1, "1 J"),
     (999.4, "999 J"), (1000, "1 kJ"), (-2500, "-2.5 kJ"), (HUGE, "1e+297 kJ")],
)
def test_fmt_joules(j, out):
    assert fmt.fmt_joules(j) == out


@pytest.mark.parametrize(
    "x, unit, out",
    [(None, "J", "n/a"), (0, "J", "0 J"), (2.5e-7, "J", "2.5e-07 J"), (3.2e-5, "J", "32 uJ"),
     (0.5, "s", "500 ms"), (12.0, "J", "12 J"), (1.5e6, "J", "1.5e+03 kJ"), (-0.002, "J", "-2 mJ")],
)
def test_fmt_si(x, unit, out):
    assert fmt.fmt_si(x, unit) == out


@pytest.mark.parametrize(
    "n, out", [(0, "0"), (999, "999"), (1000, "1k"), (25_557_032, "25.6M"), (4.1e9, "4.1G"), (10**15, "1e+03T")]
)
def test_fmt_count(n, out):
    assert fmt.fmt_count(n) == out
