"""Gensets that fail to start or trip: seen within a keep-alive, replaced, left out of plans for a while.

A genset the controller asked to run (the decision turned it on while it was stopped) must be running
within :data:`START_ALLOWANCE_S` (an emergency set is on load within 10 s: NFPA 110 type 10; one that
synchronises with a battery inverter within 30-60 s). One that is not (it cranks and never fires,
its controller is in fault, ``engine_state`` 4) *failed to start*; one that stops while it carries
load (wanted on and seen running) has *tripped*. Either way:

* it is left out of every plan (``DispatchInputs.generators_out``) and of the rules for
  :data:`RETRY_AFTER_S`, then tried again (a fault cleared on site, or a transient one);
* it is an alarm: health ``fault`` with why (``Estimate.faults``), a ``device`` event;
* the keep-alive that sees it asks the other gensets that are stopped and not failed to run at once
  (:meth:`StartWatch.substitutes`), without waiting for the next cycle, which then plans without it.

A genset seen running is cleared at once. Pure bookkeeping: times go in, nothing is read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from microgrid.control.estimate import Estimate
from microgrid.point_names import ENGINE_STATE
from microgrid.site import Site
from microgrid.telemetry.devices import Measurement
from microgrid.telemetry.registers import Quality

__all__ = ["RETRY_AFTER_S", "START_ALLOWANCE_S", "StartWatch", "engine_states", "mark_out"]

START_ALLOWANCE_S = 90.0
"""A genset asked to run is running within this long [s], or it failed to start."""

RETRY_AFTER_S = 3600.0
"""A genset that failed to start is left out of plans for this long [s], then tried again."""

RUNNING, FAULT = 2, 4
"""``engine_state`` values of the generic genset profile (0 stopped, 1 starting, 2 running, 3 stopping, 4 fault)."""


@dataclass
class StartWatch:
    """What the controller asked of its gensets and which of them failed to start (module docstring)."""

    asked: dict[str, datetime] = field(default_factory=dict)
    """Genset id → when the controller asked it to start (cleared once it runs or is no longer asked)."""
    failed: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    """Genset id → (when it was found failed, why)."""
    carrying: set[str] = field(default_factory=set)
    """Gensets wanted on and seen running: one that stops while still wanted has tripped."""

    def commanded(self, wanted_on: dict[str, bool], running: dict[str, bool], now: datetime) -> None:
        """The gensets a decision written at ``now`` wants on (``wanted_on``) and those seen running."""
        for gen, on in wanted_on.items():
            if not on:
                self.asked.pop(gen, None)
                self.carrying.discard(gen)
            elif running.get(gen, False):
                self.asked.pop(gen, None)
                self.carrying.add(gen)
            else:
                self.asked.setdefault(gen, now)

    def watched(self) -> set[str]:
        """The gensets a keep-alive re-reads: those asked to start and those carrying load."""
        return set(self.asked) | self.carrying

    def observe(self, engine_state: dict[str, int], now: datetime) -> list[str]:
        """The gensets' ``engine_state`` read at ``now``; the messages of those newly found failed."""
        news = []
        for gen, state in engine_state.items():
            if state == RUNNING:
                if gen in self.asked:
                    self.carrying.add(gen)
                self.asked.pop(gen, None)
                self.failed.pop(gen, None)
                continue
            since = self.asked.get(gen)
            late = since is not None and (now - since).total_seconds() > START_ALLOWANCE_S
            tripped = gen in self.carrying
            if (late or tripped or state == FAULT) and gen not in self.failed:
                self.carrying.discard(gen)
                why = f"genset {gen}: its controller reports a fault"
                if tripped:
                    why = f"genset {gen}: stopped while carrying load (tripped)"
                elif late and since is not None:
                    minutes = (now - since).total_seconds() / 60
                    why = f"genset {gen}: asked to run at {since:%H:%M:%S}, not running {minutes:.0f} min later"
                until = now + timedelta(seconds=RETRY_AFTER_S)
                self.failed[gen] = (now, f"{why}; left out of plans until {until:%H:%M}")
                self.asked.pop(gen, None)
                news.append(self.failed[gen][1])
        return news

    def out(self, now: datetime) -> dict[str, str]:
        """Genset id → why, for those left out of plans now (a failure older than :data:`RETRY_AFTER_S` is
        forgotten)."""
        for gen, (when, _) in list(self.failed.items()):
            if (now - when).total_seconds() > RETRY_AFTER_S:
                del self.failed[gen]
        return {gen: why for gen, (_, why) in self.failed.items()}

    def substitutes(self, site: Site, wanted_on: dict[str, bool], now: datetime) -> dict[str, bool]:
        """``wanted_on`` with the failed gensets off and, when one of them was wanted on, every other genset
        that is not failed on: what a keep-alive asks at once (the next cycle plans without the failed ones)."""
        out = self.out(now)
        lost = any(on and gen in out for gen, on in wanted_on.items())
        return {g.id: g.id not in out and (wanted_on.get(g.id, False) or lost) for g in site.generators}


def engine_states(site: Site, readings: dict[str, dict[str, Measurement]]) -> dict[str, int]:
    """Genset id → ``engine_state`` read fresh (good quality) by its controller in ``readings``."""
    out = {}
    for binding in site.devices:
        m = readings.get(binding.id, {}).get(ENGINE_STATE)
        gen = binding.asset in {g.id for g in site.generators}
        if gen and m is not None and m.quality is Quality.OK and isinstance(m.value, int | float):
            out[str(binding.asset)] = int(m.value)
    return out


def mark_out(site: Site, est: Estimate, out: dict[str, str]) -> None:
    """Gensets left out (``out``: genset id → why) in ``est``: ``generators_out``, and health ``fault`` with why."""
    devices = {b.asset: b.id for b in site.devices if b.asset}
    for gen, why in out.items():
        est.generators_out[gen] = why
        if (device := devices.get(gen)) is not None and est.health.get(device, "lost") != "lost":
            est.faults[device] = why
            est.health[device] = "fault"
