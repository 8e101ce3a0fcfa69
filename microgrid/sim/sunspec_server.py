"""Serve a SunSpec register image over Modbus TCP (pymodbus simulator), with live updates.

:class:`ImageDevice` owns the live registers of an image (see :mod:`microgrid.sim.sunspec_image`)
and turns them into a pymodbus :class:`~pymodbus.simulator.SimDevice`: one holding-register block
per contiguous run of the image; reads of addresses outside the image get Modbus exception 2
(illegal data address), as a real SunSpec device answers for unmapped registers. The device's
action hook copies the live registers into the response of every read and records every write,
so :meth:`ImageDevice.update` / :meth:`ImageDevice.set_point` change what clients read at once,
and :attr:`ImageDevice.registers` shows what clients wrote.

:func:`serve_sunspec` runs a :class:`~pymodbus.server.ModbusTcpServer` for the duration of an
``async with`` block and yields the TCP port it listens on (port 0: a free one chosen by the OS).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from microgrid.sim.sunspec_image import point_registers
from microgrid.telemetry.registers import Value

__all__ = ["ImageDevice", "serve_sunspec"]


def _runs(addresses: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs of sorted addresses as (start, count)."""
    runs: list[tuple[int, int]] = []
    for _, group in itertools.groupby(enumerate(addresses), key=lambda pair: pair[1] - pair[0]):
        members = [address for _, address in group]
        runs.append((members[0], len(members)))
    return runs


def _check(registers: Mapping[int, int]) -> None:
    for address, value in registers.items():
        if not 0 <= address <= 0xFFFF or not 0 <= value <= 0xFFFF:
            raise ValueError(f"register {address} = {value}: address and value must be in 0…65535")


class ImageDevice:
    """The live registers of a SunSpec image, served as a pymodbus device.

    Parameters
    ----------
    image
        Address → register (0…65535), e.g. from :func:`~microgrid.sim.sunspec_image.build_image`.
        Copied: the device's :attr:`registers` are its own.
    """

    def __init__(self, image: Mapping[int, int]) -> None:
        if not image:
            raise ValueError("an image needs at least one register")
        _check(image)
        self.registers: dict[int, int] = dict(image)

    def update(self, changes: Mapping[int, int]) -> None:
        """Change registers of the image (address → value); clients read the new values at once."""
        _check(changes)
        outside = sorted(set(changes) - set(self.registers))
        if outside:
            raise KeyError(f"address(es) {outside[:5]} are not part of the image")
        self.registers.update(changes)

    def set_point(self, model_id: int, name: str, value: Value, *, instance: int = 0) -> None:
        """Set a point of a model (SunSpec point name, SunSpec units) to ``value``, live."""
        self.update(point_registers(self.registers, model_id, name, value, instance=instance))

    def read(self, address: int, count: int) -> list[int]:
        """``count`` registers from ``address`` (``KeyError`` outside the image)."""
        return [self.registers[a] for a in range(address, address + count)]

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus action hook: serve live values on reads, record writes (``registers``: the whole block)."""
        if set_values is None:
            for a in range(address, address + count):
                registers[a - start_address] = self.registers[a]
        else:
            for a, value in zip(range(address, address + count), set_values, strict=True):
                self.registers[a] = int(value)
        return None

    def sim_device(self, unit: int = 1) -> SimDevice:
        """A pymodbus simulator device answering on ``unit`` with this image as holding registers."""
        if not 0 <= unit <= 247:
            raise ValueError(f"unit id must be in 0…247, got {unit}")
        blocks = [
            SimData(start, count=count, values=0, datatype=DataType.REGISTERS)
            for start, count in _runs(sorted(self.registers))
        ]
        return SimDevice(unit, simdata=blocks, action=self._action)


@asynccontextmanager
async def serve_sunspec(
    image: ImageDevice | Mapping[int, int], host: str = "127.0.0.1", port: int = 0, unit: int = 1
) -> AsyncIterator[int]:
    """Serve ``image`` on Modbus TCP at ``host:port`` (0: a free port) as unit ``unit``; yield the bound port.

    Pass an :class:`ImageDevice` to change values while serving; a mapping is served as it is.
    """
    device = image if isinstance(image, ImageDevice) else ImageDevice(image)
    server = ModbusTcpServer(device.sim_device(unit), address=(host, port))
    await server.serve_forever(background=True)
    try:
        sockets = getattr(server.transport, "sockets", None) or ()
        if not sockets:
            raise RuntimeError(f"the Modbus server did not start listening on {host}:{port}")
        yield int(sockets[0].getsockname()[1])
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
