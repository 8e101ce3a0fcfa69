"""Baselines: perfect foresight bounds the closed loop from below; the rule-based peer writes only safe setpoints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import microgrid
from microgrid.planning.baselines import compare, perfect_foresight, run_controller
from microgrid.planning.closed_loop import simulate
from microgrid.planning.scenarios import hospital_winter
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.state import SiteState
from microgrid.telemetry.limits import site_limits
from microgrid.telemetry.wiring import check_wiring
from tests.conftest import HOSPITAL, WINTER
from tests.planning.conftest import hourly, hourly_site


@pytest.mark.slow
def test_perfect_foresight_is_never_above_the_closed_loop(winter_week_hourly: tuple[Site, Profiles]) -> None:
    """Same true profiles, same start, same cost definition (operating costs + the terminal value of the
    change in stored energy, :mod:`microgrid.planning.kpis`); no forecast error, so the gap is the closed
    loop's own (step-0 persistence, the plant's within-interval physics, the rolling horizon)."""
    site, profiles = winter_week_hourly
    table = compare(site, profiles, days=1, window_days=1)
    assert list(table.index) == ["mpc", "rules", "perfect_foresight"]
    assert {"cost_total", "fuel_burnt.diesel", "unserved_kwh.critical", "cost_above_perfect_foresight"} <= set(table)
    pf = table.loc["perfect_foresight", "cost_total"]
    assert pf <= table.loc["mpc", "cost_total"] + 1e-6
    assert pf <= table.loc["rules", "cost_total"] + 1e-6
    assert table.loc["perfect_foresight", "cost_above_perfect_foresight"] == 0


def test_perfect_foresight_chains_windows_with_the_state_carried(winter_week_hourly: tuple[Site, Profiles]) -> None:
    site, profiles = winter_week_hourly
    one = perfect_foresight(site, profiles, days=1, window_days=1, lookahead_days=0, autonomy=False)
    chained = perfect_foresight(site, profiles, days=1, window_days=0.25, lookahead_days=0.25, autonomy=False)
    i = chained.intervals
    assert len(i) == 24 and (i["source"] == "perfect_foresight").all()
    for b in site.batteries:  # SOC dynamics hold across the window boundaries too
        soc = i[f"battery.{b.id}.soc"].to_numpy()
        before = np.concatenate(([b.initial_soc], soc[:-1]))
        flow = (
            b.charge_efficiency * i[f"battery.{b.id}.charge_kw"]
            - i[f"battery.{b.id}.discharge_kw"] / b.discharge_efficiency
        )
        np.testing.assert_allclose((soc - before) * b.capacity_kwh, flow.to_numpy(), atol=1e-4)
    stock = i["fuel.diesel.stock"].to_numpy()
    burnt = sum(i[f"generator.{g.id}.fuel"].to_numpy() for g in site.generators)
    np.testing.assert_allclose(np.concatenate(([site.fuels["diesel"].stock], stock[:-1])) - stock, burnt, atol=1e-6)
    for g in site.generators:  # minimum up time holds across boundaries: no run shorter than min_up_h
        on = i[f"generator.{g.id}.on"].to_numpy()
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate(([0], on, [0])))))[::2]
        assert (runs >= g.min_up_h - 1e-9).all()
    # one window over the whole day is at least as good as 6-hour windows (within the MIP gap)
    assert one.kpis["cost_total"] <= chained.kpis["cost_total"] * (1 + site.control.mip_gap) + 1e-6


@pytest.mark.slow
def test_the_rule_based_peer_never_writes_an_unsafe_setpoint() -> None:
    """Three winter days with little fuel (so batteries hit their floor and tiers are shed): every value
    written lies within the map's range and the site's limits, a battery never discharges at its floor nor
    charges at its ceiling, a genset is never loaded before it runs, and the critical feeder stays closed."""
    site, truth = hospital_winter(3, seed=11, fuel_stock=150)
    site, profiles = hourly_site(site), hourly(truth)
    result = simulate(site, profiles, controller="rules", substep_s=120)
    writes, i = result.writes, result.intervals
    assert (i["writes.refused"] == 0).all()
    assert not writes.empty and set(writes["status"]) <= {"written", "skipped"}
    maps = check_wiring(site)
    bindings = {b.id: b for b in site.devices}
    soc_before = {
        b.id: pd.Series(np.concatenate(([b.initial_soc], i[f"battery.{b.id}.soc"].to_numpy()[:-1])), index=i.index)
        for b in site.batteries
    }
    on_before = {
        g.id: pd.Series(np.concatenate(([0], i[f"generator.{g.id}.on"].to_numpy()[:-1])), index=i.index)
        for g in site.generators
    }
    batteries = {b.id: b for b in site.batteries}
    runs = writes[(writes["point"] == "run_command") & (writes["value"] == 1)]
    run_requested = set(zip(runs["timestamp"], runs["device"], strict=True))
    for row in writes.itertuples():
        binding, regmap = bindings[row.device], maps[row.device]
        point = regmap.by_name[row.point]
        assert point.writable
        low, high = site_limits(site, binding, regmap).get(row.point, (-np.inf, np.inf))
        assert low - 1e-9 <= float(row.value) <= high + 1e-9, row
        if point.min is not None:
            assert float(row.value) >= point.min - 1e-9, row
        if point.max is not None:
            assert float(row.value) <= point.max + 1e-9, row
        if binding.asset in batteries and row.point == "power_setpoint_kw":
            bat, soc = batteries[binding.asset], soc_before[binding.asset].loc[row.timestamp]
            assert not (row.value > 1e-9 and soc <= bat.soc_min), row
            assert not (row.value < -1e-9 and soc >= bat.soc_max), row
        if binding.asset in on_before and row.point == "power_setpoint_kw" and row.value > 0:
            # a setpoint only for a genset asked to run in the same cycle (applied once it is on line)
            assert (row.timestamp, row.device) in run_requested, row
        if row.point == "feeder_1_command":
            assert row.value == 1  # the critical tier's feeder
    assert i["load.comfort.shed_kw"].sum() > 0, "the scenario must drive the rules to their floor"


def test_the_closed_loop_runs_closed_loops_only_and_the_baselines_pick() -> None:
    """simulate is the closed loop (mpc, rules); run_controller picks among those and perfect foresight."""
    site = microgrid.read_site(HOSPITAL)
    profiles = microgrid.read_profiles(WINTER, site)
    with pytest.raises(ValueError, match="mpc, rules"):
        simulate(site, profiles, days=0.25, controller="perfect_foresight")
    with pytest.raises(ValueError, match="mpc, rules, perfect_foresight"):
        run_controller("oracle", site, profiles)
    assert (
        run_controller("perfect_foresight", site, profiles, days=0.25).intervals["source"] == "perfect_foresight"
    ).all()


def test_operational_perfect_foresight_switches_whole_tiers(winter_week_hourly: tuple[Site, Profiles]) -> None:
    """With the controller's obligations (whole feeders, the reserve while islanded) perfect foresight sheds a
    switchable tier all or nothing at every step, and costs at least as much as the spec's model over the
    same day (it has more constraints; both within their MIP gap)."""
    site, profiles = winter_week_hourly
    initial = SiteState.initial(site)  # 60 l and batteries at 30 %: the day's outages shed essential load
    state = dataclasses.replace(
        initial, fuel_stock=dict.fromkeys(initial.fuel_stock, 60.0), soc=dict.fromkeys(initial.soc, 0.3)
    )
    free = perfect_foresight(site, profiles, state=state, days=1, autonomy=False, mip_gap=1e-4)
    bound = perfect_foresight(site, profiles, state=state, days=1, autonomy=False, mip_gap=1e-4, operational=True)
    assert site.control.feeders is not None
    essential = free.intervals["load.essential.shed_kw"].to_numpy()
    demand = free.intervals["load.essential.demand_kw"].to_numpy()
    assert (~np.isclose(essential, 0.0, atol=1e-4) & ~np.isclose(essential, demand, atol=1e-4)).any()  # fractions
    for tier in site.loads:
        demand = bound.intervals[f"load.{tier.id}.demand_kw"].to_numpy()
        shed = bound.intervals[f"load.{tier.id}.shed_kw"].to_numpy()
        whole = np.isclose(shed, 0.0, atol=1e-4) | np.isclose(shed, demand, atol=1e-4)
        assert whole.all(), tier.id
    assert bound.kpis["cost_total"] >= free.kpis["cost_total"] * (1 - 1e-4) - 1e-6
