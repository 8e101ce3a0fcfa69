"""THE CYCLE: read → estimate → forecast → solve → setpoints → check → write → record.

Orchestration only: the maths is in :mod:`microgrid.dispatch`, the register work in
:mod:`microgrid.telemetry`. Every phase is timed; one structured log line per cycle says
what happened. A failure in any phase falls back inside the same interval, with the reason
recorded (the **fallback chain**):

1. ``plan``: the optimizer's plan for this interval (optimal, or time-limited but feasible);
2. ``previous_plan``: the previous plan, shifted to this interval, while it still covers it,
   is younger than half the horizon and the state seen now still matches it (grid, gensets' run
   states, every battery's SOC within ``SOC_MATCH`` of the plan's: :func:`state_matches`);
3. ``rules``: the rule-based dispatch of :mod:`microgrid.control.decisions`;
4. ``autonomous``: nothing is written; devices revert to their own behaviour after their
   keep-alive timeout.

The solve runs in a worker thread with a wall-clock budget guarded here (HiGHS's own time
limit does not always hold); a solve still running at the next cycle is not started again.

Modes: ``auto`` (the chain above), ``manual`` (the chain above, with the assets the operator named
set to the operator's setpoints: a partial override changes only what it names; all through the
safety layer), ``safe`` (rules only), ``dry-run`` (reads and plans, writes nothing).

With an outage schedule configured, ``possible`` windows are planned with the contingency
extension (the protected tiers can be carried through each window if the outage happens) and
**emergency mode** (:mod:`microgrid.control.emergency`) plans for no grid at all with the
lexicographic solve (``docs/dispatch-extensions.md``), or, entered by a cut outside the schedule,
for a cut of ``grid.schedule.unannounced_cut_h`` (4 h by default) and a possible outage after it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from microgrid.autonomy import Autonomy
from microgrid.control.decisions import (
    Decision,
    from_plan_row,
    live_limits_kw,
    manual_payload,
    overlay,
    rules,
    state_matches,
)
from microgrid.control.emergency import Emergency
from microgrid.control.estimate import Estimate, Estimator, Snapshot
from microgrid.control.forecast import Forecaster, ForecastSource, Outlook
from microgrid.control.locks import UNLOCKED, fit_to_fuel, release_locks_with_grid, without_locks
from microgrid.control.obedience import WriteWatch
from microgrid.control.points import hand_back_points, heartbeat_point, to_points
from microgrid.control.resupply import delivery_step, long_plan_steps, reserve_hours
from microgrid.control.safety import SafetyConfig, check
from microgrid.control.starts import StartWatch, engine_states, mark_out
from microgrid.dispatch import DispatchInputs, ModelCache, optimize, optimize_emergency
from microgrid.dispatch.feeders import demand_bounds_kw
from microgrid.dispatch.inputs import FeederInputs, ReserveInputs, TerminalValues
from microgrid.dispatch.outlook import OutlookValues, fuel_reserve, solve_outlook
from microgrid.errors import InfeasibleError
from microgrid.plans import Plan
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.telemetry.devices import WriteReport
from microgrid.telemetry.limits import site_limits
from microgrid.telemetry.registers import Value
from microgrid.telemetry.wiring import SiteDevices

__all__ = ["Controller", "CycleReport", "Mode"]

RECHECK_HOLD_MIN_S = 60.0
"""A keep-alive's re-check limits a battery's energy over what is left of the interval, but at least this
long [s] (a setpoint holds until the next re-check or cycle; near the interval's end the limit would grow
without bound)."""

log = logging.getLogger("microgrid.cycle")


class Mode(enum.StrEnum):
    """Operating modes of the controller."""

    AUTO = "auto"
    MANUAL = "manual"
    SAFE = "safe"
    DRY_RUN = "dry-run"


@dataclass
class CycleReport:
    """Everything one cycle saw, decided and did."""

    start: datetime
    mode: Mode
    source: str = "autonomous"
    reason: str = ""
    phases_s: dict[str, float] = field(default_factory=dict)
    snapshot: Snapshot = field(default_factory=dict)
    estimate: Estimate | None = None
    plan: Plan | None = None
    decision: Decision | None = None
    notes: list[str] = field(default_factory=list)
    writes: dict[str, WriteReport] = field(default_factory=dict)
    planned_writes: dict[str, dict[str, Value]] = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)
    heartbeat: int = 0
    autonomy: Autonomy | None = None
    outlook: Outlook | None = None
    emergency: dict[str, object] = field(default_factory=dict)
    terminal: TerminalValues | None = None
    """The long outlook's values of fuel and stored energy the plan used (``control.outlook``)."""
    fuel_delivery_at: datetime | None = None
    """The next fuel delivery the controller was told of (recorded and resumed after a restart)."""
    manual: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The operator's setpoints in force (manual mode), as ``microgrid override`` queues them (recorded and
    resumed after a restart)."""

    def log_line(self) -> str:
        """The cycle as one JSON line."""
        plan = self.plan
        return json.dumps(
            {
                "cycle": self.start.isoformat(),
                "mode": self.mode.value,
                "source": self.source,
                "reason": self.reason,
                "status": plan.status.value if plan else None,
                "gap": round(plan.mip_gap, 6) if plan else None,
                "phases_ms": {k: round(v * 1000, 1) for k, v in self.phases_s.items()},
                "refused": sum(len(r.refused) for r in self.writes.values()),
                "unknown": sum(len(r.unknown) for r in self.writes.values()),
                "mismatch": sum(len(r.mismatches) for r in self.writes.values()),
                "emergency": bool(self.emergency.get("active")),
                "notes": len(self.notes),
            }
        )


class _Timer:
    def __init__(self, report: CycleReport, phase: str) -> None:
        self.report, self.phase = report, phase

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.report.phases_s[self.phase] = time.perf_counter() - self.start


class Controller:
    """One site's controller: call :meth:`cycle` once per interval, :meth:`keepalive` in between.

    Parameters
    ----------
    reference
        The site's reference day (loads, PV, outage pattern, prices) the forecast rolls forward.
    clock
        UTC now (a simulated clock in the demo and tests); default: the system's wall clock.
    monotonic
        Seconds on a clock that never steps, for how fresh the last cycle is (the keep-alives stop
        1.5 intervals after it); default: :func:`time.monotonic` with the system's wall clock, the
        given ``clock``'s timestamps with a simulated one (which does not step).
    forecaster
        Builds each cycle's outlook and learns from the measurements (default: a
        :class:`~microgrid.control.forecast.Forecaster` of ``reference`` and the site's schedule).
    optimizer
        Replaces the solve (tests, solver studies); default: the spec's model with the controller's
        extensions, or the emergency-mode solve while in emergency mode.
    threads
        HiGHS threads per solve (None: HiGHS's default).
    solve_budget_s
        Wall-clock budget of the solve phase [s]; default: the site's ``time_limit_s`` + 5 s,
        at most half the interval.
    """

    def __init__(
        self,
        site: Site,
        devices: SiteDevices,
        reference: Profiles,
        *,
        mode: Mode = Mode.AUTO,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] | None = None,
        solve_budget_s: float | None = None,
        safety: SafetyConfig | None = None,
        optimizer: Callable[[DispatchInputs], Plan] | None = None,
        forecaster: ForecastSource | None = None,
        threads: int | None = None,
    ) -> None:
        self.site, self.devices, self.reference = site, devices, reference
        self.mode, self.safety = mode, safety or SafetyConfig()
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.monotonic: Callable[[], float] = monotonic or (time.monotonic if clock is None else self._clock_seconds)
        self.optimizer = optimizer or self._optimize
        self.threads = threads
        interval_s = site.control.interval.total_seconds()
        self.solve_budget_s = solve_budget_s or min(site.control.time_limit_s + 5.0, interval_s / 2)
        self.manual: Decision | None = None
        self.heartbeat = 0
        writable = {d: frozenset(p.name for p in dev.map.points if p.writable) for d, dev in devices.devices.items()}
        self.estimator = Estimator(site, echoes=writable)
        self.starts = StartWatch()
        """Gensets asked to start and those that failed to (:mod:`microgrid.control.starts`)."""
        self.write_watch = WriteWatch()
        """Devices whose read-backs keep differing from the writes (:mod:`microgrid.control.obedience`)."""
        self.last_plan: Plan | None = None
        self.last_decision: Decision | None = None
        self.last_points: dict[str, dict[str, Value]] = {}
        self.last_cycle_at: datetime | None = None
        self._last_cycle_s: float | None = None
        """:attr:`monotonic` at the end of the last cycle (how fresh it is, whatever the wall clock does)."""
        self._solving: asyncio.Future[Plan] | None = None
        self._limits = {b.id: site_limits(site, b, devices.devices[b.id].map) for b in site.devices}
        self.forecaster: ForecastSource = forecaster or Forecaster(site, reference)
        self._long: tuple[datetime, tuple[object, ...], TerminalValues] | None = None
        """(when, what it was solved for, values) of the last long outlook."""
        self.models = ModelCache()
        """The built and compiled models of the last solves, refreshed with each interval's numbers."""
        self._big_m: dict[str, float] = {}
        self.long_models = ModelCache(size=2)
        """The long outlook's LP, kept likewise."""
        schedule = site.grid.schedule if site.grid is not None else None
        self.emergency = Emergency(exit_after=schedule.emergency_exit_after if schedule else None)
        self.fuel_delivery_at: datetime | None = None
        """The next fuel delivery when known (UTC): the long outlook rations only until then
        (:mod:`microgrid.control.resupply`)."""

    def _optimize(self, inputs: DispatchInputs) -> Plan:
        """The spec's model, warm-started from the previous plan's binaries (better incumbents when the
        time limit binds; same optimum otherwise: benchmarks in the closing note of issue 4), on the
        model kept from the last interval with the new numbers patched in; in emergency mode the
        lexicographic maximum-autonomy solve."""
        if self._maximum_autonomy():
            return optimize_emergency(inputs, threads=self.threads)
        return optimize(inputs, threads=self.threads, warm_from=self.last_plan, cache=self.models)

    def _planned_cut_steps(self) -> int | None:
        """Steps a cut outside the schedule is planned to last in emergency mode (the schedule's
        ``unannounced_cut_h``); None when emergency mode plans for no grid at all, or is off."""
        schedule = self.site.grid.schedule if self.site.grid is not None else None
        if not self.emergency.cut_outside_schedule or schedule is None or schedule.unannounced_cut_h is None:
            return None
        return max(1, math.ceil(timedelta(hours=schedule.unannounced_cut_h) / self.site.control.interval))

    def _maximum_autonomy(self) -> bool:
        """Emergency mode's lexicographic solve (no grid at all), not a cut of a planned length."""
        return self.emergency.active and self._planned_cut_steps() is None

    def interval_start(self, now: datetime) -> datetime:
        """``now`` floored to the interval boundary (UTC)."""
        step = self.site.control.interval.total_seconds()
        return datetime.fromtimestamp(now.timestamp() // step * step, UTC)

    # -- the cycle -----------------------------------------------------------------------------

    async def cycle(self) -> CycleReport:
        """Run one control cycle; never raises for a failing device, solver or phase."""
        start = self.interval_start(self.clock())
        report = CycleReport(start=start, mode=self.mode)
        with _Timer(report, "read"):
            report.snapshot = await self._read(report)
        with _Timer(report, "estimate"):
            report.estimate = self._estimate(report, start)
        forecast = None
        with _Timer(report, "forecast"):
            forecast = self._forecast(report, start)
        with _Timer(report, "solve"):
            await self._solve(report, forecast)
        with _Timer(report, "setpoints"):
            decision = self._decide(report, forecast)
        with _Timer(report, "check"):
            self._check(report, decision)
        with _Timer(report, "write"):
            await self._write(report)
        log.info(report.log_line())
        self.last_cycle_at, self._last_cycle_s = self.clock(), self.monotonic()
        return report

    def _clock_seconds(self) -> float:
        return self.clock().timestamp()

    async def settle(self) -> None:
        """Wait for a solve left running by a cycle whose budget ran out (a simulation keeps runs
        deterministic this way; on a site the next cycle simply does not start another)."""
        if self._solving is not None and not self._solving.done():
            await asyncio.wait({self._solving})

    async def _read(self, report: CycleReport) -> Snapshot:
        try:
            return await self.devices.read_all()
        except Exception as exc:  # a failed phase falls back, it never stops the cycle
            report.events.append(("fallback", f"read failed: {exc!r}"))
            return {}

    def _estimate(self, report: CycleReport, start: datetime) -> Estimate | None:
        try:
            est = self.estimator(report.snapshot, start)
        except Exception as exc:
            report.events.append(("fallback", f"estimate failed: {exc!r}"))
            return None
        now = self.clock()
        report.events += [
            ("device", why) for why in self.starts.observe(engine_states(self.site, report.snapshot), now)
        ]
        mark_out(self.site, est, self.starts.out(now))
        self.forecaster.observe(est)
        return est

    def _forecast(self, report: CycleReport, start: datetime) -> Profiles | None:
        est = report.estimate
        report.emergency = self.emergency.as_dict()  # recorded even when this phase fails
        report.fuel_delivery_at = self.fuel_delivery_at
        try:
            outlook = self.forecaster(start, est)
            report.events += [("forecast", note) for note in outlook.notes]
            changed = self.emergency.update(
                start,
                grid_up=est.grid_up if est else None,
                scheduled_now=outlook.scheduled_now,
                voided=outlook.voided,
            )
            if changed:
                report.events.append(("emergency", changed))
            cut = self._planned_cut_steps()
            if cut is not None:
                # the grid seen back is the cut's end: the schedule again, with every step it is up a possible
                # outage (emergency mode holds until the grid has stayed up, the shadow covers its going again)
                outlook = outlook.with_cut(0 if est is not None and est.grid_up else cut)
            elif self.emergency.active:
                outlook = outlook.without_grid(up_now=bool(est and est.grid_up))
        except Exception as exc:
            report.events.append(("fallback", f"forecast failed: {exc!r}"))
            return None
        report.outlook, report.emergency = outlook, self.emergency.as_dict()
        self._autonomy(report, outlook.profiles)
        return outlook.profiles

    def _autonomy(self, report: CycleReport, forecast: Profiles) -> None:
        """The autonomy figure over ``forecast`` from the state estimated now (when it is complete)."""
        est = report.estimate
        if est is not None and not est.missing(self.site):
            try:
                report.autonomy = Autonomy.of(self.site, forecast, est.site_state())
            except Exception as exc:  # the figure is information, never a reason to stop
                report.events.append(("autonomy", f"autonomy figure failed: {exc!r}"))

    async def _solve(self, report: CycleReport, forecast: Profiles | None) -> None:
        est = report.estimate
        if self.mode is Mode.SAFE or est is None or forecast is None:
            return
        if missing := est.missing(self.site):
            report.reason = "state incomplete: " + "; ".join(missing)
            return
        if self._solving is not None and not self._solving.done():
            report.reason = "the previous solve is still running"
            return
        possible = report.outlook.possible_outage if report.outlook is not None else None
        report.terminal = await self._terminal(report, est)
        site, state, fitted = fit_to_fuel(self.site, est.site_state(), forecast.step_h)
        if est.grid_up and not self.emergency.active:
            state, released = release_locks_with_grid(site, state)
            fitted += released
        report.events += [("dispatch", note) for note in fitted]
        delivery = delivery_step(report.start, self.site.control.interval, forecast.steps, self.fuel_delivery_at)
        if delivery is not None:
            report.events.append(
                ("dispatch", f"fuel delivery within the plan: the stocks bound its first {delivery} steps only")
            )
        inputs = DispatchInputs(
            site,
            forecast,
            state,
            self.site.control.mip_gap,
            self.site.control.time_limit_s,
            possible_outage=possible if possible is not None and possible.any() else None,
            reserve=self._reserve(),
            feeders=self._feeders(forecast, est),
            terminal=report.terminal,
            power_now_kw={b.id: live_limits_kw(b, est) for b in self.site.batteries},
            generators_out=frozenset(est.generators_out),
            fuel_delivery_step=delivery,
        )
        deadline = time.monotonic() + self.solve_budget_s
        plan, failure = await self._plan_within(report, inputs, deadline)
        if isinstance(failure, InfeasibleError):
            report.events.append(("dispatch", f"{report.reason}: planning again without locks ({UNLOCKED})"))
            plan, _ = await self._plan_within(report, without_locks(inputs), deadline)
        if plan is not None:
            report.plan = self.last_plan = plan

    async def _plan_within(
        self, report: CycleReport, inputs: DispatchInputs, deadline: float
    ) -> tuple[Plan | None, Exception | None]:
        """The optimizer's plan of ``inputs`` if it comes by ``deadline`` (:func:`time.monotonic`), else None
        with ``report.reason`` saying why (and the optimizer's exception, if it raised)."""
        self._solving = asyncio.ensure_future(asyncio.to_thread(self.optimizer, inputs))
        done, _ = await asyncio.wait({self._solving}, timeout=max(0.0, deadline - time.monotonic()))
        if not done:
            report.reason = f"solve exceeded its wall-clock budget of {self.solve_budget_s:g} s"
            return None, None
        try:
            plan = self._solving.result()
        except Exception as exc:  # infeasible, solver error, anything: fall back
            report.reason = f"no plan: {exc}"
            return None, exc
        report.reason = ""
        return plan, None

    async def _terminal(self, report: CycleReport, est: Estimate) -> TerminalValues | None:
        """The long outlook's values (``control.outlook``), re-solved every ``every``, when the grid seen,
        the schedule or emergency mode changes; None when it is off or failed (the site's terminal values)."""
        cfg = self.site.control.outlook
        if cfg is None:
            return None
        schedule = report.outlook.scheduled_now if report.outlook is not None else None
        key = (est.grid_up, self.emergency.active, schedule, self.fuel_delivery_at)
        kept = self._long
        if kept is not None and report.start - kept[0] < cfg.every and kept[1] == key:
            return kept[2]
        steps = long_plan_steps(cfg.days, cfg.step, report.start, self.fuel_delivery_at)
        if steps * cfg.step <= self.site.control.horizon:
            return None  # the delivery comes within the fine plan: nothing to ration beyond it
        try:
            values = await asyncio.to_thread(self._solve_outlook, report.start, est, steps)
        except Exception as exc:  # the fine plan then values what it leaves as the site file says
            report.events.append(("outlook", f"long outlook failed: {exc!r}"))
            self._long = None
            return None
        self._long = (report.start, key, values.terminal)
        return values.terminal

    def _solve_outlook(self, start: datetime, est: Estimate, steps: int) -> OutlookValues:
        """The long plan of ``steps`` coarse steps from ``start`` (:func:`long_plan_steps`)."""
        cfg = self.site.control.outlook
        assert cfg is not None
        long = self.forecaster.forecast(start, est, steps, beyond=cfg.beyond_schedule, step=cfg.step)
        if self.emergency.active and not self.emergency.cut_outside_schedule:
            long = long.without_grid(up_now=bool(est.grid_up))  # voided, or the operator's: no grid at all
        coarse = long.profiles
        state = est.site_state()
        kept = fuel_reserve(self.site, coarse, reserve_hours(cfg.fuel_reserve_h, start, self.fuel_delivery_at))
        stock = {f: (None if s is None else max(0.0, s - kept.get(f, 0.0))) for f, s in state.fuel_stock.items()}
        site, state, _ = fit_to_fuel(self.site, dataclasses.replace(state, fuel_stock=stock), coarse.step_h)
        inputs = DispatchInputs(site, coarse, state, 0.0, self.site.control.time_limit_s)
        return solve_outlook(inputs, at_h=self.site.control.horizon / timedelta(hours=1), cache=self.long_models)

    def _feeders(self, forecast: Profiles, est: Estimate) -> FeederInputs | None:
        """The relays now, and the largest demand bounds used so far (``big_m_kw``: a kept model stays valid)."""
        feeders = FeederInputs.of(
            self.site, forecast.step_h, forecast.steps, closed=est.tier_connected, hours_in_state=est.tier_hours
        )
        if feeders is None:
            return None
        feeders = dataclasses.replace(feeders, least_big_m_kw=dict(self._big_m))
        self._big_m |= demand_bounds_kw(feeders, forecast)
        return feeders

    def _reserve(self) -> ReserveInputs | None:
        """The site's reserve, sized from the forecast error measured so far (``control.reserve``)."""
        cfg = self.site.control.reserve
        if cfg is None:
            return None
        rms = self.forecaster.net_change_rms_kw(self.site.control.interval)
        return ReserveInputs.of(self.site, kw=cfg.error_sigmas * rms if rms is not None else None)

    def _decide(self, report: CycleReport, forecast: Profiles | None) -> Decision | None:
        est = report.estimate
        try:
            if est is None or all(h == "lost" for h in est.health.values()):
                report.source, report.reason = "autonomous", report.reason or "no device answered"
                return None
            return self._chain(report, est, forecast)
        except Exception as exc:
            report.events.append(("fallback", f"setpoints failed: {exc!r}"))
            return rules(self.site, est, self.last_decision, f"setpoints failed: {exc}") if est else None

    def _chain(self, report: CycleReport, est: Estimate, forecast: Profiles | None) -> Decision:
        if self.mode is Mode.SAFE:
            return rules(self.site, est, self.last_decision, "safe mode")
        base = self._auto(report, est, forecast)
        if self.mode is Mode.MANUAL and self.manual is not None:
            report.manual = manual_payload(self.manual)
            return overlay(base, self.manual)
        return base

    def _auto(self, report: CycleReport, est: Estimate, forecast: Profiles | None) -> Decision:
        """The fallback chain: the new plan, the previous plan while the state matches it, the rules."""
        if report.plan is not None and forecast is not None:
            demand = {t: float(forecast.load_kw[t].iloc[0]) for t in forecast.load_kw.columns}
            pv = {k: float(forecast.pv_kw[k].iloc[0]) for k in forecast.pv_kw.columns}
            row = report.plan.frame.iloc[0]
            return from_plan_row(self.site, row, demand, pv).with_source("plan", report.plan.status.value)
        shifted = self._from_last_plan(report.start, est)
        if shifted is not None:
            return shifted.with_source("previous_plan", report.reason or "no new plan")
        return rules(self.site, est, self.last_decision, report.reason or "no plan")

    def _from_last_plan(self, start: datetime, est: Estimate) -> Decision | None:
        """The decision of the last plan's row for ``start`` (source ``previous_plan``), while that plan still
        covers it, is younger than half the horizon, was made in the same mode (emergency or not) and the
        state still matches it (:func:`state_matches`)."""
        plan = self.last_plan
        if plan is None:
            return None
        age = start - plan.frame.index[0].to_pydatetime()
        row = round(age / timedelta(hours=plan.step_hours))
        if row < 1 or row >= plan.steps or age > self.site.control.horizon / 2:
            return None
        if bool(plan.stages) != self._maximum_autonomy():  # a lexicographic plan only in that mode, and back
            return None
        if not state_matches(plan, row, est):
            return None
        demand = {t: float(plan.profiles.load_kw[t].iloc[row]) for t in plan.profiles.load_kw.columns}
        pv = {k: float(plan.profiles.pv_kw[k].iloc[row]) for k in plan.profiles.pv_kw.columns}
        return from_plan_row(self.site, plan.frame.iloc[row], demand, pv)

    def _check(self, report: CycleReport, decision: Decision | None) -> None:
        if decision is None or report.estimate is None:
            report.decision = None
            return
        safe, notes = check(self.site, decision, report.estimate, self.last_decision, self.safety)
        report.decision, report.notes = safe, notes
        report.source, report.reason = safe.source, safe.reason or report.reason
        self.last_decision = safe

    async def _write(self, report: CycleReport) -> None:
        if report.decision is None:
            self.last_decision = None  # the devices drop our setpoints: ramps restart from scratch
            report.source = "autonomous"
            report.events.append(("fallback", f"autonomous: {report.reason}"))
            self.last_points = {}  # keep nothing alive: the devices revert to their own behaviour
            return
        self.heartbeat += 1
        report.heartbeat = self.heartbeat
        report.planned_writes = to_points(self.site, report.decision, self.devices, self.heartbeat)
        if self.mode is Mode.DRY_RUN:
            return
        report.writes = await self._send(report.planned_writes)
        self.last_points = report.planned_writes
        self._watch_writes(report)
        running = {g: s.on for g, s in report.estimate.generators.items()} if report.estimate else {}
        self.starts.commanded(report.decision.generator_on, running, self.clock())

    def _watch_writes(self, report: CycleReport) -> None:
        """Count the cycle's read-backs (:class:`~microgrid.control.obedience.WriteWatch`): a device that ignores
        writes is an alarm (a ``device`` event), marked in this cycle's record and not controlled from the
        next cycle on (:meth:`~microgrid.control.estimate.Estimator.not_controlled`)."""
        report.events += [("device", message) for message in self.write_watch.observe(report.writes)]
        self.estimator.ignores_writes = dict(self.write_watch.ignoring)
        est = report.estimate
        if est is not None:  # this cycle's record says so at once, both ways
            for device in set(est.ignores_writes) - set(self.write_watch.ignoring):
                del est.ignores_writes[device]
                if est.health.get(device) == "ignores-writes":
                    est.health[device] = "ok"
            self.estimator.not_controlled(est)

    async def _send(self, points: dict[str, dict[str, Value]]) -> dict[str, WriteReport]:
        ids = [d for d in points if points[d]]
        results = await asyncio.gather(
            *(self.devices.devices[d].write(points[d], self._limits[d]) for d in ids), return_exceptions=True
        )
        out: dict[str, WriteReport] = {}
        for device_id, result in zip(ids, results, strict=True):
            if isinstance(result, BaseException):  # the writer broke off: what it sent is not known
                out[device_id] = WriteReport(unknown={p: f"the writer failed: {result!r}" for p in points[device_id]})
            else:
                out[device_id] = result
        return out

    # -- between cycles ----------------------------------------------------------------------

    async def keepalive(self) -> dict[str, WriteReport]:
        """Refresh heartbeats (and, when due, unchanged setpoints) faster than the devices' revert timeout.

        Only while the last cycle is fresh: when no cycle has completed for 1.5 intervals (a stuck
        cycle, a failing phase) the keep-alives stop and the devices revert on their own, rather than
        hold setpoints decided on old telemetry. Before writing, the batteries are read again and the
        interval's setpoints re-checked by the safety layer on that SOC (:meth:`_recheck`): a battery
        that reached its floor (or ceiling) during the interval is not asked to go on.
        """
        if not self.last_points or self.mode is Mode.DRY_RUN:
            return {}
        stale_s = 1.5 * self.site.control.interval.total_seconds()
        if self._last_cycle_s is None or self.monotonic() - self._last_cycle_s > stale_s:
            self.last_points = {}
            log.warning("no cycle for 1.5 intervals: keep-alives stopped, devices revert to autonomous")
            return {}
        await self._recheck()
        self.heartbeat += 1
        points: dict[str, dict[str, Any]] = {}
        for device_id, values in self.last_points.items():
            keep = heartbeat_point(self.devices.devices[device_id].map)
            points[device_id] = dict(values) | ({keep: self.heartbeat % 65536} if keep else {})
        return await self._send(points)

    async def _recheck_starts(self) -> None:
        """Read the controllers of the gensets asked to start or carrying load; one that failed to start or
        tripped (:mod:`~microgrid.control.starts`) is stopped and the other gensets are asked to run at once,
        without waiting for the next cycle."""
        decision = self.last_decision
        readings = await self._reread(self.starts.watched(), "gensets") if decision is not None else None
        if decision is None or not readings:
            return
        now = self.clock()
        news = self.starts.observe(engine_states(self.site, readings), now)
        if not news:
            return
        log.warning("keep-alive re-check: %s", "; ".join(news))
        wanted = self.starts.substitutes(self.site, decision.generator_on, now)
        kept = {g: kw for g, kw in decision.generator_kw.items() if decision.generator_on.get(g) and wanted.get(g)}
        kw = {g.id: kept.get(g.id, g.max_kw) if wanted[g.id] else 0.0 for g in self.site.generators}
        self.last_decision = replace(decision, generator_on=wanted, generator_kw=kw)
        self.starts.commanded(wanted, {}, now)
        self._keep(self.last_decision, add=True)

    async def _recheck(self) -> None:
        """Read the battery inverters and put the last decision through the safety layer on their SOC now;
        the points to keep alive follow what it changed (logged). A read that fails changes nothing here:
        the next cycle sees the device."""
        await self._recheck_starts()
        decision = self.last_decision
        batteries = {bat.id for bat in self.site.batteries}
        readings = await self._reread(batteries, "batteries") if decision is not None else None
        if decision is None or not readings:
            return
        est = Estimator(self.site)(readings, self.clock())
        est.soc.update(self.estimator.implausible_soc())  # a register the cycle did not believe is not believed here
        if missing := [b.id for b in self.site.batteries if b.id not in est.soc]:
            log.warning("keep-alive re-check: SOC unknown for %s; setpoints kept to the next cycle", missing)
            return
        now = self.clock()
        left_s = (self.interval_start(now) + self.site.control.interval - now).total_seconds()
        hold_h = max(left_s, RECHECK_HOLD_MIN_S) / 3600  # what is left of the interval the setpoints serve
        safe, notes = check(self.site, decision, est, decision, self.safety, hold_h=hold_h)
        if safe.battery_kw == decision.battery_kw:
            return
        log.warning("keep-alive re-check: %s", "; ".join(notes))
        self.last_decision = safe
        self._keep(safe)

    async def _reread(self, assets: set[str], what: str) -> Snapshot | None:
        """A keep-alive's read of the devices serving ``assets``; None (logged) when there are none or a read fails:
        the next cycle sees the device."""
        ids = [b.id for b in self.site.devices if b.asset in assets]
        if not ids:
            return None
        try:
            readings = await asyncio.gather(*(self.devices.devices[d].read() for d in ids))
        except Exception as exc:
            log.warning("keep-alive re-check: cannot read the %s (%s)", what, exc)
            return None
        return dict(zip(ids, readings, strict=True))

    def _keep(self, decision: Decision, *, add: bool = False) -> None:
        """Keep ``decision``'s points alive from now (``add``: also devices the last points did not write)."""
        fresh = to_points(self.site, decision, self.devices, self.heartbeat)
        kept = {d: fresh.get(d, values) for d, values in self.last_points.items()}
        self.last_points = kept | ({d: v for d, v in fresh.items() if d not in kept} if add else {})

    async def hand_back(self) -> dict[str, WriteReport]:
        """Return every device to its autonomous mode (clean shutdown); stop keep-alives."""
        self.last_points = {}
        if self.mode is Mode.DRY_RUN:
            return {}
        return await self._send(hand_back_points(self.devices))
