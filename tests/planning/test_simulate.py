"""Closed-loop simulation: conservation on the plant's own figures, determinism, KPIs by hand, in-process devices."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from microgrid.planning.closed_loop import SimulationResult, simulate
from microgrid.planning.kpis import add_costs, kpis_of
from microgrid.planning.scenarios import hospital_winter
from microgrid.profiles import Profiles, profiles_from_frame
from microgrid.sim.memory import memory_devices
from microgrid.sim.server import SimulatedSite
from microgrid.site import Site, site_from_dict
from microgrid.telemetry.transport import ExceptionCodeError
from tests.planning.conftest import hourly, hourly_site

TOL = 1e-6


def check_conservation(result: SimulationResult, site: Site, profiles: Profiles) -> None:
    """Every interval: the plant's batteries, fuel, loads and power balance add up."""
    i = result.intervals
    dt = (i.index[1] - i.index[0]) / pd.Timedelta(hours=1)
    for b in site.batteries:  # battery energy change = Δ · (ηc · charge − discharge / ηd)
        soc = i[f"battery.{b.id}.soc"].to_numpy()
        before = np.concatenate(([b.initial_soc], soc[:-1]))
        flow = dt * (
            b.charge_efficiency * i[f"battery.{b.id}.charge_kw"]
            - i[f"battery.{b.id}.discharge_kw"] / b.discharge_efficiency
        )
        np.testing.assert_allclose((soc - before) * b.capacity_kwh, flow.to_numpy(), atol=1e-6)
    for name, fuel in site.fuels.items():  # fuel stock decreases by the fuel burnt
        stock = i[f"fuel.{name}.stock"].to_numpy()
        burnt = sum(i[f"generator.{g.id}.fuel"].to_numpy() for g in site.generators if g.fuel == name)
        np.testing.assert_allclose(np.concatenate(([fuel.stock], stock[:-1])) - stock, burnt, atol=1e-6)
    for t in site.loads:  # demand is the truth's; served + shed = demand
        truth = profiles.load_kw[t.id].resample(pd.Timedelta(hours=dt)).mean().reindex(i.index)
        np.testing.assert_allclose(i[f"load.{t.id}.demand_kw"], truth, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(i[f"load.{t.id}.served_kw"] + i[f"load.{t.id}.shed_kw"], truth, atol=1e-6)
        assert (i[f"load.{t.id}.served_kw"] <= truth + TOL).all()
    supply = i["grid.import_kw"] - i["grid.export_kw"] + sum(i[f"pv.{a.id}.kw"] for a in site.pv)
    supply += sum(i[f"generator.{g.id}.kw"] for g in site.generators)
    supply += sum(i[f"battery.{b.id}.discharge_kw"] - i[f"battery.{b.id}.charge_kw"] for b in site.batteries)
    served = sum(i[f"load.{t.id}.served_kw"] for t in site.loads)
    np.testing.assert_allclose(supply - served, i["spill_kw"], atol=1e-6)  # sources − sinks = served (+ spill)
    assert (i["spill_kw"] >= -TOL).all(), "served load never exceeds what the sources delivered"
    spilt = i[i["spill_kw"] > 1e-3]  # a surplus only when no sink is left, so only while islanded
    assert (spilt["grid.available"] < 1).all()
    assert (i["grid.import_kw"] <= site.grid.max_import_kw * i["grid.available"] + TOL).all()  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_week_of_rules_past_the_last_litre_conserves_energy() -> None:
    """A week of shifting outages on the rules, with diesel for about 3.5 days: the tank runs dry on day 4,
    then the batteries empty, tiers are shed and PV is spilt while islanded; energy adds up throughout.
    (It was a month on 12,000 l, dry on day 11: the same states, four times the intervals.)"""
    site, week = hospital_winter(7, seed=5, fuel_stock=4000)
    site, profiles = hourly_site(site), hourly(week)
    result = simulate(site, profiles, controller="rules", substep_s=300)
    i = result.intervals
    assert len(i) == 7 * 24
    check_conservation(result, site, profiles)
    assert (i["source"] == "rules").all()
    assert result.kpis["hours_islanded"] == pytest.approx(float((1 - profiles.grid_available).sum()))
    dry = i.index[i["fuel.diesel.stock"] == 0.0]
    assert len(dry) > 0 and dry[0] < i.index[4 * 24], "the tank runs dry mid-week"
    assert min(i[f"battery.{b.id}.soc"].min() for b in site.batteries) < 0.01  # the states after the last litre
    assert result.kpis["unserved_kwh.critical"] > 0.0 and i["spill_kw"].max() > 1.0


@pytest.mark.slow
def test_closed_loop_mpc_conserves_energy_and_never_spills(winter_week: tuple[Site, Profiles]) -> None:
    site, profiles = winter_week
    result = simulate(site, profiles, days=1)
    check_conservation(result, site, profiles)
    assert set(result.intervals["source"]) <= {"plan", "previous_plan"}
    assert result.intervals["spill_kw"].max() < 1e-3
    assert result.intervals["writes.refused"].sum() == 0
    assert result.kpis["solve_s_median"] > 0


@pytest.mark.slow
def test_forecast_error_changes_results_deterministically_with_the_seed(winter_week: tuple[Site, Profiles]) -> None:
    """Six hourly intervals (the runs differ from the first; the error's state carries across intervals)."""
    site, profiles = winter_week
    runs = {
        key: simulate(site, profiles, days=0.25, forecast="oracle", forecast_error=err, seed=seed).intervals.drop(
            columns=["solve_s"]
        )
        for key, (err, seed) in {"perfect": (0.0, 0), "a": (0.2, 1), "a again": (0.2, 1), "b": (0.2, 2)}.items()
    }
    pd.testing.assert_frame_equal(runs["a"], runs["a again"])
    assert not runs["a"].equals(runs["perfect"])
    assert not runs["a"].equals(runs["b"])
    pd.testing.assert_series_equal(runs["a"]["load.critical.demand_kw"], runs["perfect"]["load.critical.demand_kw"])


# -- KPIs by hand ---------------------------------------------------------------------------------

TINY = {
    "site": {"name": "tiny", "timezone": "UTC", "currency": "UAH"},
    "control": {"interval": "15min", "horizon": "1h"},
    "batteries": [
        {
            "id": "b",
            "capacity_kwh": 100,
            "soc_min": 0.1,
            "soc_max": 0.9,
            "max_charge_kw": 50,
            "max_discharge_kw": 50,
            "charge_efficiency": 1.0,
            "discharge_efficiency": 1.0,
            "wear_cost_per_kwh": 2.0,
            "terminal_value_per_kwh": 1.0,
            "initial_soc": 0.5,
        }
    ],
    "generators": [
        {
            "id": "g",
            "fuel": "diesel",
            "max_kw": 40,
            "min_kw": 10,
            "fuel_per_kwh": 0.25,
            "fuel_per_hour_running": 2.0,
            "startup_cost": 100,
        }
    ],
    "fuels": {"diesel": {"unit": "l", "price_per_unit": 50.0, "stock": 100}},
    "loads": [
        {"id": "critical", "priority": 1, "value_of_lost_load_per_kwh": 1000},
        {"id": "comfort", "priority": 2, "value_of_lost_load_per_kwh": 10},
    ],
    "grid": {"max_import_kw": 100, "import_price_per_kwh": 4.0},
}


def test_kpis_by_hand_on_a_tiny_table() -> None:
    site = site_from_dict(TINY)
    index = pd.date_range("2026-01-15", periods=4, freq="15min", tz="UTC", name="timestamp")
    i = pd.DataFrame(index=index)
    i["battery.b.charge_kw"] = [20.0, 0.0, 0.0, 0.0]
    i["battery.b.discharge_kw"] = [0.0, 40.0, 40.0, 0.0]
    i["battery.b.soc"] = [0.55, 0.45, 0.35, 0.35]
    i["generator.g.kw"] = [0.0, 0.0, 20.0, 20.0]
    i["generator.g.on"] = [0, 0, 1, 1]
    i["generator.g.fuel"] = [0.0, 0.0, 1.75, 1.75]  # ¼ h · (0.25 · 20 + 2)
    i["generator.g.hours"] = [0.0, 0.0, 0.25, 0.25]
    i["generator.g.starts"] = [0, 0, 1, 0]
    i["fuel.diesel.stock"] = [100.0, 100.0, 98.25, 96.5]
    i["load.critical.shed_kw"] = [0.0, 0.0, 0.0, 0.0]
    i["load.comfort.shed_kw"] = [0.0, 0.0, 4.0, 0.0]
    i["grid.available"] = [1.0, 0.0, 0.0, 1.0]
    i["grid.import_kw"] = [30.0, 0.0, 0.0, 10.0]
    i["grid.export_kw"] = 0.0
    i["price.import_per_kwh"] = [4.0, 4.0, 4.0, 2.0]
    i["price.export_per_kwh"] = 0.0
    i["autonomy.critical_h"] = [10.0, 8.0, np.nan, 9.0]
    i["solve_s"] = [0.1, np.nan, 0.3, 0.2]
    k = kpis_of(add_costs(i, site, {"b": 0.5}), site)
    assert k["cost_grid"] == pytest.approx(0.25 * (30 * 4 + 10 * 2))  # 35
    assert k["cost_fuel"] == pytest.approx(3.5 * 50)  # 175
    assert k["cost_startup"] == pytest.approx(100)
    assert k["cost_wear"] == pytest.approx(0.25 * 80 * 2)  # 20 kWh discharged × 2 per kWh
    assert k["cost_unserved"] == pytest.approx(0.25 * 4 * 10)  # 1 kWh × 10
    assert k["cost_storage"] == pytest.approx(-1.0 * 100 * (0.35 - 0.5))  # 15: the battery ends emptier
    assert k["cost_total"] == pytest.approx(35 + 175 + 100 + 40 + 10 + 15)
    assert k["fuel_burnt.diesel"] == pytest.approx(3.5)
    assert k["fuel_left.diesel"] == pytest.approx(96.5)
    assert k["unserved_kwh.comfort"] == pytest.approx(1.0)
    assert k["unserved_kwh.critical"] == 0
    assert k["hours_islanded"] == pytest.approx(0.5)
    assert k["generator_hours.g"] == pytest.approx(0.5)
    assert k["generator_starts.g"] == 1
    assert k["battery_cycles.b"] == pytest.approx(20 / 100)
    assert k["min_autonomy_critical_h"] == 8.0
    assert k["intervals"] == 4
    assert k["solve_s_median"] == pytest.approx(0.2)


def test_below_the_floor_counts_only_while_a_genset_could_run_an_interval() -> None:
    """The battery (floor 10 %) ends 4 intervals at 5 %. The genset burns (0.25 · 10 kW + 2 l/h) · ¼ h =
    1.125 l in an interval at its minimum load: 100 l and 1.2 l count, 1.0 l and a few centilitres do not."""
    site = site_from_dict(TINY)
    index = pd.date_range("2026-01-15", periods=5, freq="15min", tz="UTC", name="timestamp")
    i = pd.DataFrame(index=index)
    i["battery.b.soc"] = [0.5, 0.05, 0.05, 0.05, 0.05]
    i["fuel.diesel.stock"] = [100.0, 100.0, 1.2, 1.0, 0.01]
    i["generator.g.on"] = 0
    i["grid.available"] = 0.0
    assert kpis_of(i, site)["grid_forming_below_floor"] == 2


def _tiny_grid_only() -> tuple[Site, Profiles]:
    raw = {
        "site": {"name": "grid only", "timezone": "UTC", "currency": "UAH"},
        "control": {"interval": "15min", "horizon": "1h"},
        "loads": [{"id": "critical", "priority": 1, "value_of_lost_load_per_kwh": 1000}],
        "grid": {"max_import_kw": 100, "import_price_per_kwh": 2.0},
        "devices": [
            {"id": "meter", "map": "generic-grid-meter", "port": 15501, "asset": "grid"},
            {"id": "feeders", "map": "generic-load-feeder", "port": 15502, "feeders": {"critical": 1}},
        ],
    }
    site = site_from_dict(raw)
    times = pd.date_range("2026-01-15", periods=8, freq="15min", tz="UTC")
    frame = pd.DataFrame(
        {
            "timestamp": [t.isoformat() for t in times],
            "load.critical": [10.0] * 8,
            "grid.available": [1, 1, 1, 1, 0, 0, 1, 1],
        }
    )
    return site, profiles_from_frame(frame, site)


@pytest.mark.parametrize("controller", ["rules", "mpc"])
def test_a_grid_only_site_by_hand(controller: str) -> None:
    site, profiles = _tiny_grid_only()
    result = simulate(site, profiles, controller=controller)
    k = result.kpis
    assert k["intervals"] == 8
    assert k["cost_grid"] == pytest.approx(6 * 0.25 * 10 * 2.0)  # 6 intervals up at 10 kW, 2 UAH/kWh
    assert k["unserved_kwh.critical"] == pytest.approx(2 * 0.25 * 10)  # the outage: nothing else feeds it
    assert k["cost_unserved"] == pytest.approx(5.0 * 1000)
    assert k["cost_total"] == pytest.approx(30 + 5000)
    assert k["hours_islanded"] == pytest.approx(0.5)


# -- the in-memory devices ------------------------------------------------------------------------


def test_memory_devices_read_the_plant_and_refuse_what_the_simulator_refuses() -> None:
    site = site_from_dict(
        TINY | {"devices": [{"id": "inv", "map": "generic-battery-inverter", "port": 1, "asset": "b"}]}
    )
    times = pd.date_range("2026-01-15", periods=4, freq="15min", tz="UTC")
    frame = pd.DataFrame({"timestamp": [t.isoformat() for t in times], "load.critical": [30.0] * 4})
    sim = SimulatedSite(site, profiles_from_frame(frame, site), speed=None, substep_s=30.0)
    devices = memory_devices(sim)
    inverter = devices.devices["inv"]

    async def go() -> None:
        first = await devices.read_all()
        assert first["inv"]["soc_pct"].value == pytest.approx(50.0)
        report = await inverter.write({"power_setpoint_kw": 20.0, "control_mode": 1})
        assert report.ok and report.written == {"power_setpoint_kw": 20.0, "control_mode": 1}
        sim.advance(900, keepalive=["inv"])
        after = await devices.read_all()
        assert after["inv"]["soc_pct"].value == pytest.approx(
            45.0
        )  # 20 kW for ¼ h from 100 kWh, η = 1 (the grid takes the other 10 kW of the load)
        registers = inverter.map.by_name["soc_pct"]  # a read-only point: the simulator's exception 2
        with pytest.raises(ExceptionCodeError):
            await inverter.transport.write(inverter.unit, registers.address, [0] * registers.words)

    asyncio.run(go())
