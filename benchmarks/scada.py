"""SCADA server under load: 20 clients poll every block at 1 Hz while the controller cycles and solves.

The demo's hospital (real solves: gap 3 %, 2 s limit) is served by the simulator on loopback and
driven by the real controller, its SCADA server on a free port; 20 pymodbus clients (in a process
of their own) each read identity, status, commands and every asset block once a second. The
controller keeps cycling for the whole polling window: one cycle per ``--interval-s`` of wall time
(a compressed 15-min interval; between cycles the plant moves 15 min with the keep-alives), each
started on its boundary. Prints the response times (p50, p99, max) over all reads, over the reads
sent while a cycle ran and while a solve ran (target: p99 < 20 ms over loopback), the share of the
window the controller was busy, and the cycles missed: a cycle that overran its interval or did
not start on its boundary (later than 10 % of the interval), and every boundary skipped.

    python benchmarks/scada.py [--seconds 20] [--interval-s 1.5] [--clients 20]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
WARMUP_S = 2.0
"""The clients connect [s] before the first cycle's boundary."""


async def poll(port: int, stop: asyncio.Event, reads: list[tuple[float, float]], errors: list[str], seed: int) -> None:
    """Poll every block once a second until ``stop``, from a random phase in the second (SCADA clients are not
    in step); each read as (sent at [monotonic s], response time [s])."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    await asyncio.sleep(random.Random(seed).uniform(0.0, 1.0))
    try:
        while not stop.is_set():
            started = time.perf_counter()
            for address, count in BLOCKS:
                sent, t0 = time.monotonic(), time.perf_counter()
                response = await client.read_holding_registers(address, count=count, device_id=1)
                reads.append((sent, time.perf_counter() - t0))
                if response.isError():
                    errors.append(str(response))
            await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))
    finally:
        client.close()


def pollers(port: int, clients: int, seconds: float, results: Any) -> None:
    """In a process of its own (the clients must not share the server's event loop): poll for ``seconds``
    and put (reads, errors) in ``results`` (time.monotonic is the system's monotonic clock: the same here)."""

    async def run() -> None:
        stop, reads, errors = asyncio.Event(), [], []  # type: ignore[var-annotated]
        tasks = [asyncio.create_task(poll(port, stop, reads, errors, seed)) for seed in range(clients)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        results.put((reads, errors))

    asyncio.run(run())


@dataclass
class Timeline:
    """When the controller was busy (monotonic s) and how its cycles kept their boundaries."""

    cycles: list[tuple[float, float]] = field(default_factory=list)
    solves: list[tuple[float, float]] = field(default_factory=list)
    late: int = 0
    overran: int = 0
    skipped: int = 0


def timed(optimizer: Callable[[Any], Any], solves: list[tuple[float, float]]) -> Callable[[Any], Any]:
    """``optimizer`` noting each call's (start, end) [monotonic s] in ``solves`` (it runs in a worker thread)."""

    def solve(inputs: Any) -> Any:
        started = time.monotonic()
        try:
            return optimizer(inputs)
        finally:
            solves.append((started, time.monotonic()))

    return solve


async def drive(runner: Runner, sim: SimulatedSite, first_s: float, end_s: float, interval_s: float) -> Timeline:
    """Run a cycle on every boundary ``first_s + k × interval_s`` before ``end_s`` (monotonic s); after each,
    the plant moves one site interval with the keep-alives (as the runner's keep-alive loop would)."""
    line = Timeline()
    runner.controller.optimizer = timed(runner.controller.optimizer, line.solves)
    site_interval_s = runner.controller.site.control.interval.total_seconds()
    boundary = first_s
    while boundary < end_s:
        await asyncio.sleep(max(0.0, boundary - time.monotonic()))
        started = time.monotonic()
        line.late += started - boundary > 0.1 * interval_s
        await runner.run_once()
        ended = time.monotonic()
        line.cycles.append((started, ended))
        line.overran += ended - started > interval_s
        for _ in range(int(site_interval_s // 30)):  # the interval's keep-alives, 30 s apart
            sim.advance(30.0)
            await runner.controller.keepalive()
        after = boundary + interval_s
        while after < time.monotonic() and after < end_s:  # a boundary passed while busy: skipped
            line.skipped, after = line.skipped + 1, after + interval_s
        boundary = after
    return line


def during(reads: list[tuple[float, float]], windows: list[tuple[float, float]]) -> list[float]:
    """Response times [ms] of the reads sent inside one of ``windows``."""
    return sorted(1000 * lat for sent, lat in reads if any(a <= sent <= b for a, b in windows))


def figures(ms: list[float]) -> str:
    if not ms:
        return "no reads"
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    return f"{len(ms)} reads: p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms"


async def main(seconds: float, interval_s: float, clients: int) -> None:
    site, reference = demo_site()
    port = free_ports(1)[0]
    async with SimulatedSite(site, reference, speed=None) as sim:
        devices = connect(site)
        clock = lambda: sim.plant.clock.to_pydatetime()  # noqa: E731, PLW0108 - the plant clock is replaced as it moves
        controller = Controller(site, devices, reference, clock=clock)
        runner = Runner(controller, None)
        scada = ScadaServer(site, Options(port=port), None)
        scada.attach(runner)
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        async with serving(scada):
            await runner.run_once()  # a snapshot to read from the start
            process = context.Process(target=pollers, args=(port, clients, WARMUP_S + seconds, results))
            process.start()
            first_s = time.monotonic() + WARMUP_S
            line = await drive(runner, sim, first_s, first_s + seconds, interval_s)
            reads, errors = await asyncio.to_thread(results.get)
            await asyncio.to_thread(process.join)
        devices.close()
    report(line, reads, errors, seconds=seconds, interval_s=interval_s, clients=clients)


def report(
    line: Timeline,
    reads: list[tuple[float, float]],
    errors: list[str],
    *,
    seconds: float,
    interval_s: float,
    clients: int,
) -> None:
    busy_s = sum(b - a for a, b in line.cycles)
    solve_s = [b - a for a, b in line.solves]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} cores; GIL switch interval {1000 * sys.getswitchinterval():g} ms")
    print(
        f"{clients} clients; {len(line.cycles)} cycles on {interval_s:g}-s boundaries over {seconds:g} s,"
        f" busy {busy_s:.1f} s ({100 * busy_s / seconds:.0f} %), solve {statistics.median(solve_s or [0]):.2f} s median"
    )
    print(f"all reads:          {figures(sorted(1000 * lat for _, lat in reads))}")
    print(f"while a cycle ran:  {figures(during(reads, line.cycles))}")
    print(f"while a solve ran:  {figures(during(reads, line.solves))}")
    missed = line.late + line.overran + line.skipped
    print(
        f"errors: {len(errors)}; cycles missed {missed}"
        f" ({line.late} late on their boundary, {line.overran} overran the interval, {line.skipped} boundaries skipped)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="the polling window the controller cycles in [s]")
    parser.add_argument("--interval-s", type=float, default=1.5, help="wall seconds per cycle (a compressed interval)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--switch-interval-s", type=float, help="sys.setswitchinterval for the controller's process")
    args = parser.parse_args()
    if args.switch_interval_s is not None:
        sys.setswitchinterval(args.switch_interval_s)
    asyncio.run(main(args.seconds, args.interval_s, args.clients))
