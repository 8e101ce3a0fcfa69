"""The planning problem as numbers: road distances, the horizon's time steps, the trucks' trip slots.

**Trip slots.** Each truck's daily shift is cut into ``n`` equal slots of ``shift_h / n`` hours; a
trip fills one slot: it loads at the depot, visits up to ``max_stops`` islands and returns. ``n``
is the truck's ``trips_per_shift`` or, by default, the most slots that still fit a trip to the
farthest island (at least one).

**Candidate trips (patterns).** A trip's stops are one of its truck's *patterns*: a needy island with
up to ``max_stops − 1`` of its :data:`NEIGHBOURS` nearest needy islands (all subsets too), kept when
the shortest route through them (every order tried), loading and unloading included, fits the
slot. Exact routes, a bounded number of them (≈ islands × 11 for 3 stops). Limits: a trip never
spans two slots, a slot left partly idle is not reused, stops far apart never share a trip.

Time: step ``t`` of the horizon covers ``[t·step_h, (t+1)·step_h)``. Whichever pattern serves an
island in a slot, the truck reaches it between ``early_h`` and ``late_h`` (over the patterns that
hold it): its litres count for the island from the step after ``late_h`` (pessimistic for
hours-to-dry), and the island's stock at ``early_h`` bounds the tank's headroom (pessimistic for
the tank).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from microgrid.logistics.evaluate import hours_to_dry
from microgrid.logistics.fleet import Fleet, Truck

__all__ = [
    "EARTH_RADIUS_KM",
    "NEIGHBOURS",
    "Pairs",
    "Problem",
    "Route",
    "Slot",
    "candidate_pairs",
    "haversine_km",
    "needy",
    "trips_per_shift",
]

Pairs = list[tuple[int, int]]
"""(slot index, island index) pairs."""

EARTH_RADIUS_KM = 6371.0
NEIGHBOURS = 4
"""A candidate trip joins an island with up to ``max_stops − 1`` of its this many nearest needy islands."""


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points given in decimal degrees [km]."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True)
class Route:
    """A trip's stops in driving order, each stop's arrival offset from the trip's start (loading
    included) [h], the hours until it is back at the depot [h] and its road distance [km]."""

    stops: tuple[int, ...]
    offsets: dict[int, float]
    hours: float
    km: float

    @property
    def stops_sorted(self) -> tuple[int, ...]:
        return tuple(sorted(self.stops))


@dataclass(frozen=True)
class Slot:
    """One trip slot: ``truck`` (index), ``day``, ``index`` within the shift, its start and end [h]."""

    truck: int
    day: int
    index: int
    start_h: float
    end_h: float


def trips_per_shift(truck: Truck, longest_h: float) -> int:
    """The truck's slots per shift: its ``trips_per_shift`` or the most that fit a trip of ``longest_h``."""
    if truck.trips_per_shift is not None:
        return truck.trips_per_shift
    return max(1, int(truck.shift_h // max(longest_h, 1e-6)))


@dataclass(frozen=True)
class Problem:
    """A fleet, trucks and a horizon of ``days`` in steps of ``step_h`` hours."""

    fleet: Fleet
    trucks: tuple[Truck, ...]
    days: int
    step_h: float = 1.0

    @property
    def horizon_h(self) -> float:
        return 24.0 * self.days

    @property
    def steps(self) -> int:
        return math.ceil(self.horizon_h / self.step_h - 1e-9)

    @cached_property
    def _road_km(self) -> np.ndarray:
        """Road distances between the depot (0) and the islands (1…n) [km]: the fleet's ``road_km``
        where given (both ways), great-circle × road factor elsewhere."""
        places = [(self.fleet.depot.lat, self.fleet.depot.lon)] + [(i.lat, i.lon) for i in self.fleet.islands]
        f, n = self.fleet.road_factor, len(places)
        out = np.zeros((n, n))
        for a in range(n):
            for b in range(a + 1, n):
                out[a, b] = out[b, a] = f * haversine_km(*places[a], *places[b])
        index = {"depot": 0} | {i.id: k + 1 for k, i in enumerate(self.fleet.islands)}
        for here, row in (self.fleet.road_km or {}).items():
            for there, km in row.items():
                out[index[here], index[there]] = out[index[there], index[here]] = km
        return out

    @property
    def depot_km(self) -> np.ndarray:
        """Road distance depot → island [km], by island index."""
        return self._road_km[0, 1:]

    @property
    def island_km(self) -> np.ndarray:
        """Road distance island → island [km] (square, by island index)."""
        return self._road_km[1:, 1:]

    @cached_property
    def cumulative_burn_l(self) -> np.ndarray:
        """Litres each island burns from time 0 to each whole hour (islands × (hours + 1)) [l]."""
        hours = math.ceil(self.horizon_h)
        hourly = np.array([[self.fleet.burn_in_hour(i, h) for h in range(hours)] for i in self.fleet.islands])
        return np.concatenate([np.zeros((len(hourly), 1)), np.cumsum(hourly, axis=1)], axis=1)

    def burnt_l(self, island: int, from_h: float, to_h: float) -> float:
        """Litres ``island`` burns between two times [l] (its hourly burn, linear within an hour)."""
        row = self.cumulative_burn_l[island]
        grid = np.arange(len(row))
        return float(np.interp(to_h, grid, row) - np.interp(from_h, grid, row))

    @cached_property
    def burn_l(self) -> np.ndarray:
        """Litres each island burns in each step (islands × steps) [l]."""
        edges = np.minimum(np.arange(self.steps + 1) * self.step_h, self.horizon_h)
        grid = np.arange(self.cumulative_burn_l.shape[1])
        return np.diff(np.array([np.interp(edges, grid, row) for row in self.cumulative_burn_l]), axis=1)

    def route(self, truck: int, stops: Sequence[int]) -> Route:
        """The shortest order of ``stops`` (every order tried) for ``truck``: arrival offsets from the
        trip's start [h] (loading first), the trip's hours back at the depot, its road km."""
        t = self.trucks[truck]
        order = min(itertools.permutations(sorted(stops)), key=self._route_km)
        clock, here, offsets = t.load_h, None, {}
        for island in order:
            clock += float(self.depot_km[island] if here is None else self.island_km[here, island]) / t.speed_kmh
            offsets[island] = clock
            clock += t.unload_h
            here = island
        back = clock + float(self.depot_km[order[-1]]) / t.speed_kmh
        return Route(tuple(order), offsets, back, self._route_km(order))

    def _route_km(self, order: Sequence[int]) -> float:
        legs = [self.depot_km[order[0]], self.depot_km[order[-1]]]
        legs += [self.island_km[a, b] for a, b in itertools.pairwise(order)]
        return float(sum(legs))

    @cached_property
    def slot_h(self) -> tuple[float, ...]:
        """Each truck's slot length [h]."""
        far = int(np.argmax(self.depot_km))
        longest = [self.route(k, [far]).hours for k in range(len(self.trucks))]
        return tuple(t.shift_h / trips_per_shift(t, longest[k]) for k, t in enumerate(self.trucks))

    @cached_property
    def slots(self) -> tuple[Slot, ...]:
        """Every truck's trip slots over the horizon, ending within it, by start time then truck."""
        out = []
        for k, truck in enumerate(self.trucks):
            length = self.slot_h[k]
            for day in range(self.days):
                for j in range(round(truck.shift_h / length)):
                    start = 24.0 * day + truck.shift_start_h + j * length
                    if start + length <= self.horizon_h + 1e-9:
                        out.append(Slot(k, day, j, start, start + length))
        return tuple(sorted(out, key=lambda s: (s.start_h, s.truck)))

    @cached_property
    def patterns(self) -> tuple[tuple[Route, ...], ...]:
        """Each truck's candidate trips over the islands that need diesel: every set of up to
        ``max_stops`` islands drawn from one island and its :data:`NEIGHBOURS` nearest, closed under
        subsets, whose route fits the truck's slot."""
        islands = needy(self)
        out = []
        for k, truck in enumerate(self.trucks):
            sets: set[tuple[int, ...]] = set()
            for i in islands:
                near = sorted((j for j in islands if j != i), key=lambda j: (float(self.island_km[i, j]), j))
                for size in range(truck.max_stops):
                    for others in itertools.combinations(near[:NEIGHBOURS], size):
                        sets.add(tuple(sorted((i, *others))))
            routes = (self.route(k, stops) for stops in sorted(sets))
            out.append(tuple(r for r in routes if r.hours <= self.slot_h[k] + 1e-9))
        return tuple(out)

    @cached_property
    def pattern_index(self) -> tuple[dict[tuple[int, ...], int], ...]:
        """Per truck: a pattern's stops (sorted) → its index."""
        return tuple({r.stops_sorted: n for n, r in enumerate(pats)} for pats in self.patterns)

    @cached_property
    def _reach(self) -> tuple[dict[int, tuple[float, float]], ...]:
        """Per truck: island → (earliest, latest) arrival offset over the truck's patterns [h]."""
        out = []
        for pats in self.patterns:
            spans: dict[int, tuple[float, float]] = {}
            for r in pats:
                for i, at in r.offsets.items():
                    lo, hi = spans.get(i, (at, at))
                    spans[i] = (min(lo, at), max(hi, at))
            out.append(spans)
        return tuple(out)

    def fits(self, slot: Slot, island: int) -> bool:
        """Whether a trip of ``slot`` can serve ``island`` (a pattern of its truck holds it)."""
        return island in self._reach[slot.truck] or self.route(slot.truck, [island]).hours <= self.slot_h[slot.truck]

    def early_h(self, slot: Slot, island: int) -> float:
        """The earliest a trip of ``slot`` reaches ``island`` over its truck's patterns [h]."""
        t = self.trucks[slot.truck]
        lo = self._reach[slot.truck].get(island, (t.load_h + float(self.depot_km[island]) / t.speed_kmh,))[0]
        return slot.start_h + lo

    def late_h(self, slot: Slot, island: int) -> float:
        """The latest a trip of ``slot`` reaches ``island`` over its truck's patterns [h]."""
        t = self.trucks[slot.truck]
        hi = self._reach[slot.truck].get(island, (0.0, t.load_h + float(self.depot_km[island]) / t.speed_kmh))[1]
        return slot.start_h + hi

    def early_step(self, slot: Slot, island: int) -> int:
        """The step whose starting stock bounds the tank's headroom for this delivery."""
        return min(self.steps - 1, math.floor(self.early_h(slot, island) / self.step_h + 1e-9))

    def late_step(self, slot: Slot, island: int) -> int:
        """The first step the delivery is counted in (``steps``: after the horizon)."""
        return math.ceil(self.late_h(slot, island) / self.step_h - 1e-9)

    @cached_property
    def dry_h_without(self) -> np.ndarray:
        """Hours each island lasts with no delivery (capped at the horizon) [h]."""
        return hours_to_dry(self.fleet, self.horizon_h, [])[0]


def needy(problem: Problem) -> list[int]:
    """Islands that would run dry within the horizon with no delivery (indices)."""
    return [i for i, h in enumerate(problem.dry_h_without) if h < problem.horizon_h - 1e-9]


def candidate_pairs(problem: Problem, islands: list[int]) -> Pairs:
    """(slot index, island) pairs: the island fits the slot's trip and the delivery counts in the horizon."""
    return [
        (s, i)
        for s, slot in enumerate(problem.slots)
        for i in islands
        if problem.fits(slot, i) and problem.late_step(slot, i) < problem.steps
    ]
