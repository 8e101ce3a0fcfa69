"""`microgrid demo --scada`: the demo's controller is served while the simulated day runs; SCADA's emergency
command is applied at a later cycle and recorded with the client's identity."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

from microgrid.cli.demo import run_demo
from microgrid.scada.server import Options
from microgrid.sim.ports import free_ports
from microgrid.store import Store


async def cycles_served(client: AsyncModbusTcpClient) -> int:
    """The server's cycle counter (0 while it cannot be read yet)."""
    if not client.connected and not await client.connect():
        return 0
    response = await client.read_holding_registers(115, count=2, device_id=1)
    return 0 if response.isError() else (response.registers[0] << 16) | response.registers[1]


def test_demo_serves_scada_and_takes_emergency(tmp_path: Path) -> None:
    port = free_ports(1)[0]

    async def go() -> list[tuple[str, str]]:
        with Store(tmp_path / "history.sqlite") as store:
            demo = asyncio.create_task(run_demo(1.0, None, store, Options(port=port, writes=True)))
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
            deadline = time.monotonic() + 60
            while await cycles_served(client) < 1:  # until the first cycle is published
                assert time.monotonic() < deadline and not demo.done()
                await asyncio.sleep(0.1)
            assert not (await client.write_register(201, 1, device_id=1)).isError()
            client.close()
            day = await demo
            assert any(row["emergency"] for row in day.rows)
            actions = store.actions()
            return list(zip(actions["by"], actions["status"], strict=True))

    ((by, status),) = asyncio.run(go())
    assert by.startswith("scada:127.0.0.1:") and status == "applied"
