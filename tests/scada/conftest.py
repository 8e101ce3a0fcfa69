"""A controller against the simulated hospital over TCP, recording in a real SQLite store, served to SCADA.

:func:`run_scada` serves the hospital (``speed=None``: the plant moves only when a test says so) with
the stub optimizer of ``tests/control`` (a cycle takes well under a second), builds a :class:`Runner`
on a real store and a :class:`ScadaServer` on a free loopback port, and runs an async body against a
:class:`ScadaRig`. A pymodbus client is connected for the body; :func:`raw_request` is an independent
client written from the Modbus TCP specification (MBAP header + PDU) with a plain socket.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pymodbus.client import AsyncModbusTcpClient

from microgrid.control.runner import Runner
from microgrid.profiles import Profiles
from microgrid.scada.endpoint import serving
from microgrid.scada.server import Options, ScadaServer
from microgrid.sim.ports import free_ports
from microgrid.site import Site
from microgrid.store import Store
from tests.control.conftest import Optimizer, Rig, hospital, run_rig, tcp_hospital, winter  # noqa: F401 - fixtures

T = TypeVar("T")


@dataclass
class ScadaRig:
    rig: Rig
    runner: Runner
    store: Store
    scada: ScadaServer
    client: AsyncModbusTcpClient

    async def cycle(self) -> Any:
        return await self.runner.run_once()

    async def read(self, address: int, count: int = 1) -> list[int]:
        response = await self.client.read_holding_registers(address, count=count, device_id=1)
        assert not response.isError(), response
        return list(response.registers)

    async def read_u32(self, address: int) -> int:
        high, low = await self.read(address, 2)
        return (high << 16) | low

    async def read_s32(self, address: int) -> int:
        value = await self.read_u32(address)
        return value - (1 << 32) if value >= 1 << 31 else value

    async def write(self, address: int, words: list[int]) -> Any:
        if len(words) == 1:
            return await self.client.write_register(address, words[0], device_id=1)
        return await self.client.write_registers(address, words, device_id=1)


def s32(value: int) -> list[int]:
    """A signed 32-bit value as two big-endian-ordered registers."""
    raw = value & 0xFFFF_FFFF
    return [raw >> 16, raw & 0xFFFF]


def run_scada(
    site: Site,
    profiles: Profiles,
    tmp_path: Path,
    body: Callable[[ScadaRig], Awaitable[T]],
    *,
    optimizer: Any = None,
    clock: Callable[[], float] | None = None,
    resume: bool = False,
    **options: Any,
) -> T:
    """Serve ``site``, run its controller with a store and a SCADA server (``options``), run ``body``;
    ``resume``: the runner resumes from the store left in ``tmp_path`` first (a restart)."""
    port = free_ports(1)[0]

    async def go(rig: Rig) -> T:
        path = tmp_path / "history.sqlite"
        with Store(path, retention_days=None) as store, Store(path, retention_days=None) as sink:
            runner = Runner(rig.ctl, store)  # the server's thread has its own connection (sink), as in serve_runner
            if resume:
                runner.resume(keep_mode=False)
            scada = ScadaServer(site, Options(port=port, **options), sink, clock=clock or time.monotonic)
            scada.attach(runner)
            async with serving(scada):
                client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
                await client.connect()  # refused by an allowlist: the body finds out
                try:
                    return await body(ScadaRig(rig, runner, store, scada, client))
                finally:
                    client.close()

    return run_rig(site, profiles, go, optimizer=optimizer or Optimizer("stub"))


def raw_request(port: int, pdu: bytes, *, transaction: int = 7, unit: int = 1) -> bytes:
    """Send one Modbus TCP request (MBAP: transaction, protocol 0, length, unit; then ``pdu``) on a plain
    socket and return the response's PDU (function code onwards)."""
    import socket

    frame = struct.pack(">HHHB", transaction, 0, len(pdu) + 1, unit) + pdu
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(frame)
        header = _recv(sock, 7)
        tid, proto, length, unit_back = struct.unpack(">HHHB", header)
        assert (tid, proto, unit_back) == (transaction, 0, unit)
        return _recv(sock, length - 1)


def _recv(sock: Any, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed"
        data += chunk
    return data
