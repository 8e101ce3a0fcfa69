"""Tick tables for gensets asked to start (microgrid.control.starts): engine states in, failures out."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from microgrid.control.starts import RETRY_AFTER_S, START_ALLOWANCE_S, StartWatch
from microgrid.site import Site
from tests.control.conftest import T0

STOPPED, STARTING, RUNNING, FAULT = 0, 1, 2, 4


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("ticks", "failed_after"),
    [
        ([(30, STARTING), (60, RUNNING), (200, RUNNING)], None),  # ran within the allowance
        ([(60, STARTING), (START_ALLOWANCE_S - 1, STARTING)], None),  # still within it
        ([(60, STARTING), (START_ALLOWANCE_S + 1, STARTING)], START_ALLOWANCE_S + 1),  # cranks, never runs
        ([(60, STOPPED), (START_ALLOWANCE_S + 1, STOPPED)], START_ALLOWANCE_S + 1),  # never even cranked
        ([(10, FAULT)], 10),  # its controller says so: at once
    ],
)
def test_a_genset_asked_to_run_must_run_within_the_allowance(
    ticks: list[tuple[float, int]], failed_after: float | None
) -> None:
    watch = StartWatch()
    watch.commanded({"dg1": True, "dg2": False}, {"dg1": False}, T0)
    found = []
    for seconds, state in ticks:
        news = watch.observe({"dg1": state, "dg2": STOPPED}, at(seconds))
        found += [(seconds, why) for why in news]
    if failed_after is None:
        assert found == [] and watch.out(at(ticks[-1][0])) == {}
    else:
        assert [s for s, _ in found] == [failed_after] and found[0][1].startswith("genset dg1: ")
        assert set(watch.out(at(failed_after))) == {"dg1"}


def test_left_out_for_an_hour_then_tried_again_and_cleared_when_seen_running() -> None:
    watch = StartWatch()
    watch.commanded({"dg1": True}, {}, T0)
    assert watch.observe({"dg1": STARTING}, at(START_ALLOWANCE_S + 5))
    assert watch.observe({"dg1": STARTING}, at(START_ALLOWANCE_S + 600)) == []  # reported once
    assert set(watch.out(at(RETRY_AFTER_S))) == {"dg1"}
    assert watch.out(at(START_ALLOWANCE_S + 5 + RETRY_AFTER_S + 1)) == {}
    watch.commanded({"dg1": True}, {}, at(7200))
    watch.observe({"dg1": FAULT}, at(7210))
    watch.observe({"dg1": RUNNING}, at(7300))
    assert watch.out(at(7300)) == {} and watch.asked == {}


def test_a_genset_not_asked_or_already_running_is_never_failed() -> None:
    watch = StartWatch()
    watch.commanded({"dg1": True, "dg2": False}, {"dg1": True}, T0)
    assert watch.asked == {}
    assert watch.observe({"dg1": RUNNING, "dg2": STOPPED}, at(3600)) == []


def test_the_others_are_asked_to_run_in_place_of_a_failed_one(hospital: Site) -> None:
    watch = StartWatch()
    watch.commanded({"dg1": True, "dg2": False}, {}, T0)
    watch.observe({"dg1": STARTING, "dg2": STOPPED}, at(START_ALLOWANCE_S + 1))
    now = at(START_ALLOWANCE_S + 1)
    assert watch.substitutes(hospital, {"dg1": True, "dg2": False}, now) == {"dg1": False, "dg2": True}
    assert watch.substitutes(hospital, {"dg1": False, "dg2": False}, now) == {"dg1": False, "dg2": False}


def test_a_genset_that_stops_while_carrying_load_has_tripped() -> None:
    """Wanted on and seen running, then stopped (or in fault) while still wanted: tripped, at once; a genset the
    decision no longer wants may stop."""
    watch = StartWatch()
    watch.commanded({"dg1": True, "dg2": True}, {"dg1": True, "dg2": True}, T0)
    assert watch.watched() == {"dg1", "dg2"}
    watch.commanded({"dg1": True, "dg2": False}, {"dg1": True, "dg2": True}, at(900))
    news = watch.observe({"dg1": STOPPED, "dg2": STOPPED}, at(910))
    assert len(news) == 1 and news[0].startswith("genset dg1: stopped while carrying load (tripped)")
    assert set(watch.out(at(910))) == {"dg1"} and watch.watched() == set()
