"""How a solve ended is reported honestly: time-limited plans are not called optimal."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition

import microgrid
from microgrid.dispatch.solve import _status
from microgrid.plans import SolveStatus
from tests.conftest import HOSPITAL, WINTER


@pytest.mark.parametrize(
    ("term", "solution", "expected"),
    [
        (TerminationCondition.convergenceCriteriaSatisfied, SolutionStatus.optimal, SolveStatus.OPTIMAL),
        (TerminationCondition.maxTimeLimit, SolutionStatus.feasible, SolveStatus.TIME_LIMIT_FEASIBLE),
        (TerminationCondition.maxTimeLimit, SolutionStatus.noSolution, SolveStatus.TIME_LIMIT_NO_SOLUTION),
        (TerminationCondition.iterationLimit, SolutionStatus.feasible, SolveStatus.TIME_LIMIT_FEASIBLE),
        (TerminationCondition.provenInfeasible, SolutionStatus.noSolution, SolveStatus.INFEASIBLE),
        (TerminationCondition.infeasibleOrUnbounded, SolutionStatus.noSolution, SolveStatus.INFEASIBLE),
        (TerminationCondition.unbounded, SolutionStatus.noSolution, SolveStatus.UNBOUNDED),
        (TerminationCondition.error, SolutionStatus.noSolution, SolveStatus.ERROR),
        (TerminationCondition.convergenceCriteriaSatisfied, SolutionStatus.noSolution, SolveStatus.ERROR),
    ],
)
def test_termination_maps_to_status(
    term: TerminationCondition, solution: SolutionStatus, expected: SolveStatus
) -> None:
    assert _status(term, solution) is expected


def test_time_limited_solve_is_reported_as_such() -> None:
    """The hospital to gap 0 needs ~7 s of HiGHS: with 0.5 s it ends on a feasible incumbent."""
    site = microgrid.read_site(HOSPITAL)
    plan = microgrid.plan(site, microgrid.read_profiles(WINTER, site), mip_gap=0.0, time_limit_s=0.5)
    assert plan.status is SolveStatus.TIME_LIMIT_FEASIBLE
    assert plan.mip_gap > 0
    assert plan.solve_seconds < 5.0
    assert plan.objective == pytest.approx(plan.cost().total)


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
