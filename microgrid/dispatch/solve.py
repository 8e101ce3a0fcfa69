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
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.common.errors import InfeasibleConstraintException
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from microgrid.dispatch.dive import DiveResult, dive_columns, lp_dive, relative_gap
from microgrid.dispatch.effort import effort_options
from microgrid.dispatch.highs_process import fit_scheduler, new_highs
from microgrid.errors import SolveError
from microgrid.plans import SolveStatus

__all__ = [
    "DEFAULT_HIGHS_OPTIONS",
    "WITH_START_HIGHS_OPTIONS",
    "CompiledModel",
    "MipStart",
    "Repair",
    "SolveResult",
    "compile_model",
    "solve_model",
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


@dataclass(frozen=True)
class Repair:
    """Repair a poor MIP start (:mod:`microgrid.dispatch.dive`): HiGHS first runs for ``after_s`` [s];
    when it has not proven the gap by then, an LP dive looks for a plan. A plan within the gap of the
    better bound, HiGHS's or the LP relaxation's, is the result (status optimal, that bound); otherwise
    HiGHS runs again, for what is left of the time limit, from the better of the dive's plan and its
    own incumbent.

    ``round_up``: the model's binary variables (by component name) a forced rounding sets to 1.
    Not applied on work limits (:func:`microgrid.dispatch.effort.deterministic`: no wall clock there).
    """

    after_s: float = 0.15
    round_up: tuple[str, ...] = ("gen_on",)


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
_FEASIBLE = 2
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


def _highs(options: Mapping[str, Any]) -> highspy.Highs:
    highs = new_highs()
    for name, value in options.items():
        if highs.setOptionValue(name, value) == highspy.HighsStatus.kError:
            raise SolveError(f"HiGHS refuses option {name}={value!r}")
    return highs


def _set_start(highs: highspy.Highs, model: pyo.ConcreteModel, compiled: CompiledModel, start: MipStart) -> None:
    """Hand HiGHS the values ``start`` gives for the model's columns (others: HiGHS completes them).

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
    if not pairs:
        return
    index = np.fromiter(sorted(pairs), dtype=np.int32, count=len(pairs))
    wanted = np.array([pairs[i] for i in index], dtype=float)
    # Within the column's bounds: a genset held by its initial lock keeps its state whatever the start says.
    clipped = np.clip(wanted, np.asarray(lp.col_lower_)[index], np.asarray(lp.col_upper_)[index])
    status = highs.setSolution(len(pairs), index, clipped)
    if status == highspy.HighsStatus.kError:
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
    repair: Repair | None = None,
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
        With a ``start``: look for a better plan by an LP dive when HiGHS has not proven the gap after
        ``repair.after_s`` (:class:`Repair`). Search only, as the start: same model, same optimum.
        ``highs_seconds`` then counts both HiGHS runs and the dive.
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
    if repair is not None and start and _repairable(compiled, options, repair):
        highs, dived, known = _repaired_run(model, compiled, options, start, repair)
    else:
        highs, dived, known = _run(model, compiled, options, start), None, None
    highs_seconds = time.perf_counter() - ran
    objective: float | None
    bound: float | None
    if dived is not None:
        _load(compiled.columns, dived.values)
        status, objective, bound, how = SolveStatus.OPTIMAL, dived.objective, known, "dive within the gap"
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


def _run(
    model: pyo.ConcreteModel, compiled: CompiledModel, options: dict[str, Any], start: MipStart | None
) -> highspy.Highs:
    """HiGHS with ``options`` run on ``compiled`` from ``start`` (when a MIP)."""
    highs = _highs(options)
    highs.passModel(compiled.lp)
    if start and compiled.mip:
        _set_start(highs, model, compiled, start)
    highs.run()
    return highs


def _repairable(compiled: CompiledModel, options: dict[str, Any], repair: Repair) -> bool:
    """A minimised MIP under a wall-clock limit over twice ``repair.after_s`` (not on work limits)."""
    limit = float(options["time_limit"])
    minimise = compiled.lp.sense_ == highspy.ObjSense.kMinimize
    return compiled.mip and minimise and math.isfinite(limit) and 2 * repair.after_s < limit


def _repaired_run(
    model: pyo.ConcreteModel, compiled: CompiledModel, options: dict[str, Any], start: MipStart, repair: Repair
) -> tuple[highspy.Highs | None, DiveResult | None, float | None]:
    """HiGHS for ``repair.after_s``, then the dive, then HiGHS again when needed (:class:`Repair`).

    Returns the HiGHS run whose outcome is the result, or the dive's plan when it is within the gap, and the
    best bound known before the last run (None: none).
    """
    started, limit = time.perf_counter(), float(options["time_limit"])
    first = _run(model, compiled, options | {"time_limit": repair.after_s}, start)
    if first.getModelStatus() != _Model.kTimeLimit:
        return first, None, None
    info = first.getInfo()
    bound = _finite(info.mip_dual_bound)
    incumbent = None
    if info.primal_solution_status == _FEASIBLE:
        incumbent = (float(info.objective_function_value), np.asarray(first.getSolution().col_value, dtype=float))
    left = limit - (time.perf_counter() - started)
    columns, round_up = dive_columns(model, compiled.columns, repair.round_up)
    dive = lp_dive(compiled.lp, columns, round_up, time_limit_s=max(left, 0.01), threads=options.get("threads"))
    if dive is not None:  # the best bound: HiGHS's (none if it stopped before its root LP), or the relaxation's
        bound = max(dive.relaxation, bound if bound is not None else -math.inf)
        if relative_gap(dive.objective, bound) <= float(options["mip_rel_gap"]):
            return None, dive, bound
    if dive is not None and (incumbent is None or dive.objective < incumbent[0]):
        incumbent = (dive.objective, dive.values)
    left = max(0.1 * limit, limit - (time.perf_counter() - started))
    again = _highs(options | {"time_limit": left})
    again.passModel(compiled.lp)
    if incumbent is not None:
        values = incumbent[1]
        again.setSolution(len(values), np.arange(len(values), dtype=np.int32), values)
    else:
        _set_start(again, model, compiled, start)
    again.run()
    return again, None, bound


def _outcome(highs: highspy.Highs, compiled: CompiledModel) -> tuple[SolveStatus, float | None, float | None]:
    """Status, objective and dual bound of a finished run; the incumbent loaded into the model's variables."""
    info = highs.getInfo()
    status = _status(highs.getModelStatus(), info.primal_solution_status == _FEASIBLE)
    if status.has_solution:
        _load(compiled.columns, highs.getSolution().col_value)
    objective = _finite(info.objective_function_value) if status.has_solution else None
    if compiled.mip:
        return status, objective, _finite(info.mip_dual_bound)
    return status, objective, objective if status is SolveStatus.OPTIMAL else None


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if abs(value) < float("inf") else None
