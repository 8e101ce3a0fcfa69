"""Emergency mode state machine, tick by tick: entering, staying, leaving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from microgrid.control.emergency import Emergency

T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
STEP = timedelta(minutes=15)


def run(machine: Emergency, ticks: list[tuple[bool | None, str | None, bool]]) -> list[bool]:
    """Feed (grid_up, scheduled_now, voided) per 15-min cycle; return the mode after each."""
    seen = []
    for i, (grid_up, scheduled, voided) in enumerate(ticks):
        machine.update(T0 + i * STEP, grid_up=grid_up, scheduled_now=scheduled, voided=voided)
        seen.append(machine.active)
    return seen


@pytest.mark.parametrize(
    ("ticks", "expected"),
    [
        # a scheduled outage is no emergency; nor is a possible one that happens
        ([(True, "on", False), (False, "off", False), (False, "possible", False)], [False, False, False]),
        # the grid drops while the schedule says on: emergency at the second cycle that sees it
        ([(True, "on", False), (False, "on", False), (False, "on", False)], [False, False, True]),
        # a late restoration after a scheduled window (down one cycle into 'on') is no emergency
        ([(False, "off", False), (False, "on", False), (True, "on", False)], [False, False, False]),
        # the file says voided: emergency even with the grid up
        ([(True, "on", True)], [True]),
        # no schedule (scheduled_now None): a drop is an ordinary outage
        ([(False, None, False)], [False]),
        # an unknown grid never enters
        ([(None, "on", False)], [False]),
        # an uncovered step ('unknown') with the grid down: not outside a published window
        ([(False, "unknown", False)], [False]),
    ],
)
def test_entering(ticks: list[tuple[bool | None, str | None, bool]], expected: list[bool]) -> None:
    assert run(Emergency(), ticks) == expected


def test_leaves_after_the_grid_stable_time_counted_from_the_return() -> None:
    machine = Emergency(exit_after=timedelta(minutes=45))
    ticks: list[tuple[bool | None, str | None, bool]] = [(False, "on", False)] * 2 + [(True, "on", False)] * 5
    # entered at tick 1; up from tick 2 → 45 min after tick 2 is tick 5
    assert run(machine, ticks) == [False, True, True, True, True, False, False]
    assert machine.reason == "" and machine.since is None


def test_a_blip_restarts_the_stable_time() -> None:
    machine = Emergency(exit_after=timedelta(minutes=30))
    ticks: list[tuple[bool | None, str | None, bool]] = [
        (False, "on", False),
        (False, "on", False),
        (True, "on", False),
        (None, "on", False),
        (True, "on", False),
        (True, "on", False),
        (True, "on", False),
    ]
    assert run(machine, ticks) == [False, True, True, True, True, True, False]


def test_without_exit_time_only_the_operator_ends_it() -> None:
    machine = Emergency(exit_after=None)
    assert run(machine, [(False, "on", False)] * 2 + [(True, "on", False)] * 20)[-1] is True
    assert machine.command(False, T0) == "emergency mode left (operator)"
    assert not machine.active


def test_voided_file_holds_emergency_even_after_stable_grid() -> None:
    machine = Emergency(exit_after=timedelta(minutes=15))
    assert run(machine, [(True, "on", True)] * 6) == [True] * 6
    assert run(machine, [(True, "on", False)] * 2) == [True, False]  # cleared: stable since entering → leaves


def test_operator_entry_with_a_steady_grid_counts_stable_time_from_entry() -> None:
    machine = Emergency(exit_after=timedelta(hours=1))
    run(machine, [(True, "on", False)] * 8)  # the grid has been up for 2 h
    machine.command(True, T0 + 8 * STEP)
    assert run(machine, [(True, "on", False)] * 1) == [True]  # not left at once
    assert machine.command(True, T0) == "emergency mode already on"


def test_operator_cannot_leave_while_the_file_says_voided() -> None:
    machine = Emergency(exit_after=timedelta(minutes=15))
    run(machine, [(True, "on", True)])
    assert machine.command(False, T0).startswith("refused: the outage schedule file still says voided")
    assert machine.active
    run(machine, [(True, "on", False)])  # the file is fixed
    assert machine.command(False, T0) == "emergency mode left (operator)"
