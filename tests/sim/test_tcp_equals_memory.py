"""The controller over Modbus TCP (the demo's and the drills' path) and over the in-memory transport (the
simulations' path) is the same controller: same seed and scenario, same setpoints interval by interval."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from microgrid.control import Controller, Mode
from microgrid.profiles import Profiles, read_profiles
from microgrid.sim.memory import memory_devices
from microgrid.sim.ports import on_free_ports
from microgrid.sim.server import SimulatedSite
from microgrid.site import Site, read_site
from microgrid.telemetry.wiring import SiteDevices, connect
from tests.conftest import HOSPITAL, WINTER

INTERVALS = 6
"""1.5 h of the winter day from its first step."""


def _site() -> Site:
    """The hospital on free ports, a 2 h horizon solved to a 1e-4 gap (plans that do not depend on speed)."""
    site = on_free_ports(read_site(HOSPITAL), timeout_s=2.0, retries=1)
    control = site.control.model_copy(update={"horizon": site.control.interval * 8, "mip_gap": 1e-4})
    return site.model_copy(update={"control": control.model_copy(update={"time_limit_s": 60.0, "outlook": None})})


async def _run(site: Site, profiles: Profiles, mode: Mode, wire: Callable[[SimulatedSite], SiteDevices]) -> list[Any]:
    """Every interval's planned writes (device → point → value) and source."""
    out = []
    async with SimulatedSite(site, profiles, speed=None) as sim:
        devices = wire(sim)

        def seconds() -> float:
            return float(sim.plant.clock.timestamp())

        for device in devices.devices.values():
            device.clock = seconds

        def now() -> datetime:
            return sim.plant.clock.to_pydatetime()

        ctl = Controller(site, devices, profiles, mode=mode, clock=now, solve_budget_s=120.0, threads=1)
        try:
            for _ in range(INTERVALS):
                report = await ctl.cycle()
                out.append((report.source, report.planned_writes))
                for _ in range(30):  # 15 min in 30-s chunks, a keep-alive after each
                    sim.advance(30.0)
                    await ctl.keepalive()
        finally:
            devices.close()
    return out


def _tcp(sim: SimulatedSite) -> SiteDevices:
    return connect(sim.site)


@pytest.mark.parametrize("mode", [Mode.AUTO, Mode.SAFE], ids=["plan", "rules"])
def test_tcp_and_in_memory_write_the_same_setpoints(mode: Mode) -> None:
    site = _site()
    profiles = read_profiles(WINTER, site)
    over_tcp = asyncio.run(_run(site, profiles, mode, _tcp))
    in_memory = asyncio.run(_run(site, profiles, mode, memory_devices))
    assert [s for s, _ in over_tcp] == [s for s, _ in in_memory]
    assert {s for s, _ in over_tcp} == ({"plan"} if mode is Mode.AUTO else {"rules"})
    for k, ((_, tcp), (_, memory)) in enumerate(zip(over_tcp, in_memory, strict=True)):
        assert tcp.keys() == memory.keys(), k
        for device, points in tcp.items():
            assert points.keys() == memory[device].keys(), (k, device)
            for point, value in points.items():
                assert memory[device][point] == pytest.approx(value, abs=1e-3), (k, device, point)
