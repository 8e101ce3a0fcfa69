"""The autonomy figure against hand calculations (1-hour steps, efficiencies 1 unless stated)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from microgrid.autonomy import Autonomy, autonomy_hours
from microgrid.profiles import Profiles, profiles_from_frame
from microgrid.site import Site, site_from_dict
from microgrid.state import SiteState
from tests.conftest import tiny_site

BATTERY = {
    "id": "b",
    "capacity_kwh": 100,
    "soc_min": 0.1,
    "soc_max": 0.9,
    "max_charge_kw": 50,
    "max_discharge_kw": 50,
    "charge_efficiency": 1.0,
    "discharge_efficiency": 1.0,
    "initial_soc": 0.6,
}
TIERS = [
    {"id": "crit", "priority": 1, "value_of_lost_load_per_kwh": 1000},
    {"id": "ess", "priority": 2, "value_of_lost_load_per_kwh": 100},
]


def _site(**sections: Any) -> Site:
    return site_from_dict(tiny_site(batteries=[BATTERY], loads=TIERS, **sections))


def _profiles(site: Site, crit: list[float], ess: float = 0.0, pv: list[float] | None = None) -> Profiles:
    index = pd.date_range("2026-01-01T00:00:00+00:00", periods=len(crit), freq="1h")
    frame = pd.DataFrame({"timestamp": [t.isoformat() for t in index], "load.crit": crit, "load.ess": ess})
    if pv is not None:
        frame["pv.roof"] = pv
    return profiles_from_frame(frame, site)


def test_battery_alone() -> None:
    """50 kWh above the floor at 10 kW: 5 h."""
    site = _site()
    assert autonomy_hours(site, _profiles(site, [10.0] * 24), SiteState.initial(site)) == pytest.approx(5.0)


@pytest.mark.parametrize(("running_l_per_h", "expected_h"), [(0.0, 9.0), (1.0, 5 + 10 / 3.5)])
def test_battery_then_genset_until_the_tank_is_dry(running_l_per_h: float, expected_h: float) -> None:
    """Then a genset at 10 kW burns 0.25 l/kWh × 10 kW (+ the running burn) from 10 l."""
    gen = {"id": "g", "fuel": "diesel", "max_kw": 20, "min_kw": 0, "fuel_per_kwh": 0.25}
    site = _site(
        generators=[{**gen, "fuel_per_hour_running": running_l_per_h}],
        fuels={"diesel": {"unit": "l", "price_per_unit": 60, "stock": 10}},
    )
    assert autonomy_hours(site, _profiles(site, [10.0] * 24), SiteState.initial(site)) == pytest.approx(expected_h)


def test_unlimited_fuel_is_capped() -> None:
    gen = {"id": "g", "fuel": "diesel", "max_kw": 20, "min_kw": 0, "fuel_per_kwh": 0.25, "fuel_per_hour_running": 1}
    site = _site(generators=[gen], fuels={"diesel": {"unit": "l", "price_per_unit": 60}})
    profiles = _profiles(site, [10.0, 12.0])  # two rows, repeated
    assert autonomy_hours(site, profiles, SiteState.initial(site), max_hours=48) == 48.0


def test_pv_surplus_charges_then_carries() -> None:
    """Start at the floor (10 kWh); hour 0: PV 20 kW, load 10 → +10 kWh; then 10 kWh at 10 kW: 1 h more."""
    site = _site(pv=[{"id": "roof", "peak_kw": 50}])
    state = SiteState(soc={"b": 0.1}, generators={}, fuel_stock={})
    profiles = _profiles(site, [10.0] * 24, pv=[20.0] + [0.0] * 23)
    assert autonomy_hours(site, profiles, state) == pytest.approx(2.0)


def test_more_tiers_shorter_autonomy() -> None:
    """Critical 10 kW: 5 h; critical + essential 10 + 15 kW: 50 / 25 = 2 h."""
    site = _site()
    figures = Autonomy.of(site, _profiles(site, [10.0] * 24, ess=15.0), SiteState.initial(site))
    assert (figures.critical_h, figures.critical_essential_h) == (pytest.approx(5.0), pytest.approx(2.0))


def test_genset_min_load_surplus_recharges_the_battery() -> None:
    """Battery empty at the floor; genset min 15 kW for a 10 kW load: 5 kW surplus refills the battery,
    and the genset runs until its 3.75 l last 1 h (0.25 × 15 = 3.75 l/h); then the 5 kWh stored last 0.5 h."""
    gen = {"id": "g", "fuel": "diesel", "max_kw": 20, "min_kw": 15, "fuel_per_kwh": 0.25, "fuel_per_hour_running": 0}
    site = _site(generators=[gen], fuels={"diesel": {"unit": "l", "price_per_unit": 60, "stock": 3.75}})
    state = SiteState(soc={"b": 0.1}, generators={}, fuel_stock={"diesel": 3.75})
    assert autonomy_hours(site, _profiles(site, [10.0] * 24), state) == pytest.approx(1.5)


@pytest.mark.parametrize("stock_l", [10.0, 100.0, 333.3, 1000.0])
@pytest.mark.parametrize("hours_of_forecast", [2, 3, 24])
def test_rounds_of_the_forecast_that_repeat_are_counted_not_stepped(stock_l: float, hours_of_forecast: int) -> None:
    """A short forecast repeats; from the second round on the battery starts every round at its floor
    and the genset burns 2.5 l/h, so the rounds in between are counted in one go: same answer as
    stepping (5 h of battery, then the tank at 2.5 l/h, capped at a week)."""
    gen = {"id": "g", "fuel": "diesel", "max_kw": 20, "min_kw": 0, "fuel_per_kwh": 0.25, "fuel_per_hour_running": 0}
    site = _site(generators=[gen], fuels={"diesel": {"unit": "l", "price_per_unit": 60, "stock": stock_l}})
    hours = autonomy_hours(site, _profiles(site, [10.0] * hours_of_forecast), SiteState.initial(site))
    assert hours == pytest.approx(min(5.0 + stock_l / 2.5, 168.0), rel=1e-9)


def test_a_day_with_sun_repeats_with_its_fuel_burnt_each_day() -> None:
    """Each day 12 h of sun (PV 30 kW for a 10 kW load) refill the battery to its 80 usable kWh; each
    night it carries 8 h and the genset the last 4 h at 2.5 l/h = 10 l a night. 60 l pay for 6
    nights; the 7th night ends when the battery does: 6 × 24 + 12 + 8 = 164 h (a day round is skipped
    at a time, the last stepped through)."""
    gen = {"id": "g", "fuel": "diesel", "max_kw": 20, "min_kw": 0, "fuel_per_kwh": 0.25, "fuel_per_hour_running": 0}
    site = _site(
        generators=[gen],
        pv=[{"id": "roof", "peak_kw": 40}],
        fuels={"diesel": {"unit": "l", "price_per_unit": 60, "stock": 60.0}},
    )
    day = _profiles(site, [10.0] * 24, pv=[30.0] * 12 + [0.0] * 12)
    state = SiteState(soc={"b": 0.9}, generators=SiteState.initial(site).generators, fuel_stock={})
    assert autonomy_hours(site, day, state) == pytest.approx(6 * 24 + 12 + 8)
