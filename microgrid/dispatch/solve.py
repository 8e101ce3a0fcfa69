"""Solve a built model with HiGHS, in process, handed over as sparse arrays in one call.

The model is compiled by pyomo's ``LinearStandardFormCompiler`` (fixed variables become
constants, unused variables are left out), passed to ``highspy`` as one ``HighsLp``, and the
incumbent is written back into the model's variables. Raw solver enums and strings never leave
this module: callers get a :class:`SolveResult`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import highspy
import numpy as np
import numpy.typing as npt
import pyomo.environ as pyo
from pyomo.common.errors import InfeasibleConstraintException
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from microgrid.dispatch.dive import DiveResult, LpBases
from microgrid.dispatch.effort import effort_options
from microgrid.dispatch.highs_process import fit_scheduler, new_highs
from microgrid.errors import SolveError
from microgrid.plans import SolveStatus

__all__ = [
    "DEFAULT_HIGHS_OPTIONS",
    "FEASIBLE",
    "WITH_START_HIGHS_OPTIONS",
    "CompiledModel",
    "MipStart",
    "SolveResult",
    "StartRepair",
    "compile_model",
    "finite",
    "new_solver",
    "run_highs",
    "set_start",
    "solve_model",
    "start_values",
]

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

WITH_START_HIGHS_OPTIONS: dict[str, Any] = {
    # With a MIP start (a rolling horizon's previous plan) the incumbent is there from the start, and
    # HiGHS's feasibility-jump heuristic only spends time looking for one: over 192 closed-loop solves of
    # the hospital (gap 0.05, 1 s limit) median HiGHS time 40 → 29 ms, mean 76 → 64 ms, same plans.
    "mip_heuristic_run_feasibility_jump": False,
}


class StartRepair(Protocol):
    """What improves a poor MIP start around HiGHS's run (:class:`microgrid.dispatch.repair.Repair`)."""

    def applies(self, compiled: CompiledModel, options: dict[str, Any]) -> bool:
        """Whether it runs for this model and these HiGHS options."""
        ...

    def run(
        self,
        model: pyo.ConcreteModel,
        compiled: CompiledModel,
        options: dict[str, Any],
        start: MipStart,
        bases: LpBases | None,
    ) -> tuple[highspy.Highs | None, DiveResult | None, float | None]:
        """The HiGHS run whose outcome is the result, or a plan within the gap; and a bound known (or None)."""
        ...


_Model = highspy.HighsModelStatus
_LIMITS = {
    _Model.kTimeLimit,
    _Model.kIterationLimit,
    _Model.kInterrupt,
    _Model.kObjectiveBound,
    _Model.kObjectiveTarget,
    _Model.kSolutionLimit,
}
_INFEASIBLE = {_Model.kInfeasible, _Model.kUnboundedOrInfeasible}
FEASIBLE = 2
"""HiGHS's ``kSolutionStatusFeasible`` (``info.primal_solution_status``)."""


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
        Wall time of the whole solve call, compiling the model and loading the incumbent back included [s].
    highs_seconds
        Wall time of HiGHS's ``run`` alone [s].
    """

    status: SolveStatus
    objective: float | None
    dual_bound: float | None
    wall_seconds: float
    highs_seconds: float
    row_duals: np.ndarray | None = None
    """For an LP solved with ``duals=True``: HiGHS's row duals in the compiled row order
    (∂ objective / ∂ row bound); None otherwise."""

    @property
    def mip_gap(self) -> float | None:
        """Relative gap |objective − bound| / |objective| reached (HiGHS's definition)."""
        if self.objective is None or self.dual_bound is None:
            return None
        diff = abs(self.objective - self.dual_bound)
        return 0.0 if diff <= 1e-9 else diff / max(abs(self.objective), 1e-9)


@dataclass(frozen=True)
class CompiledModel:
    """A pyomo model as HiGHS's arrays (``lp``), with what it takes to map values back."""

    lp: highspy.HighsLp
    columns: list[Any]
    """The model's variables, in HiGHS's column order."""
    rows: list[Any]
    """The compiler's row entries (``constraint``, ``bound_type``: −1 ≥, 0 =, 1 ≤), in row order."""
    mip: bool

    @cached_property
    def position(self) -> dict[int, int]:
        """Column of each variable, by ``id`` of the variable."""
        return {id(v): i for i, v in enumerate(self.columns)}

    @cached_property
    def row_position(self) -> dict[int, int]:
        """Row of each constraint, by ``id`` of the constraint."""
        return {id(r.constraint): i for i, r in enumerate(self.rows)}

    @cached_property
    def integer_columns(self) -> npt.NDArray[np.int32]:
        """The integer columns' indices, ascending."""
        return np.asarray([i for i, v in enumerate(self.columns) if v.is_integer()], dtype=np.int32)


def _status(model_status: highspy.HighsModelStatus, has_solution: bool) -> SolveStatus:
    if model_status == _Model.kOptimal and has_solution:
        return SolveStatus.OPTIMAL
    if model_status in _LIMITS:
        return SolveStatus.TIME_LIMIT_FEASIBLE if has_solution else SolveStatus.TIME_LIMIT_NO_SOLUTION
    if model_status in _INFEASIBLE:
        return SolveStatus.INFEASIBLE
    if model_status == _Model.kUnbounded:
        return SolveStatus.UNBOUNDED
    return SolveStatus.ERROR


def compile_model(model: pyo.ConcreteModel) -> CompiledModel:
    """``model`` as one HiGHS LP/MIP (raises ``InfeasibleConstraintException`` on a violated constant row).

    Mutable parameters enter as their current values; fixed variables as constants.
    """
    repn = LinearStandardFormCompiler().write(model, mixed_form=True, set_sense=None)
    if len(repn.objectives) != 1:
        raise SolveError(f"model {model.name!r} has {len(repn.objectives)} active objectives, not 1")
    columns, inf = list(repn.columns), highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(columns), len(repn.rows)
    lp.sense_ = highspy.ObjSense.kMaximize if repn.objectives[0].sense == pyo.maximize else highspy.ObjSense.kMinimize
    lp.col_cost_ = repn.c.toarray()[0].astype(float)
    lp.offset_ = float(repn.c_offset[0])
    bounds = np.array([v.bounds for v in columns], dtype=float).reshape(len(columns), 2)  # None → nan
    lp.col_lower_ = np.nan_to_num(bounds[:, 0], nan=-inf)
    lp.col_upper_ = np.nan_to_num(bounds[:, 1], nan=inf)
    kinds = np.fromiter((r.bound_type for r in repn.rows), dtype=np.int8, count=len(repn.rows))
    rhs = np.asarray(repn.rhs, dtype=float)
    lp.row_lower_ = np.where(kinds <= 0, rhs, -inf)  # bound_type: -1 ≥ rhs, 0 = rhs, 1 ≤ rhs
    lp.row_upper_ = np.where(kinds >= 0, rhs, inf)
    matrix = repn.A.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data.astype(float)
    integer = [v.is_integer() for v in columns]
    if any(integer):
        kind = highspy.HighsVarType
        lp.integrality_ = [kind.kInteger if i else kind.kContinuous for i in integer]
    return CompiledModel(lp, columns, list(repn.rows), any(integer))


def new_solver(options: Mapping[str, Any]) -> highspy.Highs:
    highs = new_highs()
    for name, value in options.items():
        if highs.setOptionValue(name, value) == highspy.HighsStatus.kError:
            raise SolveError(f"HiGHS refuses option {name}={value!r}")
    return highs


def start_values(
    model: pyo.ConcreteModel, compiled: CompiledModel, start: MipStart
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]:
    """The columns ``start`` gives values for (sorted) and those values, within the columns' bounds.

    A fixed variable is a constant of the compiled model, not a column: its entry is dropped.
    """
    lp, position = compiled.lp, compiled.position
    pairs: dict[int, float] = {}
    for name, values in start.items():
        var = model.find_component(name)
        if not isinstance(var, pyo.Var):
            continue  # e.g. no mode binaries in the relaxed model
        for index, value in values.items():
            if index in var and (i := position.get(id(var[index]))) is not None:
                pairs[i] = float(value)
    index = np.fromiter(sorted(pairs), dtype=np.int32, count=len(pairs))
    wanted = np.array([pairs[i] for i in index], dtype=float)
    # Within the column's bounds: a genset held by its initial lock keeps its state whatever the start says.
    return index, np.clip(wanted, np.asarray(lp.col_lower_)[index], np.asarray(lp.col_upper_)[index])


def set_start(highs: highspy.Highs, model: pyo.ConcreteModel, compiled: CompiledModel, start: MipStart) -> None:
    """Hand HiGHS the values ``start`` gives for the model's columns (others: HiGHS completes them)."""
    index, values = start_values(model, compiled, start)
    if len(index) and highs.setSolution(len(index), index, values) == highspy.HighsStatus.kError:
        log.debug("highs: MIP start refused")


def _load(columns: list[Any], values: Any) -> None:
    """Write HiGHS's column values into the pyomo variables (what ``results.extract`` reads)."""
    for var, x in zip(columns, np.asarray(values, dtype=float).tolist(), strict=True):
        var.set_value(x, skip_validation=True)


def solve_model(
    model: pyo.ConcreteModel,
    *,
    mip_gap: float,
    time_limit_s: float,
    threads: int | None = None,
    highs_options: dict[str, Any] | None = None,
    start: MipStart | None = None,
    compiled: CompiledModel | None = None,
    duals: bool = False,
    repair: StartRepair | None = None,
    bases: LpBases | None = None,
) -> SolveResult:
    """Solve ``model`` with HiGHS and load the incumbent into its variables (when there is one).

    Parameters
    ----------
    mip_gap
        Relative MIP gap at which HiGHS stops.
    time_limit_s
        HiGHS's own time limit [s]. HiGHS does not always honour it inside presolve:
        a controller must guard the wall clock itself. Inside :func:`microgrid.dispatch.effort.deterministic`
        work limits replace it.
    threads
        HiGHS threads (None: HiGHS's default); honoured in any thread, whatever earlier solves of that
        thread asked for (:mod:`microgrid.dispatch.highs_process`).
    highs_options
        Raw HiGHS options, over :data:`DEFAULT_HIGHS_OPTIONS` and the three above
        (e.g. ``{"mip_heuristic_run_rins": True}``).
    start
        A MIP start (typically the discrete variables only): HiGHS fixes them, completes the rest by
        an LP and, when that is feasible, starts from it as its incumbent; otherwise it ignores it.
        Search only: the optimum and the bound are unchanged.
    compiled
        ``model`` already compiled, with its current numbers (:class:`microgrid.dispatch.reuse.ModelCache`).
    duals
        Return the row duals of an LP (``SolveResult.row_duals``, in ``compiled.rows`` order).
    repair
        With a ``start``: prove it by LPs, or look for a better plan by an LP dive when HiGHS has not
        proven the gap after a short run (:class:`microgrid.dispatch.repair.Repair`). Search only, as the
        start: same model, same optimum.
        ``highs_seconds`` then counts every HiGHS run, the LPs included.
    bases
        With ``repair``: the LP bases kept from the last solve of a model of this shape (updated here).
    """
    started = time.perf_counter()
    try:
        compiled = compiled or compile_model(model)
    except InfeasibleConstraintException as exc:  # a row of constants only (all its variables fixed), violated
        log.debug("highs: not called, %s", exc)
        return SolveResult(SolveStatus.INFEASIBLE, None, None, time.perf_counter() - started, 0.0)
    if not compiled.columns:  # nothing left to decide (HiGHS would say "empty" and drop the offset)
        offset = float(compiled.lp.offset_)
        return SolveResult(SolveStatus.OPTIMAL, offset, offset, time.perf_counter() - started, 0.0)
    options: dict[str, Any] = {**DEFAULT_HIGHS_OPTIONS, "mip_rel_gap": mip_gap, **effort_options(time_limit_s)}
    if start and compiled.mip:
        options |= WITH_START_HIGHS_OPTIONS
    if fit_scheduler(threads) is not None:
        options["threads"] = threads
    options |= highs_options or {}
    ran = time.perf_counter()
    if repair is not None and start and repair.applies(compiled, options):
        highs, dived, known = repair.run(model, compiled, options, start, bases)
    else:
        highs, dived, known = run_highs(model, compiled, options, start), None, None
    highs_seconds = time.perf_counter() - ran
    objective: float | None
    bound: float | None
    if dived is not None:
        _load(compiled.columns, dived.values)
        how = "the start proven by LPs" if dived.rounds == 0 else "dive within the gap"
        status, objective, bound = SolveStatus.OPTIMAL, dived.objective, known
    else:
        assert highs is not None
        status, objective, bound = _outcome(highs, compiled)
        how = highs.modelStatusToString(highs.getModelStatus())
        if known is not None and compiled.mip:  # a bound an earlier run or the dive proved holds for this model
            bound = max(bound if bound is not None else -math.inf, known)
    row_duals = None
    if duals and highs is not None and not compiled.mip and status.has_solution:
        row_duals = np.asarray(highs.getSolution().row_dual, dtype=float)
    result = SolveResult(status, objective, bound, time.perf_counter() - started, highs_seconds, row_duals)
    log.debug("highs: %s (%s) in %.3f s", status.value, how, result.wall_seconds)
    return result


def run_highs(
    model: pyo.ConcreteModel, compiled: CompiledModel, options: dict[str, Any], start: MipStart | None
) -> highspy.Highs:
    """HiGHS with ``options`` run on ``compiled`` from ``start`` (when a MIP)."""
    highs = new_solver(options)
    highs.passModel(compiled.lp)
    if start and compiled.mip:
        set_start(highs, model, compiled, start)
    highs.run()
    return highs


def _outcome(highs: highspy.Highs, compiled: CompiledModel) -> tuple[SolveStatus, float | None, float | None]:
    """Status, objective and dual bound of a finished run; the incumbent loaded into the model's variables."""
    info = highs.getInfo()
    status = _status(highs.getModelStatus(), info.primal_solution_status == FEASIBLE)
    if status.has_solution:
        _load(compiled.columns, highs.getSolution().col_value)
    objective = finite(info.objective_function_value) if status.has_solution else None
    if compiled.mip:
        return status, objective, finite(info.mip_dual_bound)
    return status, objective, objective if status is SolveStatus.OPTIMAL else None


def finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if abs(value) < float("inf") else None
