"""Hand-solvable fuel plans, real HiGHS solves; every figure below is worked out in the comments."""

from __future__ import annotations

import pytest

from microgrid.logistics import FuelPlanInfeasible, plan_deliveries
from tests.logistics.helpers import fleet, island, truck


def test_two_islands_one_truck_the_one_that_runs_dry_first_is_served_first() -> None:
    # Two slots: [0, 2) h and [2, 4) h, one stop each. A (6 km east) has 10 l at 5 l/h: dry at 2 h; B (6 km
    # north) has 25 l: dry at 5 h. A trip reaches either at 0.5 + 6/30 = 0.7 h after its slot starts. Only A
    # first, then B, keeps both running: B first would leave A dry from 2 h until 2.7 h.
    plan = plan_deliveries(
        fleet(island("A", 6, 0, stock_l=10.0), island("B", 0, 6, stock_l=25.0)), [truck()], 1, time_limit_s=20
    )
    route = plan.route_table()
    assert list(route["island"]) == ["A", "B"]
    assert route["arrival_h"].tolist() == pytest.approx([0.7, 2.7], abs=1e-6)
    assert plan.after.total_dry_h == pytest.approx(0.0, abs=1e-6)
    assert plan.before.hours_to_dry.tolist() == pytest.approx([2.0, 5.0], abs=0.02)
    # each filled up to what it burns until the horizon's end (24 h), within its 500 l tank
    assert route["litres"].tolist() == pytest.approx([24 * 5 - 10 + 0.0, 24 * 5 - 25 + 0.0], abs=2.0)
    assert plan.after.min_weighted_h == pytest.approx(24.0)


def test_weights_decide_who_waits() -> None:
    # Both dry at 2 h, one trip before then: the hospital (weight 3) is served, the shelter waits.
    plan = plan_deliveries(
        fleet(island("shelter", 6, 0, stock_l=10.0), island("hospital", 0, 6, stock_l=10.0, weight=3.0)),
        [truck()],
        1,
        time_limit_s=20,
    )
    assert plan.route_table()["island"].iloc[0] == "hospital"
    dry = dict(zip(plan.islands_table().index, plan.islands_table()["hours_to_dry_after"], strict=True))
    assert dry["hospital"] == pytest.approx(24.0) and dry["shelter"] == pytest.approx(2.0, abs=0.02)


def test_a_truck_too_small_delivers_a_truckload_per_trip() -> None:
    # One 100 l truck, one trip a day (8 h shift from 0 h): the island (200 l, 10 l/h, needing 480 l over
    # 2 days) gets a truckload at 0.7 h and another at 24.7 h (53 l left then): (200 + 2 × 100) / 10 = 40 h
    # instead of 20 h, then dry for the last 8 h.
    plan = plan_deliveries(
        fleet(island("A", 6, 0, stock_l=200.0, capacity_l=1000.0, burn_l_per_h=10.0)),
        [truck(capacity_l=100.0, shift_h=8.0, trips_per_shift=1)],
        2,
        time_limit_s=20,
    )
    route = plan.route_table()
    assert route["litres"].tolist() == pytest.approx([100.0, 100.0])
    assert route["arrival_h"].tolist() == pytest.approx([0.7, 24.7])
    assert plan.before.hours_to_dry[0] == pytest.approx(20.0, abs=0.02)
    assert plan.after.hours_to_dry[0] == pytest.approx(40.0, abs=0.02)
    assert plan.after.dry_h[0] == pytest.approx(8.0, abs=0.05)


def test_an_island_unreachable_in_a_shift_is_named_and_not_served() -> None:
    # 70 km away: 0.5 + 70/30 + 0.25 + 70/30 = 5.4 h, more than the 4 h shift.
    plan = plan_deliveries(
        fleet(island("far", 70, 0, stock_l=10.0), island("near", 3, 0, stock_l=10.0)), [truck()], 1, time_limit_s=20
    )
    assert plan.unreachable == ("far",)
    assert set(plan.route_table()["island"]) == {"near"}
    assert plan.after.hours_to_dry[0] == pytest.approx(2.0, abs=0.02)


def test_must_last_beyond_reach_is_infeasible_by_shift_time() -> None:
    with pytest.raises(FuelPlanInfeasible) as caught:
        plan_deliveries(fleet(island("far", 70, 0, stock_l=10.0, must_last_h=12.0)), [truck()], 1, time_limit_s=20)
    assert caught.value.constraint == "shift time" and "far" in str(caught.value)


def test_must_last_before_the_first_truck_is_infeasible_by_shift_time() -> None:
    # dry at 0.5 h; the first arrival is at 0.7 h
    with pytest.raises(FuelPlanInfeasible, match=r"shift time: island A runs dry at 0\.5 h"):
        plan_deliveries(fleet(island("A", 6, 0, stock_l=2.5, must_last_h=12.0)), [truck()], 1, time_limit_s=20)


def test_must_last_with_too_little_diesel_in_the_depot() -> None:
    # 24 h × 5 l/h − 10 l = 110 l needed, the depot has 100 l
    with pytest.raises(FuelPlanInfeasible) as caught:
        plan_deliveries(
            fleet(island("A", 6, 0, stock_l=10.0, must_last_h=24.0), depot_l=100.0), [truck()], 1, time_limit_s=20
        )
    assert caught.value.constraint == "depot stock"


def test_must_last_with_trucks_too_small() -> None:
    # 110 l needed before 24 h; two trips of 50 l carry 100 l
    with pytest.raises(FuelPlanInfeasible) as caught:
        plan_deliveries(
            fleet(island("A", 6, 0, stock_l=10.0, must_last_h=24.0)), [truck(capacity_l=50.0)], 1, time_limit_s=20
        )
    assert caught.value.constraint == "truck capacity"


def test_must_last_that_can_be_kept_is_kept() -> None:
    plan = plan_deliveries(
        fleet(island("A", 6, 0, stock_l=10.0, must_last_h=24.0), island("B", 0, 6, stock_l=10.0)),
        [truck()],
        1,
        time_limit_s=20,
    )
    assert plan.after.hours_to_dry[0] == pytest.approx(24.0)


def test_a_given_road_distance_replaces_the_great_circle() -> None:
    # "near" is 3 km away as the crow flies, but its bridge is down: 70 km by road, beyond the shift
    near = fleet(island("near", 3, 0, stock_l=10.0), island("B", 0, 6, stock_l=10.0))
    closed = near.model_copy(update={"road_km": {"depot": {"near": 70.0}}})
    assert plan_deliveries(near, [truck()], 1, time_limit_s=20).unreachable == ()
    plan = plan_deliveries(closed, [truck()], 1, time_limit_s=20)
    assert plan.unreachable == ("near",)
    assert set(plan.route_table()["island"]) == {"B"}
    assert plan.problem.depot_km.tolist() == pytest.approx([70.0, 6.0], abs=0.01)


def test_an_island_on_an_outage_queue_burns_only_while_its_queue_is_off() -> None:
    # 5 l/h while islanded; queue 2 is off 0-4 h and 10.5-12 h (and 11-12 h again: counted once): 27.5 l
    # over the day (hourly: 2.5 l spread over hour 10). With 25 l: 20 l by 4 h, 2.5 l in hour 10, the last
    # 2.5 l gone at 11.5 h, dry until 12 h. With 30 l it lasts the day and needs no truck.
    outages = {"2": [[0.0, 4.0], [10.5, 12.0], [11.0, 12.0]]}
    tight = fleet(island("A", 6, 0, stock_l=25.0, queue="2"), outages=outages)
    late = plan_deliveries(tight, [truck(shift_start_h=14.0)], 1, time_limit_s=20)  # trucks come too late
    assert late.before.hours_to_dry[0] == pytest.approx(11.5, abs=0.02)
    assert late.before.dry_h[0] == pytest.approx(0.5, abs=0.02)
    easy = fleet(island("A", 6, 0, stock_l=30.0, queue="2"), outages=outages)
    plan = plan_deliveries(easy, [truck()], 1, time_limit_s=20)
    assert plan.before.hours_to_dry[0] == pytest.approx(24.0) and plan.trips == ()


def test_must_last_that_only_the_solver_finds_infeasible() -> None:
    # Each alone could be kept (one trip before 2 h), not both: one stop per trip, one trip before 2 h.
    both = fleet(island("A", 6, 0, stock_l=10.0, must_last_h=24.0), island("B", 0, 6, stock_l=10.0, must_last_h=24.0))
    with pytest.raises(FuelPlanInfeasible) as caught:
        plan_deliveries(both, [truck()], 1, time_limit_s=20)
    assert caught.value.constraint == "truck capacity, tank capacity and shift time"
