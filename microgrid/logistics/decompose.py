"""Decomposition for city-scale fleets: one sector of the city per truck, one small MILP per sector.

The islands are sorted by their bearing from the depot and cut into as many contiguous sectors as
there are trucks, each sector's share of the fleet's need (litres short over the horizon) in
proportion to its truck's capacity. Each sector gets the depot's stock in the same proportion and
is planned alone (what is left of the time budget shared equally by the sectors left). Limits: a truck never helps a
neighbouring sector, and the reported gap is the worst sector's own gap, not a bound on what the
cut itself costs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from microgrid.logistics.fleet import Fleet, Truck
from microgrid.logistics.problem import Problem
from microgrid.logistics.routes import FuelPlan, Stop, Trip

__all__ = ["sectors", "solve_by_sector"]

SubSolve = Callable[[Fleet, Sequence[Truck], float], FuelPlan]
"""Plans one sector: (its fleet, its one truck, its time limit [s]) → plan."""


def _bearing(problem: Problem, island: int) -> float:
    d, i = problem.fleet.depot, problem.fleet.islands[island]
    return math.atan2(i.lat - d.lat, (i.lon - d.lon) * math.cos(math.radians(d.lat)))


def sectors(problem: Problem) -> list[list[int]]:
    """Island indices of each truck's sector (contiguous bearings, need shared by truck capacity)."""
    n = len(problem.fleet.islands)
    need = [max(1.0, problem.burnt_l(i, 0.0, problem.horizon_h) - problem.fleet.islands[i].stock_l) for i in range(n)]
    order = sorted(range(n), key=lambda i: _bearing(problem, i))
    capacity = [t.capacity_l for t in problem.trucks]
    total_need, total_cap = sum(need), sum(capacity)
    out: list[list[int]] = [[] for _ in problem.trucks]
    k, filled = 0, 0.0
    for i in order:
        share = total_need * sum(capacity[: k + 1]) / total_cap
        if filled >= share and k < len(out) - 1 and out[k]:
            k += 1
        out[k].append(i)
        filled += need[i]
    return out


def solve_by_sector(problem: Problem, time_limit_s: float, solve: SubSolve) -> FuelPlan:
    """The plan made of one MILP per truck's sector (see the module's docstring)."""
    parts, deadline = sectors(problem), time.monotonic() + time_limit_s
    cap = sum(t.capacity_l for t in problem.trucks)
    trips: list[Trip] = []
    plans: list[FuelPlan] = []
    for k, members in enumerate(parts):
        if not members:
            continue
        truck = problem.trucks[k]
        depot = problem.fleet.depot.model_copy(update={"stock_l": problem.fleet.depot.stock_l * truck.capacity_l / cap})
        fleet = problem.fleet.model_copy(
            update={"depot": depot, "islands": [problem.fleet.islands[i] for i in members]}
        )
        left = len([m for m in parts[k:] if m])
        plan = solve(fleet, [truck], max(0.5, (deadline - time.monotonic()) / left))
        plans.append(plan)
        trips += [
            Trip(
                k, t.depart_h, t.return_h, t.km, tuple(Stop(members[s.island], s.arrival_h, s.litres) for s in t.stops)
            )
            for t in plan.trips
        ]
    statuses = [p.status for p in plans]
    status = next((s for s in statuses if s != "optimal"), "optimal")
    gaps = [p.mip_gap for p in plans if p.mip_gap is not None]
    firsts = [p.first_gap for p in plans if p.first_gap is not None]
    far = tuple(x for p in plans for x in p.unreachable)
    return FuelPlan.of(
        problem,
        "milp-by-sector",
        trips,
        status=status,
        mip_gap=max(gaps, default=None),
        first_gap=max(firsts, default=None),
        solve_s=sum(p.solve_s or 0.0 for p in plans),
        unreachable=far,
    )
