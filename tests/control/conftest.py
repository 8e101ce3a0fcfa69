"""Helpers for the controller's tests: tick-table builders and a rig against the simulated hospital.

TCP tests never use the site file's fixed ports: :func:`rebind` moves every endpoint to a free
port (devices sharing a port keep sharing one) and shortens timeouts (copied from
``tests/sim/conftest.py`` to keep this package independent). :func:`fast` lowers the solve effort
(gap 0.02, 2 s limit) so that a cycle with a real solve takes about a second.

:func:`run_rig` serves a site with ``speed=None`` (time moves only through ``sim.advance``), gives
its devices and the controller the simulated clock, and runs an async body against a :class:`Rig`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest

from microgrid.control import Controller, CycleReport, Estimate
from microgrid.dispatch import DispatchInputs, optimize
from microgrid.plans import Plan, SolveStatus
from microgrid.profiles import Profiles, read_profiles
from microgrid.sim.ports import on_free_ports
from microgrid.sim.server import SimulatedSite
from microgrid.site import Site, read_site
from microgrid.state import GeneratorState, SiteState
from microgrid.telemetry.wiring import SiteDevices, connect
from tests.conftest import HOSPITAL, WINTER

T = TypeVar("T")

FAST: dict[str, Any] = {"timeout_s": 0.5, "retries": 0}
"""Per-device overrides that keep a dead device's cost to ~0.5 s per request (a healthy answer on a loaded
CI machine can take longer than 0.2 s)."""

T0 = datetime(2026, 1, 14, 22, 0, tzinfo=UTC)
"""The winter day's first step (local midnight in Kyiv)."""


def rebind(site: Site, **overrides: Any) -> Site:
    """``site`` with every device endpoint on a free port (shared ports stay shared) and ``overrides`` applied."""
    return on_free_ports(site, **overrides)


def fast(site: Site, **control: Any) -> Site:
    """``site`` with a loose gap and a short time limit (plus any other ``control`` changes)."""
    update = {"mip_gap": 0.02, "time_limit_s": 2.0} | control
    return site.model_copy(update={"control": site.control.model_copy(update=update)})


@pytest.fixture(scope="session")
def hospital() -> Site:
    """The shipped hospital as written (fixed ports: never serve this one)."""
    return read_site(HOSPITAL)


@pytest.fixture(scope="session")
def winter(hospital: Site) -> Profiles:
    return read_profiles(WINTER, hospital)


@pytest.fixture
def tcp_hospital(hospital: Site) -> Site:
    """The hospital on free ports, short timeouts, fast solves."""
    return fast(rebind(hospital, **FAST))


# -- estimates for tick tables ---------------------------------------------------------------


def estimate(site: Site, **fields: Any) -> Estimate:
    """An estimate of ``site`` at :data:`T0`: every battery at 50 % with the site's limits, gensets
    stopped for 24 h, grid up, every tier connected, every device ok; ``fields`` replace any of it."""
    base: dict[str, Any] = {
        "time": T0,
        "soc": {b.id: 0.5 for b in site.batteries},
        "charge_limit_kw": {b.id: b.max_charge_kw for b in site.batteries},
        "discharge_limit_kw": {b.id: b.max_discharge_kw for b in site.batteries},
        "battery_kw": {b.id: 0.0 for b in site.batteries},
        "generators": {g.id: GeneratorState(False, 24.0) for g in site.generators},
        "fuel_stock": {name: f.stock for name, f in site.fuels.items()},
        "grid_up": True,
        "load_kw": {t.id: 0.0 for t in site.loads},
        "tier_connected": {t.id: True for t in site.loads},
        "health": {d.id: "ok" for d in site.devices},
    }
    return Estimate(**(base | fields))


def at_position(p: float) -> dict[str, float]:
    """Hospital SOCs that put both batteries (and so their energy-weighted mean) at ``p`` of their bands."""
    return {"bess1": 0.10 + 0.85 * p, "bess2": 0.15 + 0.80 * p}


# -- the simulator rig ------------------------------------------------------------------------


class Rig:
    """A controller wired to a simulated site; the simulated clock drives devices and controller."""

    def __init__(self, sim: SimulatedSite, devices: SiteDevices, ctl: Controller) -> None:
        self.sim, self.devices, self.ctl = sim, devices, ctl
        self.offset = timedelta(0)
        """Added to the controller's clock (to age a plan without simulating the hours between)."""

    def now(self) -> datetime:
        return self.sim.plant.clock.to_pydatetime() + self.offset

    async def cycle(self) -> CycleReport:
        return await self.ctl.cycle()

    async def step(self, seconds: float = 900.0, *, chunk: float = 30.0, keepalive: bool = True) -> None:
        """Advance the plant ``seconds`` in ``chunk`` pieces, with the controller's keep-alive after each."""
        left = seconds
        while left > 1e-9:
            dt = min(chunk, left)
            self.sim.advance(dt)
            left -= dt
            if keepalive:
                await self.ctl.keepalive()

    def adapter(self, device_id: str) -> Any:
        return self.sim.served[device_id].adapter


def run_rig(
    site: Site,
    profiles: Profiles,
    body: Callable[[Rig], Awaitable[T]],
    *,
    state: SiteState | None = None,
    **controller: Any,
) -> T:
    """Serve ``site`` on loopback, build its controller and return ``await body(rig)``."""

    async def go() -> T:
        async with SimulatedSite(site, profiles, state=state, speed=None) as sim:
            devices = connect(site)
            rig: Rig | None = None

            def clock() -> datetime:
                assert rig is not None
                return rig.now()

            def seconds() -> float:  # the plant's clock is a new Timestamp after every step: look it up each time
                return sim.plant.clock.timestamp()

            for device in devices.devices.values():
                device.clock = seconds
            ctl = Controller(site, devices, profiles, clock=clock, **controller)
            rig = Rig(sim, devices, ctl)
            try:
                return await body(rig)
            finally:
                devices.close()

    return asyncio.run(go())


# -- optimizer stubs ----------------------------------------------------------------------------


def plan_columns(site: Site) -> list[str]:
    """The plan frame's columns for ``site`` (``microgrid.plans``)."""
    cols = [f"battery.{b.id}.{k}" for b in site.batteries for k in ("charge_kw", "discharge_kw", "soc")]
    cols += [f"generator.{g.id}.{k}" for g in site.generators for k in ("kw", "on", "fuel")]
    cols += [f"pv.{a.id}.kw" for a in site.pv]
    cols += [f"load.{t.id}.{k}" for t in site.loads for k in ("served_kw", "shed_kw")]
    return [*cols, "grid.import_kw", "grid.export_kw"]


def synthetic_plan(inputs: DispatchInputs, columns: dict[str, Any] | None = None) -> Plan:
    """A plan over ``inputs``' horizon without solving: zeros (each battery's SOC held at the state's,
    so that the plan matches the state a fallback checks), except ``columns`` (name → scalar or
    per-step values).

    Default marker: bess1 discharges 10 + r kW and bess2 charges 20 + r kW in row r, so the row a
    fallback used can be read off the setpoints written.
    """
    steps = inputs.profiles.steps
    frame = pd.DataFrame(0.0, index=inputs.profiles.index, columns=plan_columns(inputs.site))
    for bat in inputs.site.batteries:
        frame[f"battery.{bat.id}.soc"] = inputs.state.soc.get(bat.id, bat.initial_soc)
    if columns is None:
        columns = {
            "battery.bess1.discharge_kw": 10.0 + np.arange(steps),
            "battery.bess2.charge_kw": 20.0 + np.arange(steps),
        }
    for name, values in columns.items():
        frame[name] = values
    return Plan(frame, inputs.site, inputs.profiles, inputs.state, SolveStatus.OPTIMAL, 0.0, 0.0, 0.0)


class Optimizer:
    """A scripted optimizer: each call pops the next behaviour (``"real"``, ``"stub"``, an exception
    to raise, or a callable of the inputs); the last one repeats. Counts its calls."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script) or ["stub"]
        self.calls = 0
        self.inputs: list[DispatchInputs] = []

    def __call__(self, inputs: DispatchInputs) -> Plan:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        self.inputs.append(inputs)
        if step == "real":
            return optimize(inputs)
        if step == "stub":
            return synthetic_plan(inputs)
        if isinstance(step, BaseException):
            raise step
        result: Plan = step(inputs)
        return result
