"""Trips, the route table and the fuel plan a solver or a heuristic returns.

A trip loads at the depot (``load_h``), visits its stops in the order of the shortest route
(every order is tried: at most 4 stops), unloads at each (``unload_h``) and returns. Times in hours
from the snapshot (time 0), litres [l], road distances [km].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from microgrid.logistics.evaluate import Delivery, Outcome, outcome
from microgrid.logistics.problem import Problem, Slot

__all__ = ["ROUTE_COLUMNS", "FuelPlan", "Stop", "Trip", "make_trip"]

ROUTE_COLUMNS = ["truck", "trip", "stop", "island", "arrival_h", "litres"]
"""The route table's columns: truck id, trip number (1-based, per truck), stop number (1-based),
island id, arrival [h from the snapshot], litres delivered [l]."""


@dataclass(frozen=True)
class Stop:
    island: int
    arrival_h: float
    litres: float


@dataclass(frozen=True)
class Trip:
    """One truck's trip: leaves the depot at ``depart_h`` (loaded), back at ``return_h``; ``km`` on the road."""

    truck: int
    depart_h: float
    return_h: float
    km: float
    stops: tuple[Stop, ...]


def make_trip(problem: Problem, slot: Slot, litres: Mapping[int, float]) -> Trip:
    """The trip of ``slot`` delivering ``litres`` (island index → l), its stops in the shortest order."""
    route = problem.route(slot.truck, list(litres))
    stops = tuple(Stop(i, slot.start_h + route.offsets[i], float(litres[i])) for i in route.stops)
    truck = problem.trucks[slot.truck]
    return Trip(slot.truck, slot.start_h + truck.load_h, slot.start_h + route.hours, route.km, stops)


@dataclass(frozen=True)
class FuelPlan:
    """A delivery plan and what it does.

    ``method`` names who made it (``milp``, ``nearest-first``, ``most-urgent-first``); ``status``,
    ``mip_gap`` (the second stage's: dry hours), ``first_gap`` (the first stage's: the minimum) and
    ``solve_s`` come from the solver (None for heuristics); ``before`` / ``after``
    are the minute-by-minute outcomes with no delivery and with the plan; ``unreachable`` lists the
    islands no truck can reach and return from within a shift.
    """

    problem: Problem
    method: str
    trips: tuple[Trip, ...]
    before: Outcome
    after: Outcome
    status: str | None = None
    mip_gap: float | None = None
    first_gap: float | None = None
    solve_s: float | None = None
    unreachable: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, problem: Problem, method: str, trips: Sequence[Trip], **solver: object) -> FuelPlan:
        """A plan of ``trips``, judged minute by minute against no deliveries."""
        ordered = tuple(sorted(trips, key=lambda t: (t.truck, t.depart_h)))
        deliveries = [Delivery(s.island, s.arrival_h, s.litres) for t in ordered for s in t.stops]
        before = outcome(problem.fleet, problem.horizon_h, [])
        after = outcome(problem.fleet, problem.horizon_h, deliveries)
        return cls(problem, method, ordered, before, after, **solver)  # type: ignore[arg-type]

    @property
    def km(self) -> float:
        return sum(t.km for t in self.trips)

    @property
    def litres(self) -> float:
        return sum(s.litres for t in self.trips for s in t.stops)

    def route_table(self) -> pd.DataFrame:
        """One row per stop: :data:`ROUTE_COLUMNS`."""
        rows, count = [], dict.fromkeys(range(len(self.problem.trucks)), 0)
        for trip in self.trips:
            count[trip.truck] += 1
            for n, stop in enumerate(trip.stops, start=1):
                island = self.problem.fleet.islands[stop.island].id
                truck = self.problem.trucks[trip.truck].id
                rows.append((truck, count[trip.truck], n, island, round(stop.arrival_h, 3), round(stop.litres, 1)))
        return pd.DataFrame(rows, columns=ROUTE_COLUMNS)

    def islands_table(self) -> pd.DataFrame:
        """Per island: weight, hours-to-dry and dry hours before and after the plan [h]."""
        ids = [i.id for i in self.problem.fleet.islands]
        return pd.DataFrame(
            {
                "weight": self.before.weights,
                "hours_to_dry_before": self.before.hours_to_dry.round(2),
                "hours_to_dry_after": self.after.hours_to_dry.round(2),
                "dry_h_before": self.before.dry_h.round(2),
                "dry_h_after": self.after.dry_h.round(2),
            },
            index=pd.Index(ids, name="island"),
        )

    def summary(self) -> dict[str, object]:
        """The figures the command prints (JSON-ready)."""
        return {
            "method": self.method,
            "status": self.status,
            "mip_gap": self.mip_gap,
            "first_stage_gap": self.first_gap,
            "solve_s": None if self.solve_s is None else round(self.solve_s, 2),
            "trips": len(self.trips),
            "stops": sum(len(t.stops) for t in self.trips),
            "litres": round(self.litres, 1),
            "km": round(self.km, 1),
            "min_weighted_hours_to_dry_before": round(self.before.min_weighted_h, 2),
            "min_weighted_hours_to_dry_after": round(self.after.min_weighted_h, 2),
            "dry_hours_before": round(self.before.total_dry_h, 2),
            "dry_hours_after": round(self.after.total_dry_h, 2),
            "unreachable": list(self.unreachable),
        }
