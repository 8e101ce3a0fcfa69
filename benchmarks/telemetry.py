"""Telemetry benchmark: a full read of a 10-device site over loopback, and simulator throughput.

    python benchmarks/telemetry.py [--reads N]

The site is the shipped hospital plus a third battery, genset and PV array (10 Modbus devices
on 8 endpoints: two gensets behind one gateway port), served by the simulated site on
127.0.0.1 with the generic maps. Prints the latency of ``SiteDevices.read_all()`` (every
point of every device, in as few requests as the maps allow; endpoints read concurrently)
and the simulator's throughput in requests per second, sequential and with 10 concurrent
clients. Target (issue 3): a full read in < 100 ms over loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from microgrid.profiles import read_profiles
from microgrid.sim.ports import on_free_ports
from microgrid.sim.server import SimulatedSite
from microgrid.site import Site, site_from_dict
from microgrid.telemetry.transport import ModbusTransport
from microgrid.telemetry.wiring import connect

ROOT = Path(__file__).resolve().parent.parent


def ten_device_site() -> Site:
    """The hospital with bess3, dg3 and roof2 added: 10 devices, endpoints on free ports."""
    raw: dict[str, Any] = yaml.safe_load((ROOT / "models/sites/hospital.yaml").read_text())
    raw["batteries"].append({**copy.deepcopy(raw["batteries"][0]), "id": "bess3"})
    raw["generators"].append({**copy.deepcopy(raw["generators"][0]), "id": "dg3"})
    raw["pv"].append({"id": "roof2", "peak_kw": 80})
    raw["devices"] += [
        {"id": "bess3-inverter", "map": "generic-battery-inverter", "port": 1, "asset": "bess3"},
        {"id": "dg3-controller", "map": "generic-genset-controller", "port": 15023, "unit": 3, "asset": "dg3"},
        {"id": "roof2-inverter", "map": "generic-pv-inverter", "port": 2, "asset": "roof2"},
    ]
    return on_free_ports(site_from_dict(raw, "ten-device hospital"))


async def _throughput(port: int, requests: int, clients: int) -> float:
    transports = [ModbusTransport("127.0.0.1", port, timeout_s=1.0) for _ in range(clients)]

    async def client(t: ModbusTransport) -> None:
        for _ in range(requests // clients):
            await t.read(1, 100, 20)

    start = time.perf_counter()
    await asyncio.gather(*(client(t) for t in transports))
    elapsed = time.perf_counter() - start
    for t in transports:
        t.close()
    return requests / elapsed


async def main(reads: int) -> None:
    site = ten_device_site()
    profiles = read_profiles(ROOT / "data/hospital-winter-day.csv", site)
    async with SimulatedSite(site, profiles, speed=60.0) as sim:
        devices = connect(site)
        await devices.read_all()  # connect
        latencies = []
        for _ in range(reads):
            start = time.perf_counter()
            snapshot = await devices.read_all()
            latencies.append((time.perf_counter() - start) * 1000)
        points = sum(len(v) for v in snapshot.values())
        requests = sum(len(d.map.read_blocks()) for d in devices.devices.values())
        bad = sum(1 for v in snapshot.values() for m in v.values() if m.quality.value != "ok")
        devices.close()
        port = sim.served["bess1-inverter"].binding.port
        sequential = await _throughput(port, 2000, 1)
        concurrent = await _throughput(port, 2000, 10)
    latencies.sort()
    print(
        f"site: {len(site.devices)} devices on {len({(d.host, d.port) for d in site.devices})} endpoints, "
        f"{points} points in {requests} read requests per full read ({bad} not ok)"
    )
    print(
        f"full read over loopback, {reads} reads: median {statistics.median(latencies):.1f} ms, "
        f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.1f} ms, max {latencies[-1]:.1f} ms (target < 100 ms)"
    )
    print(
        f"simulator throughput (20-register reads): {sequential:,.0f} req/s sequential, "
        f"{concurrent:,.0f} req/s with 10 clients"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=200, help="full reads to time (default 200)")
    asyncio.run(main(parser.parse_args().reads))
