"""A schedule's status per step, read from the slots over the steps only, is what every slot gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from microgrid.forecast.schedule import OutageSchedule, Slot

T0 = datetime(2026, 1, 15, tzinfo=UTC)
NAMES = ("on", "unknown", "possible", "off")


def _every_slot(schedule: OutageSchedule, index: pd.DatetimeIndex, step: timedelta) -> list[str]:
    """:meth:`OutageSchedule.per_step` as it was: every slot checked against every step."""
    starts = index.tz_convert(UTC).as_unit("ns").asi8
    step_ns = round(step / timedelta(microseconds=1)) * 1000
    ends = starts + step_ns
    worst, covered = np.zeros(len(starts), dtype=np.int64), np.zeros(len(starts), dtype=np.int64)
    for slot in () if schedule.voided else schedule.slots:
        end, start = (int(pd.Timestamp(t).as_unit("ns").value) for t in (slot.end, slot.start))
        overlap = np.minimum(ends, end) - np.maximum(starts, start)
        worst[overlap > 0] = np.maximum(worst[overlap > 0], NAMES.index(slot.status))
        covered += np.maximum(overlap, 0)
    gap = covered < step_ns
    worst[gap] = np.maximum(worst[gap], NAMES.index("unknown"))
    return [NAMES[r] for r in worst]


@st.composite
def schedules(draw: Any) -> OutageSchedule:
    """Up to 40 slots of 15 min to 6 h, touching or with gaps, over about four days."""
    slots, at = [], T0 + timedelta(minutes=15 * draw(st.integers(-8, 8)))
    for _ in range(draw(st.integers(0, 40))):
        at += timedelta(minutes=15 * draw(st.sampled_from([0, 0, 0, 1, 7])))
        end = at + timedelta(minutes=15 * draw(st.integers(1, 24)))
        slots.append(Slot(at, end, draw(st.sampled_from(["on", "off", "possible"]))))
        at = end
    return OutageSchedule("3.1", tuple(slots), voided=draw(st.booleans()) and draw(st.booleans()))


@settings(max_examples=120, deadline=None)
@given(
    schedule=schedules(),
    first=st.integers(-20, 400),
    steps=st.integers(0, 200),
    step_min=st.sampled_from([5, 15, 60]),
    late_min=st.sampled_from([0, 0, 7]),
)
def test_the_slots_over_the_steps_give_what_every_slot_gives(
    schedule: OutageSchedule, first: int, steps: int, step_min: int, late_min: int
) -> None:
    step = timedelta(minutes=step_min)
    start = T0 + timedelta(minutes=15 * first + late_min)
    index = pd.date_range(start, periods=steps, freq=step)
    got = schedule.per_step(index, step)
    assert got.tolist() == _every_slot(schedule, index, step)
    assert got.index.equals(index)


def test_an_unsorted_index_still_sees_every_slot_over_it() -> None:
    slots = (Slot(T0, T0 + timedelta(hours=1), "off"), Slot(T0 + timedelta(hours=5), T0 + timedelta(hours=6), "on"))
    schedule = OutageSchedule("3.1", slots)
    index = pd.DatetimeIndex([T0 + timedelta(hours=5), T0, T0 + timedelta(hours=3)])
    assert schedule.per_step(index, timedelta(hours=1)).tolist() == ["on", "off", "unknown"]
