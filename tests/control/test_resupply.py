"""A known fuel delivery ends the long outlook's rationing there (:mod:`microgrid.control.resupply`)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from microgrid.control.resupply import delivery_step, delivery_time, long_plan_steps, reserve_hours
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.state import SiteState
from tests.control.conftest import Rig, run_rig

T = datetime(2026, 1, 14, 22, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
STOCK = 2000.0


@pytest.mark.parametrize(
    ("delivery_at", "steps"),
    [
        (None, 168),  # none known: the whole outlook
        (T + timedelta(hours=30), 30),
        (T + timedelta(hours=30, minutes=40), 30),  # whole steps before the delivery
        (T + timedelta(days=9), 168),  # beyond the outlook: no change
        (T, 168),  # it came now: the next one is not known
        (T - HOUR, 168),
    ],
)
def test_the_long_plan_ends_at_the_delivery(delivery_at: datetime | None, steps: int) -> None:
    assert long_plan_steps(7.0, HOUR, T, delivery_at) == steps


def test_the_fuel_kept_for_a_surprise_cut_need_not_outlast_the_delivery() -> None:
    assert reserve_hours(12.0, T, None) == 12.0
    assert reserve_hours(12.0, T, T + timedelta(hours=30)) == 12.0
    assert reserve_hours(12.0, T, T + timedelta(hours=4, minutes=30)) == 4.5
    assert reserve_hours(12.0, T, T - HOUR) == 12.0  # came already: the next one is not known


@pytest.mark.parametrize(
    ("delivery_at", "step"),
    [
        (None, None),
        (T - HOUR, None),  # came already: the stock measured now holds it
        (T, None),
        (T + timedelta(minutes=15), 1),
        (T + timedelta(minutes=20), 2),  # the step it falls in counts as before it
        (T + timedelta(hours=23, minutes=45), 95),
        (T + timedelta(hours=24), None),  # after the 96-step horizon
    ],
)
def test_the_fine_plan_counts_the_stock_until_the_delivery(delivery_at: datetime | None, step: int | None) -> None:
    assert delivery_step(T, timedelta(minutes=15), 96, delivery_at) == step


def test_an_operators_delivery_time() -> None:
    assert delivery_time("2026-01-21T08:00+02:00") == datetime(2026, 1, 21, 6, 0, tzinfo=UTC)
    assert delivery_time("2026-01-21T06:00:00Z") == datetime(2026, 1, 21, 6, 0, tzinfo=UTC)
    for unknown in (None, "none", " NULL ", ""):
        assert delivery_time(unknown) is None
    for bad, why in (("2026-01-21T08:00", "needs a UTC offset"), ("next week", "not an ISO 8601"), (5, "not an ISO")):
        with pytest.raises(ValueError, match=why):
            delivery_time(bad)


@pytest.mark.slow
def test_a_known_delivery_lowers_the_value_of_fuel(tcp_hospital: Site, winter: Profiles) -> None:
    """Fuel for a few days of the winter's outages: rationed over the 7-day outlook it is worth more than
    over the 2 days to a known delivery; with the delivery within the 24 h plan there is no long plan."""
    initial = SiteState.initial(tcp_hospital)
    state = dataclasses.replace(initial, fuel_stock=dict.fromkeys(initial.fuel_stock, STOCK))

    async def body(rig: Rig) -> list[float | None]:
        values: list[float | None] = []
        for delivery in (None, timedelta(days=2), timedelta(hours=12)):
            rig.ctl.fuel_delivery_at = None if delivery is None else rig.now() + delivery
            report = await rig.cycle()
            values.append(None if report.terminal is None else report.terminal.fuel_value["diesel"])
            await rig.step()
        return values

    none, two_days, within = run_rig(tcp_hospital, winter, body, state=state)
    assert none is not None and two_days is not None
    assert none > 0
    assert two_days < none
    assert within is None


def test_a_delivery_within_the_plan_bounds_the_stock_until_then(tcp_hospital: Site, winter: Profiles) -> None:
    """With the delivery 12 h ahead, the plan's stock row covers its first 48 steps only (a ``dispatch``
    event says so); a delivery two days ahead leaves the spec's row."""

    async def body(rig: Rig) -> list[list[str]]:
        notes = []
        for delivery in (timedelta(hours=12), timedelta(days=2)):
            rig.ctl.fuel_delivery_at = rig.now() + delivery
            report = await rig.cycle()
            notes.append([why for kind, why in report.events if kind == "dispatch" and "delivery" in why])
            await rig.step()
        return notes

    within, later = run_rig(tcp_hospital, winter, body)
    assert within == ["fuel delivery within the plan: the stocks bound its first 48 steps only"]
    assert later == []
