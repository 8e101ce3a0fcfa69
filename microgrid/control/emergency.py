"""Emergency mode: the outage schedule no longer holds, plan for no grid at all.

Kharkiv's published outage schedules are voided without warning during emergency cuts. Then
the controller assumes **no grid for the whole horizon** and dispatches for maximum autonomy
(critical tiers first, then essential, then fuel, then cost: the lexicographic solve of
``docs/dispatch-extensions.md``). Entered by a cut outside the schedule, it plans that cut to last
the schedule's ``unannounced_cut_h`` instead (4 h unless the site says ``null``), the rest of the
horizon a ``possible`` outage whose shadow carries the critical tier (``Outlook.with_cut``).

Entering (any of):

* ``operator``: ``microgrid override --emergency on`` (an operator action through the store);
* ``schedule``: the schedule file says ``voided``;
* ``grid``: the grid meter sees the grid **down** while the schedule says ``on``, in two
  consecutive cycles (a cut outside any scheduled or possible window; one cycle is not enough,
  since utilities often restore a few minutes after a scheduled window ends, and in that cycle
  the meter already makes the plan treat the grid as down). Only with a schedule configured:
  without one a drop is an ordinary outage.

Leaving (any of), never while the schedule file still says voided (an operator's ``off`` is
then refused, with why):

* ``operator``: ``microgrid override --emergency off``;
* ``grid stable``: the grid has been seen up continuously for the schedule's
  ``emergency_exit_after`` (absent: only the operator ends it).

An unknown grid state (meter not read) neither enters nor counts toward a stable grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["OUTSIDE_SCHEDULE", "Emergency"]

OUTSIDE_SCHEDULE = "the grid dropped outside any scheduled or possible outage window"


@dataclass
class Emergency:
    """The emergency-mode state machine (module docstring); call :meth:`update` once per cycle."""

    exit_after: timedelta | None = None
    """Grid-stable time that ends emergency mode by itself; None = only explicitly."""
    active: bool = False
    since: datetime | None = None
    reason: str = ""
    grid_up_since: datetime | None = None
    voided: bool = False
    """The schedule file's flag at the last update."""
    down_in_on: int = 0
    """Consecutive cycles with the grid down while the schedule says on."""

    @property
    def cut_outside_schedule(self) -> bool:
        """Entered because the grid dropped while the schedule said ``on`` (the schedule still holds
        beyond the cut: the long outlook keeps it), not because it was voided or by the operator."""
        return self.active and self.reason == OUTSIDE_SCHEDULE

    def command(self, on: bool, now: datetime) -> str:
        """An operator's explicit ``on`` / ``off``; returns what happened."""
        if on and not self.active:
            self._enter(now, "operator command")
            return "emergency mode entered (operator)"
        if not on and self.active and self.voided:
            return "refused: the outage schedule file still says voided (fix the file first)"
        if not on and self.active:
            self._leave()
            return "emergency mode left (operator)"
        return f"emergency mode already {'on' if on else 'off'}"

    def update(self, now: datetime, *, grid_up: bool | None, scheduled_now: str | None, voided: bool) -> str | None:
        """Advance the state for a cycle at ``now``; return an event message when the mode changes.

        ``scheduled_now`` is the schedule's status for the current step (``on`` / ``off`` /
        ``possible`` / ``unknown``), None without a schedule; ``voided`` is the schedule
        file's flag.
        """
        self.grid_up_since = (self.grid_up_since or now) if grid_up else None
        self.voided = voided
        self.down_in_on = self.down_in_on + 1 if grid_up is False and scheduled_now == "on" else 0
        if not self.active:
            if voided:
                return self._enter(now, "the outage schedule is voided")
            if self.down_in_on >= 2:
                return self._enter(now, OUTSIDE_SCHEDULE)
            return None
        if voided or self.exit_after is None or self.grid_up_since is None:
            return None
        if now - max(self.grid_up_since, self.since or now) >= self.exit_after:
            self._leave()
            return f"emergency mode left: the grid has been up for {self.exit_after}"
        return None

    def _enter(self, now: datetime, reason: str) -> str:
        self.active, self.since, self.reason = True, now, reason
        return f"emergency mode entered: {reason}"

    def _leave(self) -> None:
        self.active, self.since, self.reason = False, None, ""

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, for the cycle summary and ``microgrid status``."""
        return {"active": self.active, "since": self.since.isoformat() if self.since else None, "reason": self.reason}
