"""Situation Centre benchmark: N islands publishing through one broker to the centre's fleet store.

    python benchmarks/centre.py [--islands 100] [--rounds 5] [--period-s 1.0]

Each island is a real :class:`~microgrid.uplink.publish.Publisher` (its own outbox in its own SQLite
file, its own MQTT connection) on a small hand-made site; every ``--period-s`` (an accelerated
60 s cycle) each island queues one cycle (status, cycle, alarms on change). The centre is the real
:class:`~microgrid.centre.listen.Listener` feeding a :class:`~microgrid.centre.fleet.FleetStore`.
The broker is Mosquitto when installed (``/usr/sbin/mosquitto``), else amqtt in process.

Prints: the latency from an island's ``queue()`` (the end of its cycle) to the centre's store
(p50, p99, max, over every status message), the centre's store size per island-day (at one cycle a
minute), and the CPU the run took. Target (issue 16): ≤ 1 s for 500 islands on the 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from microgrid.centre.fleet import FleetStore
from microgrid.centre.ingest import Arrival
from microgrid.centre.listen import Listener
from microgrid.sim.ports import free_ports
from microgrid.site import Site, site_from_dict
from microgrid.store.outbox import Outbox
from microgrid.uplink import Broker, CycleFacts, Island
from microgrid.uplink.publish import Publisher

T0 = datetime(2026, 12, 5, tzinfo=UTC)


def site() -> Site:
    return site_from_dict(
        {
            "site": {"name": "island"},
            "batteries": [{"id": "b1", "capacity_kwh": 100, "soc_min": 0.1, "soc_max": 0.9, "max_charge_kw": 50,
                           "max_discharge_kw": 50, "charge_efficiency": 0.95, "discharge_efficiency": 0.95,
                           "initial_soc": 0.5}],
            "generators": [{"id": "g1", "fuel": "diesel", "max_kw": 100, "min_kw": 20, "fuel_per_kwh": 0.3,
                            "fuel_per_hour_running": 2.0}],
            "fuels": {"diesel": {"unit": "l", "price_per_unit": 60, "stock": 500}},
            "loads": [{"id": "critical", "priority": 1, "value_of_lost_load_per_kwh": 1000}],
        }
    )  # fmt: skip


def facts(n: int, round_: int) -> CycleFacts:
    state = {"grid_up": round_ % 2 == 0, "soc": {"b1": 0.3 + 0.01 * (n % 50)},
             "generators": {"g1": {"on": round_ % 2 == 1, "hours_in_state": 1.0}},
             "fuel_stock": {"diesel": 400.0 - round_}, "load_kw": {"critical": 40.0}}  # fmt: skip
    summary = {"source": "plan", "reason": "", "health": {}, "state": state,
               "autonomy": {"critical_h": 5.0 + n % 40, "critical_essential_h": 2.0}}  # fmt: skip
    return CycleFacts(T0 + timedelta(minutes=round_), "auto", summary, {"solve": 0.2}, 10.0, {"g1": 50.0}, 0.0)


def start_broker(folder: Path) -> tuple[int, Any]:
    """(port, a stop function): Mosquitto if installed, else amqtt in a thread."""
    port = free_ports(1)[0]
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is not None:
        conf = folder / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_connections -1\n")
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        print(f"broker: {exe}")
        return port, lambda: (proc.terminate(), proc.wait(10))
    from amqtt.broker import Broker as Amqtt

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
              "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}  # fmt: skip

    async def go() -> Any:
        broker = Amqtt(config)
        await broker.start()
        return broker

    broker = asyncio.run_coroutine_threadsafe(go(), loop).result(10)
    print("broker: amqtt (mosquitto is not installed)")
    return port, lambda: asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(10)


def timed(fleet: FleetStore, queued: dict[tuple[str, int], float], latencies: list[float]) -> None:
    """Wrap ``fleet.ingest``: each new status's time since its island queued it goes to ``latencies`` [s]."""
    ingest = fleet.ingest

    def wrapped(arrival: Arrival, now: datetime | None = None) -> bool:
        kept = ingest(arrival, now)
        if kept and arrival.kind == "status" and (started := queued.get((arrival.island, arrival.payload["seq"]))):
            latencies.append(time.perf_counter() - started)
        return kept

    fleet.ingest = wrapped  # type: ignore[method-assign]


def rounds(pubs: list[Publisher], count: int, period_s: float, queued: dict[tuple[str, int], float]) -> None:
    """Every ``period_s``, each island queues one cycle; the time of its status is kept in ``queued``."""
    for round_ in range(count):
        tick = time.monotonic()
        for n, pub in enumerate(pubs):
            at = time.perf_counter()
            for seq in pub.queue(facts(n, round_))[:1]:  # the first of a cycle's messages is its status
                queued[(pub.island.island, seq)] = at
        time.sleep(max(0.0, tick + period_s - time.monotonic()))


def wait(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def report(args: argparse.Namespace, latencies: list[float], size: int, cpu_s: float) -> None:
    lat, expected = sorted(latencies), args.islands * args.rounds
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")
    print(f"{args.islands} islands x {args.rounds} cycles every {args.period_s} s: {len(lat)}/{expected} statuses")
    print(f"queue -> centre store: p50 {statistics.median(lat) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {lat[-1] * 1000:.0f} ms")  # fmt: skip
    per_day = size / expected * 1440
    print(f"centre store: {size / 1024:.0f} KiB, ≈ {per_day / 1024:.0f} KiB per island-day at one cycle a minute")
    print(f"CPU of this process during the rounds: {cpu_s:.1f} s (the broker's not included when it is Mosquitto)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--islands", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--period-s", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="centre-bench-"))
    port, stop = start_broker(folder)
    city = Broker("127.0.0.1", port, "kharkiv")
    fleet = FleetStore(folder / "centre.sqlite")
    queued: dict[tuple[str, int], float] = {}
    latencies: list[float] = []
    timed(fleet, queued, latencies)
    listener = Listener(city, fleet, client_id="bench-centre")
    listener.start()
    listener.subscribed.wait(10)
    shared = site()
    pubs = [
        Publisher(city, Island(f"island-{n:04d}", "shelter"), shared, Outbox(folder / f"i{n}.sqlite"))
        for n in range(args.islands)
    ]
    for pub in pubs:
        pub.start()
    wait(lambda: all(p.connected for p in pubs), 60)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    rounds(pubs, args.rounds, args.period_s, queued)
    wait(lambda: len(latencies) >= args.islands * args.rounds, 60)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for pub in pubs:
        pub.close()
        pub.outbox.close()
    listener.close()
    fleet.close()
    stop()
    size = sum(f.stat().st_size for f in folder.glob("centre.sqlite*"))
    report(args, latencies, size, (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
