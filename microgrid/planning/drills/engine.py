"""Running a drill: the real controller against the real simulator, over loopback TCP, on a simulated clock.

The site is served by :class:`~microgrid.sim.server.SimulatedSite` on free loopback ports with
``speed=None`` (only this module moves time). The controller (:class:`~microgrid.control.Controller`,
real HiGHS solves at the drill's effort) and its devices read the plant's clock; a
:class:`~microgrid.control.runner.Runner` runs each cycle and records it in a SQLite store in a
temporary folder, applying operator actions queued there as ``microgrid override`` does. Between
cycles the plant moves in :data:`STEP_S` pieces, each followed by the controller's keep-alive (as
the runner's keep-alive job does on a site). Events are applied at their times; after every
cycle and keep-alive each new write a device accepted is held against the plant's truth
(:func:`~microgrid.sim.truth.unsafe_write`).

Solver faults go through the controller's optimizer seam: ``Controller.optimizer`` wrapped by
:class:`SolverFaults`. Devices answer with a 0.5 s timeout and no retries (a silent device then
costs 0.5 s of wall time per request, not the site's own timeouts).
"""

from __future__ import annotations

import asyncio
import logging
import math
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from microgrid.control import Controller
from microgrid.control.cycle import CycleReport
from microgrid.control.runner import Runner
from microgrid.dispatch import DispatchInputs
from microgrid.errors import SolveError
from microgrid.planning.drills.files import LoadedDrill
from microgrid.planning.drills.model import Drill, Event
from microgrid.planning.drills.verdict import DrillResult, Measures, judge
from microgrid.plans import Plan
from microgrid.profiles import Profiles
from microgrid.sim.ports import on_free_ports
from microgrid.sim.server import Fault, SimulatedSite
from microgrid.sim.truth import SOC_TOLERANCE, TruthRow, truth, unsafe_write
from microgrid.site import Site
from microgrid.state import GeneratorState, SiteState
from microgrid.store import Store
from microgrid.telemetry.wiring import SiteDevices, connect

__all__ = ["STEP_S", "SolverFaults", "run_drill"]

log = logging.getLogger("microgrid.drill")

STEP_S = 30.0
"""Plant step between keep-alives [simulated s] (half the generic profile's 60 s revert timeout)."""


class SolverFaults:
    """The controller's optimizer, wrapped: ``mode`` ``ok`` solves, ``fail`` raises, ``timeout`` hangs
    ``hang_s`` of wall time (past the cycle's budget) and then solves (the cycle gave up on it)."""

    def __init__(self, solve: Callable[[DispatchInputs], Plan], hang_s: float) -> None:
        self.solve, self.hang_s, self.mode = solve, hang_s, "ok"
        self.calls = 0

    def __call__(self, inputs: DispatchInputs) -> Plan:
        self.calls += 1
        if self.mode == "fail":
            raise SolveError("the solver failed (drill)")
        if self.mode == "timeout":
            time.sleep(self.hang_s)
        return self.solve(inputs)


def drill_site(drill: Drill, site: Site) -> Site:
    """``site`` on free loopback ports, short device timeouts and the drill's solver effort."""
    site = on_free_ports(site, timeout_s=0.5, retries=0)
    effort = {"mip_gap": drill.control.mip_gap, "time_limit_s": drill.control.time_limit_s}
    return site.model_copy(update={"control": site.control.model_copy(update=effort)})


def initial_state(drill: Drill, site: Site) -> SiteState:
    """The site file's initial state with the drill's overrides."""
    base = SiteState.initial(site)
    gens = dict(base.generators) | {g: GeneratorState(on, 24.0) for g, on in drill.initial.generators.items()}
    fuel: dict[str, float | None] = dict(base.fuel_stock) | dict(drill.initial.fuel)
    return SiteState(soc=base.soc | drill.initial.soc, generators=gens, fuel_stock=fuel)


class _Run:
    """One drill run in progress: the simulator, the controller, the store and what is measured."""

    def __init__(
        self, drill: Drill, site: Site, sim: SimulatedSite, store: Store, *, devices: SiteDevices, profiles: Profiles
    ) -> None:
        self.drill, self.site, self.sim, self.store, self.devices = drill, site, sim, store, devices
        self.profiles = profiles
        self.clock_offset = timedelta(0)
        """The controller's wall clock less the plant's (``clock_step_s`` events)."""
        self.runner, self.solver = self.start_controller()
        self.m = Measures()
        self.truth: list[TruthRow] = []
        self.pending = sorted(drill.events, key=lambda e: e.at)
        self.start = sim.plant.clock.to_pydatetime()
        self.fallback_from: datetime | None = None
        self.actions: list[tuple[int, str]] = []
        self.seen_writes = 0
        self.watched: tuple[str, ...] | None = None
        """What the fallback clock waits for: these devices not ``ok``, ``("solver",)`` a cycle not on a
        fresh plan, None anything (a source other than plan/manual, a device not ok, the grid unknown)."""

    def start_controller(self) -> tuple[Runner, SolverFaults]:
        """A controller of the devices on the plant's clock (its wall clock stepped by :attr:`clock_offset`, its
        monotonic clock the plant's), its optimizer wrapped for solver faults, and a runner on the store."""
        sim, drill = self.sim, self.drill

        def wall() -> datetime:
            return sim.plant.clock.to_pydatetime() + self.clock_offset

        def monotonic() -> float:
            return float(sim.plant.clock.timestamp())

        ctl = Controller(
            self.site,
            self.devices,
            self.profiles,
            clock=wall,
            monotonic=monotonic,
            solve_budget_s=drill.control.solve_budget_s,
            threads=drill.control.threads,
        )
        solver = SolverFaults(ctl.optimizer, hang_s=ctl.solve_budget_s + 0.3)
        ctl.optimizer = solver
        return Runner(ctl, self.store), solver

    async def restart(self) -> None:
        """Kill -9 and start again: a new controller resumes from the store and runs a cycle at once (one
        that repeats an interval already recorded replaces that record: still one per interval)."""
        mode = self.solver.mode
        self.runner, self.solver = self.start_controller()
        self.solver.mode = mode
        log.info("drill %s: %s", self.drill.name, self.runner.resume(keep_mode=False))
        report = await self.runner.run_once()
        await self.runner.controller.settle()
        self.observe(report)
        if any(kind == "restart" for kind, _ in report.events):
            self.m.cycles_run -= 1  # the interval's cycle ran again: its record replaced, not added
        self.check_writes()

    async def due(self, elapsed: timedelta) -> None:
        """Apply every event whose time has come."""
        while self.pending and self.pending[0].at <= elapsed:
            event = self.pending.pop(0)
            await self.apply(event)
            if event.starts_fallback_clock and self.fallback_from is None:
                self.fallback_from = self.sim.plant.clock.to_pydatetime()
                self.m.fallback_clock_started = True
                self.watched = self.subject(event)

    async def apply(self, event: Event) -> None:
        sim, plant, action = self.sim, self.sim.plant, event.action
        self.m.faults_injected += action in ("fault", "offline", "trip", "genset_fails_to_start", "restart")
        self.m.faults_injected += action in ("clock_step_s",) or (action == "store_full" and bool(event.store_full))
        self.m.faults_injected += (action == "solver" and event.solver != "ok") or event.grid == "down"
        if event.grid is not None:
            plant.force_grid({"down": False, "up": True, "profile": None}[event.grid])
        elif event.fault is not None:
            spec = event.fault.model_dump(exclude={"device"})
            sim.faults[event.fault.device] = Fault(**(spec | {"frozen_points": frozenset(spec["frozen_points"])}))
        elif event.clear is not None:
            sim.faults.pop(event.clear, None)
        elif event.offline is not None:
            await sim.take_offline(event.offline)
        elif event.online is not None:
            await sim.bring_online(event.online)
        elif event.trip is not None or event.reset is not None:
            plant.trip_battery(event.trip or event.reset or "", tripped=event.trip is not None)
        elif event.genset_fails_to_start is not None or event.genset_repaired is not None:
            genset = event.genset_fails_to_start or event.genset_repaired or ""
            plant.fail_genset_start(genset, failing=event.genset_fails_to_start is not None)
        elif event.solver is not None:
            self.solver.mode = event.solver
        elif event.operator is not None:
            self.queue(event)
        else:
            await self.apply_to_the_controller(event)

    async def apply_to_the_controller(self, event: Event) -> None:
        """A fault of the controller's own world: its wall clock steps, its disk fills, it is killed."""
        if event.clock_step_s is not None:
            self.clock_offset += timedelta(seconds=event.clock_step_s)
        elif event.store_full is not None:
            self.store.set_max_bytes(self.store.path.stat().st_size if event.store_full else None)
        elif event.restart is not None:
            await self.restart()

    def subject(self, event: Event) -> tuple[str, ...] | None:
        """The devices (or the solver) a fallback to ``event`` must show on (:attr:`watched`)."""
        if event.solver is not None:
            return ("solver",)
        device = event.offline or event.clear or (event.fault.device if event.fault else None)
        if device is not None:
            binding = next(d for d in self.site.devices if d.id == device)
            if event.offline is not None:  # devices sharing the endpoint go with it
                return tuple(d.id for d in self.site.devices if (d.host, d.port) == (binding.host, binding.port))
            return (device,)
        if event.trip is not None:
            return tuple(d.id for d in self.site.devices if d.asset == event.trip)
        return None

    def shows_fallback(self, report: CycleReport) -> bool:
        """Whether ``report`` shows the fallback the drill waits for (:attr:`watched`)."""
        est, watched = report.estimate, self.watched
        fresh_plan = report.source in ("plan", "manual")
        if watched == ("solver",):
            return not fresh_plan
        if watched is not None:
            return est is None or any(est.health.get(d, "lost") != "ok" for d in watched)
        unwell = est is None or est.grid_up is None or any(h != "ok" for h in est.health.values())
        return unwell or not fresh_plan

    def queue(self, event: Event) -> None:
        """An operator action through the store, as ``microgrid override`` queues it."""
        op = event.operator
        assert op is not None and self.store is not None
        payload: dict[str, Any]
        if op.mode is not None:
            action, payload = "mode", {"mode": op.mode}
        elif op.emergency is not None:
            action, payload = "emergency", {"on": op.emergency}
        else:
            action, payload = "manual", op.model_dump(include={"battery_kw", "generator_kw", "tier_connected"})
        self.actions.append((self.store.add_action(action, payload, by="drill"), op.expect))
        self.m.operator_actions += 1

    def check_writes(self) -> None:
        """Hold every write since the last check against the plant's truth now (time stands still meanwhile)."""
        new = self.sim.writes[self.seen_writes :]
        self.seen_writes = len(self.sim.writes)
        if not new:
            return
        row = truth(self.sim.plant)
        self.m.writes += len(new)
        for write in new:
            if (why := unsafe_write(self.site, write, row)) is not None:
                self.m.unsafe.append((write, why))

    def observe(self, report: CycleReport) -> None:
        """Count the cycle, its source, and whether it shows the fallback the drill waits for."""
        self.m.cycles_run += 1
        self.m.sources[report.source] = self.m.sources.get(report.source, 0) + 1
        est = report.estimate
        unwell = {d: h for d, h in (est.health.items() if est else ()) if h != "ok"}
        line = f"{report.start:%Y-%m-%d %H:%M} {report.source}: {report.reason}"
        self.m.timeline.append(
            line + (f"; {unwell}" if unwell else "") + ("" if est is None else f"; grid {est.grid_up}")
        )
        if self.fallback_from is None or self.m.time_to_fallback is not None:
            return
        if self.shows_fallback(report):
            self.m.time_to_fallback = max(timedelta(0), report.start - self.fallback_from)

    async def cycle(self) -> None:
        try:
            report = await self.runner.run_once()
            await self.runner.controller.settle()
        except Exception as exc:  # the cycle of this interval did not complete: missed
            log.error("drill %s: cycle failed: %r", self.drill.name, exc)
        else:
            self.observe(report)
        self.check_writes()

    async def keepalive(self) -> None:
        try:
            await self.runner.controller.keepalive()
        except Exception as exc:  # as the runner's keep-alive job: logged, never stops the run
            log.warning("drill %s: keep-alive failed: %r", self.drill.name, exc)
        self.check_writes()

    async def run(self, duration: timedelta) -> None:
        interval = self.site.control.interval
        self.m.cycles_expected = math.ceil(duration / interval)
        elapsed = timedelta(0)
        for k in range(self.m.cycles_expected):
            await self.due(elapsed)
            await self.cycle()
            end = min((k + 1) * interval, duration)
            while elapsed < end:
                nxt = next((e.at for e in self.pending if e.at > elapsed), end)
                dt = min(timedelta(seconds=STEP_S), end - elapsed, nxt - elapsed)
                self.sim.advance(dt.total_seconds())
                elapsed += dt
                self.truth.append(truth(self.sim.plant))
                await self.due(elapsed)
                await self.keepalive()

    def floors(self) -> None:
        """Minutes below ``soc_min`` and the lowest SOC of each battery, from the truth log."""
        floor = {b.id: b.soc_min - SOC_TOLERANCE for b in self.site.batteries}
        previous = self.start
        for row in self.truth:
            minutes = (row.time - previous).total_seconds() / 60
            previous = row.time
            if any(soc < floor[b] for b, soc in row.soc.items()):
                self.m.below_floor_min += minutes
            for b, soc in row.soc.items():
                self.m.lowest_soc[b] = min(soc, self.m.lowest_soc.get(b, soc))

    def finish(self) -> None:
        """Unserved energy from the plant, SOC floors from the truth, records from the store, operator outcomes."""
        self.floors()
        tiers = sorted(self.site.loads, key=lambda t: t.priority)
        totals = self.sim.plant.totals
        lost = [totals.unserved_kwh[t.id] + totals.disconnected_kwh[t.id] for t in tiers]
        self.m.critical_unserved_kwh = lost[0] if lost else 0.0
        self.m.essential_unserved_kwh = lost[1] if len(lost) > 1 else 0.0
        assert self.store is not None
        self.m.cycles_recorded = len(self.store.cycles())
        done = self.store.actions()
        status = dict(zip(done["id"], done["status"], strict=True)) if len(done) else {}
        for action_id, expect in self.actions:
            if status.get(action_id) != expect:
                self.m.operator_unexpected.append(f"action {action_id}: {status.get(action_id)}, expected {expect}")


async def _arun(loaded: LoadedDrill, duration: timedelta, folder: Path) -> tuple[Measures, list[TruthRow]]:
    drill = loaded.drill
    site = drill_site(drill, loaded.site)
    start = pd.Timestamp(loaded.profiles.index[0]) + drill.start
    async with SimulatedSite(site, loaded.profiles, state=initial_state(drill, site), speed=None, start=start) as sim:
        devices = connect(site)
        for device in devices.devices.values():
            device.clock = lambda: sim.plant.clock.timestamp()  # noqa: PLW0108 (a new Timestamp every step)
        store = Store(folder / "drill.sqlite", retention_days=None)
        run = _Run(drill, site, sim, store, devices=devices, profiles=loaded.profiles)
        try:
            await run.run(duration)
            run.finish()
        finally:
            devices.close()
            store.close()
    return run.m, run.truth


def run_drill(loaded: LoadedDrill, *, short: bool = False, duration: timedelta | None = None) -> DrillResult:
    """Run ``loaded`` (its ``short`` duration with ``short``; ``duration`` overrides both) and judge it."""
    drill = loaded.drill
    length = duration or (drill.short if short and drill.short else drill.duration)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="microgrid-drill-") as folder:
        measures, rows = asyncio.run(_arun(loaded, length, Path(folder)))
    criteria = judge(measures, drill.criteria)
    return DrillResult(loaded.path, drill, length, measures, rows, criteria, time.perf_counter() - began)
