"""SCADA server under load: 20 clients poll every block at 1 Hz while the controller solves.

The demo's hospital (real solves: gap 3 %, 2 s limit) is served by the simulator on loopback and
driven cycle after cycle by the real controller, its SCADA server on a free port; 20 pymodbus
clients (in a process of their own) each read identity, status, commands and every asset block
once a second. Prints the
response times (p50, p99, max) and the cycles run and missed (target: p99 < 20 ms over loopback).

    python benchmarks/scada.py [--cycles 6] [--clients 20]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from microgrid.cli.demo import demo_site
from microgrid.control import Controller
from microgrid.control.runner import Runner
from microgrid.scada.endpoint import serving
from microgrid.scada.server import Options, ScadaServer
from microgrid.sim.ports import free_ports
from microgrid.sim.server import SimulatedSite
from microgrid.telemetry.wiring import connect

BLOCKS = ((0, 81), (100, 17), (200, 4), (1000, 48), (1200, 48), (1400, 4), (1500, 28), (1600, 2))
"""(address, count) of every block the clients poll (identity … fuels)."""


async def poll(port: int, stop: asyncio.Event, latencies: list[float], errors: list[str]) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    try:
        while not stop.is_set():
            started = time.perf_counter()
            for address, count in BLOCKS:
                t0 = time.perf_counter()
                response = await client.read_holding_registers(address, count=count, device_id=1)
                latencies.append(time.perf_counter() - t0)
                if response.isError():
                    errors.append(str(response))
            await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))
    finally:
        client.close()


def pollers(port: int, clients: int, seconds: float, results: Any) -> None:
    """In a process of its own (the clients must not share the server's event loop): poll for ``seconds``
    and put (latencies [s], errors) in ``results``."""

    async def run() -> None:
        stop, latencies, errors = asyncio.Event(), [], []  # type: ignore[var-annotated]
        tasks = [asyncio.create_task(poll(port, stop, latencies, errors)) for _ in range(clients)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        results.put((latencies, errors))

    asyncio.run(run())


async def main(cycles: int, clients: int) -> None:
    site, reference = demo_site()
    port = free_ports(1)[0]
    async with SimulatedSite(site, reference, speed=None) as sim:
        devices = connect(site)
        clock = lambda: sim.plant.clock.to_pydatetime()  # noqa: E731, PLW0108 - the plant clock is replaced as it moves
        controller = Controller(site, devices, reference, clock=clock)
        runner = Runner(controller, None)
        scada = ScadaServer(site, Options(port=port), None)
        scada.attach(runner)
        solve_s: list[float] = []
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        async with serving(scada):
            await runner.run_once()  # a snapshot to read from the start
            seconds = 2.0 + cycles * 3.0
            process = context.Process(target=pollers, args=(port, clients, seconds, results))
            process.start()
            await asyncio.sleep(2.0)  # the clients connect
            started = time.perf_counter()
            for _ in range(cycles):
                report = await runner.run_once()
                solve_s.append(report.phases_s.get("solve", 0.0))
                for _ in range(30):  # the interval's keep-alives, 30 s apart
                    sim.advance(30.0)
                    await controller.keepalive()
            busy_s = time.perf_counter() - started
            latencies, errors = await asyncio.to_thread(results.get)
            await asyncio.to_thread(process.join)
        devices.close()
    ms = sorted(1000 * x for x in latencies)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    print(
        f"{clients} clients, {len(ms)} reads; {cycles} cycles in {busy_s:.1f} s meanwhile"
        f" (solve {statistics.median(solve_s):.2f} s median)"
    )
    print(f"response time: p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms")
    done = scada.snapshot.cycles - 1
    print(f"errors: {len(errors)}; cycles run {done} of {cycles} (missed {cycles - done})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.cycles, args.clients))
