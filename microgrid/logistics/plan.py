"""Plan the deliveries: check what can be checked up front, solve the MILP (warm-started by most
urgent first), turn its slot loads into trips, judge the plan minute by minute.

Infeasible inputs (an island that ``must_last_h`` but cannot be kept) raise
:class:`FuelPlanInfeasible` naming the constraint: ``depot stock``, ``shift time``, ``truck
capacity``, or, when only the solver finds it, all three with ``tank capacity``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from microgrid.errors import InfeasibleError, SolveError
from microgrid.logistics.decompose import solve_by_sector
from microgrid.logistics.fleet import Fleet, Truck
from microgrid.logistics.heuristics import MIN_DROP_L, Loads, loads_to_trips, most_urgent_first, nearest_first
from microgrid.logistics.problem import Problem, needy
from microgrid.logistics.routes import FuelPlan

__all__ = ["MAX_PAIRS", "FuelPlanInfeasible", "baseline", "plan_deliveries", "unreachable"]

MAX_PAIRS = 1500
"""Above this many slots × needy islands a fleet is planned sector by sector (one MILP per truck)."""


class FuelPlanInfeasible(InfeasibleError):  # noqa: N818 - an InfeasibleError, named like its siblings' role
    """No plan keeps every island's ``must_last_h``; ``constraint`` names the one that binds."""

    def __init__(self, constraint: str, message: str) -> None:
        self.constraint = constraint
        super().__init__(f"{constraint}: {message}")


def unreachable(problem: Problem) -> list[int]:
    """Islands no truck can reach and return from within one of its trips (indices)."""
    return [i for i in range(len(problem.fleet.islands)) if not any(problem.fits(s, i) for s in problem.slots)]


def _check(problem: Problem) -> None:
    islands, step = problem.fleet.islands, problem.step_h
    must = {i: min(islands[i].must_last_h or 0.0, problem.horizon_h) for i in needy(problem)}
    must = {i: h for i, h in must.items() if h > problem.dry_h_without[i] + 1e-9}
    need = {i: problem.burnt_l(i, 0.0, h) - islands[i].stock_l for i, h in must.items()}
    if (total := sum(need.values())) > problem.fleet.depot.stock_l + 1e-6:
        raise FuelPlanInfeasible(
            "depot stock",
            f"keeping every island to its must_last_h takes {total:,.0f} l, the depot has "
            f"{problem.fleet.depot.stock_l:,.0f} l",
        )
    for i, hours in must.items():
        name, dry = islands[i].id, problem.dry_h_without[i]
        slots = [s for s in problem.slots if problem.fits(s, i) and problem.late_step(s, i) * step <= hours]
        if not slots:
            raise FuelPlanInfeasible("shift time", f"no truck reaches island {name} and returns within a trip")
        first = min(problem.late_step(s, i) * step for s in slots)
        if first > dry + 1e-9:
            raise FuelPlanInfeasible(
                "shift time",
                f"island {name} runs dry at {dry:.1f} h; the first trip that can reach it ends at "
                f"{first:.1f} h (as the plan counts: a stop's litres from the latest its trip can reach it)",
            )
        if (cap := sum(problem.trucks[s.truck].capacity_l for s in slots)) < need[i] - 1e-6:
            raise FuelPlanInfeasible(
                "truck capacity",
                f"island {islands[i].id} needs {need[i]:,.0f} l before {hours:g} h, the trips "
                f"that can reach it in time carry {cap:,.0f} l",
            )


def _start(problem: Problem, loads: Loads, pairs: list[tuple[int, int]]) -> dict[str, dict[object, float]]:
    stops: dict[int, set[int]] = {}
    for (s, i), litres in loads.items():
        if litres > 0:
            stops.setdefault(s, set()).add(i)
    trip = {}
    for s, members in stops.items():
        n = problem.pattern_index[problem.slots[s].truck].get(tuple(sorted(members)))
        if n is not None:
            trip[s, n] = 1.0
    return {"trip": trip, "q": {p: loads.get(p, 0.0) for p in pairs}}  # type: ignore[dict-item]


def plan_deliveries(
    fleet: Fleet,
    trucks: Sequence[Truck],
    days: int,
    *,
    step_h: float = 1.0,
    time_limit_s: float = 60.0,
    mip_gap: float = 0.01,
    threads: int | None = None,
    decompose: bool | None = None,
) -> FuelPlan:
    """The deliveries of the next ``days`` (1–3) that keep the islands running longest.

    Parameters
    ----------
    step_h
        The MILP's time step [h] (hours-to-dry are resolved to it; the judge works by the minute).
    time_limit_s, mip_gap
        The whole plan's time budget [s] (building the model included: the first stage gets half of
        what is left, the second the rest) and each stage's relative MIP gap.
    decompose
        One MILP per truck's sector (:mod:`microgrid.logistics.decompose`); None: when the whole
        model would have more than :data:`MAX_PAIRS` slots × needy islands and more than one truck.

    Raises :class:`FuelPlanInfeasible` (the constraint named) when an island's ``must_last_h``
    cannot be kept, :class:`SolveError` when HiGHS fails.
    """
    if not 1 <= days <= 3:
        raise ValueError(f"days must be 1 to 3, got {days}")
    entered = time.monotonic()
    problem = Problem(fleet, tuple(trucks), days, step_h)
    _check(problem)
    if decompose is None:
        decompose = len(trucks) > 1 and len(problem.slots) * len(needy(problem)) > MAX_PAIRS
    judging_s = min(1.0, 0.05 * time_limit_s)  # kept for the minute-by-minute judge of the result
    budget_s = max(0.5, time_limit_s - judging_s - (time.monotonic() - entered))
    if decompose:

        def solve(part: Fleet, truck: Sequence[Truck], limit_s: float) -> FuelPlan:
            return plan_deliveries(
                part,
                truck,
                days,
                step_h=step_h,
                time_limit_s=limit_s,
                mip_gap=mip_gap,
                threads=threads,
                decompose=False,
            )

        return solve_by_sector(problem, budget_s, solve)
    return _solve_whole(problem, budget_s, mip_gap, threads)


def _solve_whole(problem: Problem, time_limit_s: float, mip_gap: float, threads: int | None) -> FuelPlan:
    from microgrid.dispatch.solve import solve_model  # noqa: PLC0415 - pyomo and highspy load on first plan
    from microgrid.logistics.milp import build_model, second_stage  # noqa: PLC0415

    fleet, started = problem.fleet, time.monotonic()
    model, pairs = build_model(problem)
    start = _start(problem, most_urgent_first(problem), pairs)

    def left() -> float:
        """What is left of the time budget [s]."""
        return max(0.5, time_limit_s - (time.monotonic() - started))

    first = solve_model(model, mip_gap=mip_gap, time_limit_s=left() / 2, threads=threads, start=start)
    if first.status.value == "infeasible":
        raise FuelPlanInfeasible(
            "truck capacity, tank capacity and shift time", "together they cannot keep every island to its must_last_h"
        )
    if not first.status.has_solution:
        raise SolveError(f"HiGHS found no plan ({first.status.value}) in {first.wall_seconds:.1f} s")
    second_stage(model, problem, float(model.z.value))
    start = {name: {i: float(v.value or 0.0) for i, v in getattr(model, name).items()} for name in ("trip", "q")}
    second = solve_model(model, mip_gap=mip_gap, time_limit_s=left(), threads=threads, start=start)
    if not second.status.has_solution:
        raise SolveError(f"HiGHS lost the first stage's plan in the second ({second.status.value})")
    loads = _loads(model, pairs)
    return FuelPlan.of(
        problem,
        "milp",
        loads_to_trips(problem, loads),
        status=_worse(first.status.value, second.status.value),
        mip_gap=second.mip_gap,
        first_gap=first.mip_gap,
        solve_s=time.monotonic() - started,
        unreachable=tuple(fleet.islands[i].id for i in unreachable(problem)),
    )


def _loads(model: object, pairs: list[tuple[int, int]]) -> Loads:
    """The incumbent's litres by (slot, island), the ones worth a stop."""
    q = model.q  # type: ignore[attr-defined]
    return {p: float(q[p].value) for p in pairs if (q[p].value or 0.0) >= MIN_DROP_L}


def _worse(a: str, b: str) -> str:
    return a if a != "optimal" else b


def baseline(fleet: Fleet, trucks: Sequence[Truck], days: int, method: str = "nearest-first") -> FuelPlan:
    """A heuristic plan: ``nearest-first`` (the baseline) or ``most-urgent-first`` (the MILP's warm start)."""
    problem = Problem(fleet, tuple(trucks), days)
    if method == "nearest-first":
        return FuelPlan.of(problem, method, nearest_first(problem))
    if method == "most-urgent-first":
        return FuelPlan.of(problem, method, loads_to_trips(problem, most_urgent_first(problem)))
    raise ValueError(f"unknown method {method!r}")
