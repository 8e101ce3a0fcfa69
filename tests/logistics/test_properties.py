"""Invariants of every plan, over random small fleets (hypothesis; real HiGHS solves for the MILP):
no delivery beyond the tank's headroom when it arrives, no trip beyond its truck's capacity, stops
or shift, nothing beyond the depot's stock."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microgrid.logistics import FuelPlan, baseline, plan_deliveries
from tests.logistics.helpers import fleet, island, truck

_islands = st.lists(
    st.tuples(
        st.floats(-12, 12),  # east [km]
        st.floats(-12, 12),  # north [km]
        st.floats(0, 300),  # stock [l]
        st.floats(300, 800),  # tank [l]
        st.floats(1, 20),  # burn [l/h]
        st.sampled_from([1.0, 2.0, 3.0]),  # weight
    ),
    min_size=1,
    max_size=5,
)
_trucks = st.lists(
    st.tuples(
        st.floats(100, 1500),  # capacity [l]
        st.floats(20, 50),  # speed [km/h]
        st.floats(3, 10),  # shift [h]
        st.floats(0, 12),  # shift start [h]
        st.integers(1, 3),  # stops
    ),
    min_size=1,
    max_size=2,
)


def _case(islands: list[tuple[float, ...]], trucks: list[tuple[Any, ...]], depot_l: float) -> tuple[Any, Any]:
    f = fleet(
        *(
            island(f"i{n}", e, nn, stock_l=min(s, c), capacity_l=c, burn_l_per_h=b, weight=w)
            for n, (e, nn, s, c, b, w) in enumerate(islands)
        ),
        depot_l=depot_l,
    )
    t = [
        truck(id=f"t{k}", capacity_l=c, speed_kmh=v, shift_h=h, shift_start_h=s0, max_stops=m, trips_per_shift=None)
        for k, (c, v, h, s0, m) in enumerate(trucks)
    ]
    return f, t


def _assert_invariants(plan: FuelPlan, tank_slack_l: float) -> None:
    problem = plan.problem
    assert plan.after.overfill_l.max() <= tank_slack_l, plan.after.overfill_l
    for trip in plan.trips:
        t = problem.trucks[trip.truck]
        assert sum(s.litres for s in trip.stops) <= t.capacity_l + 1e-6
        assert 1 <= len(trip.stops) <= t.max_stops
        day = int((trip.depart_h - t.load_h - t.shift_start_h + 1e-9) // 24)
        shift_start = 24 * day + t.shift_start_h
        assert trip.depart_h - t.load_h >= shift_start - 1e-9
        assert trip.return_h <= shift_start + t.shift_h + 1e-6
        assert all(trip.depart_h <= s.arrival_h < trip.return_h for s in trip.stops)
    for k in range(len(problem.trucks)):  # a truck's trips never overlap
        mine = sorted((t for t in plan.trips if t.truck == k), key=lambda t: t.depart_h)
        assert all(a.return_h <= b.depart_h - problem.trucks[k].load_h + 1e-6 for a, b in itertools.pairwise(mine))
    assert plan.litres <= problem.fleet.depot.stock_l + 1e-6
    assert (plan.after.hours_to_dry >= plan.before.hours_to_dry - 1e-9).all()  # diesel never hurts


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(islands=_islands, trucks=_trucks, depot_l=st.floats(0, 5000))
def test_milp_plans_respect_tanks_trucks_shifts_and_the_depot(
    islands: list[tuple[float, ...]], trucks: list[tuple[Any, ...]], depot_l: float
) -> None:
    f, t = _case(islands, trucks, depot_l)
    plan = plan_deliveries(f, t, 1, time_limit_s=5, mip_gap=0.05)
    _assert_invariants(plan, tank_slack_l=1e-6)


@settings(max_examples=25, deadline=None)
@given(islands=_islands, trucks=_trucks, depot_l=st.floats(0, 5000))
def test_nearest_first_respects_them_too(
    islands: list[tuple[float, ...]], trucks: list[tuple[Any, ...]], depot_l: float
) -> None:
    f, t = _case(islands, trucks, depot_l)
    for method in ("nearest-first", "most-urgent-first"):
        _assert_invariants(baseline(f, t, 2, method), tank_slack_l=1e-6)
