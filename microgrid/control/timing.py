"""When to cycle: interval boundaries of the wall clock, kept on a monotonic clock that never steps.

A site cycles on the wall clock's interval boundaries (a 15-min site at :00, :15, :30, :45 UTC):
forecasts, prices and outage schedules are aligned to them. But wall clocks step (an NTP
correction, a dead RTC set right at boot), and a scheduler that waits for a wall-clock time stops
for as long as the clock stepped back. :class:`Schedule` therefore counts the wait on the
monotonic clock and only uses the wall clock to find the next boundary:

* a cycle is due :data:`LATE_S` after its wall-clock boundary, so that a slewing clock (up to
  0.5 ms/s, 0.45 s per 15 min) still reads past the boundary when the cycle starts and stamps it
  with that interval;
* after a cycle, the next is due at ``min(previous due + interval, the wall clock's next boundary)``
  [monotonic s], where the next boundary is the first after the cycle's end less ``LATE_S`` plus
  :data:`SLACK_S` (so a cycle that ended a hair before its own boundary on a slewing clock is not
  run twice): never more than one interval after the previous one whatever the wall clock does,
  and back on the wall clock's boundaries at the first cycle after a step;
* a cycle that ran past its successor's boundary is followed at once by that boundary's cycle
  (late, never lost); boundaries passed entirely while one cycle ran are counted as missed;
* :meth:`Schedule.step` compares the wall clock's progress with the monotonic clock's since the
  last look: a difference beyond :data:`STEP_TOLERANCE_S` is a step (NTP slews at most 0.5 ms/s,
  so 2 s between two looks a few seconds apart is never a slew).

Pure: times go in as numbers, nothing here reads a clock or sleeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LATE_S", "SLACK_S", "STEP_TOLERANCE_S", "Due", "Schedule"]

LATE_S = 1.0
"""A cycle is due this long [s] after its wall-clock boundary."""

SLACK_S = 2.0
"""A cycle that ends less than this [s] before its own boundary + :data:`LATE_S` was that boundary's cycle."""

STEP_TOLERANCE_S = 2.0
"""A wall clock that moved more than this [s] away from the monotonic clock since the last look stepped."""


@dataclass(frozen=True)
class Due:
    """The next cycle: when [monotonic s], and how many boundaries were passed entirely without a cycle."""

    at_s: float
    missed: int = 0


@dataclass
class Schedule:
    """Interval boundaries on a monotonic clock (see the module docstring).

    Parameters
    ----------
    interval_s
        The site's control interval [s].
    wall_s, mono_s
        The wall clock (POSIX timestamp [s]) and the monotonic clock [s] when the schedule starts.
    """

    interval_s: float
    wall_s: float
    mono_s: float

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError(f"the interval must be positive, not {self.interval_s} s")
        self._wall_s, self._mono_s = self.wall_s, self.mono_s
        self.due_s = self.mono_s + self.until_boundary(self.wall_s, slack_s=LATE_S)
        """The next cycle's time [monotonic s]: the first boundary after the start (+ :data:`LATE_S`; a run
        started at once before it has the interval before)."""

    def until_boundary(self, wall_s: float, *, slack_s: float = 0.0) -> float:
        """Seconds from ``wall_s`` until a cycle is due: the first boundary after ``wall_s - LATE_S + slack_s``,
        plus :data:`LATE_S`."""
        after = wall_s - LATE_S + slack_s
        return (math.floor(after / self.interval_s) + 1) * self.interval_s + LATE_S - wall_s

    def step(self, wall_s: float, mono_s: float) -> float | None:
        """How far [s] the wall clock stepped since the last look (positive: forward), or None.

        Every look becomes the reference of the next, so a slow drift never adds up to a step.
        """
        stepped = (wall_s - self._wall_s) - (mono_s - self._mono_s)
        self._wall_s, self._mono_s = wall_s, mono_s
        return stepped if abs(stepped) > STEP_TOLERANCE_S else None

    def next(self, wall_s: float, mono_s: float) -> Due:
        """After a cycle (ending at ``wall_s`` / ``mono_s``): the next one, which becomes :attr:`due_s`.

        Due at ``mono_s`` means "at once": the cycle just run overran the next boundary.
        """
        following = self.due_s + self.interval_s
        missed = max(0, math.floor((mono_s - following) / self.interval_s))
        following += missed * self.interval_s  # the latest boundary passed: run for it now
        self.due_s = max(mono_s, min(following, mono_s + self.until_boundary(wall_s, slack_s=SLACK_S)))
        return Due(self.due_s, missed)
