"""Minimum up times that the fuel cannot feed (:mod:`microgrid.control.locks`).

The tiny case, by hand: off-grid, critical load 30 kW for two 1 h steps, one genset (min 20 kW,
0.25 l/kWh + 2 l/h, i.e. 7 l per step at its minimum), running for 0.5 h of a 2 h minimum up time:
locked on for ceil(1.5 / 1) = 2 steps, which burn at least 14 l. With 13 l in the tank the spec's
model is infeasible (both rows are hard). Released, the best plan serves one step in full
(0.25·30 + 2 = 9.5 l) and sheds the other (3.5 l left, below the 7 l of a step at minimum load):
95 of fuel + 30 kWh × 1,000 = 30,095.
"""

from __future__ import annotations

import pytest

import microgrid
from microgrid.control.locks import (
    cap_min_up,
    fit_to_fuel,
    lock_fuel,
    release_locks_with_grid,
    release_unfed_locks,
    without_locks,
)
from microgrid.dispatch import DispatchInputs, optimize
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.state import GeneratorState, SiteState
from tests.conftest import tiny_site
from tests.control.conftest import Rig, run_rig
from tests.dispatch.helpers import CRITICAL, col, diesel, genset, grid, setup

LOCKED = genset(min_kw=20.0, min_up_h=2.0, initial_on=True, initial_hours_in_state=0.5)


def tiny(stock: float, load_kw: tuple[float, ...] = (30, 30)) -> tuple[Site, Profiles, SiteState]:
    site, profiles, state = setup(
        tiny_site(generators=[LOCKED], fuels=diesel(stock=stock), loads=[CRITICAL]), {"load.crit": list(load_kw)}
    )
    return site, profiles, state


def test_the_lock_burns_its_steps_at_minimum_load() -> None:
    site, _, state = tiny(13.0)
    assert lock_fuel(site, state, 1.0) == pytest.approx({"diesel": 14.0})
    assert lock_fuel(site, state, 0.25) == pytest.approx({"diesel": 6 * 0.25 * 7.0})  # ceil(1.5 / 0.25) = 6 steps
    past = SiteState(state.soc, {"dg": GeneratorState(True, 2.0)}, state.fuel_stock)
    assert lock_fuel(site, past, 1.0) == {}
    stopped = SiteState(state.soc, {"dg": GeneratorState(False, 0.5)}, state.fuel_stock)
    assert lock_fuel(site, stopped, 1.0) == {}


def test_a_lock_the_tank_cannot_feed_is_released_and_the_plan_exists() -> None:
    site, profiles, state = tiny(13.0)
    with pytest.raises(microgrid.InfeasibleError):
        microgrid.plan(site, profiles, state, mip_gap=0.0)  # the spec's model, unchanged
    released, notes = release_unfed_locks(site, state, profiles.step_h)
    assert released.generators["dg"] == GeneratorState(True, 2.0)
    assert state.generators["dg"] == GeneratorState(True, 0.5)  # the caller's state is left alone
    assert len(notes) == 1 and "'dg'" in notes[0] and "13.00" in notes[0]
    plan = microgrid.plan(site, profiles, released, mip_gap=0.0)
    assert plan.objective == pytest.approx(30_095.0, abs=1e-6)
    on, shed = col(plan, "generator.dg.on"), col(plan, "load.crit.shed_kw")
    assert sorted(on) == [0, 1] and shed == pytest.approx(30.0 * (1 - on), abs=1e-6)  # either step: same cost


@pytest.mark.parametrize("stock", [14.0, None])
def test_a_lock_the_tank_can_feed_is_kept(stock: float | None) -> None:
    """14 l feed the two steps at minimum load exactly (and an unlimited fuel always does): the state is
    returned as it is, and the spec's lock holds (20 + 20 kWh served, 14 l: 140 + 20 × 1,000 = 20,140)."""
    site, profiles, state = tiny(14.0) if stock is not None else tiny(0.0)
    if stock is None:
        state = SiteState(state.soc, state.generators, {"diesel": None})
    released, notes = release_unfed_locks(site, state, profiles.step_h)
    assert released is state and notes == ()
    if stock is not None:
        plan = microgrid.plan(site, profiles, state, mip_gap=0.0)
        assert plan.objective == pytest.approx(20_140.0, abs=1e-6)


def test_a_start_the_tank_cannot_feed_through_min_up_is_planned_shorter() -> None:
    """The same genset stopped, 10 l in the tank, critical 30 kW for two steps then none for a third: a
    start locks it on for 2 steps (14 l at minimum load; a start in step 2 would run at ≥ 20 kW into no
    load in step 3), so the spec's model cannot start it and sheds both steps (2 × 30 × 1,000 = 60,000).
    Its minimum up time capped to the floor(10 / 7) = 1 step the tank feeds, the plan starts it for one
    step at 30 kW (9.5 l) and sheds the other: 95 + 30,000 = 30,095."""
    site, profiles, _ = tiny(10.0, (30, 30, 0))
    stopped = SiteState({}, {"dg": GeneratorState(False, 24.0)}, {"diesel": 10.0})
    assert microgrid.plan(site, profiles, stopped, mip_gap=0.0).objective == pytest.approx(60_000.0, abs=1e-6)
    capped, notes = cap_min_up(site, stopped, profiles.step_h)
    assert capped.generators[0].min_up_h == 1.0 and site.generators[0].min_up_h == 2.0
    assert len(notes) == 1 and "1 h, not 2 h" in notes[0]
    plan = microgrid.plan(capped, profiles, stopped, mip_gap=0.0)
    assert plan.objective == pytest.approx(30_095.0, abs=1e-6)
    assert sum(col(plan, "generator.dg.fuel")) == pytest.approx(9.5, abs=1e-6)
    for stock, why in ((14.0, "feeds the whole 2 h"), (6.9, "feeds no step: the fuel row keeps it off")):
        same = SiteState({}, stopped.generators, {"diesel": stock})
        assert cap_min_up(site, same, profiles.step_h) == (site, ()), why


def test_fit_to_fuel_caps_then_releases_on_the_capped_site() -> None:
    """Running 0.5 h, 13 l: capped to floor(13 / 7) = 1 step (1 h), which the 0.5 h run leaves one step
    of lock (7 l) that the tank feeds: no release needed, the lock is the capped one."""
    site, profiles, state = tiny(13.0)
    capped, fitted, notes = fit_to_fuel(site, state, profiles.step_h)
    assert capped.generators[0].min_up_h == 1.0 and fitted is state and len(notes) == 1
    plan = microgrid.plan(capped, profiles, fitted, mip_gap=0.0)
    assert plan.objective == pytest.approx(30_095.0, abs=1e-6)  # as the release alone: one step served


@pytest.mark.parametrize("stock", [100.0, None])
def test_with_the_grid_back_a_rationed_fuel_no_longer_holds_a_genset_on(stock: float | None) -> None:
    """Grid-tied: critical 30 kW for two 1 h steps, the grid at 1 per kWh, the same genset running 0.5 h of
    its 2 h minimum up time. Locked (the spec's model): 20 kW from it and 10 kWh from the grid in each
    step, 2 × (7 l × 10 + 10) = 160. With 100 l in the tank the lock is released and the plan stops it at
    once: 60, all from the grid. An unlimited fuel is not rationed: the lock holds."""
    site, profiles, state = setup(
        tiny_site(generators=[LOCKED], fuels=diesel(stock=stock), loads=[CRITICAL], grid=grid()),
        {"load.crit": [30, 30]},
    )
    assert microgrid.plan(site, profiles, state, mip_gap=0.0).objective == pytest.approx(160.0, abs=1e-6)
    released, notes = release_locks_with_grid(site, state)
    if stock is None:
        assert released is state and notes == ()
        return
    assert released.generators["dg"] == GeneratorState(True, 2.0)
    assert state.generators["dg"] == GeneratorState(True, 0.5)  # the caller's state is left alone
    assert len(notes) == 1 and "'dg'" in notes[0] and "grid is back" in notes[0]
    plan = microgrid.plan(site, profiles, released, mip_gap=0.0)
    assert plan.objective == pytest.approx(60.0, abs=1e-6) and list(col(plan, "generator.dg.on")) == [0, 0]


def test_without_locks_an_infeasible_model_has_a_plan() -> None:
    """The 13 l case handed to the model as is: infeasible. :func:`without_locks` frees the genset (and
    drops the feeder extension): the released case's optimum, 30,095."""
    site, profiles, state = tiny(13.0)
    inputs = DispatchInputs(site, profiles, state, 0.0, 60.0)
    with pytest.raises(microgrid.InfeasibleError):
        optimize(inputs)
    free = without_locks(inputs)
    assert free.state.generators["dg"] == GeneratorState(True, 2.0) and free.feeders is None
    assert optimize(free).objective == pytest.approx(30_095.0, abs=1e-6)


def test_the_controller_plans_past_locks_its_last_litres_cannot_feed(tcp_hospital: Site, winter: Profiles) -> None:
    """Islanded hospital, dg1 and dg2 just started (the first cycle sees them running for 0 h of their 1 h
    minimum up time: 4 steps of 15 min at 60 kW, 0.25 × (0.24 × 60 + 3.5) = 4.475 l each) with 10 l of
    diesel left. Without the fit the model is infeasible (35.8 l of locks) and the cycle falls back to
    the rules. With it: each minimum up time planned as the 2 steps (0.5 h) the 10 l feed one set, and
    the two locks together (17.9 l) still too much, both released. The cycle has a plan of its own,
    says why, and the critical tier stays served."""
    on = GeneratorState(True, 0.0)
    state = SiteState(soc={"bess1": 0.5, "bess2": 0.5}, generators={"dg1": on, "dg2": on}, fuel_stock={"diesel": 10.0})

    async def body(rig: Rig) -> None:
        rig.sim.plant.grid_forced = False
        report = await rig.cycle()
        assert report.estimate is not None and report.estimate.generators == {"dg1": on, "dg2": on}
        assert report.source == "plan", report.reason
        notes = [m for kind, m in report.events if kind == "dispatch"]
        assert len(notes) == 4 and all(f"genset '{g}'" in " ".join(notes) for g in ("dg1", "dg2"))
        assert sum("planned as 0.5 h, not 1 h" in n for n in notes) == 2 and sum("released" in n for n in notes) == 2
        assert report.plan is not None
        assert {g: s.hours_in_state for g, s in report.plan.state.generators.items()} == {"dg1": 0.5, "dg2": 0.5}
        assert rig.ctl.site.generators[0].min_up_h == 1.0  # the site itself is left alone
        await rig.step()
        assert rig.sim.plant.totals.unserved_kwh["critical"] == 0.0

    run_rig(tcp_hospital, winter, body, state=state)


def test_the_controller_lets_a_genset_stop_when_the_grid_is_back(tcp_hospital: Site, winter: Profiles) -> None:
    """The hospital with the grid up and dg1 just started (0 h of its 1 h minimum up time), 1,000 l of
    diesel: the cycle plans from dg1 past its lock, says why, and the plan stops it now (the grid is
    cheaper than rationed diesel); dg2, stopped, stays stopped."""
    state = SiteState(
        soc={"bess1": 0.5, "bess2": 0.5},
        generators={"dg1": GeneratorState(True, 0.0), "dg2": GeneratorState(False, 24.0)},
        fuel_stock={"diesel": 1000.0},
    )

    async def body(rig: Rig) -> None:
        rig.sim.plant.grid_forced = True
        report = await rig.cycle()
        assert report.source == "plan", report.reason
        notes = [m for kind, m in report.events if kind == "dispatch" and "grid is back" in m]
        assert len(notes) == 1 and "genset 'dg1'" in notes[0]
        assert report.plan is not None
        assert report.plan.state.generators["dg1"] == GeneratorState(True, 1.0)
        assert not report.plan.state.generators["dg2"].on
        assert report.plan.frame["generator.dg1.on"].iloc[0] == 0

    run_rig(tcp_hospital, winter, body, state=state)
