"""The fuel-delivery MILP (Pyomo, solved in process by HiGHS through :mod:`microgrid.dispatch.solve`).

Decisions, for each trip slot ``s`` (:mod:`microgrid.logistics.problem`) and each island ``i`` the
slot can reach: ``trip[s,r]`` ∈ {0,1} (the slot's trip is its truck's pattern ``r``: stops, order
and times fixed, :mod:`microgrid.logistics.problem`) and ``q[s,i]`` ≥ 0 litres. Per
island and step ``t``: ``stock[i,t]`` (end of step, ∈ [0, tank]), ``burn[i,t]`` ∈ [0, b_it] and
``alive[i,t]`` ∈ {0,1}, non-increasing in ``t`` (1: every litre the island needed up to the end of
``t`` was there). ``H_i = step_h · Σ_t alive[i,t]`` is its hours-to-dry [h].

    stock[i,t]   = stock[i,t-1] + Σ_{late_h(s,i) ≤ t·step_h} q[s,i] − burn[i,t]   (stock[i,-1] = stock_l)
    burn[i,t]   ≥ b_it · alive[i,t];   alive[i,t] ≤ alive[i,t-1];   alive = 1 while t < must_last_h
    tank:   stock at early_h(s,i) + Σ_{s' may arrive by late_h(s,i)} q[s',i] ≤ capacity_l
    truck:  Σ_i q[s,i] ≤ capacity_l of the slot's truck;   q[s,i] ≤ capacity · Σ_{r ∋ i} trip[s,r]
    shift:  Σ_r trip[s,r] ≤ 1   (each pattern's route fits the slot by construction: stops, shift time)
    depot:  Σ q ≤ depot stock_l
    z · weight_i ≤ H_i  for every island

    dry_i = Σ_t step_h · (1 − burn[i,t] / b_it)          (the island's dry hours, short share counted)
    first stage:   maximise z                                     (objective ``maximin``)
    second stage:  z ≥ z found;  minimise Σ_i weight_i · dry_i / Σ_i weight_i + β · Σ trip[s,r] · km_r

Lexicographic: the minimum weighted hours-to-dry first, then (``shortfall``) the weighted mean dry
hours with the road distance at ``β`` = :data:`BETA_PER_KM` (100 km are worth 0.01 weighted-mean
dry hours).
Only islands that would run dry within the horizon with no delivery get variables; the others count
``H_i`` = horizon.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pyomo.environ as pyo

from microgrid.logistics.problem import Pairs, Problem, candidate_pairs, needy

__all__ = ["BETA_PER_KM", "build_model", "second_stage"]

BETA_PER_KM = 1e-4
"""Weight of a road kilometre (each trip's route) next to the weighted mean dry hours [h/km]."""


def _declare(m: pyo.ConcreteModel, problem: Problem, islands: list[int], pairs: Pairs) -> None:
    fleet, slots = problem.fleet.islands, problem.slots
    m.I, m.T = pyo.Set(initialize=islands), pyo.RangeSet(0, problem.steps - 1)
    m.P = pyo.Set(initialize=pairs, dimen=2)

    def q_bounds(_m: Any, s: int, i: int) -> tuple[float, float]:
        """At most a truckload, the tank's headroom at the earliest arrival (its stock can only be
        higher with other deliveries), what the island burns until the horizon's end [l]."""
        early = problem.early_h(slots[s], i)
        lowest = max(0.0, fleet[i].stock_l - problem.burnt_l(i, 0.0, early))
        need = problem.burnt_l(i, 0.0, problem.horizon_h) - fleet[i].stock_l
        return 0.0, max(0.0, min(problem.trucks[slots[s].truck].capacity_l, fleet[i].capacity_l - lowest, need))

    m.q = pyo.Var(m.P, bounds=q_bounds)
    m.stock = pyo.Var(m.I, m.T, bounds=lambda _m, i, t: (0.0, fleet[i].capacity_l))
    m.burn = pyo.Var(m.I, m.T, bounds=lambda _m, i, t: (0.0, float(problem.burn_l[i, t])))
    m.alive = pyo.Var(m.I, m.T, domain=pyo.Binary)
    m.z = pyo.Var(bounds=(0.0, problem.horizon_h / min(i.weight for i in fleet)))
    for i in islands:
        must = fleet[i].must_last_h or 0.0
        for t in range(problem.steps):
            if (t + 1) * problem.step_h <= must + 1e-9:
                m.alive[i, t].fix(1)


def _stock_rules(m: pyo.ConcreteModel, problem: Problem, pairs: Pairs) -> None:
    fleet, slots = problem.fleet.islands, problem.slots
    arriving: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for s, i in pairs:
        arriving[i, problem.late_step(slots[s], i)].append((s, i))

    def before(i: int, t: int) -> Any:
        return fleet[i].stock_l if t == 0 else m.stock[i, t - 1]

    def delivered(i: int, t: int) -> Any:
        return sum(m.q[p] for p in arriving.get((i, t), ()))

    m.balance = pyo.Constraint(
        m.I, m.T, rule=lambda _m, i, t: m.stock[i, t] == before(i, t) + delivered(i, t) - m.burn[i, t]
    )
    m.served = pyo.Constraint(
        m.I, m.T, rule=lambda _m, i, t: m.burn[i, t] >= float(problem.burn_l[i, t]) * m.alive[i, t]
    )
    m.monotone = pyo.Constraint(
        m.I, m.T, rule=lambda _m, i, t: pyo.Constraint.Skip if t == 0 else m.alive[i, t] <= m.alive[i, t - 1]
    )

    def tank(_m: Any, s: int, i: int) -> Any:
        first, latest = problem.early_step(slots[s], i), problem.late_h(slots[s], i)
        meanwhile = [
            (r, i)
            for r, _ in pairs_of[i]
            if problem.late_step(slots[r], i) >= first and problem.early_h(slots[r], i) <= latest + 1e-9
        ]
        return before(i, first) + sum(m.q[p] for p in meanwhile) <= fleet[i].capacity_l

    pairs_of: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s, i in pairs:
        pairs_of[i].append((s, i))
    m.tank = pyo.Constraint(m.P, rule=tank)


def _routes(problem: Problem, pairs: Pairs) -> list[tuple[int, int]]:
    """(slot, pattern index) pairs: the slot's truck's patterns whose every stop counts in the horizon."""
    have = set(pairs)
    return [
        (s, r)
        for s, slot in enumerate(problem.slots)
        for r, route in enumerate(problem.patterns[slot.truck])
        if all((s, i) in have for i in route.stops)
    ]


def _trip_rules(m: pyo.ConcreteModel, problem: Problem, pairs: Pairs) -> None:
    slots, patterns = problem.slots, problem.patterns
    by_slot: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s, i in pairs:
        by_slot[s].append((s, i))
    routes = _routes(problem, pairs)
    serving: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    trips_of: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s, r in routes:
        trips_of[s].append((s, r))
        for i in patterns[slots[s].truck][r].stops:
            serving[s, i].append((s, r))
    m.S = pyo.Set(initialize=sorted(by_slot))
    m.R = pyo.Set(initialize=routes, dimen=2)
    m.trip = pyo.Var(m.R, domain=pyo.Binary)
    m.one_trip = pyo.Constraint(m.S, rule=lambda _m, s: sum(m.trip[r] for r in trips_of[s]) <= 1)
    m.link = pyo.Constraint(
        m.P, rule=lambda _m, s, i: m.q[s, i] <= m.q[s, i].ub * sum(m.trip[r] for r in serving[s, i])
    )
    capacity = {s: problem.trucks[slots[s].truck].capacity_l for s in by_slot}
    m.truck_capacity = pyo.Constraint(m.S, rule=lambda _m, s: sum(m.q[p] for p in by_slot[s]) <= capacity[s])
    twins = _twins(problem, sorted(by_slot))
    m.twins = pyo.Constraint(
        range(len(twins)),
        rule=lambda _m, n: sum(m.q[p] for p in by_slot[twins[n][0]]) >= sum(m.q[p] for p in by_slot[twins[n][1]]),
    )
    if pairs:
        m.depot = pyo.Constraint(expr=sum(m.q[p] for p in pairs) <= problem.fleet.depot.stock_l)


def _twins(problem: Problem, used: list[int]) -> list[tuple[int, int]]:
    """Pairs of slots of identical trucks at the same times: the first carries at least as much as
    the second (symmetry breaking: swapping the trucks gives the same plan)."""
    slots, out = problem.slots, []
    seen: dict[tuple[float, float, str], int] = {}
    for s in used:
        t = problem.trucks[slots[s].truck]
        key = (slots[s].start_h, slots[s].end_h, t.model_dump_json(exclude={"id"}))
        if key in seen:
            out.append((seen[key], s))
        seen[key] = s
    return out


def _objective(m: pyo.ConcreteModel, problem: Problem, pairs: Pairs) -> None:
    fleet = problem.fleet.islands
    hours = {i: problem.step_h * sum(m.alive[i, t] for t in m.T) for i in m.I}
    m.minimum = pyo.Constraint(m.I, rule=lambda _m, i: m.z * fleet[i].weight <= hours[i])
    full = problem.horizon_h
    for i, island in enumerate(fleet):  # islands that last the horizon bound z too
        if i not in hours:
            m.z.setub(min(m.z.ub, full / island.weight))
    weights = sum(x.weight for x in fleet)
    dry = sum(
        fleet[i].weight * problem.step_h * (1 - m.burn[i, t] / float(problem.burn_l[i, t]))
        for i in m.I
        for t in m.T
        if problem.burn_l[i, t] > 0
    )
    km = sum(problem.patterns[problem.slots[s].truck][r].km * m.trip[s, r] for s, r in m.R)
    m.maximin = pyo.Objective(expr=m.z, sense=pyo.maximize)
    m.shortfall = pyo.Objective(expr=dry / weights + BETA_PER_KM * km, sense=pyo.minimize)
    m.shortfall.deactivate()


def second_stage(m: pyo.ConcreteModel, problem: Problem, minimum_h: float) -> None:
    """Turn ``m`` into the second stage: every island keeps at least ``minimum_h`` (what the first
    stage found) × its weight before running dry — its ``alive`` binaries become constants — and the
    weighted mean dry hours and the distance are minimised."""
    for i in m.I:
        keep = math.ceil(minimum_h * problem.fleet.islands[i].weight / problem.step_h - 1e-6)
        for t in m.T:
            m.alive[i, t].fix(1 if t < keep else 0)
    m.z.fix(minimum_h)
    m.minimum.deactivate()
    m.maximin.deactivate()
    m.shortfall.activate()


def build_model(problem: Problem) -> tuple[pyo.ConcreteModel, Pairs]:
    """The MILP of ``problem`` (see the module's docstring) and its (slot, island) pairs."""
    islands = needy(problem)
    pairs = candidate_pairs(problem, islands)
    m = pyo.ConcreteModel(name="fuel_logistics")
    _declare(m, problem, islands, pairs)
    _stock_rules(m, problem, pairs)
    _trip_rules(m, problem, pairs)
    _objective(m, problem, pairs)
    return m, pairs
