"""Running a controller for real: APScheduler on interval boundaries, keep-alives, operator actions.

* The cycle job fires on wall-clock boundaries of the site's interval (a 15-min site cycles at
  :00, :15, :30, :45 UTC), with ``max_instances=1`` and ``coalesce=True``: a slow cycle makes
  the next tick be skipped with a warning, never run twice at once; a tick missed by more than
  half an interval is dropped (``misfire_grace_time``).
* The keep-alive job refreshes heartbeats every ``keepalive_s`` (default 10 s, under the
  generic profile's 60 s revert timeout), also while a solve runs: the solve is in a worker
  thread, so Modbus I/O goes on.
* Operator actions (``microgrid override``) arrive through the store: at the start of every
  cycle the pending ones are applied (or refused, with why) and marked.
* SIGINT/SIGTERM stop the jobs, hand every device back to its autonomous mode and close the
  store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from microgrid.control.cycle import Controller, CycleReport, Mode
from microgrid.control.decisions import Decision, asset_limits, override_problems
from microgrid.control.recording import record
from microgrid.forecast.history import load_history, pv_history
from microgrid.store import EventRow, Store, StoreError

__all__ = ["Runner", "manual_decision"]

log = logging.getLogger("microgrid.runner")
logging.getLogger("apscheduler").setLevel(logging.WARNING)


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
    ) -> None:
        self.controller, self.store, self.keepalive_s = controller, store, keepalive_s
        self.on_cycle = on_cycle
        """Called with every cycle's report once recorded (``microgrid run`` prints its JSON line)."""
        self.last: CycleReport | None = None

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
            done.append(f"operator {action['action']}: {result}")
        return done

    def _apply(self, action: str, payload: dict[str, Any]) -> str:
        if action == "emergency":  # planning only: allowed in dry-run too
            return self.controller.emergency.command(bool(payload["on"]), self.controller.clock())
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
        summary = last["summary"]
        if not keep_mode:
            self.controller.mode = Mode(last["mode"])
        if self.controller.mode is Mode.MANUAL and summary.get("manual"):
            try:
                self.controller.manual = manual_decision(self.controller, summary["manual"])
            except ValueError as exc:  # a site changed since: the rest of the override cannot be trusted
                log.warning("the operator's setpoints recorded before the restart are not resumed: %s", exc)
        self.controller.heartbeat = int(summary.get("heartbeat", 0))
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
        started = time.perf_counter()
        if self.store is not None:
            try:
                limits = asset_limits(self.controller.site)
                ok = record(self.store, report, dry_run=self.controller.mode is Mode.DRY_RUN, limits=limits)
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

    async def _keepalive(self) -> None:
        try:
            await self.controller.keepalive()
        except Exception as exc:  # the next cycle sees the device's state; never stop the job
            log.warning("keep-alive failed: %s", exc)

    def _event(self, kind: str, message: str) -> None:
        if self.store is not None:
            self.store.record_events(EventRow(self._now(), kind, message))

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Cycle on interval boundaries until ``stop`` is set, then hand devices back."""
        interval = self.controller.site.control.interval
        scheduler = AsyncIOScheduler(timezone="UTC")
        now = datetime.now(UTC)
        first = self.controller.interval_start(now) + interval
        scheduler.add_job(
            self.run_once,
            IntervalTrigger(seconds=interval.total_seconds(), start_date=first, timezone="UTC"),
            id="cycle",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(interval.total_seconds() / 2)),
        )
        scheduler.add_job(
            self._keepalive,
            IntervalTrigger(seconds=self.keepalive_s, timezone="UTC"),
            id="keepalive",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(self.keepalive_s)),
        )
        self._event("start", f"controller started in mode {self.controller.mode.value}, interval {interval}")
        try:
            await self.run_once()  # at once, then on the boundaries
            scheduler.start()
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            await self.controller.hand_back()
            self._event("stop", "controller stopped: devices handed back to autonomous mode")

    @staticmethod
    def next_boundary(now: datetime, interval: timedelta) -> datetime:
        """The first interval boundary after ``now`` (UTC)."""
        step = interval.total_seconds()
        return datetime.fromtimestamp((now.timestamp() // step + 1) * step, UTC)
