"""The simulator in process: the real register maps, codecs and devices, without sockets.

The simulated site (:class:`~microgrid.sim.server.SimulatedSite`) answers Modbus requests by encoding
its plant's live values into registers (:meth:`~microgrid.sim.server.SimulatedSite.refresh`) and by
decoding writes into plant commands (:meth:`~microgrid.sim.server.SimulatedSite.apply_write`). Here
the same two calls serve a :class:`MemoryTransport`, an implementation of the devices'
:class:`~microgrid.telemetry.transport.Transport` protocol. So everything the controller does, from
the read blocks and word orders to the writer's range checks and read-backs, runs unchanged; only TCP
is gone (a closed-loop month runs in minutes).

A device's register image is encoded once per *generation* of the site (bumped when time moves and by
every write) and served to every read block from that cache. Faults of
:class:`~microgrid.sim.server.Fault` honoured in process: ``silent`` (the request fails as a
:class:`~microgrid.telemetry.transport.CommsError`), ``exception`` (a Modbus exception code),
``frozen`` (reads return the image of the moment it froze), ``frozen_points`` and ``ignore_writes``.

Keep-alive: the simulated devices revert to their own behaviour when no new heartbeat arrives for
``revert_timeout_s`` (60 s). ``SimulatedSite.advance(seconds, keepalive=devices)`` emulates a live
controller's keep-alive instead of calling :meth:`~microgrid.control.Controller.keepalive` ~90 times
per 15-minute interval.
"""

from __future__ import annotations

from microgrid.sim.server import DeviceImage, Fault, SimulatedSite
from microgrid.telemetry.devices import Device
from microgrid.telemetry.transport import CommsError, ExceptionCodeError, Table, Transport
from microgrid.telemetry.wiring import SiteDevices, check_wiring

__all__ = ["MemoryTransport", "memory_devices", "memory_transports"]


class MemoryTransport:
    """The :class:`~microgrid.telemetry.transport.Transport` of one ``host:port`` of a simulated site, in process."""

    def __init__(self, sim: SimulatedSite, host: str, port: int) -> None:
        self.sim, self.host, self.port = sim, host, port
        self.units: dict[int, DeviceImage] = {
            s.binding.unit: s for s in sim.served.values() if (s.binding.host, s.binding.port) == (host, port)
        }
        self._images: dict[int, tuple[int, list[int]]] = {}

    def _served(self, unit: int, what: str) -> DeviceImage:
        served = self.units.get(unit)
        if served is None:
            raise CommsError(f"{what}: no device answers as unit {unit}")
        fault = self.sim.faults.get(served.binding.id, Fault())
        if fault.silent:
            raise CommsError(f"{what}: no valid answer (device silent)")
        if fault.exception is not None:
            raise ExceptionCodeError(fault.exception, what)
        return served

    def _image(self, unit: int, served: DeviceImage) -> list[int]:
        cached = self._images.get(unit)
        frozen = self.sim.faults.get(served.binding.id, Fault()).frozen
        if cached is not None and (cached[0] == self.sim.generation or frozen):
            return cached[1]
        registers = [0] * (served.span + 1)
        self.sim.refresh(served, served.start, registers)
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
        code = self.sim.apply_write(served, address, [int(r) for r in registers])
        if code is not None:
            raise ExceptionCodeError(int(code), what)

    def close(self) -> None:
        """Nothing to close."""


def memory_transports(sim: SimulatedSite) -> dict[tuple[str, int], MemoryTransport]:
    """One transport per ``host:port`` of the site's devices (as :func:`~microgrid.telemetry.wiring.connect`)."""
    out: dict[tuple[str, int], MemoryTransport] = {}
    for served in sim.served.values():
        key = (served.binding.host, served.binding.port)
        out.setdefault(key, MemoryTransport(sim, *key))
    return out


def memory_devices(sim: SimulatedSite) -> SiteDevices:
    """The site's devices (as :func:`~microgrid.telemetry.wiring.connect` builds them) wired to ``sim`` in process.

    Every device's clock is the plant's simulated clock (stale values age in simulated time).
    """
    site = sim.site
    maps = check_wiring(site)
    transports = memory_transports(sim)

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
    shared: dict[tuple[str, int], Transport] = dict(transports)
    return SiteDevices(devices, {b.id: b for b in site.devices}, shared)
