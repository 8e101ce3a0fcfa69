"""The simulated plant's physics, on cases worked out by hand."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from microgrid.point_names import FUEL_LEVEL_L, FUEL_LEVEL_PCT
from microgrid.profiles import profiles_from_frame
from microgrid.sim.adapters import GensetAdapter
from microgrid.sim.physics import SitePlant
from microgrid.site import site_from_dict
from tests.conftest import tiny_site


def _site(**sections: Any) -> Any:
    base = {
        "batteries": [
            {
                "id": "b",
                "capacity_kwh": 100,
                "soc_min": 0.1,
                "soc_max": 0.9,
                "max_charge_kw": 50,
                "max_discharge_kw": 50,
                "charge_efficiency": 0.9,
                "discharge_efficiency": 0.8,
                "initial_soc": 0.5,
            }
        ],
        "loads": [
            {"id": "crit", "priority": 1, "value_of_lost_load_per_kwh": 1000},
            {"id": "comf", "priority": 3, "value_of_lost_load_per_kwh": 10},
        ],
        "grid": {"max_import_kw": 100, "import_price_per_kwh": 1.0},
    }
    base.update(sections)
    return site_from_dict(tiny_site(**base))


def _profiles(site: Any, *, crit: float, comf: float, grid: int, hours: int = 2) -> Any:
    index = pd.date_range("2026-01-01T00:00:00+00:00", periods=hours, freq="1h")
    frame = pd.DataFrame(
        {
            "timestamp": [t.isoformat() for t in index],
            "load.crit": crit,
            "load.comf": comf,
            "grid.available": grid,
        }
    )
    return profiles_from_frame(frame, site)


def test_battery_follows_setpoint_and_integrates_with_efficiency() -> None:
    site = _site()
    plant = SitePlant(site, _profiles(site, crit=30, comf=0, grid=1))
    plant.batteries["b"].revert_timeout_s = 3600
    plant.batteries["b"].command(20.0)  # discharge 20 kW for 0.5 h: 10 kWh out, 12.5 kWh from cells
    plant.advance(1800)
    assert plant.batteries["b"].energy_kwh == pytest.approx(50 - 12.5)
    assert plant.grid_kw == pytest.approx(10.0)


def test_surplus_without_export_is_absorbed_by_the_battery() -> None:
    site = _site()
    plant = SitePlant(site, _profiles(site, crit=10, comf=0, grid=1))
    plant.batteries["b"].revert_timeout_s = 3600
    plant.batteries["b"].command(20.0)  # 10 kW more than the load, and no export allowed
    plant.advance(1800)
    assert plant.grid_kw == pytest.approx(0.0)
    assert plant.batteries["b"].power_kw == pytest.approx(10.0)


def test_battery_charging_stores_with_charge_efficiency() -> None:
    site = _site()
    plant = SitePlant(site, _profiles(site, crit=10, comf=0, grid=1))
    plant.batteries["b"].revert_timeout_s = 3600
    plant.batteries["b"].command(-40.0)  # charge 40 kW for 0.5 h: 20 kWh in, 18 kWh stored
    plant.advance(1800)
    assert plant.batteries["b"].energy_kwh == pytest.approx(68.0)
    assert plant.grid_kw == pytest.approx(50.0)  # 10 kW load + 40 kW charging


def test_setpoint_reverts_without_keep_alive() -> None:
    site = _site()
    plant = SitePlant(site, _profiles(site, crit=0, comf=0, grid=1))
    bat = plant.batteries["b"]
    bat.revert_timeout_s = 60
    bat.command(-10.0)
    plant.advance(30)
    assert bat.power_kw == pytest.approx(-10.0)
    for _ in range(4):  # 70 s without a write: autonomous, setpoint dropped
        plant.advance(10)
    assert bat.autonomous and bat.power_kw == pytest.approx(0.0)


def test_outage_battery_forms_grid_then_least_important_tier_trips() -> None:
    site = _site()
    plant = SitePlant(site, _profiles(site, crit=30, comf=40, grid=0))
    plant.advance(360)  # 70 kW demand, battery can give 50 kW: comfort loses 20 kW
    assert plant.batteries["b"].power_kw == pytest.approx(50.0)
    assert plant.totals.unserved_kwh["comf"] == pytest.approx(20 * 0.1)
    assert plant.totals.unserved_kwh["crit"] == 0.0
    assert plant.grid_kw == 0.0


@pytest.mark.parametrize(("named", "forming"), [(None, "big"), ("b", "b")])
def test_the_sites_grid_forming_battery_takes_the_slack(named: str | None, forming: str) -> None:
    """Islanded, both batteries idle: the one the site names (``control.reserve.grid_forming``), else the
    largest, covers the 30 kW alone; the other stays at its setpoint."""
    big = {
        "id": "big",
        "capacity_kwh": 400,
        "soc_min": 0.1,
        "soc_max": 0.9,
        "max_charge_kw": 100,
        "max_discharge_kw": 100,
        "charge_efficiency": 0.9,
        "discharge_efficiency": 0.9,
        "initial_soc": 0.5,
    }
    site = _site(
        batteries=[_site().batteries[0].model_dump(), big],
        control={"reserve": {"grid_forming": named}} if named else {},
    )
    plant = SitePlant(site, _profiles(site, crit=30, comf=0, grid=0))
    plant.advance(60)
    other = "b" if forming == "big" else "big"
    assert plant.batteries[forming].power_kw == pytest.approx(30.0)
    assert plant.batteries[other].power_kw == pytest.approx(0.0)


def test_genset_starts_after_delay_ramps_and_burns_fuel() -> None:
    gen = {
        "id": "g",
        "fuel": "diesel",
        "max_kw": 100,
        "min_kw": 20,
        "fuel_per_kwh": 0.25,
        "fuel_per_hour_running": 4.0,
    }
    site = _site(generators=[gen], fuels={"diesel": {"unit": "l", "price_per_unit": 60, "stock": 1.0}})
    plant = SitePlant(site, _profiles(site, crit=10, comf=0, grid=1))
    g = plant.gensets["g"]
    g.start_delay_s, g.ramp_kw_per_s = 10.0, 1.0
    g.command(True, 50.0)
    plant.advance(5)
    assert not g.running
    plant.advance(5)
    assert g.running and g.power_kw == 0.0
    plant.advance(36)  # ramps 1 kW/s from 0, held at min 20 first: reaches 36 kW
    assert g.power_kw == pytest.approx(36.0)
    burn = 36 / 3600 * (0.25 * 36 + 4.0)
    assert plant.fuel["diesel"] == pytest.approx(1.0 - burn)
    for _ in range(200):  # runs dry, then stops
        plant.advance(60)
    assert plant.fuel["diesel"] == 0.0 and not g.running and g.power_kw == 0.0


def test_a_delivery_fills_the_tank_and_the_level_sender_reads_it() -> None:
    """100 l at the start, 60 l burnt down to 40, a truck of 90 l: 130 l in the tank, the sender's 100 % the
    fullest the tank has been (130 l), so it reads 100 %; a later truck that does not overfill keeps it."""
    gen = {"id": "g", "fuel": "diesel", "max_kw": 100, "min_kw": 20, "fuel_per_kwh": 0.25, "fuel_per_hour_running": 4.0}
    site = _site(generators=[gen], fuels={"diesel": {"unit": "l", "price_per_unit": 60, "stock": 100.0}})
    plant = SitePlant(site, _profiles(site, crit=10, comf=0, grid=1))
    sender = GensetAdapter(plant=plant, asset="g")
    plant.fuel["diesel"] = 40.0
    assert sender.values()[FUEL_LEVEL_PCT] == 40.0
    plant.deliver_fuel({"diesel": 90.0})
    assert plant.fuel["diesel"] == 130.0 and sender.values()[FUEL_LEVEL_L] == 130.0
    assert sender.values()[FUEL_LEVEL_PCT] == 100.0
    plant.fuel["diesel"] = 13.0
    plant.deliver_fuel({"diesel": 52.0})
    assert sender.values()[FUEL_LEVEL_PCT] == 50.0
    with pytest.raises(ValueError, match="no fuel 'gas'"):
        plant.deliver_fuel({"diesel": 1.0, "gas": 1.0})
    assert plant.fuel["diesel"] == 65.0  # refused whole: nothing poured


def test_opening_a_relay_drops_that_tier() -> None:
    site = _site()
    plant = SitePlant(site, _profiles(site, crit=30, comf=40, grid=1))
    plant.relay_closed["comf"] = False
    plant.advance(60)
    assert plant.load_kw["comf"] == 0.0
    assert plant.grid_kw == pytest.approx(30.0)
