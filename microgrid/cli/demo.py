"""``microgrid demo``: the simulated hospital, driven by the real controller over Modbus TCP.

The shipped hospital site is served on loopback by :class:`~microgrid.sim.server.SimulatedSite`
(on free ports) and the real :class:`~microgrid.control.Controller` runs against it: every
15-minute interval one full cycle (read over Modbus, estimate, forecast, solve, setpoints,
check, write), then the plant moves on by 15 simulated minutes in 30-second steps with the
controller's keep-alive writes in between. A simulated day takes about a minute and a half.

The day is the winter sample, with the city's published outage schedule for the hospital's
queue 3.1 (``data/schedules/kharkiv-2026-01-15.csv``: 4 hours on / 4 hours off with two
``possible`` hours, planned with the contingency extension), plus one unannounced 2-hour cut at
10:00 while the schedule says ``on``: the controller enters **emergency mode** (no grid assumed,
maximum autonomy) and leaves it after the grid has been back for the site's
``emergency_exit_after`` (1 h). A live dashboard shows SOC, gensets, the grid, shed tiers, cost
so far, fallbacks, emergency mode and the autonomy figure; at the end the report (``report.md``:
figures; ``day.png``: the day's chart with autonomy over the day) is written to the output folder.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pandas as pd

from microgrid.cli.scada import scada_serving
from microgrid.control import Controller, CycleReport
from microgrid.control.forecast import time_of_day_rows
from microgrid.control.runner import Runner
from microgrid.plans import cost_parts
from microgrid.profiles import Profiles, read_profiles
from microgrid.resources import shipped
from microgrid.sim.ports import on_free_ports
from microgrid.sim.server import SimulatedSite
from microgrid.site import Site, read_site
from microgrid.store import Store
from microgrid.telemetry.wiring import connect

__all__ = ["DemoDay", "demo_site", "run_demo"]

STEP_S = 30.0
"""Simulated seconds between keep-alive writes (the devices revert after 60 s)."""
SURPRISE_OUTAGE = (pd.Timedelta(hours=10), pd.Timedelta(hours=12))
"""An outage the forecast does not know about (local time of day)."""


def demo_site() -> tuple[Site, Profiles]:
    """The shipped hospital on free loopback ports, with a solver effort fit for 15-min cycles in ~1 s
    (2 s at most: the emergency solve splits it over its stages)."""
    with_file = shipped("models", "sites", "hospital.yaml")
    site = on_free_ports(read_site(Path(str(with_file))))
    control = site.control.model_copy(update={"mip_gap": 0.03, "time_limit_s": 2.0})
    site = site.model_copy(update={"control": control})
    return site, read_profiles(Path(str(shipped("data", "hospital-winter-day.csv"))), site)


@dataclass
class DemoDay:
    """The timeline of a demo run, one row per interval, and its running cost."""

    site: Site
    reference: Profiles
    rows: list[dict[str, object]] = field(default_factory=list)
    cost: dict[str, float] = field(default_factory=dict)
    """Money so far per part of the spec's cost (:func:`microgrid.plans.cost_parts`, as the simulations' KPIs)."""
    _last: dict[str, float] = field(default_factory=dict)

    def begin(self, sim: SimulatedSite) -> None:
        """Start counting from the plant as it is now (the batteries' SOC at the start)."""
        self._last = {f"soc.{b}": bat.soc for b, bat in sim.plant.batteries.items()}

    def account(self, sim: SimulatedSite, import_price: float, export_price: float) -> None:
        """Add the cost of what the plant did since the last call (currency)."""
        plant, totals = sim.plant, sim.plant.totals
        now = {"import": totals.imported_kwh, "export": totals.exported_kwh}
        now |= {f"fuel.{g}": gen.fuel_burnt for g, gen in plant.gensets.items()}
        now |= {f"starts.{g}": float(gen.starts) for g, gen in plant.gensets.items()}
        now |= {f"out.{b}": bat.discharged_kwh for b, bat in plant.batteries.items()}
        now |= {f"soc.{b}": bat.soc for b, bat in plant.batteries.items()}
        now |= {f"shed.{t}": v + totals.disconnected_kwh.get(t, 0.0) for t, v in totals.unserved_kwh.items()}
        delta = {k: v - self._last.get(k, 0.0) for k, v in now.items()}
        self._last = now
        parts = cost_parts(
            self.site,
            import_kwh=delta["import"],
            export_kwh=delta["export"],
            import_price=import_price,
            export_price=export_price,
            fuel={g: delta[f"fuel.{g}"] for g in plant.gensets},
            starts={g: delta[f"starts.{g}"] for g in plant.gensets},
            discharge_kwh={b: delta[f"out.{b}"] for b in plant.batteries},
            shed_kwh={t.id: delta.get(f"shed.{t.id}", 0.0) for t in self.site.loads},
            stored_change={b: delta[f"soc.{b}"] for b in plant.batteries},
        )
        for part, money in parts.items():
            self.cost[part] = self.cost.get(part, 0.0) + float(money)

    def fuel_burnt(self) -> dict[str, float]:
        """Fuel burnt so far, per fuel [its unit]: the plant's gensets burning it, as last accounted."""
        return {
            name: sum(self._last.get(f"fuel.{g.id}", 0.0) for g in self.site.generators if g.fuel == name)
            for name in self.site.fuels
        }

    def sample(self, sim: SimulatedSite, report: CycleReport, cycle_s: float) -> dict[str, object]:
        """Record the plant at the end of an interval and the cycle that drove it."""
        plant = sim.plant
        row: dict[str, object] = {
            "time": plant.clock,
            "grid_up": plant.grid_up,
            "grid_kw": plant.grid_kw,
            "pv_kw": sum(plant.pv_kw.values()),
            "load_kw": sum(plant.load_kw.values()),
            "source": report.source,
            "reason": report.reason,
            "cycle_s": cycle_s,
            "cost": sum(self.cost.values()),
            "autonomy_critical_h": report.autonomy.critical_h if report.autonomy else None,
            "autonomy_critical_essential_h": report.autonomy.critical_essential_h if report.autonomy else None,
            "emergency": bool(report.emergency.get("active")),
            "schedule": report.outlook.scheduled_now if report.outlook else None,
        }
        row |= {f"soc.{b}": bat.soc for b, bat in plant.batteries.items()}
        row |= {f"battery_kw.{b}": bat.power_kw for b, bat in plant.batteries.items()}
        row |= {f"gen_kw.{g}": gen.power_kw for g, gen in plant.gensets.items()}
        row |= {f"connected.{t}": c for t, c in plant.relay_closed.items()}
        row |= {f"unserved_kwh.{t}": v for t, v in plant.totals.unserved_kwh.items()}  # tripped by the plant
        row |= {f"disconnected_kwh.{t}": v for t, v in plant.totals.disconnected_kwh.items()}  # shed by the controller
        self.rows.append(row)
        return row

    def frame(self) -> pd.DataFrame:
        """The timeline as a frame indexed by local time."""
        frame = pd.DataFrame(self.rows).set_index("time")
        frame.index = pd.DatetimeIndex(frame.index).tz_convert(self.site.site.timezone)
        return frame


def _surprise(sim: SimulatedSite, start: pd.Timestamp) -> None:
    local = sim.plant.clock.tz_convert(start.tz) - start
    within = SURPRISE_OUTAGE[0] <= local % pd.Timedelta(days=1) < SURPRISE_OUTAGE[1]
    sim.plant.grid_forced = False if within else None


async def run_demo(
    hours: float = 24.0, on_cycle: object = None, store: Store | None = None, scada: object = None
) -> DemoDay:
    """Run the demo for ``hours`` simulated hours; call ``on_cycle(day, row)`` after every cycle.

    With a ``store``, every cycle is recorded there as ``microgrid run`` would; with ``scada``
    (:class:`microgrid.scada.Options`), the controller is served to SCADA meanwhile (``--scada``).
    """
    site, reference = demo_site()
    day = DemoDay(site, reference)
    interval_s = site.control.interval.total_seconds()
    async with SimulatedSite(site, reference, speed=None) as sim:
        day.begin(sim)
        devices = connect(site)
        clock = lambda: sim.plant.clock.to_pydatetime()  # noqa: E731, PLW0108 - the plant clock is replaced as it moves
        for device in devices.devices.values():  # measurements stamped in simulated time, like the cycles
            device.clock = lambda: sim.plant.clock.timestamp()  # noqa: PLW0108 - the clock object changes
        controller = Controller(site, devices, reference, clock=clock)
        runner = Runner(controller, store)
        start = sim.plant.clock.tz_convert(site.site.timezone)
        try:
            async with scada_serving(runner, scada):
                for _ in range(round(hours * 3600 / interval_s)):
                    _surprise(sim, start)
                    began = asyncio.get_running_loop().time()
                    report = await runner.run_once()
                    cycle_s = asyncio.get_running_loop().time() - began
                    await _advance(sim, controller, day, interval_s, start)
                    row = day.sample(sim, report, cycle_s)  # the interval as it ended
                    if callable(on_cycle):
                        on_cycle(day, row)
            await controller.hand_back()
        finally:
            devices.close()
    return day


async def _advance(
    sim: SimulatedSite, controller: Controller, day: DemoDay, interval_s: float, start: pd.Timestamp
) -> None:
    now = pd.DatetimeIndex([sim.plant.clock])
    row = time_of_day_rows(day.reference, now, day.site.site.timezone)[0]
    prices = (  # constant over the interval
        float(day.reference.import_price_per_kwh.iloc[row]),
        float(day.reference.export_price_per_kwh.iloc[row]),
    )
    for _ in range(round(interval_s / STEP_S)):
        sim.advance(STEP_S)
        _surprise(sim, start)
        await controller.keepalive()
        day.account(sim, *prices)


def elapsed(day: DemoDay) -> timedelta:
    """Simulated time covered so far."""
    return timedelta(minutes=15 * len(day.rows))
