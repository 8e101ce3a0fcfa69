"""Tick tables for the cycle schedule: interval boundaries on a monotonic clock, wall-clock steps.

Each row: the wall clock and the monotonic clock [s] when a cycle ends, and when the next one is due
[monotonic s] with the boundaries missed. The site's interval is 900 s; the wall clock starts at
12:07:00 UTC (``W0``) while the monotonic clock reads 1,000 s.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microgrid.control.timing import LATE_S, SLACK_S, STEP_TOLERANCE_S, Due, Schedule

W0 = 1_768_392_420.0  # 2026-01-14 12:07:00 UTC: 420 s into an interval
M0 = 1_000.0


def schedule() -> Schedule:
    return Schedule(900.0, W0, M0)


def test_the_first_cycle_after_the_immediate_one_is_on_the_next_wall_boundary() -> None:
    assert schedule().due_s == M0 + 480.0 + LATE_S  # 12:15:01


@pytest.mark.parametrize(
    ("start_wall_s", "due_after_s"),
    [
        (-0.5, 0.5 + LATE_S),  # started at 12:14:59.5 (the immediate cycle is 12:00's): 12:15's at 12:15:01
        (+0.5, 900.0 - 0.5 + LATE_S),  # started at 12:15:00.5 (the immediate cycle is 12:15's): next at 12:30:01
    ],
)
def test_a_start_next_to_a_boundary_neither_repeats_nor_skips_it(start_wall_s: float, due_after_s: float) -> None:
    boundary = W0 + 480.0
    assert Schedule(900.0, boundary + start_wall_s, M0).due_s == pytest.approx(M0 + due_after_s)


DUE = 480.0 + LATE_S
"""12:15:01 (the first due cycle), after M0."""


@pytest.mark.parametrize(
    ("took_s", "wall_step_s", "due_after_s", "missed", "why"),
    [
        (2, 0, DUE + 900, 0, "a 2 s cycle at 12:15:01: the next at 12:30:01"),
        (2, -0.45, DUE + 900, 0, "a clock slewed 0.45 s back ends the cycle before 12:15:01: still 12:30:01"),
        (950, 0, DUE + 950, 0, "overran 12:30:01 by 50 s: 12:30's cycle at once, late, not lost"),
        (2000, 0, DUE + 2000, 1, "overran 12:30 and 12:45: 12:45's cycle at once, 12:30's missed"),
        (2, -3600, DUE + 900, 0, "clock stepped back 1 h: still 900 s later (11:30:01 on the new clock)"),
        (2, -420, DUE + 2 + 418, 0, "stepped back 7 min (12:08:03): 12:15:01 on the new clock"),
        (2, +420, DUE + 2 + 478, 0, "stepped forward 7 min (12:22:03): back on the boundary, 12:30:01"),
        (2, +3600, DUE + 900, 0, "stepped forward 1 h (13:15:03): 13:30:01, 900 s on (no real time was lost)"),
    ],
)
def test_the_next_cycle(took_s: float, wall_step_s: float, due_after_s: float, missed: int, why: str) -> None:
    sched = schedule()
    due = sched.next(W0 + DUE + took_s + wall_step_s, M0 + DUE + took_s)
    assert due == Due(pytest.approx(M0 + due_after_s), missed), why
    assert sched.due_s == due.at_s


def test_back_on_the_wall_boundaries_after_a_step_back_between_cycles() -> None:
    """The clock steps back 7 min at 12:20 (while the runner waits): the cycle due at 12:30:01 (old clock)
    runs at 12:23:01 on the new clock (stamped 12:15: a second cycle of that interval), and the one after
    is on the boundary again, 12:30:01."""
    sched = schedule()
    sched.next(W0 + DUE + 2, M0 + DUE + 2)
    due = sched.next(W0 + DUE + 900 + 2 - 420, M0 + DUE + 900 + 2)
    assert due.at_s == pytest.approx(M0 + DUE + 900 + 2 + 418)


@pytest.mark.parametrize(
    ("wall_moved_s", "mono_moved_s", "expected"),
    [
        (10.0, 10.0, None),
        (10.0 + STEP_TOLERANCE_S * 0.9, 10.0, None),
        (10.0 - 3600.0, 10.0, -3600.0),
        (10.0 + 3.0, 10.0, 3.0),
    ],
)
def test_a_step_is_a_wall_clock_that_moved_apart_from_the_monotonic_one(
    wall_moved_s: float, mono_moved_s: float, expected: float | None
) -> None:
    sched = schedule()
    stepped = sched.step(W0 + wall_moved_s, M0 + mono_moved_s)
    assert stepped == (None if expected is None else pytest.approx(expected))


def test_a_slow_drift_never_adds_up_to_a_step() -> None:
    """An NTP slew (0.5 ms/s) over a day, looked at every 10 s: never a step."""
    sched = schedule()
    steps = [sched.step(W0 + k * 10.005, M0 + k * 10.0) for k in range(1, 8641)]
    assert steps == [None] * 8640


@given(
    steps=st.lists(
        st.tuples(st.floats(0.1, 3000.0), st.floats(-7200.0, 7200.0)),
        min_size=1,
        max_size=30,
    )
)
def test_never_more_than_one_interval_between_cycles_whatever_the_wall_clock_does(
    steps: list[tuple[float, float]],
) -> None:
    """Cycles taking any time and a wall clock stepping anywhere: the next cycle is due at most one interval
    after the boundary it follows, at once only when the cycle overran that boundary, and never more than
    one interval overdue (older boundaries are counted as missed)."""
    sched, offset_s = schedule(), W0 - M0
    for took_s, wall_step_s in steps:
        previous_due = sched.due_s
        mono = previous_due + took_s  # the cycle started when due and took took_s
        offset_s += wall_step_s
        due = sched.next(mono + offset_s, mono)
        assert mono <= due.at_s <= max(mono, previous_due + 900.0 * (1 + due.missed)) + 1e-6
        assert due.missed == 0 or took_s >= 1800.0 - 1e-6
        if due.at_s == mono and wall_step_s <= 0:  # at once: the cycle overran (or the clock leapt forward)
            assert took_s >= 900.0 - SLACK_S - 1e-6
