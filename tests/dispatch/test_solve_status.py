"""How a solve ended is reported honestly: time-limited plans are not called optimal."""

from __future__ import annotations

import json
import subprocess
import sys

import highspy
import pyomo.environ as pyo
import pytest

import microgrid
from microgrid.dispatch import solve_model
from microgrid.dispatch.solve import _status
from microgrid.plans import SolveStatus
from tests.conftest import HOSPITAL, WINTER
from tests.dispatch.helpers import spec_objective

HMS = highspy.HighsModelStatus


@pytest.mark.parametrize(
    ("model_status", "has_solution", "expected"),
    [
        (HMS.kOptimal, True, SolveStatus.OPTIMAL),
        (HMS.kTimeLimit, True, SolveStatus.TIME_LIMIT_FEASIBLE),
        (HMS.kTimeLimit, False, SolveStatus.TIME_LIMIT_NO_SOLUTION),
        (HMS.kIterationLimit, True, SolveStatus.TIME_LIMIT_FEASIBLE),
        (HMS.kSolutionLimit, True, SolveStatus.TIME_LIMIT_FEASIBLE),
        (HMS.kInterrupt, False, SolveStatus.TIME_LIMIT_NO_SOLUTION),
        (HMS.kInfeasible, False, SolveStatus.INFEASIBLE),
        (HMS.kUnboundedOrInfeasible, False, SolveStatus.INFEASIBLE),
        (HMS.kUnbounded, False, SolveStatus.UNBOUNDED),
        (HMS.kSolveError, False, SolveStatus.ERROR),
        (HMS.kOptimal, False, SolveStatus.ERROR),
    ],
)
def test_model_status_maps_to_status(
    model_status: highspy.HighsModelStatus, has_solution: bool, expected: SolveStatus
) -> None:
    assert _status(model_status, has_solution) is expected


def _model(domain: object, *, lower: float | None, sense: int = pyo.minimize) -> pyo.ConcreteModel:
    """min/max x + 2 y + 1 over x, y ≥ 0 in ``domain`` with x + y ≥ ``lower`` (no row without it)."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(within=domain, bounds=(0, None))
    m.y = pyo.Var(within=domain, bounds=(0, 5))
    if lower is not None:
        m.c = pyo.Constraint(expr=m.x + m.y >= lower)
    m.cost = pyo.Objective(expr=m.x + 2 * m.y + 1, sense=sense)
    return m


@pytest.mark.parametrize("domain", [pyo.NonNegativeReals, pyo.NonNegativeIntegers])
def test_optimal_solution_is_loaded_into_the_variables(domain: object) -> None:
    m = _model(domain, lower=3)
    result = solve_model(m, mip_gap=0.0, time_limit_s=10)
    assert result.status is SolveStatus.OPTIMAL
    assert result.objective == pytest.approx(4.0) and result.dual_bound == pytest.approx(4.0)
    assert (m.x.value, m.y.value) == pytest.approx((3.0, 0.0))


def test_maximisation_reports_in_the_model_sense() -> None:
    m = _model(pyo.NonNegativeReals, lower=None, sense=pyo.maximize)
    m.x.setub(2)
    result = solve_model(m, mip_gap=0.0, time_limit_s=10)
    assert result.status is SolveStatus.OPTIMAL
    assert result.objective == pytest.approx(13.0) and result.dual_bound == pytest.approx(13.0)


@pytest.mark.parametrize("domain", [pyo.NonNegativeReals, pyo.NonNegativeIntegers])
def test_infeasible_model(domain: object) -> None:
    m = _model(domain, lower=3)
    m.x.setub(1)
    m.y.setub(1)
    result = solve_model(m, mip_gap=0.0, time_limit_s=10)
    assert result.status is SolveStatus.INFEASIBLE
    assert result.objective is None


def test_violated_row_of_fixed_variables_is_infeasible() -> None:
    m = _model(pyo.NonNegativeReals, lower=3)
    m.x.fix(1)
    m.y.fix(1)
    assert solve_model(m, mip_gap=0.0, time_limit_s=10).status is SolveStatus.INFEASIBLE


def test_nothing_left_to_decide_is_optimal() -> None:
    m = _model(pyo.NonNegativeReals, lower=3)
    m.x.fix(2)
    m.y.fix(1)
    result = solve_model(m, mip_gap=0.0, time_limit_s=10)
    assert result.status is SolveStatus.OPTIMAL
    assert result.objective == pytest.approx(5.0)


def test_unbounded_model() -> None:
    m = _model(pyo.NonNegativeReals, lower=3, sense=pyo.maximize)
    result = solve_model(m, mip_gap=0.0, time_limit_s=10)
    assert result.status is SolveStatus.UNBOUNDED
    assert result.objective is None
    # HiGHS's MIP solver does not tell unbounded from infeasible: reported as infeasible
    m = _model(pyo.NonNegativeIntegers, lower=3, sense=pyo.maximize)
    assert solve_model(m, mip_gap=0.0, time_limit_s=10).status is SolveStatus.INFEASIBLE


def test_time_limited_solve_is_reported_as_such() -> None:
    """The hospital to gap 0 needs ~7 s of HiGHS: with 0.5 s it ends on a feasible incumbent."""
    site = microgrid.read_site(HOSPITAL)
    plan = microgrid.plan(site, microgrid.read_profiles(WINTER, site), mip_gap=0.0, time_limit_s=0.5)
    assert plan.status is SolveStatus.TIME_LIMIT_FEASIBLE
    assert plan.mip_gap > 0
    assert plan.solve_seconds < 5.0
    assert plan.objective == pytest.approx(spec_objective(plan), rel=1e-9)  # the incumbent's cost, recomputed
    assert plan.objective == pytest.approx(plan.solver_objective, rel=1e-9)  # and HiGHS's value of it


def test_cli_reports_time_limited_status_and_exits_0() -> None:
    args = ["plan", str(HOSPITAL), "--profiles", str(WINTER), "--json", "--mip-gap", "0", "--time-limit-s", "0.5"]
    proc = subprocess.run(
        [sys.executable, "-m", "microgrid", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "time_limit_feasible"
    assert out["mip_gap"] > 0
