"""The simulated site served as real Modbus TCP devices on loopback.

Every device of the site's ``devices`` section is served at its ``host:port`` and unit id
with its register map (devices sharing a port share one server, like a gateway), backed by
:class:`~microgrid.sim.physics.SitePlant`. Reads encode the plant's live values with the
same codec the client decodes with; writes are checked against the map (writable, whole
points, range, enumerated values: else Modbus exception 2 or 3) and then drive the plant.

Time runs at ``speed`` simulated seconds per real second (``speed=None``: only
:meth:`SimulatedSite.advance` moves it, for tests).

Faults, for tests and drills (:class:`Fault`, set in ``SimulatedSite.faults[device_id]``):
``silent`` (stops answering), ``delay_s`` (answers late), ``exception`` (answers with a
Modbus exception code), ``garbage`` (malformed response frames), ``frozen`` (registers stop
updating), ``frozen_points`` (only the points named stop updating), ``ignore_writes`` (accepts
writes without acting on them).
:meth:`SimulatedSite.take_offline` closes a device's endpoint (connection refused) and
:meth:`SimulatedSite.bring_online` opens it again. Plant-level faults (grid loss and return, an
inverter trip, a genset that fails to start) are methods of the plant (``SimulatedSite.plant``,
:class:`~microgrid.sim.physics.SitePlant`).

Every write a device accepts is logged in ``SimulatedSite.writes`` (:class:`~microgrid.sim.truth.WriteRecord`:
the plant's time, device, point, value, asset; ``applied=False`` when the device ignored it), so
that a drill can hold each one against the plant's true state (:mod:`microgrid.sim.truth`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer, ModbusTlsServer
from pymodbus.simulator import DataType, SimData, SimDevice

from microgrid.point_names import feeder_command_number
from microgrid.profiles import Profiles
from microgrid.sim.adapters import (
    Adapter,
    BatteryAdapter,
    FeederAdapter,
    GensetAdapter,
    GridMeterAdapter,
    PVAdapter,
)
from microgrid.sim.physics import SitePlant
from microgrid.sim.sunspec_image import ModelSpec, build_image
from microgrid.sim.truth import WriteRecord
from microgrid.site import Site
from microgrid.site.devices import DeviceBinding
from microgrid.state import SiteState
from microgrid.telemetry.maps import RegisterMap, load_site_map
from microgrid.telemetry.registers import EncodeError, Quality, decode, encode, encode_sentinel

__all__ = ["MAX_SUBSTEP_S", "DeviceImage", "Fault", "SimulatedSite", "Substep"]

log = logging.getLogger(__name__)
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

MAX_SUBSTEP_S = 2.0
"""Largest physics step [simulated s]."""

SUNSPEC_BASE = 40000
"""Where battery inverters answer as SunSpec devices in ``sunspec`` mode (read-only)."""


@dataclass
class Fault:
    """A device misbehaving on purpose."""

    silent: bool = False
    delay_s: float = 0.0
    exception: int | None = None
    garbage: bool = False
    frozen: bool = False
    ignore_writes: bool = False
    """Accept writes without acting on them (a controller in local mode): read-backs then differ."""
    frozen_points: frozenset[str] = frozenset()
    """Points that keep the value of the first read under this fault while the rest update (a stuck
    sensor or BMS value, e.g. ``{"soc_pct"}``)."""


@dataclass(frozen=True)
class Substep:
    """One physics substep that just ran: its length [simulated s], its start, and whether the grid was up
    at its start."""

    dt_s: float
    started: pd.Timestamp
    grid_up: bool


@dataclass
class DeviceImage:
    """One simulated device, socket-free: its binding, register map and plant adapter, and the address span
    its points cover (``start`` … ``start + span``). :meth:`SimulatedSite.refresh` encodes the plant's
    live values into its registers and :meth:`SimulatedSite.apply_write` decodes a write into plant
    commands; the TCP server and the in-memory transport (:mod:`microgrid.sim.memory`) both go through
    them."""

    binding: DeviceBinding
    regmap: RegisterMap
    adapter: Adapter
    start: int = 0
    span: int = 0


def _adapter(binding: DeviceBinding, regmap: RegisterMap, plant: SitePlant) -> Adapter:
    kind = regmap.device_class
    if kind == "battery_inverter":
        return BatteryAdapter(plant, asset=binding.asset or "")
    if kind == "genset_controller":
        return GensetAdapter(plant, asset=binding.asset or "")
    if kind == "pv_inverter":
        return PVAdapter(plant, asset=binding.asset or "")
    if kind == "grid_meter":
        return GridMeterAdapter(plant)
    if kind == "load_feeder":
        return FeederAdapter(plant, feeders=dict(binding.feeders))
    raise ValueError(f"the simulator has no model of a {kind!r} device (map {regmap.name!r})")


class SimulatedSite:
    """A site's physics behind Modbus TCP servers on loopback.

    Parameters
    ----------
    site
        The site; its ``devices`` section says what to serve where.
    profiles
        Loads, PV and outage pattern over time (repeated past their end).
    speed
        Simulated seconds per real second; None: time moves only through :meth:`advance`.
    tick_s
        Real seconds between physics updates when ``speed`` is set.
    start
        The plant's first moment (UTC; default the profiles' first step).
    substep_s
        Largest physics step [simulated s] (2 s; a simulation's 30 s keeps a genset's 30-s start delay
        and 5 kW/s ramp meaningful at a fifteenth of the cost).
    tls
        ``(host, port)`` → server TLS context: those endpoints speak Modbus/TCP Security.
    """

    def __init__(
        self,
        site: Site,
        profiles: Profiles,
        *,
        state: SiteState | None = None,
        speed: float | None = 60.0,
        tick_s: float = 0.1,
        sunspec: bool = False,
        start: pd.Timestamp | None = None,
        substep_s: float = MAX_SUBSTEP_S,
        tls: Mapping[tuple[str, int], ssl.SSLContext] | None = None,
    ) -> None:
        self.site, self.speed, self.tick_s, self.sunspec = site, speed, tick_s, sunspec
        self.tls = dict(tls or {})
        self.plant = SitePlant(site, profiles, state, start=start)
        self.faults: dict[str, Fault] = {}
        self.writes: list[WriteRecord] = []
        """Every write a device accepted, in order (module docstring)."""
        self._held: dict[str, dict[str, Any]] = {}
        """Device id → the values its ``frozen_points`` hold."""
        self.served: dict[str, DeviceImage] = {}
        for binding in site.devices:
            regmap = load_site_map(binding.map, site.resolve)
            span_start = min(p.address for p in regmap.points)
            span_end = max(p.address + p.words for p in regmap.points)
            adapter = _adapter(binding, regmap, self.plant)
            self.served[binding.id] = DeviceImage(binding, regmap, adapter, span_start, span_end - span_start)
        self.substep_s = substep_s
        self.generation = 0
        """Bumped whenever registers may have changed (time moved, a write arrived): a cached image is
        good while it stays the same."""
        self.on_substep: Callable[[Substep], None] | None = None
        """Called after every physics substep (a simulation meters the plant with it)."""
        self._servers: dict[tuple[str, int], ModbusTcpServer] = {}
        self._clock_task: asyncio.Task[None] | None = None

    # -- time ------------------------------------------------------------------------------

    def advance(self, seconds: float, *, keepalive: Iterable[str] = ()) -> None:
        """Move the plant and every device's revert timer on by ``seconds`` (simulated), in substeps of at
        most :attr:`substep_s`; each substep is reported to :attr:`on_substep`.

        Parameters
        ----------
        keepalive
            Device ids whose revert timer restarts at every substep: an emulated keep-alive (a
            simulation's controller does not write heartbeats ~90 times an interval).
        """
        alive = [self.served[d].adapter for d in keepalive if d in self.served]
        while seconds > 1e-9:
            dt = min(seconds, self.substep_s)
            started, grid_up = self.plant.clock, self.plant.grid_up
            for adapter in alive:
                adapter.since_keepalive_s = 0.0
            for served in self.served.values():
                served.adapter.tick(dt)
            self.plant.advance(dt)
            if self.on_substep is not None:
                self.on_substep(Substep(dt, started, grid_up))
            seconds -= dt
        self.generation += 1

    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.tick_s)
            now = loop.time()
            self.advance((now - last) * (self.speed or 0.0))
            last = now

    # -- serving ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open every endpoint and start the clock."""
        for endpoint in {(s.binding.host, s.binding.port) for s in self.served.values()}:
            await self._open(endpoint)
        if self.speed:
            self._clock_task = asyncio.create_task(self._run_clock())

    async def stop(self) -> None:
        """Stop the clock and close every endpoint."""
        if self._clock_task is not None:
            self._clock_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock_task
            self._clock_task = None
        for endpoint in list(self._servers):
            await self._close(endpoint)

    async def __aenter__(self) -> SimulatedSite:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def take_offline(self, device_id: str) -> None:
        """Close the endpoint of ``device_id`` (and of every device sharing it)."""
        binding = self.served[device_id].binding
        await self._close((binding.host, binding.port))

    async def bring_online(self, device_id: str) -> None:
        """Open the endpoint of ``device_id`` again."""
        binding = self.served[device_id].binding
        await self._open((binding.host, binding.port))

    async def _open(self, endpoint: tuple[str, int]) -> None:
        if endpoint in self._servers:
            return
        here = [s for s in self.served.values() if (s.binding.host, s.binding.port) == endpoint]
        devices = [self._sim_device(s) for s in here]
        units = {s.binding.unit: s.binding.id for s in here}
        if endpoint in self.tls:
            server: ModbusTcpServer = ModbusTlsServer(
                devices, address=endpoint, sslctx=self.tls[endpoint], trace_packet=self._garbler(units)
            )
        else:
            server = ModbusTcpServer(devices, address=endpoint, trace_packet=self._garbler(units))
        await server.serve_forever(background=True)
        self._servers[endpoint] = server

    async def _close(self, endpoint: tuple[str, int]) -> None:
        server = self._servers.pop(endpoint, None)
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]

    def _sim_device(self, served: DeviceImage) -> SimDevice:
        blocks = [SimData(served.start, count=served.span + 1, values=0, datatype=DataType.REGISTERS)]
        if self.sunspec and served.regmap.device_class == "battery_inverter":
            size = len(self._sunspec_image(served))
            blocks.append(SimData(SUNSPEC_BASE, count=size + 1, values=0, datatype=DataType.REGISTERS))

        async def action(
            func_code: int, start: int, address: int, count: int, registers: list[int], values: Any
        ) -> ExcCodes | None:
            if address >= SUNSPEC_BASE and self.sunspec:
                return self._on_sunspec(served, start, registers, values)
            return await self._on_request(served, start, address, registers, values)

        return SimDevice(served.binding.unit, simdata=blocks, action=action)

    def _sunspec_image(self, served: DeviceImage) -> dict[int, int]:
        """Models 1 (common), 124 (storage) and 802 (battery) from the live battery, SunSpec units (W, %)."""
        bat = self.plant.batteries[served.binding.asset or ""]
        spec, (low, high) = bat.spec, bat.limits_kw(1.0)
        charging = 4 if bat.power_kw < -1e-6 else (3 if bat.power_kw > 1e-6 else 6)
        common = {"Mn": "microgrid", "Md": "simulated battery inverter", "SN": served.binding.id, "Vr": "1"}
        storage = {"WChaMax": spec.max_charge_kw * 1000, "ChaState": round(bat.soc * 100, 1), "ChaSt": charging}
        battery = {
            "WHRtg": spec.capacity_kwh * 1000,
            "WChaRteMax": -low * 1000,
            "WDisChaRteMax": high * 1000,
            "SoC": round(bat.soc * 100, 1),
            "SoH": 100,
            "W": round(bat.power_kw * 1000),
        }
        models = [ModelSpec(1, common), ModelSpec(124, storage), ModelSpec(802, battery)]
        return build_image(models, SUNSPEC_BASE)

    def _on_sunspec(self, served: DeviceImage, start: int, registers: list[int], values: Any) -> ExcCodes | None:
        if values is not None:
            return ExcCodes.ILLEGAL_ADDRESS  # the SunSpec view is read-only: control goes through the generic map
        for address, word in self._sunspec_image(served).items():
            registers[address - start] = word
        return None

    def _garbler(self, units: dict[int, str]) -> Any:
        def trace(sending: bool, data: bytes) -> bytes:
            if sending and len(data) > 8 and (fault := self.faults.get(units.get(data[6], ""))) and fault.garbage:
                return data[:8] + bytes([0xFF]) + data[9:]
            return data

        return trace

    async def _on_request(
        self, served: DeviceImage, start: int, address: int, registers: list[int], values: list[int] | None
    ) -> ExcCodes | None:
        fault = self.faults.get(served.binding.id, Fault())
        if fault.silent:
            await asyncio.sleep(3600)
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.exception is not None:
            return ExcCodes(fault.exception)
        if values is None:
            if not fault.frozen:
                self.refresh(served, start, registers)
            return None
        if fault.ignore_writes:
            with contextlib.suppress(ValueError):  # a write the map would refuse is not logged
                self._log(served, self._decode_write(served, address, [int(v) for v in values]), applied=False)
            self.refresh(served, start, registers)
            values[:] = registers[address - start : address - start + len(values)]
            return None
        return self.apply_write(served, address, [int(v) for v in values])

    # -- registers <-> plant -------------------------------------------------------------------

    def refresh(self, served: DeviceImage, start: int, registers: list[int]) -> None:
        """Encode the device's live values (its ``frozen_points`` held) into ``registers``, which begin at
        address ``start``; a value the codec cannot carry reads as the point's sentinel (or zeros)."""
        values = self._with_held(served.binding.id, served.adapter.values())
        for point in served.regmap.points:
            codec = served.regmap.codecs[point.name]
            value = values.get(point.name)
            try:
                words = encode(value, codec) if value is not None else encode_sentinel(codec)
            except (EncodeError, ValueError):
                words = encode_sentinel(codec) if codec.sentinel is not None else [0] * point.words
            offset = point.address - start
            registers[offset : offset + point.words] = words

    def _with_held(self, device: str, values: Mapping[str, Any]) -> Mapping[str, Any]:
        """``values`` with the device's ``frozen_points`` at the value they had at the first read under the fault."""
        points = self.faults.get(device, Fault()).frozen_points
        if not points:
            self._held.pop(device, None)
            return values
        held = self._held.setdefault(device, {})
        for name in points:
            held.setdefault(name, values.get(name))
        return {**values, **{n: v for n, v in held.items() if n in points}}

    def apply_write(self, served: DeviceImage, address: int, values: list[int]) -> ExcCodes | None:
        """Check a write of ``values`` at ``address`` against the map (writable, whole points, range,
        enumerated values) and drive the plant with it (logged in :attr:`writes`); the Modbus exception
        code of a refused write (2 address, 3 value), None when applied."""
        self.generation += 1
        try:
            decoded = self._decode_write(served, address, values)
        except ValueError as exc:
            return ExcCodes.ILLEGAL_ADDRESS if str(exc) == "address" else ExcCodes.ILLEGAL_VALUE
        self._log(served, decoded, applied=True)
        for name, value in decoded.items():
            served.adapter.write(name, value)
        return None

    def _decode_write(self, served: DeviceImage, address: int, values: list[int]) -> dict[str, Any]:
        """The points a write covers and their values; ValueError("address") / ValueError("value") if refused."""
        end = address + len(values)
        hit = [p for p in served.regmap.points if p.address < end and p.address + p.words > address]
        covered = sum(p.words for p in hit)
        if not hit or covered != len(values) or any(p.address < address or p.address + p.words > end for p in hit):
            raise ValueError("address")
        if any(not p.writable for p in hit):
            raise ValueError("address")
        decoded = {}
        for point in hit:
            words = values[point.address - address : point.address - address + point.words]
            result = decode(words, served.regmap.codecs[point.name])
            in_choices = point.values is None or result.value in point.values
            if result.quality is not Quality.OK or result.value is None or not in_choices:
                raise ValueError("value")
            decoded[point.name] = result.value
        return decoded

    def _log(self, served: DeviceImage, decoded: Mapping[str, Any], *, applied: bool) -> None:
        binding, now = served.binding, self.plant.clock.to_pydatetime()
        tiers = {n: tier for tier, n in binding.feeders.items()} if binding.feeders else {}
        for name, value in decoded.items():
            asset = binding.asset
            if (feeder := feeder_command_number(name)) is not None:
                asset = tiers.get(feeder)
            number = float(value) if isinstance(value, int | float) else float("nan")
            record = WriteRecord(now, binding.id, served.regmap.device_class, name, number, asset, applied)
            self.writes.append(record)
