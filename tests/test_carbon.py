"""CO2 and cost: the shipped table, explicit intensities, price, PUE."""

from __future__ import annotations

import pytest

from wattui.metrics.carbon import (
    DATA_PATH,
    CarbonSettings,
    co2_g,
    cost,
    countries,
    lookup_country,
    make_settings,
)

KWH = 3.6e6


def test_table_is_shipped_with_attribution():
    assert DATA_PATH.exists()
    head = DATA_PATH.read_text().splitlines()[0]
    assert "CodeCarbon" in head and "MIT" in head
    assert (DATA_PATH.parent / "carbon_intensity.SOURCE.md").exists()
    cs = countries()
    assert len(cs) > 200
    assert all(0 <= c.g_per_kwh < 2000 and 2000 <= c.year <= 2030 for c in cs)


def test_lookup_country():
    fra, ind = lookup_country("FRA"), lookup_country("ind")
    assert fra.country == "France" and fra.g_per_kwh < 150  # nuclear-heavy grid
    assert ind.g_per_kwh > 500


@pytest.mark.parametrize("code, hint", [("XXX", "unknown country code"), ("FR", "three-letter")])
def test_unknown_country(code, hint):
    with pytest.raises(ValueError, match=hint):
        lookup_country(code)


def test_co2_and_cost_with_pue():
    s = make_settings(g_per_kwh=400, price_per_kwh=0.25, currency="EUR", pue=1.5)
    assert co2_g(10 * KWH, s) == pytest.approx(10 * 1.5 * 400)
    assert cost(10 * KWH, s) == pytest.approx(10 * 1.5 * 0.25)
    assert s.currency == "EUR" and "given" in s.source_note


def test_country_settings_and_missing_figures():
    s = make_settings(country="SWE")
    assert s.g_per_kwh == lookup_country("SWE").g_per_kwh and "Sweden" in s.source_note
    assert cost(KWH, s) is None
    none = CarbonSettings()
    assert co2_g(KWH, none) is None and cost(KWH, none) is None
    assert co2_g(float("nan"), s) is None


def test_explicit_intensity_wins_and_bad_options():
    assert make_settings(g_per_kwh=10, country="IND").g_per_kwh == 10
    for kw in ({"pue": 0.5}, {"price_per_kwh": -1}, {"g_per_kwh": float("inf")}):
        with pytest.raises(ValueError):
            make_settings(**kw)
