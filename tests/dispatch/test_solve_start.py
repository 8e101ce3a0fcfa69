"""A MIP start reaches HiGHS and is used as its incumbent; a bad start is harmless."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyomo.environ as pyo
import pytest

from microgrid.control.forecast import rolling_forecast
from microgrid.dispatch import DispatchInputs, build_model, solve_model
from microgrid.dispatch.generators import respect_min_times
from microgrid.dispatch.optimize import mip_start, optimize
from microgrid.plans import SolveStatus
from microgrid.profiles import read_profiles
from microgrid.site import read_site
from microgrid.state import GeneratorState, SiteState
from tests.conftest import HOSPITAL, WINTER

ONLY_THE_START = {"mip_max_nodes": 0, "mip_max_improving_sols": 1}
"""HiGHS stops at the root on its first incumbent: with these options, a solution found means the start was used."""


@pytest.fixture(scope="module")
def hospital():
    site = read_site(HOSPITAL)
    return site, read_profiles(WINTER, site)


def _relaxed_hospital(hospital) -> tuple[DispatchInputs, pyo.ConcreteModel]:
    site, ref = hospital
    inputs = DispatchInputs(site, ref, SiteState.initial(site), 1e-3, 60)
    return inputs, build_model(inputs, battery_mode_binaries=False)


def test_a_start_is_handed_to_highs_and_becomes_its_incumbent(hospital):
    inputs, model = _relaxed_hospital(hospital)
    solved = solve_model(model, mip_gap=1e-3, time_limit_s=60)
    assert solved.status is SolveStatus.OPTIMAL
    start = {"gen_on": {k: round(v.value) for k, v in model.gen_on.items()}}

    cold = solve_model(
        build_model(inputs, battery_mode_binaries=False), mip_gap=1e-3, time_limit_s=60, highs_options=ONLY_THE_START
    )
    assert not cold.status.has_solution  # nothing else gives HiGHS an incumbent at the root

    again = build_model(inputs, battery_mode_binaries=False)
    warm = solve_model(again, mip_gap=1e-3, time_limit_s=60, highs_options=ONLY_THE_START, start=start)
    assert warm.status is SolveStatus.TIME_LIMIT_FEASIBLE
    # the start's binaries, completed by an LP: the objective of the plan they came from, loaded into the model
    assert warm.objective == pytest.approx(solved.objective, rel=1e-9)
    assert {k: round(v.value) for k, v in again.gen_on.items()} == start["gen_on"]


def _pick_one() -> pyo.ConcreteModel:
    """Pick at most one of three items worth 3, 2, 1 (the third is fixed out): maximum 3, x = (1, 0, 0)."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(3), within=pyo.Binary)
    m.x[2].fix(0)
    m.one = pyo.Constraint(expr=sum(m.x[i] for i in range(3)) <= 1)
    m.value = pyo.Objective(expr=3 * m.x[0] + 2 * m.x[1] + m.x[2], sense=pyo.maximize)
    return m


@pytest.mark.parametrize(
    "start",
    [
        {"x": {0: 1.0, 1: 1.0, 2: 1.0}},  # violates the constraint (and the fixed value)
        {"x": {1: 1.0}},  # feasible, not optimal
        {"y": {0: 1.0}, "one": {None: 1.0}, "x": {7: 1.0}},  # no such variable, not a variable, no such index
        {},
    ],
)
def test_a_bad_or_partial_start_is_harmless(start):
    m = _pick_one()
    result = solve_model(m, mip_gap=0.0, time_limit_s=10, start=start)
    assert result.status is SolveStatus.OPTIMAL
    assert result.objective == pytest.approx(3.0) and result.dual_bound == pytest.approx(3.0)
    assert [m.x[i].value for i in range(3)] == pytest.approx([1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    ("start", "objective"),
    [
        (None, None),  # HiGHS stopped before finding anything itself
        ({"x": {0: 1.0, 1: 1.0}}, None),  # violates the constraint: not an incumbent
        ({"x": {1: 1.0}}, 2.0),  # partial: x[0] completed by HiGHS, then the incumbent
        ({"x": {0: 0.0, 1: 1.0}}, 2.0),
    ],
)
def test_only_a_feasible_start_becomes_the_incumbent(start, objective):
    m = _pick_one()
    result = solve_model(
        m, mip_gap=0.0, time_limit_s=10, start=start, highs_options=ONLY_THE_START | {"presolve": "off"}
    )
    assert result.objective == (None if objective is None else pytest.approx(objective))
    assert result.status is (
        SolveStatus.TIME_LIMIT_NO_SOLUTION if objective is None else SolveStatus.TIME_LIMIT_FEASIBLE
    )
    if objective is not None:
        assert [m.x[i].value for i in range(3)] == pytest.approx([0.0, 1.0, 0.0])


def test_previous_plan_is_the_incumbent_under_a_tight_limit(hospital):
    site, ref = hospital
    t0 = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
    first = optimize(DispatchInputs(site, rolling_forecast(site, ref, t0), SiteState.initial(site), 1e-3, 20))
    # 0.2 s: HiGHS's own heuristics find only a poor plan (gap ~36 % at 0.05-0.2 s on this machine), if any
    nxt = DispatchInputs(site, rolling_forecast(site, ref, t0 + timedelta(minutes=15)), first.state, 1e-3, 0.2)
    start = mip_start(first, nxt)
    assert start is not None and len(start["gen_on"]) == len(site.generators) * nxt.steps
    warm = optimize(nxt, warm_from=first)
    assert warm.status.has_solution
    assert warm.mip_gap < 0.05  # the shifted plan, completed by HiGHS's LP, is the incumbent


def test_no_start_outside_the_previous_plan(hospital):
    site, ref = hospital
    t0 = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
    first = optimize(DispatchInputs(site, rolling_forecast(site, ref, t0), SiteState.initial(site), 1e-3, 20))
    later = DispatchInputs(site, rolling_forecast(site, ref, t0 + timedelta(days=2)), first.state, 1e-3, 20)
    assert mip_start(first, later) is None


@pytest.mark.parametrize(
    ("on", "hours", "wanted", "expected"),
    [
        # min up 1 h = 4 steps, min down 0.5 h = 2 steps (15-min steps)
        (False, 24.0, [0, 1, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0, 0]),  # already feasible: unchanged
        (False, 0.0, [0, 1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 0]),  # just stopped: held off 2 steps, run kept 4
        (False, 24.0, [1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0]),  # a 1-step run lasts its min up time
        (True, 24.0, [1, 0, 1, 1, 1, 1, 1], [1, 0, 0, 1, 1, 1, 1]),  # a 1-step stop lasts its min down time
        (True, 0.25, [0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0]),  # started 15 min ago: 3 more steps on
        (False, 24.0, [0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 1, 1]),  # cut by the horizon's end: allowed
    ],
)
def test_a_start_respects_the_genset_timing_rules(hospital, on, hours, wanted, expected):
    """The shifted previous plan is made to respect the state now: a genset that did not start (or
    stop) as planned would otherwise make HiGHS discard the whole start."""
    site, ref = hospital
    gen = site.generators[0]
    assert (gen.min_up_h, gen.min_down_h, ref.step_h) == (1.0, 0.5, 0.25)
    state = SiteState.initial(site)
    state = replace(state, generators=state.generators | {gen.id: GeneratorState(on, hours)})
    inputs = DispatchInputs(site, ref, state, 1e-3, 20)
    assert respect_min_times([float(v) for v in wanted], gen, inputs) == expected
