"""Situation Centre benchmark: N islands publishing through Mosquitto to the real centre server, timed to its screen.

    python benchmarks/centre.py [--islands 500] [--rounds 5] [--period-s 6.0]

Three kinds of processes, as in a city (where each island is its own machine):

* the broker: Mosquitto (``/usr/sbin/mosquitto``; amqtt in this process if it is missing);
* the centre: ``microgrid centre serve`` as its own process (the real listener, fleet store and screen);
* the islands: worker processes of at most 100 islands each, every island a real
  :class:`~microgrid.uplink.publish.Publisher` with its own outbox (SQLite file) and MQTT connection,
  on a small hand-made site. At most 100 per process because paho waits on its socket with
  ``select()``, which cannot watch a file descriptor above 1023: an island takes ≈ 7 (its socket,
  paho's wake-up pair, its SQLite file, journal and shared memory), so in one process beyond ≈ 140
  islands the rest never connect (why 500 islands "did not finish" in one process before).

Every ``--period-s`` (the 60 s cycle, accelerated: 6 s is 10 × the real rate) each island queues one cycle
(status, cycle, alarms when they changed), the islands' phases spread evenly over the period. This
process reads the screen's live stream (``GET /events``, server-sent events) and notes when each
island's status first shows there.

Prints: the latency from an island's ``queue()`` (the end of its cycle) to the screen's event stream
(p50, p99, max, over every status; the processes share ``time.monotonic()``, the system's clock), split
at a plain subscriber of this process (the islands' outboxes, senders and the broker; then the centre:
listener, store, the screen's coalescing of changes every 0.25 s, the event's JSON and its transfer),
the screen's load time (``GET /`` and ``GET /api/islands`` with every island, after the rounds and
while they ran), the centre's store per island-day (at one cycle a minute), the CPU the centre and the
broker took, and the load average. Target (issue 16): ≤ 1 s for 500 islands on the 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from microgrid.sim.ports import free_ports
from microgrid.site import Site, site_from_dict
from microgrid.uplink import CycleFacts

T0 = datetime(2026, 12, 5, tzinfo=UTC)
PER_WORKER = 100
"""Islands per worker process (paho's ``select()``: module docstring)."""


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


def start_broker(folder: Path) -> tuple[int, Any, int | None]:
    """(port, a stop function, Mosquitto's pid or None): Mosquitto if installed, else amqtt in a thread.
    Mosquitto keeps up to 100,000 messages for the centre's session (its default, 1,000, drops beyond)."""
    port = free_ports(1)[0]
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is not None:
        conf = folder / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_connections -1\n"
            "max_queued_messages 100000\n"
        )
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port)
        print(f"broker: {exe}")

        def stop() -> None:
            proc.terminate()
            proc.wait(10)

        return port, stop, proc.pid
    from tests.uplink.conftest import AmqttBroker

    broker = AmqttBroker(port).start()
    print("broker: amqtt in this process (mosquitto is not installed)")
    return port, broker.stop, None


def wait_port(port: int, timeout_s: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass(frozen=True)
class Job:
    """A worker process's share: the broker's port, its islands' numbers (of ``total``), where their outboxes go."""

    port: int
    numbers: list[int]
    total: int
    folder: str
    rounds: int
    period_s: float


def worker(job: Job, pipe: Any) -> None:
    """A worker process: its islands connected, their rounds from the start time it is sent, then the times
    each status was queued (``island/seq`` → ``time.monotonic()``) sent back through ``pipe``."""
    import logging

    from microgrid.store.outbox import Outbox
    from microgrid.uplink import Broker, Island
    from microgrid.uplink.publish import Publisher

    logging.basicConfig(level=logging.ERROR)
    city, shared, numbers, period_s = Broker("127.0.0.1", job.port, "kharkiv"), site(), job.numbers, job.period_s
    pubs = {n: Publisher(city, Island(f"island-{n:04d}", "shelter"), shared, Outbox(Path(job.folder) / f"i{n}.sqlite"))
            for n in numbers}  # fmt: skip
    for pub in pubs.values():
        pub.start()
    deadline = time.monotonic() + 60
    while not all(p.connected for p in pubs.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    pipe.send(sum(p.connected for p in pubs.values()))
    start = pipe.recv()  # the rounds' common start, time.monotonic()
    plan = sorted((start + (r + n / job.total) * period_s, n, r) for n in numbers for r in range(job.rounds))
    queued: dict[str, float] = {}
    for at, n, r in plan:
        time.sleep(max(0.0, at - time.monotonic()))
        stamp = time.monotonic()
        for seq in pubs[n].queue(facts(n, r))[:1]:  # the first of a cycle's messages is its status
            queued[f"{pubs[n].island.island}/{seq}"] = stamp
    for pub in pubs.values():
        pub.flush(30)
    pipe.send(queued)
    for pub in pubs.values():
        pub.close()
        pub.outbox.close()


class Screen:
    """This process's view of the screen: its live stream read in a thread; when each island's status first shows."""

    def __init__(self, url: str) -> None:
        self.url, self.events = url, 0
        self.shown: dict[str, float] = {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the centre stopped
            self._stream()

    def _stream(self) -> None:
        with httpx.stream("GET", f"{self.url}/events", timeout=None) as response:
            kind = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: ") and kind == "fleet":
                    now = time.monotonic()
                    self.events += 1
                    for row in json.loads(line.removeprefix("data: ")):
                        if row["status"] is not None:
                            self.shown.setdefault(f"{row['island']}/{row['status']['seq']}", now)


class Tap:
    """A plain subscriber to every status (QoS 0, in this process): when each reached the broker's subscribers,
    to split the latency into the islands' and the broker's part and the centre's part."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.seen: dict[str, float] = {}
        self.subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-tap")
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *args: self.subscribed.set()
        self._client.connect("127.0.0.1", port)
        self._client.subscribe("kharkiv/islands/+/status", qos=0)
        self._client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        now = time.monotonic()
        body = json.loads(message.payload)
        self.seen.setdefault(f"{body['island']}/{body['seq']}", now)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def load_times(url: str, path: str, count: int) -> list[float]:
    """``count`` GETs of ``path``, each on a new connection as a browser opening the screen, body read and
    parsed [s] (the client made beforehand: httpx's set-up is not the server's time)."""
    times = []
    with httpx.Client(timeout=30, headers={"Connection": "close"}) as client:
        for _ in range(count):
            started = time.perf_counter()
            answer = client.get(url + path)
            answer.raise_for_status()
            _ = answer.text if path == "/" else answer.json()
            times.append(time.perf_counter() - started)
    return times


def cpu_s(pid: int | None) -> float:
    """User + system CPU of process ``pid`` so far [s] (Linux /proc); nan when unknown."""
    if pid is None:
        return math.nan
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.0f} ms, p95 {pct(values, 0.95) * 1000:.0f} ms"


def start_centre(port: int, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    http = free_ports(1)[0]
    args = [sys.executable, "-m", "microgrid", "centre", "serve", f"mqtt://127.0.0.1:{port}/kharkiv"]
    centre = subprocess.Popen([*args, "--db", str(folder / "centre.sqlite"), "--http", f"127.0.0.1:{http}"])
    url = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/api/islands", timeout=1)
            return centre, url
        except httpx.TransportError:
            assert time.monotonic() < deadline and centre.poll() is None, "the centre did not start"
            time.sleep(0.2)


def start_islands(args: argparse.Namespace, port: int, folder: Path) -> list[tuple[Any, Any]]:
    """The worker processes, once all their islands are connected: (process, pipe) each."""
    ctx = multiprocessing.get_context("spawn")
    count = math.ceil(args.islands / PER_WORKER)
    workers = []
    for w in range(count):
        mine, theirs = ctx.Pipe()
        numbers = list(range(w, args.islands, count))  # interleaved: every worker's islands spread over the period
        job = Job(port, numbers, args.islands, str(folder), args.rounds, args.period_s)
        proc = ctx.Process(target=worker, args=(job, theirs))
        proc.start()
        workers.append((proc, mine))
    connected = sum(pipe.recv() for _, pipe in workers)
    print(f"{connected}/{args.islands} islands connected, in {count} worker processes")
    return workers


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Broker, centre, islands; the rounds; what :func:`report` prints."""
    port, stop_broker, broker_pid = start_broker(folder)
    centre, url = start_centre(port, folder)
    workers = start_islands(args, port, folder)
    screen, tap = Screen(url), Tap(port)
    tap.subscribed.wait(10)
    time.sleep(1.0)
    cpu0 = (cpu_s(centre.pid), cpu_s(broker_pid))
    start = time.monotonic() + 0.5
    for _, pipe in workers:
        pipe.send(start)
    during: list[float] = []
    while time.monotonic() < start + args.rounds * args.period_s:
        during += load_times(url, "/api/islands", 1)
        time.sleep(0.5)
    queued: dict[str, float] = {}
    for _, pipe in workers:
        queued |= pipe.recv()
    deadline = time.monotonic() + 30
    while not set(queued) <= set(screen.shown) and time.monotonic() < deadline:
        time.sleep(0.1)
    cpu1 = (cpu_s(centre.pid), cpu_s(broker_pid))
    load_end = os.getloadavg()
    page, api = load_times(url, "/", 20), load_times(url, "/api/islands", 20)
    for proc, _ in workers:
        proc.join(30)
    centre.send_signal(signal.SIGINT)
    centre.wait(30)
    tap.close()
    stop_broker()
    latencies = [screen.shown[key] - at for key, at in queued.items() if key in screen.shown]
    to_broker = [tap.seen[key] - at for key, at in queued.items() if key in tap.seen]
    centre_part = [screen.shown[key] - tap.seen[key] for key in queued if key in screen.shown and key in tap.seen]
    return {"latencies": latencies, "queued": len(queued), "events": screen.events, "page": page, "api": api,
            "to_broker": to_broker, "centre_part": centre_part,
            "during": during, "size": sum(f.stat().st_size for f in folder.glob("centre.sqlite*")),
            "cpu_centre": cpu1[0] - cpu0[0], "cpu_broker": cpu1[1] - cpu0[1], "load_end": load_end}  # fmt: skip


def report(args: argparse.Namespace, r: dict[str, Any]) -> None:
    lat = r["latencies"]
    print(f"{args.islands} islands x {args.rounds} cycles every {args.period_s} s: {len(lat)}/{r['queued']} "
          f"statuses shown on the screen's stream ({r['events']} fleet events)")  # fmt: skip
    print(f"cycle -> screen: p50 {statistics.median(lat) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms, "
          f"max {max(lat) * 1000:.0f} ms")  # fmt: skip
    for name, part in (("cycle -> a plain subscriber", r["to_broker"]), ("that -> screen", r["centre_part"])):
        print(f"  {name}: p50 {statistics.median(part) * 1000:.0f} ms, p99 {pct(part, 0.99) * 1000:.0f} ms")
    print(f"screen load, {args.islands} islands: GET / {ms(r['page'])}; GET /api/islands {ms(r['api'])}; "
          f"GET /api/islands during the rounds {ms(r['during'])}")  # fmt: skip
    per_day = r["size"] / max(1, r["queued"]) * 1440
    print(f"centre store: {r['size'] / 1024:.0f} KiB, ≈ {per_day / 1024:.0f} KiB per island-day at one cycle a minute")
    print(f"CPU during the rounds ({args.rounds * args.period_s:.0f} s): centre {r['cpu_centre']:.1f} s, "
          f"broker {r['cpu_broker']:.1f} s")  # fmt: skip
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in r['load_end'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--islands", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--period-s", type=float, default=6.0, help="the 60 s cycle, accelerated")
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    folder = Path(tempfile.mkdtemp(prefix="centre-bench-"))
    try:
        report(args, run(args, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
