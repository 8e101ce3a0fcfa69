"""Two heuristics: *nearest first* (the baseline a dispatcher would use without a plan) and *most
urgent first* on the MILP's trip slots (the MILP's warm start, and its fallback).

Nearest first: whenever a truck is free in its shift it loads and drives to the nearest island that
still needs diesel within the horizon and has room for it, then on to the nearest next one (up to
``max_stops``, while it can still get back before the shift ends), filling each tank (never beyond
what the island burns until the horizon's end). Urgency is ignored: that is the point.
"""

from __future__ import annotations

from collections import defaultdict

from microgrid.logistics.problem import Problem, candidate_pairs, needy
from microgrid.logistics.routes import Trip, make_trip

__all__ = ["Loads", "most_urgent_first", "nearest_first", "stock_at"]

Loads = dict[tuple[int, int], float]
"""(slot index, island index) → litres."""

MIN_DROP_L = 1.0
"""A stop delivering less than this is not made [l]."""


def stock_at(problem: Problem, island: int, time_h: float, deliveries: list[tuple[float, float]]) -> float:
    """The island's stock at ``time_h`` [l], given (arrival h, litres) deliveries (empty tanks stay at 0)."""
    stock, clock = problem.fleet.islands[island].stock_l, 0.0
    for arrival, litres in sorted(deliveries):
        if arrival > time_h:
            break
        stock = max(0.0, stock - problem.burnt_l(island, clock, arrival)) + litres
        clock = arrival
    return max(0.0, stock - problem.burnt_l(island, clock, time_h))


def _need_l(problem: Problem, island: int, time_h: float, stock_l: float) -> float:
    """Litres ``island`` still lacks to last from ``time_h`` to the horizon's end."""
    return max(0.0, problem.burnt_l(island, time_h, problem.horizon_h) - stock_l)


def _nearest_trip(
    problem: Problem, truck: int, start_h: float, end_h: float, got: dict[int, list[tuple[float, float]]]
) -> Trip | None:
    t = problem.trucks[truck]
    depot_l = problem.fleet.depot.stock_l - sum(q for deliveries in got.values() for _, q in deliveries)
    clock, load, here = start_h + t.load_h, min(t.capacity_l, depot_l), None
    stops: list[tuple[int, float, float]] = []
    while len(stops) < t.max_stops and load >= MIN_DROP_L:
        best = None
        for i in sorted(range(len(problem.fleet.islands)), key=lambda j: _km(problem, here, j)):
            arrive = clock + _km(problem, here, i) / t.speed_kmh
            if arrive + t.unload_h + problem.depot_km[i] / t.speed_kmh > end_h or any(i == s[0] for s in stops):
                continue
            stock = stock_at(problem, i, arrive, got[i])
            later = sum(q for at, q in got[i] if at > arrive)  # another truck's, planned first: it must still fit
            litres = min(
                load, problem.fleet.islands[i].capacity_l - stock - later - 0.5, _need_l(problem, i, arrive, stock)
            )
            if litres >= MIN_DROP_L:
                best = (i, arrive, litres)
                break
        if best is None:
            break
        i, arrive, litres = best
        stops.append(best)
        got[i].append((arrive, litres))
        clock, load, here = arrive + t.unload_h, load - litres, i
    if not stops:
        return None
    from microgrid.logistics.routes import Stop  # noqa: PLC0415 - a plain record

    back = clock + problem.depot_km[stops[-1][0]] / t.speed_kmh
    order = [s[0] for s in stops]
    km = sum(_km(problem, a, b) for a, b in zip([None, *order[:-1]], order, strict=True))
    km += float(problem.depot_km[stops[-1][0]])
    return Trip(truck, start_h + t.load_h, back, km, tuple(Stop(i, a, q) for i, a, q in stops))


def _km(problem: Problem, here: int | None, there: int) -> float:
    return float(problem.depot_km[there] if here is None else problem.island_km[here, there])


def nearest_first(problem: Problem) -> list[Trip]:
    """The nearest-first trips of every truck over the horizon (trucks free earliest go first)."""
    got: dict[int, list[tuple[float, float]]] = defaultdict(list)
    free = {k: (0, t.shift_start_h) for k, t in enumerate(problem.trucks)}  # truck → (day, free at h)
    trips: list[Trip] = []
    while free:
        k = min(free, key=lambda j: (24 * free[j][0] + free[j][1], j))
        day, at = free[k]
        truck = problem.trucks[k]
        shift_end = min(24.0 * day + truck.shift_start_h + truck.shift_h, problem.horizon_h)
        trip = _nearest_trip(problem, k, 24.0 * day + at, shift_end, got) if 24.0 * day + at < shift_end else None
        if trip is not None:
            trips.append(trip)
            free[k] = (day, trip.return_h - 24.0 * day)
        elif day + 1 < problem.days:
            free[k] = (day + 1, truck.shift_start_h)
        else:
            del free[k]
    return trips


def _model_stock(problem: Problem, island: int, step: int, loads: dict[int, list[tuple[int, float]]]) -> float:
    """The MILP's stock of ``island`` at the start of ``step`` (deliveries counted from their end step)."""
    stock = problem.fleet.islands[island].stock_l
    for t in range(step):
        stock += sum(q for at, q in loads[island] if at == t)
        stock = max(0.0, stock - float(problem.burn_l[island, t]))
    return stock + sum(q for at, q in loads[island] if at == step)


def most_urgent_first(problem: Problem) -> Loads:
    """Slot loads: each slot, in start order, serves the reachable islands that run dry soonest
    (weighted), filling what their tanks can take at the slot's start."""
    islands = needy(problem)
    pairs = candidate_pairs(problem, islands)
    reach: dict[int, list[int]] = defaultdict(list)
    for s, i in pairs:
        reach[s].append(i)
    got: dict[int, list[tuple[int, float]]] = defaultdict(list)
    out: Loads = {}
    depot = problem.fleet.depot.stock_l
    for s in sorted(reach, key=lambda j: problem.slots[j].start_h):
        depot -= _fill_slot(problem, s, reach[s], (got, out), depot)
    return out


def _fill_slot(
    problem: Problem, s: int, reach: list[int], plan: tuple[dict[int, list[tuple[int, float]]], Loads], depot: float
) -> float:
    """Fill slot ``s`` (most urgent first); record its loads in ``plan`` (per island, per pair); return litres."""
    got, out = plan
    slot = problem.slots[s]
    truck = problem.trucks[slot.truck]
    late = {i: problem.late_step(slot, i) for i in reach}
    chosen: tuple[int, ...]
    urgency = {i: _model_dry_h(problem, i, got, late[i]) / problem.fleet.islands[i].weight for i in reach}
    load, chosen = min(truck.capacity_l, depot), ()
    given = 0.0
    patterns = problem.pattern_index[slot.truck]
    for i in sorted(reach, key=lambda j: urgency[j]):
        if load < MIN_DROP_L or urgency[i] * problem.fleet.islands[i].weight >= problem.horizon_h:
            continue
        stops = tuple(sorted((*chosen, i)))
        if stops not in patterns:
            continue
        first, last = problem.early_step(slot, i), late[i]
        pending = sum(q for at, q in got[i] if at >= first)
        room = problem.fleet.islands[i].capacity_l - _model_stock(problem, i, first, got) - pending - 0.5
        room = min(room, problem.fleet.islands[i].capacity_l - _model_stock(problem, i, last, got) - 0.5)
        litres = min(load, room, float(problem.burn_l[i, last:].sum()) + 1.0)
        if litres < MIN_DROP_L:
            continue
        got[i].append((last, litres))
        out[s, i] = litres
        chosen = stops
        load, given = load - litres, given + litres
    return given


def _model_dry_h(problem: Problem, island: int, got: dict[int, list[tuple[int, float]]], from_step: int) -> float:
    """When the island next runs short at or after ``from_step`` in the MILP's terms [h]."""
    stock = problem.fleet.islands[island].stock_l
    for t in range(problem.steps):
        stock += sum(q for at, q in got[island] if at == t)
        if t >= from_step and stock < float(problem.burn_l[island, t]) - 1e-9:
            return t * problem.step_h
        stock = max(0.0, stock - float(problem.burn_l[island, t]))
    return problem.horizon_h


def loads_to_trips(problem: Problem, loads: Loads) -> list[Trip]:
    """The trips of slot loads (stops in the shortest order)."""
    by_slot: dict[int, dict[int, float]] = defaultdict(dict)
    for (s, i), q in loads.items():
        if q >= MIN_DROP_L:
            by_slot[s][i] = q
    return [make_trip(problem, problem.slots[s], litres) for s, litres in sorted(by_slot.items())]
