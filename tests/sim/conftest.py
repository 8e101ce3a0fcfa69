"""Helpers for tests against the simulated hospital over real Modbus TCP on 127.0.0.1.

Never the site file's fixed ports: :func:`rebind` moves every endpoint to a free port (devices
sharing a port keep sharing one) and shortens timeouts so that fault tests stay fast.
:func:`run_site` serves a site (``speed=None``: time moves only through ``sim.advance``) and runs
an async body against it with the client side (:func:`microgrid.telemetry.wiring.connect`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from microgrid.profiles import Profiles, read_profiles
from microgrid.sim.ports import on_free_ports
from microgrid.sim.server import SimulatedSite
from microgrid.site import Site, read_site
from microgrid.telemetry.devices import Measurement
from microgrid.telemetry.maps import RegisterMap
from microgrid.telemetry.registers import Quality
from microgrid.telemetry.wiring import SiteDevices, connect
from tests.conftest import HOSPITAL, WINTER

T = TypeVar("T")

FAST: dict[str, Any] = {"timeout_s": 0.5, "retries": 0}
"""Per-device overrides that keep a dead device's cost to ~0.5 s per request (a healthy answer on a loaded
2-core CI machine, after a garbage-collection pause, can take longer than 0.2 s)."""


def rebind(site: Site, **overrides: Any) -> Site:
    """``site`` with every device endpoint on a free port (shared ports stay shared) and ``overrides`` applied."""
    return on_free_ports(site, **overrides)


def only(site: Site, *device_ids: str) -> Site:
    """``site`` serving only the devices named."""
    return site.model_copy(update={"devices": tuple(d for d in site.devices if d.id in device_ids)})


@pytest.fixture(scope="session")
def hospital_file_site() -> Site:
    """The shipped hospital as written (fixed ports: never serve this one)."""
    return read_site(HOSPITAL)


@pytest.fixture(scope="session")
def winter(hospital_file_site: Site) -> Profiles:
    return read_profiles(WINTER, hospital_file_site)


@pytest.fixture
def hospital(hospital_file_site: Site) -> Site:
    """The hospital on free ports with short timeouts."""
    return rebind(hospital_file_site, **FAST)


Body = Callable[[SimulatedSite, SiteDevices], Awaitable[T]]


@asynccontextmanager
async def serving(site: Site, profiles: Profiles, attempts: int = 3) -> AsyncIterator[SimulatedSite]:
    """Serve ``site`` (``speed=None``); ``sim.site`` is the site served.

    A port picked by :func:`free_ports` can be taken by someone else before the server binds it
    (parallel test runs): then the endpoints move to other free ports and serving is retried.
    """
    for attempt in range(attempts):
        sim = SimulatedSite(site, profiles, speed=None)
        try:
            await sim.start()
        except (OSError, RuntimeError):  # pymodbus: "Could not start listen"
            await sim.stop()
            if attempt == attempts - 1:
                raise
            site = rebind(site)
            continue
        try:
            yield sim
        finally:
            await sim.stop()
        return


def run_site(site: Site, profiles: Profiles, body: Body[T]) -> T:
    """Serve ``site`` on loopback, connect its devices and return ``await body(sim, devices)``."""

    async def go() -> T:
        async with serving(site, profiles) as sim:
            devices = connect(sim.site)
            try:
                return await body(sim, devices)
            finally:
                devices.close()

    return asyncio.run(go())


class FakeClock:
    """Seconds since the epoch that move only when told (for ``Device(clock=...)``)."""

    def __init__(self, start: float = 1_768_435_200.0) -> None:  # 2026-01-15T00:00Z
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def resolution(regmap: RegisterMap, name: str) -> float:
    """One step of a point's registers in its unit (1 for unscaled integers)."""
    point = regmap.by_name[name]
    return abs(point.scale or 1.0)


def close_to(value: Any, expected: Any, step: float) -> bool:
    """``value`` equals ``expected`` within half a resolution step (exactly, for text)."""
    if isinstance(value, str) or isinstance(expected, str) or value is None or expected is None:
        return bool(value == expected)
    return math.isclose(float(value), float(expected), rel_tol=0, abs_tol=step / 2 + 1e-9 * max(1.0, abs(expected)))


def values(measurements: dict[str, Measurement]) -> dict[str, Any]:
    return {name: m.value for name, m in measurements.items()}


def qualities(measurements: dict[str, Measurement]) -> set[Quality]:
    return {m.quality for m in measurements.values()}


def wrong_ok_values(
    measurements: dict[str, Measurement], regmap: RegisterMap, expected: Iterable[dict[str, Any]]
) -> dict[str, tuple[Any, list[Any]]]:
    """Points read with quality ok whose value matches none of the ``expected`` snapshots (point → value, expected)."""
    snapshots = list(expected)
    wrong = {}
    for name, m in measurements.items():
        if m.quality is not Quality.OK:
            continue
        step = resolution(regmap, name)
        if not any(close_to(m.value, snap.get(name), step) for snap in snapshots):
            wrong[name] = (m.value, [snap.get(name) for snap in snapshots])
    return wrong
