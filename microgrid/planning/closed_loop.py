"""Closed-loop simulation: the real control cycle driving the simulated site's physics, in process.

Every interval, :meth:`Controller.cycle() <microgrid.control.Controller.cycle>` runs exactly as on
a site (read → estimate → forecast → solve → setpoints → safety check → write, with its fallback
chain), against the devices of :mod:`microgrid.sim.memory`: the real register maps,
codecs and writer over the simulator's own register handlers, without sockets. Then the plant
(:class:`~microgrid.sim.physics.SitePlant`) runs the interval in substeps of ``substep_s``
(30 s). What happened is measured on the **plant**, substep by substep, never taken from the
plan: the intervals table and its KPIs are what the site really did.

**What the controller knows.** ``profiles`` are the true profiles (what happens). The controller
is the real :class:`~microgrid.control.Controller` with one of two forecasters
(:func:`~microgrid.planning.foresight.simulation_forecaster`):

* ``forecast="controller"`` (default): the site's own forecaster, as on a site: load per tier from
  the history of what the plant measured (the ``reference`` day while it is short), PV from the
  clear-sky model scaled by the measured clear-sky index (with a ``location``), prices by tariff;
* ``forecast="oracle"``: the true future perturbed by forecast error: load and PV × (1 + ε), one ε
  series per load tier and per PV array, each a stationary AR(1) over steps with standard deviation
  ``forecast_error`` and a 3-hour correlation time (φ = exp(−Δ/3 h)), drawn from
  ``numpy.random.default_rng(seed)``; factors below 0 are clipped to 0; step 0 still uses the
  measured demand, as on a site.

The grid, in both: the outage schedule as it was published (``published``: ``(issued_at,
schedule)`` pairs, e.g. day-ahead publications that differ from what the grid then did), else with
``grid_known=True`` the true outage pattern published in full at the start, else no schedule (the
grid is expected up, except that a grid measured down is planned down for an hour). With a schedule
the controller's schedule logic runs as on a site: ``possible`` windows planned with the
contingency, and emergency mode entered when the grid drops while the schedule says ``on``.

**Simulation settings** that differ from a site: the controller's wall-clock guard on the solve
is off (simulated time does not pass while HiGHS runs, so the solve always ends by HiGHS's own
``time_limit_s``; results do not depend on the machine's load unless that limit binds); the
devices' keep-alive is emulated (their revert timers restart while the controller has
setpoints in force, as its 10-s keep-alive writes would do) instead of ~90 keep-alive writes
per interval; HiGHS runs on one thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pandas as pd

import microgrid.plan_columns as col
from microgrid.control import Controller, CycleReport, Mode
from microgrid.control.forecast import Forecaster
from microgrid.dispatch import DispatchInputs
from microgrid.forecast.schedule import OutageSchedule, PublishedSchedules
from microgrid.planning.foresight import (
    extend,
    forecast_reference,
    simulation_forecaster,
    truth_schedule,
    with_solver,
)
from microgrid.planning.kpis import add_costs, kpis_of
from microgrid.planning.results import SimulationResult
from microgrid.plans import Plan
from microgrid.profiles import Profiles
from microgrid.sim.memory import memory_devices
from microgrid.sim.physics import SitePlant
from microgrid.sim.server import SimulatedSite, Substep
from microgrid.site import OutageScheduleConfig, Site
from microgrid.site.grid import UNANNOUNCED_CUT_H
from microgrid.state import SiteState

__all__ = [
    "SimulationResult",
    "extend",
    "forecast_reference",
    "simulate",
    "simulated_schedule",
    "with_solver",
]

T = TypeVar("T")
CONTROLLERS = ("mpc", "rules")
"""The controllers a closed loop runs; perfect foresight runs none (:func:`~.baselines.run_controller` picks)."""


# -- the plant, metered --------------------------------------------------------------------------


class _Meter:
    """Integrates what the plant does over every substep (the simulated site's ``on_substep``) [kWh]."""

    def __init__(self, sim: SimulatedSite, truth: Profiles) -> None:
        self.sim, self.truth = sim, truth
        self._load = {t: truth.load_kw[t].to_numpy() for t in truth.load_kw.columns}
        self._ci, self._ce = truth.import_price_per_kwh.to_numpy(), truth.export_price_per_kwh.to_numpy()
        self.energy: dict[str, float] = {}

    def __call__(self, substep: Substep) -> None:
        row, h = self.truth.row_at(substep.started), substep.dt_s / 3600
        e, plant = self.energy, self.sim.plant

        def add(key: str, kwh: float) -> None:
            e[key] = e.get(key, 0.0) + kwh

        for b, bat in plant.batteries.items():
            add(col.battery_charge_kw(b), max(-bat.power_kw, 0.0) * h)
            add(col.battery_discharge_kw(b), max(bat.power_kw, 0.0) * h)
        for g, gen in plant.gensets.items():
            add(col.generator_kw(g), gen.power_kw * h)
            add(f"generator.{g}.ran", float(gen.running))
        for k, kw in plant.pv_kw.items():
            add(col.pv_kw(k), kw * h)
            add(col.pv_available_kw(k), plant.pv_available_kw.get(k, 0.0) * h)
        for t, kw in plant.load_kw.items():
            add(col.load_served_kw(t), kw * h)
            add(col.load_demand_kw(t), float(self._load[t][row]) * h)
        add(col.GRID_IMPORT_KW, max(plant.grid_kw, 0.0) * h)
        add(col.GRID_EXPORT_KW, max(-plant.grid_kw, 0.0) * h)
        add(col.GRID_AVAILABLE, float(substep.grid_up) * h)
        add(col.PRICE_IMPORT_PER_KWH, float(self._ci[row]) * h)
        add(col.PRICE_EXPORT_PER_KWH, float(self._ce[row]) * h)


@dataclass
class _Recorder:
    """Turns each interval (the cycle that decided it and what the plant did) into a row."""

    sim: SimulatedSite
    meter: _Meter
    rows: list[dict[str, Any]] = field(default_factory=list)
    writes: list[tuple[datetime, str, str, object, str]] = field(default_factory=list)
    timings: list[dict[str, float]] = field(default_factory=list)

    def before(self) -> dict[str, float]:
        plant = self.sim.plant
        self.meter.energy = {}
        out = {f"{g}.fuel": gen.fuel_burnt for g, gen in plant.gensets.items()}
        out |= {f"{g}.hours": gen.running_hours for g, gen in plant.gensets.items()}
        return out | {f"{g}.starts": float(gen.starts) for g, gen in plant.gensets.items()}

    def after(self, report: CycleReport, start: dict[str, float], hours: float, physics_s: float) -> None:
        plant, energy = self.sim.plant, self.meter.energy
        row: dict[str, Any] = {"timestamp": report.start}
        for key, kwh in energy.items():
            if not key.endswith(".ran"):
                row[key] = kwh / hours
        for b, bat in plant.batteries.items():
            row[col.battery_soc(b)] = bat.soc
        for g, gen in plant.gensets.items():
            row[col.generator_on(g)] = int(energy.get(f"generator.{g}.ran", 0.0) > 0)
            row[col.generator_fuel(g)] = gen.fuel_burnt - start[f"{g}.fuel"]
            row[col.generator_hours(g)] = gen.running_hours - start[f"{g}.hours"]
            row[col.generator_starts(g)] = gen.starts - start[f"{g}.starts"]
        for name in self.sim.site.fuels:
            stock = plant.fuel.get(name)
            row[col.fuel_stock(name)] = float("nan") if stock is None else stock
        for t in plant.load_kw:
            row[col.load_shed_kw(t)] = max(row[col.load_demand_kw(t)] - row[col.load_served_kw(t)], 0.0)
        self._finish(row, report)
        self.timings.append(
            dict(report.phases_s)
            | {"highs": report.plan.timings.get("highs", math.nan) if report.plan else math.nan, "physics": physics_s}
        )

    def _finish(self, row: dict[str, Any], report: CycleReport) -> None:
        supply = row[col.GRID_IMPORT_KW] - row[col.GRID_EXPORT_KW]
        supply += sum(
            row[col.battery_discharge_kw(b)] - row[col.battery_charge_kw(b)] for b in self.sim.plant.batteries
        )
        supply += sum(row[col.generator_kw(g)] for g in self.sim.plant.gensets)
        supply += sum(row[col.pv_kw(k)] for k in self.sim.plant.pv_kw)
        row["spill_kw"] = supply - sum(row[col.load_served_kw(t)] for t in self.sim.plant.load_kw)
        row["source"], row["reason"] = report.source, report.reason
        row["emergency"] = bool(report.emergency.get("active"))
        reserve = report.plan.reserve if report.plan is not None else None
        row["reserve_kw"] = float(reserve.held_kw[0]) if reserve is not None else math.nan
        for fuel, value in (report.terminal.fuel_value if report.terminal is not None else {}).items():
            row[f"outlook.{fuel}.value"] = value
        row["contingency_windows"] = len(report.plan.contingency) if report.plan is not None else 0
        auto = report.autonomy
        row["autonomy.critical_h"] = auto.critical_h if auto else math.nan
        row["autonomy.critical_essential_h"] = auto.critical_essential_h if auto else math.nan
        row["solve_s"] = report.phases_s.get("solve", math.nan) if report.plan is not None else math.nan
        refused = 0
        for device, result in report.writes.items():
            for status, values in (("written", result.written), ("skipped", result.skipped)):
                self.writes += [(report.start, device, p, v, status) for p, v in values.items()]
            self.writes += [(report.start, device, p, why, "refused") for p, why in result.refused.items()]
            self.writes += [(report.start, device, p, v, "mismatch") for p, v in result.mismatches.items()]
            self.writes += [(report.start, device, p, why, "unknown") for p, why in result.unknown.items()]
            refused += len(result.refused)
        row["writes.refused"] = refused
        self.rows.append(row)

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows).set_index("timestamp")
        frame.index = pd.DatetimeIndex(frame.index).tz_convert("UTC")
        frame.index.name = "timestamp"
        return frame


# -- the loop ------------------------------------------------------------------------------------


def _steps(site: Site, profiles: Profiles, days: float | None) -> int:
    interval_h = site.control.interval / timedelta(hours=1)
    if days is not None:
        return max(1, round(days * 24 / interval_h))
    return max(1, round(profiles.steps * profiles.step_h / interval_h))


def _progress(i: int, n: int, per_day: int, started: float, report: CycleReport) -> None:
    if (i + 1) % per_day == 0 or i + 1 == n:
        elapsed = time.perf_counter() - started
        print(f"  {i + 1}/{n} intervals, {elapsed:.0f} s, last source {report.source}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class _Truck:
    """The fuel delivery of a simulation: when it comes [UTC] and what it brings [fuel units per fuel];
    ``units`` None fills each fuel with a stock back to ``fill_to``, its level at the start."""

    at: pd.Timestamp
    units: dict[str, float] | None
    fill_to: dict[str, float]

    def pour(self, plant: SitePlant) -> None:
        units = self.units
        if units is None:
            units = {f: max(0.0, level - (plant.fuel[f] or 0.0)) for f, level in self.fill_to.items()}
        plant.deliver_fuel(units)


def _truck(sim: SimulatedSite, at: datetime | None, units: Mapping[str, float] | None) -> _Truck | None:
    """``simulate``'s ``fuel_delivery_at`` and ``fuel_delivered`` as a :class:`_Truck` (checked now), or None."""
    if at is None:
        if units is not None:
            raise ValueError("fuel_delivered needs fuel_delivery_at: when the truck comes")
        return None
    plant = sim.plant
    if units is not None:
        plant.check_delivery(units)
    fill_to = {f: level for f, level in plant.fuel.items() if level is not None}
    return _Truck(pd.Timestamp(at).tz_convert("UTC"), None if units is None else dict(units), fill_to)


async def _loop(ctl: Controller, rec: _Recorder, n: int, progress: bool, truck: _Truck | None) -> None:
    """``n`` control intervals: cycle, then the plant's interval; the truck's fuel poured in before the
    first cycle that starts at or after it comes."""
    interval_s = ctl.site.control.interval.total_seconds()
    hours = interval_s / 3600
    started = time.perf_counter()
    per_day = max(1, round(86400 / interval_s))
    for i in range(n):
        if truck is not None and rec.sim.plant.clock >= truck.at:
            truck.pour(rec.sim.plant)
            truck = None
        report = await ctl.cycle()
        await ctl.settle()  # never needed with the guard off; keeps runs deterministic
        t0 = time.perf_counter()
        before = rec.before()
        rec.sim.advance(interval_s, keepalive=list(ctl.last_points))
        rec.after(report, before, hours, time.perf_counter() - t0)
        if progress:
            _progress(i, n, per_day, started, report)


def simulate(
    site: Site,
    profiles: Profiles,
    *,
    state: SiteState | None = None,
    days: float | None = None,
    controller: str = "mpc",
    forecast_error: float = 0.0,
    seed: int = 0,
    mip_gap: float | None = None,
    time_limit_s: float | None = None,
    progress: bool = False,
    grid_known: bool = True,
    substep_s: float = 30.0,
    threads: int | None = 1,
    optimizer: Callable[[DispatchInputs, Plan | None], Plan] | None = None,
    forecast: str = "controller",
    published: Sequence[tuple[datetime, OutageSchedule]] | None = None,
    reference: Profiles | None = None,
    fuel_delivery_at: datetime | None = None,
    fuel_delivered: Mapping[str, float] | None = None,
) -> SimulationResult:
    """Run ``site``'s controller in closed loop against its simulated physics (module docstring).

    Parameters
    ----------
    profiles
        The true profiles (load, PV, grid availability, prices); repeated past their end.
    state
        The state at the start (None: the site file's ``initial_*`` values).
    days
        Length of the simulated period (None: as long as ``profiles``).
    controller
        ``mpc`` (the controller in ``auto`` mode: plan, previous plan, rules, autonomous) or ``rules``
        (``safe`` mode: the documented rules only). Perfect foresight has no closed loop:
        :func:`~microgrid.planning.baselines.run_controller` picks it or this.
    forecast
        ``controller`` (the site's own forecaster, learning from the plant) or ``oracle`` (the true
        future ± ``forecast_error``): module docstring.
    forecast_error
        With ``forecast="oracle"``: standard deviation of the multiplicative load and PV forecast
        errors (0.1 = 10 %).
    seed
        Seed of the forecast errors.
    mip_gap, time_limit_s
        Override the site's ``control.mip_gap`` and ``control.time_limit_s`` [s] for every solve.
    progress
        Print a line per simulated day to stderr.
    grid_known
        Without ``published``: the controller knows the true outage pattern (published in full at
        the start); else it has no schedule and expects the grid up.
    published
        The outage schedule as published over time (``(issued_at, schedule)``): what the controller
        is told, whatever the grid then does.
    reference
        With ``forecast="controller"``: the typical day its forecast starts from (default: the true
        profiles' first day, without its outages).
    fuel_delivery_at
        The next fuel delivery as the controller is told it (UTC): its long outlook rations the fuel
        only until then (:mod:`microgrid.control.resupply`), and within the 24 h plan the stock need
        last only until then. The truck comes then: the simulated tank is filled at the first interval
        that starts at or after it (``fuel_delivered``); a delivery at or after the period's end fills
        nothing within it.
    fuel_delivered
        What the truck brings [fuel units per fuel name]; None: each fuel with a stock is filled back to
        its level at the start (a full tank, as the controller's long outlook assumes after a delivery).
    substep_s
        Physics substep [simulated s].
    threads
        HiGHS threads per solve (None: HiGHS's default).
    optimizer
        Replaces the solve: called with the dispatch inputs and the controller's last plan (to
        compare solver set-ups in closed loop); default: the controller's own (the spec's model with
        its extensions, warm-started from the last plan on a kept model; the emergency-mode solve in
        emergency mode).
    """
    if controller not in CONTROLLERS:
        raise ValueError(f"controller must be one of {', '.join(CONTROLLERS)}, got {controller!r}")
    site = with_solver(site, mip_gap, time_limit_s)
    n = _steps(site, profiles, days)
    truth = _truth(site, profiles, n)
    if published is None and grid_known:
        published = truth_schedule(truth, timedelta(hours=truth.step_h))
    site = _with_schedule(site) if published else site
    sim = SimulatedSite(site, truth, state=state, speed=None, substep_s=substep_s)
    sim.on_substep = meter = _Meter(sim, truth)
    feed = PublishedSchedules(published, lambda: sim.plant.clock.to_pydatetime()) if published else None  # noqa: PLW0108 - the plant's clock is replaced as it moves
    forecaster = simulation_forecaster(
        site, truth, forecast=forecast, schedules=feed, reference=reference, forecast_error=forecast_error, seed=seed
    )
    ctl = _controller(site, sim, forecaster, controller, threads=threads, optimizer=optimizer)
    ctl.fuel_delivery_at = fuel_delivery_at
    rec = _Recorder(sim, meter)
    truck = _truck(sim, fuel_delivery_at, fuel_delivered)
    run_blocking(_loop(ctl, rec, n, progress, truck))
    return _result(site, state, rec, controller)


def _truth(site: Site, profiles: Profiles, n: int) -> Profiles:
    """``profiles`` extended to cover ``n`` intervals and the horizon (or the long outlook) of the last."""
    look = site.control.horizon
    if site.control.outlook is not None:
        look = max(look, timedelta(days=site.control.outlook.days))
    horizon = round(look / site.control.interval)
    per_interval = site.control.interval / timedelta(hours=profiles.step_h)
    return extend(profiles, math.ceil((n + horizon + 1) * per_interval))


def _with_schedule(site: Site) -> Site:
    """``site`` with a ``grid.schedule`` section when it has none (:func:`simulated_schedule`)."""
    if site.grid is None or site.grid.schedule is not None:
        return site
    return simulated_schedule(site)


def simulated_schedule(
    site: Site, *, unannounced_cut_h: float | None = UNANNOUNCED_CUT_H, late_return_h: float | None = None
) -> Site:
    """``site`` (with a grid) with the ``grid.schedule`` section a simulation gives a site that has none, so
    that the controller's schedule logic (emergency mode and its exit after 1 h of stable grid) runs on
    the simulated feed; ``unannounced_cut_h`` and ``late_return_h`` as in the site file (None: off, the
    maximum-autonomy solve for a cut outside the schedule)."""
    assert site.grid is not None
    schedule = OutageScheduleConfig(
        queue="sim",
        source="<simulated>",
        emergency_exit_after=timedelta(hours=1),
        unannounced_cut_h=unannounced_cut_h,
        late_return_h=late_return_h,
    )
    return site.model_copy(update={"grid": site.grid.model_copy(update={"schedule": schedule})})


def _controller(
    site: Site,
    sim: SimulatedSite,
    forecaster: Forecaster,
    controller: str,
    *,
    threads: int | None,
    optimizer: Callable[[DispatchInputs, Plan | None], Plan] | None,
) -> Controller:
    """The controller of ``sim``'s devices on the plant's clock, its solve replaced by ``optimizer`` if given."""
    ctl: Controller | None = None

    def solve(inputs: DispatchInputs) -> Plan:
        assert optimizer is not None
        return optimizer(inputs, ctl.last_plan if ctl is not None else None)

    ctl = Controller(
        site,
        memory_devices(sim),
        forecaster.reference,
        mode=Mode.AUTO if controller == "mpc" else Mode.SAFE,
        clock=lambda: sim.plant.clock.to_pydatetime(),  # noqa: PLW0108 - the plant's clock is replaced as it moves
        solve_budget_s=1e9,
        optimizer=solve if optimizer is not None else None,
        forecaster=forecaster,
        threads=threads,
    )
    return ctl


def _result(site: Site, state: SiteState | None, rec: _Recorder, controller: str) -> SimulationResult:
    """The :class:`SimulationResult` of what ``rec`` recorded (costs from the starting SOC)."""
    initial = state or SiteState.initial(site)
    intervals = add_costs(rec.frame(), site, {b.id: initial.soc[b.id] for b in site.batteries})
    writes = pd.DataFrame(rec.writes, columns=["timestamp", "device", "point", "value", "status"])
    timings = pd.DataFrame(rec.timings, index=intervals.index)
    return SimulationResult(intervals, kpis_of(intervals, site), controller, writes, timings)


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, also inside a running event loop (a Jupyter
    kernel has one: there the coroutine runs on a worker thread with its own loop, in a copy of the
    caller's context, so that e.g. :func:`microgrid.dispatch.effort.deterministic` holds there too)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, coro).result()


def median_split(result: SimulationResult) -> dict[str, float]:
    """Median seconds per cycle: ``solve``, everything else in the cycle, and the physics."""
    t = result.timings
    if t.empty:
        return {}
    other = t.drop(columns=[c for c in ("solve", "highs", "physics") if c in t]).sum(axis=1)
    return {
        "solve": statistics.median(t["solve"]) if "solve" in t else 0.0,
        "cycle_other": float(other.median()),
        "physics": float(t["physics"].median()),
    }
