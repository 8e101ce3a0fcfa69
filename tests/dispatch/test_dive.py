"""The LP dive (microgrid.dispatch.dive) and the repair of a poor MIP start in solve_model."""

import logging

import numpy as np
import pyomo.environ as pyo
import pytest

from microgrid.dispatch import DispatchInputs, build_model, solve_model
from microgrid.dispatch.dive import LpBases, dive_columns, lp_dive, prove_start, relative_gap
from microgrid.dispatch.effort import WorkLimits, deterministic
from microgrid.dispatch.repair import Repair
from microgrid.dispatch.solve import compile_model
from microgrid.plans import SolveStatus
from microgrid.profiles import read_profiles
from microgrid.site import read_site
from microgrid.state import SiteState
from tests.conftest import HOSPITAL, WINTER

FIRST_RUN_STOPS_AT_ONCE = Repair(after_s=1e-9)
"""HiGHS's first run stops on its time limit before it has a proven plan: the dive always runs."""


def _two_gensets() -> pyo.ConcreteModel:
    """150 kW from two 100 kW gensets, 10 each to run, output free: LP u = (1, 0.5) at 15, MIP both on at 20."""
    m = pyo.ConcreteModel()
    m.u = pyo.Var([1, 2], within=pyo.Binary)
    m.p = pyo.Var([1, 2], bounds=(0, 100))
    m.cap = pyo.Constraint([1, 2], rule=lambda m, g: m.p[g] <= 100 * m.u[g])
    m.demand = pyo.Constraint(expr=m.p[1] + m.p[2] >= 150)
    m.u[1].setlb(1)  # the first one runs already: the LP relaxation is u = (1, 0.5)
    m.cost = pyo.Objective(expr=10 * m.u[1] + 10 * m.u[2])
    return m


def test_a_forced_rounding_goes_up_for_round_up_columns_and_finds_the_plan():
    m = _two_gensets()
    compiled = compile_model(m)
    columns, up = dive_columns(m, compiled.columns, ["u"])
    assert len(columns) == 2 and up.all()
    found = lp_dive(compiled.lp, columns, up)
    assert found is not None
    assert found.objective == pytest.approx(20.0)
    u = {v.index(): found.values[i] for i, v in enumerate(compiled.columns) if v.parent_component() is m.u}
    assert u == pytest.approx({1: 1.0, 2: 1.0})
    assert found.rounds == 2  # the relaxation (u2 = 0.5), then u2 fixed at 1


def test_rounding_to_the_nearest_integer_can_fail_and_then_there_is_no_plan():
    m = _two_gensets()
    compiled = compile_model(m)
    columns, _ = dive_columns(m, compiled.columns, [])  # nothing named: u2 = 0.5 rounds to 0, 100 kW < 150 kW
    assert lp_dive(compiled.lp, columns, np.zeros(len(columns), dtype=bool)) is None


def test_an_integral_relaxation_is_the_plan_at_once():
    m = _two_gensets()
    m.demand.set_value(m.p[1] + m.p[2] >= 80)
    compiled = compile_model(m)
    found = lp_dive(compiled.lp, *dive_columns(m, compiled.columns, ["u"]))
    assert found is not None and found.rounds == 1 and found.objective == pytest.approx(10.0)


@pytest.mark.parametrize(("gap", "proven"), [(0.3, True), (0.2, False)])
def test_a_start_is_proven_against_the_relaxation_when_within_the_gap(gap, proven):
    m = _two_gensets()
    compiled = compile_model(m)
    columns, _ = dive_columns(m, compiled.columns, [])
    bases = LpBases()
    plan, bound = prove_start(compiled.lp, columns, np.ones(len(columns)), gap=gap, bases=bases)
    assert bound == pytest.approx(15.0)  # the relaxation: u = (1, 0.5); the start (both on) costs 20: gap 25 %
    assert (plan is not None) is proven
    assert bases.relaxation is not None and bases.fixed is not None  # kept for the next call
    if plan is not None:
        assert plan.objective == pytest.approx(20.0) and plan.relaxation == pytest.approx(15.0) and plan.rounds == 0
    again, bound_again = prove_start(compiled.lp, columns, np.ones(len(columns)), gap=gap, bases=bases)
    assert bound_again == pytest.approx(15.0) and (again is not None) is proven  # from the kept bases: the same


def test_an_infeasible_start_is_not_proven():
    m = _two_gensets()
    compiled = compile_model(m)
    columns, _ = dive_columns(m, compiled.columns, [])
    plan, bound = prove_start(compiled.lp, columns, np.array([1.0, 0.0]), gap=1.0, bases=LpBases())
    assert plan is None and bound == pytest.approx(15.0)  # 100 kW for 150 kW: no completion


def test_relative_gap_is_highs_definition():
    assert relative_gap(105.0, 100.0) == pytest.approx(5 / 105)
    assert relative_gap(100.0, 100.0 + 1e-12) == 0.0


@pytest.fixture(scope="module")
def hospital_inputs():
    site = read_site(HOSPITAL)
    return DispatchInputs(site, read_profiles(WINTER, site), SiteState.initial(site), 0.05, 30)


def _every_genset_off(model: pyo.ConcreteModel) -> dict[str, dict[object, float]]:
    return {"gen_on": {k: 0.0 for k in model.gen_on}}


def test_a_good_start_is_proven_by_two_lps_without_a_mip_solve(hospital_inputs, caplog):
    first = build_model(hospital_inputs, battery_mode_binaries=False)
    solved = solve_model(first, mip_gap=0.01, time_limit_s=60)
    assert solved.status is SolveStatus.OPTIMAL and solved.objective is not None
    start = {"gen_on": {k: round(v.value) for k, v in first.gen_on.items()}}
    if hasattr(first, "grid_dir"):
        start["grid_dir"] = {k: round(v.value) for k, v in first.grid_dir.items()}
    model = build_model(hospital_inputs, battery_mode_binaries=False)
    with caplog.at_level(logging.DEBUG, logger="microgrid.dispatch.solve"):
        result = solve_model(model, mip_gap=0.05, time_limit_s=30, start=start, repair=Repair())
    assert "the start proven by LPs" in caplog.text
    assert result.status is SolveStatus.OPTIMAL and result.objective is not None
    assert result.objective <= solved.objective * (1 + 1e-9)  # its binaries, the rest re-optimised by the LP
    assert result.dual_bound is not None and result.objective - result.dual_bound <= 0.05 * result.objective
    assert {k: round(v.value) for k, v in model.gen_on.items()} == start["gen_on"]


@pytest.mark.parametrize("repair", [Repair(), FIRST_RUN_STOPS_AT_ONCE], ids=["dive-at-once", "after-a-first-run"])
def test_a_repaired_solve_is_within_the_gap_of_the_optimum(hospital_inputs, caplog, repair):
    reference = build_model(hospital_inputs, battery_mode_binaries=False)
    known = solve_model(reference, mip_gap=0.01, time_limit_s=60)  # a plan: its cost is at least the optimum
    assert known.status is SolveStatus.OPTIMAL and known.objective is not None

    model = build_model(hospital_inputs, battery_mode_binaries=False)
    with caplog.at_level(logging.DEBUG, logger="microgrid.dispatch.solve"):
        repaired = solve_model(model, mip_gap=0.05, time_limit_s=30, start=_every_genset_off(model), repair=repair)
    assert "dive within the gap" in caplog.text  # the dive's plan is the result, not a second HiGHS run
    assert repaired.status is SolveStatus.OPTIMAL
    assert repaired.objective is not None and repaired.dual_bound is not None
    assert repaired.dual_bound <= known.objective * (1 + 1e-9)  # a true bound
    assert repaired.objective - repaired.dual_bound <= 0.05 * repaired.objective  # within the gap of it
    assert repaired.objective <= known.objective / (1 - 0.05)
    # the plan is loaded into the model: its own objective, binaries at 0/1
    assert pyo.value(model.cost) == pytest.approx(repaired.objective, rel=1e-9)
    assert all(min(abs(v.value), abs(v.value - 1)) < 1e-6 for v in model.gen_on.values())


def test_when_the_dive_is_not_within_the_gap_highs_runs_again_from_the_better_plan(hospital_inputs, caplog):
    model = build_model(hospital_inputs, battery_mode_binaries=False)
    with caplog.at_level(logging.DEBUG, logger="microgrid.dispatch.solve"):
        result = solve_model(
            model, mip_gap=0.01, time_limit_s=30, start=_every_genset_off(model), repair=FIRST_RUN_STOPS_AT_ONCE
        )
    assert "dive within the gap" not in caplog.text  # the dive's plan is 1.8 % above the relaxation here
    assert result.status is SolveStatus.OPTIMAL and result.mip_gap is not None and result.mip_gap <= 0.01


def test_on_work_limits_there_is_no_repair_and_runs_repeat(hospital_inputs):
    def once(repair: Repair | None) -> tuple[float | None, list[float]]:
        model = build_model(hospital_inputs, battery_mode_binaries=False)
        with deterministic(WorkLimits(max_nodes=50)):
            result = solve_model(model, mip_gap=0.05, time_limit_s=30, start=_every_genset_off(model), repair=repair)
        return result.objective, [v.value for v in model.gen_kw.values()]

    assert once(FIRST_RUN_STOPS_AT_ONCE) == once(None)
