"""Running a controller for real: cycles on interval boundaries, keep-alives, operator actions.

* Cycles run on the wall clock's interval boundaries (a 15-min site at :00, :15, :30, :45 UTC),
  waited for on the monotonic clock (:class:`~microgrid.control.timing.Schedule`): a wall clock
  that steps (NTP, a dead RTC) never stops cycles or keep-alives; the step is logged and recorded
  as a ``clock`` event, and the next cycle is back on the wall clock's boundaries. One cycle at a
  time: a cycle that overruns the next boundary is followed at once by that boundary's cycle (late,
  never lost); boundaries passed entirely are recorded as missed (a ``schedule`` event).
* A restart within an interval that already has a recorded cycle runs the cycle again at once (the
  devices must be commanded) and its record replaces the earlier cycle row of that interval; the
  earlier telemetry, setpoints and events stay, attached to it: one cycle per interval in the history.
* The keep-alive loop refreshes heartbeats every ``keepalive_s`` (default 10 s, under the generic
  profile's 60 s revert timeout), also while a solve runs: the solve is in a worker thread, so
  Modbus I/O goes on.
* Operator actions (``microgrid override``) arrive through the store: at the start of every
  cycle the pending ones are applied (or refused, with why) and marked.
* SIGINT/SIGTERM stop the loops, hand every device back to its autonomous mode and close the
  store.

APScheduler (3.x) was used here until it was found to wait for wall-clock times: a clock stepped
back 1 h stopped cycles and keep-alives for that hour (issue 12).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from microgrid.control.cycle import Controller, CycleReport, Mode
from microgrid.control.decisions import Decision, asset_limits, override_problems
from microgrid.control.recording import record
from microgrid.control.resupply import delivery_time
from microgrid.control.timing import Schedule
from microgrid.forecast.history import load_history, pv_history
from microgrid.store import EventRow, Store, StoreError

__all__ = ["Runner", "SystemTimer", "Timer", "manual_decision"]

log = logging.getLogger("microgrid.runner")

WAKE_S = 1.0
"""Longest sleep [s] between two looks at the stop signal and the due time."""


class Timer(Protocol):
    """The monotonic clock the runner waits on (a test or a drill passes a faster one)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never steps."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on that clock."""


class SystemTimer:
    """:func:`time.monotonic` and :func:`asyncio.sleep` (whose event loop clock is monotonic)."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def manual_decision(controller: Controller, payload: dict[str, Any]) -> Decision:
    """An operator's setpoints (``{"battery_kw": {...}, "generator_kw": {...}, "tier_connected": {...}}``), for
    the assets named only (a partial override: :func:`~microgrid.control.decisions.overlay`).

    Raises
    ------
    ValueError
        Every problem :func:`~microgrid.control.decisions.override_problems` finds (an unknown asset, a
        value that is not finite or outside the asset's limits, the most important tier switched off).
    """
    if problems := override_problems(payload, asset_limits(controller.site)):
        raise ValueError("; ".join(problems))
    batteries = {k: float(v) for k, v in payload.get("battery_kw", {}).items()}
    gens = {k: float(v) for k, v in payload.get("generator_kw", {}).items()}
    tiers = {k: bool(v) for k, v in payload.get("tier_connected", {}).items()}
    return Decision(  # only what the operator named: the rest keeps following the plan (decisions.overlay)
        battery_kw=batteries,
        generator_on={g: kw > 0 for g, kw in gens.items()},
        generator_kw=gens,
        tier_connected=tiers,
        source="manual",
        reason="operator setpoints",
    )


class Runner:
    """Drives a :class:`Controller` and records every cycle in a :class:`Store`."""

    def __init__(
        self,
        controller: Controller,
        store: Store | None,
        *,
        keepalive_s: float = 10.0,
        on_cycle: Callable[[CycleReport], None] | None = None,
        timer: Timer | None = None,
    ) -> None:
        self.controller, self.store, self.keepalive_s = controller, store, keepalive_s
        self.on_cycle = on_cycle
        """Called with every cycle's report once recorded (``microgrid run`` prints its JSON line)."""
        self.timer: Timer = timer or SystemTimer()
        self.last: CycleReport | None = None
        self._recorded: tuple[int, datetime] | None = None
        """(id, interval start) of the last cycle recorded before this run (a restart replaces it)."""
        self.mode_resumed = False
        """The mode came from the last cycle recorded (:meth:`resume`), not from the command line."""

    def _now(self) -> datetime:
        return self.controller.clock()

    def apply_actions(self) -> list[str]:
        """Apply pending operator actions; return what was done. Never raises: a failing store
        (locked, full) must not stop the cycle; its actions wait for the next one.

        Actions older than two intervals (at least 5 min) expire unapplied: an override queued
        while no controller ran is not replayed at the next start.
        """
        if self.store is None:
            return []
        max_age_s = max(300.0, 2 * self.controller.site.control.interval.total_seconds())
        try:
            pending = self.store.pending_actions(max_age_s=max_age_s)
        except StoreError as exc:
            return [f"cannot read operator actions: {exc}"]
        done = []
        for action in pending:
            try:
                result, ok = self._apply(action["action"], action["payload"]), True
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                result, ok = f"refused: {exc}", False
            try:
                self.store.mark_applied(action["id"], result, ok=ok)
            except StoreError as exc:
                result += f" (not marked in the store: {exc})"
            by = f" by {action['by']}" if action.get("by") else ""  # who asked: a name, or a SCADA client
            done.append(f"operator {action['action']}{by}: {result}")
        return done

    def _apply(self, action: str, payload: dict[str, Any]) -> str:
        if action == "emergency":  # planning only: allowed in dry-run too
            return self.controller.emergency.command(bool(payload["on"]), self.controller.clock())
        if action == "fuel_delivery":  # planning only, likewise
            try:
                self.controller.fuel_delivery_at = delivery_time(payload["at"])
            except ValueError as exc:
                raise ValueError(f"fuel delivery: {exc}") from None
            when = self.controller.fuel_delivery_at
            return f"next fuel delivery: {when:%Y-%m-%d %H:%M} UTC" if when else "next fuel delivery: not known"
        if self.controller.mode is Mode.DRY_RUN:
            raise ValueError("the controller runs in dry-run: restart it without --dry-run to drive devices")
        if action == "mode":
            self.controller.mode = Mode(payload["mode"])
            return f"mode set to {self.controller.mode.value}"
        if action == "manual":
            self.controller.manual = manual_decision(self.controller, payload)
            self.controller.mode = Mode.MANUAL
            return "manual setpoints in force (mode manual)"
        raise ValueError(f"unknown action {action!r}")

    def resume(self, *, keep_mode: bool) -> str | None:
        """Pick up where the last recorded cycle left off (after a crash or a restart).

        Restores the mode (unless ``keep_mode``: the operator gave one on the command line) and in
        manual mode the operator's setpoints, the heartbeat counter, emergency mode and the gensets'
        hours in state; returns what was resumed, or None.
        """
        if self.store is None:
            return None
        try:
            last = self.store.last_cycle()
        except StoreError as exc:
            log.warning("cannot resume from the store: %s", exc)
            return None
        if last is None:
            return None
        self._recorded = (int(last["id"]), last["ts"])
        summary = last["summary"]
        if not keep_mode:
            self.controller.mode, self.mode_resumed = Mode(last["mode"]), True
        if self.controller.mode is Mode.MANUAL and summary.get("manual"):
            try:
                self.controller.manual = manual_decision(self.controller, summary["manual"])
            except ValueError as exc:  # a site changed since: the rest of the override cannot be trusted
                log.warning("the operator's setpoints recorded before the restart are not resumed: %s", exc)
        self.controller.heartbeat = int(summary.get("heartbeat", 0))
        if summary.get("fuel_delivery_at"):
            self.controller.fuel_delivery_at = delivery_time(summary["fuel_delivery_at"])
        if (emergency := summary.get("emergency") or {}).get("active"):
            self.controller.emergency.command(True, last["ts"])
            self.controller.emergency.reason = str(emergency.get("reason") or "resumed")
        gens = summary.get("state", {}).get("generators", {})
        self.controller.estimator.seed(last["ts"], {g: (s["on"], s["hours_in_state"]) for g, s in gens.items()})
        rows = self._seed_history(last["ts"])
        manual = " with the operator's setpoints" if self.controller.manual is not None else ""
        return (
            f"resumed after the cycle of {last['ts']:%Y-%m-%d %H:%M} UTC in mode {self.controller.mode.value}{manual}"
            f" ({rows} cycles of measured load and PV for the forecast)"
        )

    def _seed_history(self, until: datetime) -> int:
        """The forecaster's measured history from the store (the last ``load_history_days``)."""
        assert self.store is not None
        site = self.controller.site
        since = until - timedelta(days=site.forecast.load_history_days)
        try:
            load = load_history(self.store, site, since, until + timedelta(seconds=1))
            pv = pv_history(self.store, site, since, until + timedelta(seconds=1))
            return self.controller.forecaster.seed(load, pv)
        except Exception as exc:  # a history that cannot be read only costs forecast quality
            log.warning("cannot read the measured history: %s", exc)
            return 0

    async def run_once(self) -> CycleReport:
        """Apply operator actions, run one cycle, record it."""
        notes = self.apply_actions()
        report = await self.controller.cycle()
        report.events += [("operator", note) for note in notes]
        replaces = self._replaces(report)
        started = time.perf_counter()
        if self.store is not None:
            try:
                limits = asset_limits(self.controller.site)
                dry_run = self.controller.mode is Mode.DRY_RUN
                ok = record(self.store, report, dry_run=dry_run, limits=limits, replaces=replaces)
            except Exception as exc:  # a row that cannot be encoded: the cycle has run, say so and go on
                ok = False
                log.error("cannot record the cycle: %r", exc)
            if not ok:
                log.warning("the store is failing (%s): the cycle goes on, rows wait in memory", self.store.last_error)
        report.phases_s["record"] = time.perf_counter() - started
        self.last = report
        if self.on_cycle is not None:
            self.on_cycle(report)
        return report

    def _replaces(self, report: CycleReport) -> int | None:
        """The recorded cycle of this interval from before a restart, which this one's record replaces."""
        recorded, self._recorded = self._recorded, None  # only the first cycle of a run can repeat one
        if recorded is None or recorded[1] != report.start:
            return None
        report.events.append(
            ("restart", f"restarted within the interval of {report.start:%H:%M}: its cycle re-run, the record replaced")
        )
        return recorded[0]

    async def _keepalive(self) -> None:
        try:
            await self.controller.keepalive()
        except Exception as exc:  # the next cycle sees the device's state; never stop the job
            log.warning("keep-alive failed: %s", exc)

    def _event(self, kind: str, message: str) -> None:
        if self.store is not None:
            self.store.record_events(EventRow(self._now(), kind, message))

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Cycle on interval boundaries until ``stop`` is set, then hand devices back (module docstring)."""
        interval = self.controller.site.control.interval
        schedule = Schedule(interval.total_seconds(), self._now().timestamp(), self.timer.monotonic())
        if self._recorded is None and self.store is not None:  # not resumed: still one cycle per interval
            with contextlib.suppress(StoreError):
                if (last := self.store.last_cycle()) is not None:
                    self._recorded = (int(last["id"]), last["ts"])
        self._event("start", f"controller started in mode {self.controller.mode.value}, interval {interval}")
        keepalives = asyncio.create_task(self._keep_alive_loop(stop, schedule))
        try:
            await self.run_once()  # at once, then on the boundaries
            while await self._wait(stop, schedule.due_s):
                await self.run_once()
                due = schedule.next(self._now().timestamp(), self.timer.monotonic())
                if due.missed:
                    message = f"{due.missed} interval(s) passed entirely while a cycle ran: no cycle for them"
                    log.warning(message)
                    self._event("schedule", message)
        finally:
            keepalives.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalives
            await self.controller.hand_back()
            self._event("stop", "controller stopped: devices handed back to autonomous mode")

    async def _wait(self, stop: asyncio.Event, until_s: float) -> bool:
        """Sleep until ``until_s`` [monotonic s]; False when ``stop`` was set first."""
        while not stop.is_set():
            left = until_s - self.timer.monotonic()
            if left <= 0:
                return True
            await self.timer.sleep(min(left, WAKE_S))
        return False

    async def _keep_alive_loop(self, stop: asyncio.Event, schedule: Schedule) -> None:
        """Every ``keepalive_s``: look for a wall-clock step, then keep the devices alive."""
        while await self._wait(stop, self.timer.monotonic() + self.keepalive_s):
            if (stepped := schedule.step(self._now().timestamp(), self.timer.monotonic())) is not None:
                message = f"the wall clock stepped {stepped:+.0f} s: cycles and keep-alives go on (monotonic clock)"
                log.warning(message)
                self._event("clock", message)
            await self._keepalive()
