"""An in-process device layer: the real register maps, codecs and devices, without sockets.

The simulated site of :mod:`microgrid.sim.server` answers Modbus requests by encoding its
plant's live values into registers and by decoding writes back into plant commands. Here the
same handlers are called directly: :class:`InProcessTransport` implements what
:class:`~microgrid.telemetry.devices.Device` needs from a
:class:`~microgrid.telemetry.transport.ModbusTransport` (``read`` and ``write`` of raw
registers) by calling :class:`~microgrid.sim.server.SimulatedSite`'s register handlers on its
:class:`~microgrid.sim.physics.SitePlant`. So everything the controller does, from the read
blocks and word orders to the writer's range checks and read-backs, runs unchanged; only TCP
is gone.

A device's register image is encoded once per *generation* of the plant (bumped by
:meth:`InProcessSite.advance` and by every write) and served to every read block from that
cache. Faults of :class:`~microgrid.sim.server.Fault` honoured in process: ``silent`` (the
request fails as a :class:`~microgrid.telemetry.transport.CommsError`), ``exception`` (a
Modbus exception code), ``frozen`` (reads return the image of the moment it froze) and
``ignore_writes``.

Keep-alive: the simulated devices revert to their own behaviour when no new heartbeat arrives
for ``revert_timeout_s`` (60 s). :meth:`InProcessSite.advance` can emulate a live controller's
keep-alive (``keepalive=devices``: the revert timers of those devices restart every substep, as
the controller's keep-alive writes every 10 s would) instead of calling
:meth:`~microgrid.control.Controller.keepalive` ~90 times per 15-minute interval.
"""

from __future__ import annotations

from collections.abc import Iterable

from microgrid.profiles import Profiles
from microgrid.sim.adapters import Adapter
from microgrid.sim.server import Fault, SimulatedSite, _Served
from microgrid.site import Site
from microgrid.state import SiteState
from microgrid.telemetry.devices import Device
from microgrid.telemetry.transport import CommsError, ExceptionCodeError, ModbusTransport, Table
from microgrid.telemetry.wiring import SiteDevices, check_wiring

__all__ = ["InProcessSite", "InProcessTransport", "in_process_devices"]


class InProcessSite(SimulatedSite):
    """A :class:`~microgrid.sim.server.SimulatedSite` that is never served: time moves only through
    :meth:`advance`, and devices reach it through :class:`InProcessTransport`.

    Parameters
    ----------
    substep_s
        Largest physics step [simulated s] (the TCP simulator uses 2 s; 30 s keeps a genset's
        30-s start delay and 5 kW/s ramp meaningful at a fifteenth of the cost).
    """

    def __init__(
        self, site: Site, profiles: Profiles, *, state: SiteState | None = None, substep_s: float = 30.0
    ) -> None:
        super().__init__(site, profiles, state=state, speed=None)
        self.substep_s = substep_s
        self.generation = 0
        """Bumped whenever registers may have changed (time moved, a write landed)."""

    def advance(self, seconds: float, *, keepalive: Iterable[str] = ()) -> None:
        """Move the plant and every device's revert timer on by ``seconds`` (simulated).

        Parameters
        ----------
        keepalive
            Device ids whose revert timer is restarted at every substep (an emulated keep-alive).
        """
        alive = [self.served[d].adapter for d in keepalive if d in self.served]
        while seconds > 1e-9:
            dt = min(seconds, self.substep_s)
            self.step(dt, alive)
            seconds -= dt
        self.generation += 1

    def step(self, dt: float, alive: Iterable[Adapter] = ()) -> None:
        """One physics substep of ``dt`` seconds (override to observe the plant substep by substep)."""
        for adapter in alive:
            adapter.since_keepalive_s = 0.0
        for served in self.served.values():
            served.adapter.tick(dt)
        self.plant.advance(dt)

    def transports(self) -> dict[tuple[str, int], InProcessTransport]:
        """One transport per ``host:port`` of the site's devices (as :func:`~microgrid.telemetry.wiring.connect`)."""
        out: dict[tuple[str, int], InProcessTransport] = {}
        for served in self.served.values():
            key = (served.binding.host, served.binding.port)
            out.setdefault(key, InProcessTransport(self, *key))
        return out


class InProcessTransport(ModbusTransport):
    """What a :class:`~microgrid.telemetry.devices.Device` needs from a Modbus transport, served in process."""

    def __init__(self, sim: InProcessSite, host: str, port: int) -> None:
        super().__init__(host, port)
        self.sim = sim
        self.units: dict[int, _Served] = {
            s.binding.unit: s for s in sim.served.values() if (s.binding.host, s.binding.port) == (host, port)
        }
        self._images: dict[int, tuple[int, list[int]]] = {}

    def _served(self, unit: int, what: str) -> _Served:
        served = self.units.get(unit)
        if served is None:
            raise CommsError(f"{what}: no device answers as unit {unit}")
        fault = self.sim.faults.get(served.binding.id, Fault())
        if fault.silent:
            raise CommsError(f"{what}: no valid answer (device silent)")
        if fault.exception is not None:
            raise ExceptionCodeError(fault.exception, what)
        return served

    def _image(self, unit: int, served: _Served) -> list[int]:
        cached = self._images.get(unit)
        frozen = self.sim.faults.get(served.binding.id, Fault()).frozen
        if cached is not None and (cached[0] == self.sim.generation or frozen):
            return cached[1]
        registers = [0] * (served.span + 1)
        self.sim._refresh(served, served.start, registers)
        self._images[unit] = (self.sim.generation, registers)
        return registers

    async def read(self, unit: int, address: int, count: int, table: Table = "holding") -> list[int]:
        """``count`` registers from ``address``, encoded from the plant as the TCP simulator would."""
        what = f"{self.host}:{self.port} unit {unit} read {table} {address}+{count}"
        served = self._served(unit, what)
        offset = address - served.start
        image = self._image(unit, served)
        if offset < 0 or offset + count > len(image):
            raise ExceptionCodeError(2, what)
        return image[offset : offset + count]

    async def write(self, unit: int, address: int, registers: list[int]) -> None:
        """Apply a write through the simulator's own checks (writable, whole points, range)."""
        what = f"{self.host}:{self.port} unit {unit} write {address}+{len(registers)}"
        served = self._served(unit, what)
        if self.sim.faults.get(served.binding.id, Fault()).ignore_writes:
            return
        code = self.sim._apply_write(served, address, [int(r) for r in registers])
        self.sim.generation += 1
        if code is not None:
            raise ExceptionCodeError(int(code), what)

    def close(self) -> None:
        """Nothing to close."""


def in_process_devices(sim: InProcessSite) -> SiteDevices:
    """The site's devices (as :func:`~microgrid.telemetry.wiring.connect` builds them) wired to ``sim`` in process.

    Every device's clock is the plant's simulated clock (stale values age in simulated time).
    """
    site = sim.site
    maps = check_wiring(site)
    transports = sim.transports()

    def seconds() -> float:  # the plant's clock is a new Timestamp after every step: look it up each time
        return float(sim.plant.clock.timestamp())

    devices = {
        b.id: Device(
            b.id,
            maps[b.id],
            transports[(b.host, b.port)],
            b.unit,
            keepalive_s=b.keepalive_s,
            clock=seconds,
        )
        for b in site.devices
    }
    shared: dict[tuple[str, int], ModbusTransport] = dict(transports)
    return SiteDevices(devices, {b.id: b for b in site.devices}, shared)
