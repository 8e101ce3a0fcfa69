"""The judge (minute by minute) and the sector cut, by hand."""

from __future__ import annotations

import pytest

from microgrid.logistics import Delivery, city_fleet, city_trucks
from microgrid.logistics.decompose import sectors
from microgrid.logistics.evaluate import outcome
from microgrid.logistics.problem import Problem, haversine_km
from tests.logistics.helpers import fleet, island


def test_hours_to_dry_dry_hours_and_overfill_by_hand() -> None:
    # 100 l at 10 l/h: dry at 10 h. 50 l at 5 h: dry at 15 h, then dry 9 h of a 24 h horizon.
    f = fleet(island("A", 1, 0, stock_l=100.0, capacity_l=120.0, burn_l_per_h=10.0))
    assert outcome(f, 24, []).hours_to_dry.tolist() == pytest.approx([10.0])
    late = outcome(f, 24, [Delivery(0, 5.0, 50.0)])
    assert late.hours_to_dry.tolist() == pytest.approx([15.0]) and late.dry_h.tolist() == pytest.approx([9.0])
    assert late.overfill_l.tolist() == pytest.approx([0.0])
    # at 1 h the tank holds 90 l: 50 l more overfill the 120 l tank by 20 l
    assert outcome(f, 24, [Delivery(0, 1.0, 50.0)]).overfill_l.tolist() == pytest.approx([20.0])
    # a delivery after it ran dry: dry from 10 h to 12 h, then 50 l last 5 h, dry again from 17 h
    revived = outcome(f, 24, [Delivery(0, 12.0, 50.0)])
    assert revived.hours_to_dry.tolist() == pytest.approx([10.0])
    assert revived.dry_h.tolist() == pytest.approx([2.0 + 7.0])


def test_weighted_figures() -> None:
    f = fleet(island("A", 1, 0, stock_l=30.0, weight=3.0), island("B", 2, 0, stock_l=40.0))  # 5 l/h: 6 h, 8 h
    judged = outcome(f, 12, [])
    assert judged.min_weighted_h == pytest.approx(2.0)  # A: 6 h / 3
    assert judged.weighted_dry_h == pytest.approx(3 * 6.0 + 4.0)


def test_haversine() -> None:
    assert haversine_km(50.0, 36.0, 51.0, 36.0) == pytest.approx(111.19, abs=0.01)
    assert haversine_km(50.0, 36.23, 50.0, 36.23) == 0.0


def test_sectors_cover_every_island_once_in_bearing_order() -> None:
    problem = Problem(city_fleet(40, seed=2), tuple(city_trucks(4)), 2)
    parts = sectors(problem)
    assert len(parts) == 4 and all(parts)
    assert sorted(i for part in parts for i in part) == list(range(40))
