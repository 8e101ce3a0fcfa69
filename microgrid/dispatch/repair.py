"""Repair a poor MIP start around HiGHS's run: the closed loop's tail (issue 14, item 3).

Between two cycles of a rolling horizon the shifted previous plan is usually within the gap of the LP
relaxation's bound, and two LPs (warm-started from the last cycle's bases) prove it without a MIP
solve. When it is not (a poor start: an outage appeared, a genset was started by the site), an LP
dive looks for a plan (optionally after a short HiGHS run), and HiGHS runs from the better plan when
the dive's is not within the gap (:mod:`microgrid.dispatch.dive`). Search only: the model and its optimum are unchanged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo

from microgrid.dispatch.dive import DiveResult, LpBases, dive_columns, lp_dive, prove_start, relative_gap
from microgrid.dispatch.solve import (
    FEASIBLE,
    CompiledModel,
    MipStart,
    finite,
    new_solver,
    run_highs,
    set_start,
    start_values,
)

__all__ = ["Repair"]


@dataclass(frozen=True)
class Repair:
    """Repair a poor MIP start (:mod:`microgrid.dispatch.dive`): HiGHS first runs for ``after_s`` [s] (if > 0);
    when it has not proven the gap by then, an LP dive looks for a plan. A plan within ``accept_share`` of
    the gap of the better bound, HiGHS's or the LP relaxation's, is the result (status optimal, that
    bound); otherwise HiGHS runs again, for what is left of the time limit, from the better of the dive's plan and its
    own incumbent.

    Before all that, with ``prove_first``, the start completed by an LP may already be within the gap of
    the LP relaxation's bound: it is then the result.

    ``round_up``: the model's binary variables (by component name) a forced rounding sets to 1.
    Not applied on work limits (:func:`microgrid.dispatch.effort.deterministic`: no wall clock there).
    """

    after_s: float = 0.0
    """0: no first HiGHS run, the dive comes right after the proof (over the 44 recorded hospital solves the
    proof does not settle: HiGHS time 12.7 s with 0.15 s, 9.9 s with 0.05 s, 8.9 s with none)."""
    round_up: tuple[str, ...] = ("gen_on",)
    accept_share: float = 1.0
    """The proof and the dive accept a plan within this share of the gap (HiGHS: the whole gap). Hospital
    month (benchmarks/simulate.py, one run each, load 4-5): HiGHS alone 613 s, 1.290M UAH; share 1: 382 s,
    1.302M UAH; share 0.5: 348 s, 1.310M UAH and 68 kWh of the essential tier unserved (time-limited
    solves make runs differ: one run each does not separate the two)."""
    prove_first: bool = True
    """Before HiGHS's MIP solve, try the start completed by an LP against the LP relaxation's bound
    (:func:`microgrid.dispatch.dive.prove_start`): within the gap, that is the plan (no MIP solve)."""

    def applies(self, compiled: CompiledModel, options: dict[str, Any]) -> bool:
        """A minimised MIP under a wall-clock limit over twice ``after_s`` (not on work limits)."""
        limit = float(options["time_limit"])
        minimise = compiled.lp.sense_ == highspy.ObjSense.kMinimize
        return compiled.mip and minimise and math.isfinite(limit) and 2 * self.after_s < limit

    def run(
        self,
        model: pyo.ConcreteModel,
        compiled: CompiledModel,
        options: dict[str, Any],
        start: MipStart,
        bases: LpBases | None,
    ) -> tuple[highspy.Highs | None, DiveResult | None, float | None]:
        """The proof, then HiGHS for ``after_s``, the dive and HiGHS again, as needed (class docstring).

        Returns the HiGHS run whose outcome is the result, or a plan within the gap (the proven start or the
        dive's), and the best bound known before the last run (None: none).
        """
        started = time.perf_counter()
        known = None
        if self.prove_first:
            accept = options | {"mip_rel_gap": self.accept_share * float(options["mip_rel_gap"])}
            proved, known = _prove(model, compiled, accept, start, bases if bases is not None else LpBases())
            if proved is not None:
                return None, proved, proved.relaxation
        first = None
        if self.after_s > 0:
            first = run_highs(model, compiled, options | {"time_limit": self.after_s}, start)
            if first.getModelStatus() != highspy.HighsModelStatus.kTimeLimit:
                return first, None, known
        warm = bases.relaxation if bases is not None else None
        so_far = (start, first, known, started, warm)
        return _after_first(model, compiled, options, so_far, self)


def _prove(
    model: pyo.ConcreteModel, compiled: CompiledModel, options: dict[str, Any], start: MipStart, bases: LpBases
) -> tuple[DiveResult | None, float | None]:
    """:func:`prove_start` when ``start`` gives every integer column a value (else nothing proven, no bound)."""
    index, values = start_values(model, compiled, start)
    integer = compiled.integer_columns
    at = np.searchsorted(index, integer)
    if len(index) == 0 or (at >= len(index)).any() or (index[np.minimum(at, len(index) - 1)] != integer).any():
        return None, None
    gap, limit = float(options["mip_rel_gap"]), float(options["time_limit"])
    return prove_start(
        compiled.lp, integer, values[at], gap=gap, bases=bases, time_limit_s=limit, threads=options.get("threads")
    )


def _after_first(
    model: pyo.ConcreteModel,
    compiled: CompiledModel,
    options: dict[str, Any],
    so_far: tuple[MipStart, highspy.Highs | None, float | None, float, highspy.HighsBasis | None],
    repair: Repair,
) -> tuple[highspy.Highs | None, DiveResult | None, float | None]:
    """The dive (after a first HiGHS run stopped by ``after_s``, if any); HiGHS again when its plan is not within
    the gap.

    ``so_far``: the start, the first run (or None), the bound known before it, when the repair started
    (perf_counter), the relaxation's last basis (the dive starts from it).
    """
    start, first, known, started, warm = so_far
    limit = float(options["time_limit"])
    bound, incumbent = known, None
    if first is not None:
        info = first.getInfo()
        bound = max((b for b in (finite(info.mip_dual_bound), known) if b is not None), default=None)
        if info.primal_solution_status == FEASIBLE:
            incumbent = (float(info.objective_function_value), np.asarray(first.getSolution().col_value, dtype=float))
    left = limit - (time.perf_counter() - started)
    columns, round_up = dive_columns(model, compiled.columns, repair.round_up)
    dive = lp_dive(
        compiled.lp, columns, round_up, time_limit_s=max(left, 0.01), threads=options.get("threads"), basis=warm
    )
    if dive is not None:  # the best bound: HiGHS's (none if it stopped before its root LP), or the relaxation's
        bound = max(dive.relaxation, bound if bound is not None else -math.inf)
        if relative_gap(dive.objective, bound) <= repair.accept_share * float(options["mip_rel_gap"]):
            return None, dive, bound
        if incumbent is None or dive.objective < incumbent[0]:
            incumbent = (dive.objective, dive.values)
    left = max(0.1 * limit, limit - (time.perf_counter() - started))
    again = new_solver(options | {"time_limit": left})
    again.passModel(compiled.lp)
    if incumbent is not None:
        values = incumbent[1]
        again.setSolution(len(values), np.arange(len(values), dtype=np.int32), values)
    else:
        set_start(again, model, compiled, start)
    again.run()
    return again, None, bound
