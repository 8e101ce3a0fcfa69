"""Invariants of the spec's model on the shipped hospital site (real HiGHS solves at a 1 % gap)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import microgrid
from tests.conftest import HOSPITAL, STATE, SUMMER, WINTER
from tests.dispatch.helpers import assert_invariants, col, full_binary, spec_objective

GAP = 0.01
CASES = {
    "winter": (WINTER, None),
    "winter-state": (WINTER, STATE),
    "summer": (SUMMER, None),
    "summer-state": (SUMMER, STATE),
}


@pytest.fixture(scope="module")
def site() -> microgrid.Site:
    return microgrid.read_site(HOSPITAL)


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def hospital(request: pytest.FixtureRequest, site: microgrid.Site) -> microgrid.Plan:
    profiles, state = CASES[request.param]
    return microgrid.plan(site, profiles, state, mip_gap=GAP)


def _state(site: microgrid.Site, path: Path | None) -> microgrid.SiteState:
    return microgrid.read_state(path, site) if path else microgrid.SiteState.initial(site)


def test_every_constraint_of_the_spec_holds(hospital: microgrid.Plan) -> None:
    """Balance, SOC dynamics and band, power limits, PV ≤ forecast, shed ≤ demand, grid limits and
    outages, no simultaneous charge/discharge, genset min/max/off, min up/down with the initial
    lock, fuel ≤ stock, and the objective equal to the spec's objective recomputed from the plan's columns."""
    assert_invariants(hospital)


def test_plan_is_optimal_within_the_requested_gap(hospital: microgrid.Plan) -> None:
    assert hospital.status is microgrid.SolveStatus.OPTIMAL
    assert 0.0 <= hospital.mip_gap <= GAP
    assert hospital.steps == 96 and hospital.step_hours == 0.25
    assert hospital.objective == pytest.approx(spec_objective(hospital), rel=1e-9)
    assert hospital.objective == pytest.approx(hospital.solver_objective, rel=1e-9)  # HiGHS's own value


def test_nothing_crosses_the_grid_during_outages(hospital: microgrid.Plan) -> None:
    down = hospital.profiles.grid_available.to_numpy() == 0
    assert down.any(), "the sample days have scheduled outages"
    assert np.all(col(hospital, "grid.import_kw")[down] == 0.0)
    assert np.all(col(hospital, "grid.export_kw") == 0.0)  # max_export_kw is 0 at the hospital


def test_critical_load_is_never_shed(hospital: microgrid.Plan) -> None:
    """Batteries, two 200 kW gensets and 400 kW of grid cover critical demand (~100 kW) at every step."""
    assert hospital.energy_shed_kwh()["critical"] == pytest.approx(0.0, abs=1e-6)


def test_state_file_is_honoured(site: microgrid.Site) -> None:
    """hospital-state.json: dg1 on for 0.25 h of its 1 h min-up → on for ceil(0.75/0.25) = 3 steps;
    SOCs 0.42 / 0.30 start the dynamics; diesel stock 900 l bounds the fuel."""
    plan = microgrid.plan(site, WINTER, STATE, mip_gap=GAP)
    assert list(col(plan, "generator.dg1.on")[:3]) == [1, 1, 1]
    assert plan.fuel_burnt()["diesel"] <= 900 + 1e-6
    assert plan.state.soc == {"bess1": 0.42, "bess2": 0.30}
    assert_invariants(plan)


@pytest.mark.slow
def test_relaxed_then_checked_solve_matches_a_full_binary_solve(site: microgrid.Site) -> None:
    """optimize() (battery modes relaxed, grid direction relaxed and netted) vs the spec's model with
    every binary, both at a 1 % gap: each objective lies within the other's proven bounds."""
    profiles, state = microgrid.read_profiles(WINTER, site), _state(site, STATE)
    plan = microgrid.plan(site, profiles, state, mip_gap=GAP)
    full = full_binary(site, profiles, state, mip_gap=GAP)
    assert full.status is microgrid.SolveStatus.OPTIMAL
    assert full.objective is not None and full.dual_bound is not None
    plan_bound = plan.objective - plan.mip_gap * abs(plan.objective)
    assert plan.objective >= full.dual_bound - 1e-6
    assert full.objective >= plan_bound - 1e-6
    assert plan.objective == pytest.approx(full.objective, rel=GAP)
