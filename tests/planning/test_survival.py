"""Outage survival: hand-checkable hours on tiny sites, the Monte Carlo's bookkeeping, the closed loop."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from microgrid.planning.survival import outage_window, season_of, survival
from microgrid.profiles import Profiles, profiles_from_frame
from microgrid.site import Site, read_site, site_from_dict
from microgrid.state import SiteState, read_state
from tests.conftest import HOSPITAL, STATE, WINTER, tiny_site

BATTERY = {
    "id": "b1",
    "capacity_kwh": 100.0,
    "soc_min": 0.0,
    "soc_max": 1.0,
    "max_charge_kw": 50.0,
    "max_discharge_kw": 50.0,
    "charge_efficiency": 1.0,
    "discharge_efficiency": 1.0,
    "initial_soc": 1.0,
}
GENSET = {
    "id": "g1",
    "fuel": "diesel",
    "max_kw": 100.0,
    "min_kw": 0.0,
    "fuel_per_kwh": 0.25,
    "fuel_per_hour_running": 0.0,
}
TIERS = [
    {"id": "critical", "priority": 1, "value_of_lost_load_per_kwh": 1000.0},
    {"id": "comfort", "priority": 2, "value_of_lost_load_per_kwh": 10.0},
]


def site_with(**sections: Any) -> Site:
    return site_from_dict(tiny_site(loads=TIERS, grid={"max_import_kw": 100, "import_price_per_kwh": 5.0}, **sections))


def flat(
    site: Site, critical_kw: float, comfort_kw: float = 30.0, start: str = "2026-01-15T00:00+00:00", steps: int = 96
) -> Profiles:
    index = pd.date_range(start, periods=steps, freq="15min")
    frame = pd.DataFrame(
        {
            "timestamp": [t.isoformat() for t in index],
            "load.critical": critical_kw,
            "load.comfort": comfort_kw,
            "grid.available": 1,
        }
    )
    return profiles_from_frame(frame, site)


def test_battery_alone_carries_exactly_capacity_over_load() -> None:
    site = site_with(batteries=[BATTERY])
    result = survival(site, flat(site, 10.0), durations_h=(4, 8, 10, 12), samples=20, forecast_error=0.0)
    assert np.allclose(result.hours_survived["hours"], 10.0)  # 100 kWh / 10 kW; comfort is shed
    assert result.probability.tolist() == [1.0, 1.0, 1.0, 0.0]
    assert result.probability.index.tolist() == [4.0, 8.0, 10.0, 12.0]
    assert not result.hours_survived["capped"].any()
    assert result.tiers == ("critical",)
    assert result.max_hours == 12.0


def test_state_sets_the_starting_energy() -> None:
    site = site_with(batteries=[BATTERY])
    half = SiteState(soc={"b1": 0.5})
    result = survival(site, flat(site, 10.0), state=half, durations_h=(4, 6), samples=5, forecast_error=0.0)
    assert np.allclose(result.hours_survived["hours"], 5.0)
    assert result.probability.tolist() == [1.0, 0.0]


def test_genset_runs_until_the_tank_is_dry() -> None:
    site = site_with(generators=[GENSET], fuels={"diesel": {"unit": "l", "price_per_unit": 60.0, "stock": 100.0}})
    # 50 kW × 0.25 l/kWh = 12.5 l/h: 100 l last 8 h
    result = survival(site, flat(site, 50.0), durations_h=(6, 8, 9), samples=10, forecast_error=0.0)
    assert np.allclose(result.hours_survived["hours"], 8.0)
    assert result.probability.tolist() == [1.0, 1.0, 0.0]


def test_two_priorities_count_as_critical_when_asked() -> None:
    site = site_with(batteries=[BATTERY])
    result = survival(site, flat(site, 10.0, 15.0), durations_h=(8,), samples=3, forecast_error=0.0, max_priority=2)
    assert np.allclose(result.hours_survived["hours"], 4.0)  # 100 kWh / 25 kW
    assert result.tiers == ("critical", "comfort")


def test_forecast_error_scales_the_load_per_sample() -> None:
    site = site_with(batteries=[BATTERY])
    result = survival(site, flat(site, 10.0), durations_h=(24,), samples=200, forecast_error=0.2, seed=3)
    frame = result.hours_survived
    expected = np.minimum(10.0 / frame["load_factor"], 24.0)  # PV absent: only the load factor matters
    assert np.allclose(frame["hours"], expected)
    assert 0.1 < frame["load_factor"].std() < 0.3
    assert result.probability.iloc[0] == pytest.approx(float(np.mean(frame["hours"] >= 24.0)))
    p10 = float(np.mean(frame["hours"] >= 10.0))
    assert result.curve([10.0]).iloc[0] == pytest.approx(p10)


def test_same_seed_same_result_and_capped_hours() -> None:
    site = site_with(batteries=[BATTERY])
    profiles = flat(site, 1.0)  # 100 h of battery
    one = survival(site, profiles, durations_h=(12, 24), samples=30, seed=7)
    two = survival(site, profiles, durations_h=(12, 24), samples=30, seed=7)
    pd.testing.assert_frame_equal(one.hours_survived, two.hours_survived)
    assert (one.hours_survived["hours"] == 24.0).all() and one.hours_survived["capped"].all()
    assert one.probability.tolist() == [1.0, 1.0]


def test_starts_cover_the_profiles_and_seasons_are_local() -> None:
    site = site_with(batteries=[BATTERY])
    profiles = flat(site, 10.0, start="2026-02-28T20:00+00:00", steps=96)  # crosses into March (UTC site)
    result = survival(site, profiles, durations_h=(4,), samples=300, seed=1)
    frame = result.hours_survived
    assert frame["start"].min() >= profiles.index[0] and frame["start"].max() <= profiles.index[-1]
    assert set(frame["month"]) == {2, 3}
    assert set(frame["season"]) == {"winter", "spring"}
    seasons = result.by_season()
    assert set(seasons.index) == {"winter", "spring"} and list(seasons.columns) == [4.0]
    assert season_of(12) == "winter" and season_of(7) == "summer" and season_of(10) == "autumn"


def test_outage_window_wraps_and_takes_the_grid_down() -> None:
    site = site_with(batteries=[BATTERY])
    profiles = flat(site, 10.0, steps=8)
    window = outage_window(profiles, 6, 5, load_factor=2.0, pv_factor=0.0)
    assert window.steps == 5 and window.index[0] == profiles.index[6]
    assert (window.index[1:] - window.index[:-1] == pd.Timedelta(minutes=15)).all()  # continues past the end
    assert (window.grid_available == 0).all()
    assert np.allclose(window.load_kw["critical"], 20.0)


def test_bad_arguments_are_refused() -> None:
    site = site_with(batteries=[BATTERY])
    with pytest.raises(ValueError, match="durations_h"):
        survival(site, flat(site, 10.0), durations_h=())
    with pytest.raises(ValueError, match="samples"):
        survival(site, flat(site, 10.0), samples=0)


def test_hospital_greedy_with_its_state() -> None:
    site = read_site(HOSPITAL)
    from microgrid.profiles import read_profiles

    profiles = read_profiles(WINTER, site)
    state = read_state(STATE, site)
    result = survival(site, profiles, state=state, durations_h=(4, 24, 72), samples=50, seed=0)
    p = result.probability.to_numpy()
    assert (np.diff(p) <= 0).all()  # longer outages are never more likely to be carried
    assert p[0] == 1.0  # 650 kWh of batteries and 900 l of diesel carry ~100 kW of critical load for 4 h


@pytest.mark.slow
def test_rules_closed_loop_agrees_with_the_greedy_figure_on_a_short_outage() -> None:
    site = read_site(HOSPITAL)
    from microgrid.profiles import read_profiles

    profiles = read_profiles(WINTER, site)
    result = survival(site, profiles, durations_h=(2,), samples=2, forecast_error=0.0, method="rules", seed=0)
    assert result.method == "rules"
    assert result.probability.tolist() == [1.0]  # the hospital's batteries alone carry 2 h of everything
    assert (result.hours_survived["hours"] == 2.0).all()
