"""Solve a built model with HiGHS (in-process, through pyomo's ``highs`` interface).

Raw solver enums and strings never leave this module: callers get a :class:`SolveResult`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from microgrid.plans import SolveStatus

__all__ = ["MipStart", "SolveResult", "solve_model"]

MipStart = Mapping[str, Mapping[Any, float]]
"""Values for some variables: component name → index → value (e.g. ``{"gen_on": {("dg1", 0): 1.0}}``)."""

log = logging.getLogger(__name__)

DEFAULT_HIGHS_OPTIONS: dict[str, Any] = {
    # benchmarks/plan.py, 3 seeds: the RINS/RENS sub-MIPs took ~75 % of HiGHS time on the hospital
    # although the optimum is found near the root; without them HiGHS CPU time drops 2.3x (hospital),
    # 1.2x (10+10) and 1.9x on the all-binaries re-solve. Search settings only: same model, same optimum.
    # A time-limited solve of a much harder instance may find a worse incumbent: pass them back on
    # through ``highs_options`` if that matters more than speed.
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
}

_HIT_A_LIMIT = {
    TerminationCondition.maxTimeLimit,
    TerminationCondition.iterationLimit,
    TerminationCondition.interrupted,
    TerminationCondition.objectiveLimit,
}
_INFEASIBLE = {
    TerminationCondition.provenInfeasible,
    TerminationCondition.locallyInfeasible,
    TerminationCondition.infeasibleOrUnbounded,
}


@dataclass(frozen=True)
class SolveResult:
    """What one HiGHS solve gave.

    Attributes
    ----------
    status
        :class:`SolveStatus`; ``OPTIMAL`` means optimal within the requested MIP gap.
    objective
        Objective of the incumbent (currency), None without one.
    dual_bound
        Best proven lower bound on the objective, None when unknown.
    wall_seconds
        Wall time of the whole solve call, hand-off to HiGHS included [s].
    highs_seconds
        Time HiGHS itself reports [s].
    """

    status: SolveStatus
    objective: float | None
    dual_bound: float | None
    wall_seconds: float
    highs_seconds: float

    @property
    def mip_gap(self) -> float | None:
        """Relative gap |objective − bound| / |objective| reached (HiGHS's definition)."""
        if self.objective is None or self.dual_bound is None:
            return None
        diff = abs(self.objective - self.dual_bound)
        return 0.0 if diff <= 1e-9 else diff / max(abs(self.objective), 1e-9)


class _HighsWithStart(Highs):  # type: ignore[misc]
    """pyomo's ``highs`` interface, handing HiGHS a (partial) MIP start just before it runs.

    pyomo 6.10's contrib interface has no warm start: this overrides its private ``_solve`` and
    reads its private column map (pinned by tests/dispatch/test_solve_start.py).
    """

    def __init__(self, start: dict[int, float] | None = None, **kwds: Any) -> None:
        super().__init__(**kwds)
        if start is not None:  # pyomo's ``_reinit`` calls __init__ again, without it: keep it
            self._start = start

    def _solve(self) -> Any:
        columns = self._pyomo_var_to_solver_var_map
        pairs = sorted((columns[key], value) for key, value in self._start.items() if key in columns)
        if pairs:
            index, value = zip(*pairs, strict=True)
            status = self._solver_model.setSolution(
                len(pairs), np.array(index, dtype=np.int32), np.array(value, dtype=float)
            )
            if status == highspy.HighsStatus.kError:
                log.debug("highs: MIP start refused")
        return super()._solve()


def _start_by_id(model: pyo.ConcreteModel, start: MipStart) -> dict[int, float]:
    out: dict[int, float] = {}
    for name, values in start.items():
        var = model.find_component(name)
        if not isinstance(var, pyo.Var):
            continue  # e.g. no mode binaries in the relaxed model
        for index, value in values.items():
            if index in var:
                data = var[index]
                out[id(data)] = float(data.value) if data.fixed else float(value)
    return out


def _status(term: TerminationCondition, solution: SolutionStatus) -> SolveStatus:
    has_solution = solution in (SolutionStatus.feasible, SolutionStatus.optimal)
    if term == TerminationCondition.convergenceCriteriaSatisfied and has_solution:
        return SolveStatus.OPTIMAL
    if term in _HIT_A_LIMIT:
        return SolveStatus.TIME_LIMIT_FEASIBLE if has_solution else SolveStatus.TIME_LIMIT_NO_SOLUTION
    if term in _INFEASIBLE:
        return SolveStatus.INFEASIBLE
    if term == TerminationCondition.unbounded:
        return SolveStatus.UNBOUNDED
    return SolveStatus.ERROR


def solve_model(
    model: pyo.ConcreteModel,
    *,
    mip_gap: float,
    time_limit_s: float,
    threads: int | None = None,
    highs_options: dict[str, Any] | None = None,
    start: MipStart | None = None,
) -> SolveResult:
    """Solve ``model`` with HiGHS and load the incumbent into its variables (when there is one).

    Parameters
    ----------
    mip_gap
        Relative MIP gap at which HiGHS stops.
    time_limit_s
        HiGHS's own time limit [s]. HiGHS does not always honour it inside presolve:
        a controller must guard the wall clock itself.
    threads
        HiGHS threads (None: HiGHS's default).
    highs_options
        Raw HiGHS options, over :data:`DEFAULT_HIGHS_OPTIONS` (e.g. ``{"mip_heuristic_run_rins": True}``).
    start
        A MIP start (typically the discrete variables only): HiGHS fixes them, completes the rest by
        an LP and, when that is feasible, starts from it as its incumbent; otherwise it ignores it.
        Search only: the optimum and the bound are unchanged.
    """
    by_id = _start_by_id(model, start) if start else {}
    solver = _HighsWithStart(by_id) if by_id else SolverFactory("highs")
    started = time.perf_counter()
    results = solver.solve(
        model,
        rel_gap=mip_gap,
        time_limit=time_limit_s,
        threads=threads,
        solver_options={**DEFAULT_HIGHS_OPTIONS, **(highs_options or {})},
        raise_exception_on_nonoptimal_result=False,
        load_solutions=False,
    )
    status = _status(results.termination_condition, results.solution_status)
    if status.has_solution:
        results.solution_loader.load_vars()
    wall = time.perf_counter() - started
    highs = float(getattr(results.timing_info, "highs_time", None) or wall)
    result = SolveResult(
        status=status,
        objective=_finite(results.incumbent_objective) if status.has_solution else None,
        dual_bound=_finite(results.objective_bound),
        wall_seconds=wall,
        highs_seconds=highs,
    )
    log.debug("highs: %s (%s) in %.3f s", status.value, results.termination_condition.name, wall)
    return result


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if abs(value) < float("inf") else None
