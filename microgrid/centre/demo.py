"""``microgrid centre demo``: a simulated city on the situation screen, all in one process.

:func:`start_demo` starts, in threads of this process: an MQTT broker (amqtt, unless a broker is given),
the centre (:class:`~microgrid.centre.listen.Listener` into a :class:`~microgrid.centre.fleet.FleetStore`,
the screen on uvicorn), and ``islands`` simulated islands (:mod:`~microgrid.centre.demo_city`) each with
its own store, outbox and real publisher. A clock thread runs the :class:`~microgrid.centre.demo_scenario.Scenario`
accelerated (``speed`` simulated seconds per real second): a city-wide cut, restorations queue by queue,
and midway the centre's emergency command to one district through the real command path
(:func:`~microgrid.centre.commands.send_emergency` → broker → each island's publisher → its store →
its next cycle), lifted near the end. After the story the islands go on cycling on the grid until
:meth:`Demo.stop`. Simulated time is set so that the story ends at the wall clock's now.

For tests and the browser tests: ``demo = start_demo(islands=20, speed=…)``, ``demo.url``,
``demo.finished.wait()``, ``demo.stop()``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.publish as mqtt_publish
import uvicorn

from microgrid.centre.commands import send_emergency
from microgrid.centre.demo_city import IslandSpec, city
from microgrid.centre.demo_scenario import Scenario, SimIsland
from microgrid.centre.fleet import FleetStore
from microgrid.centre.listen import Listener
from microgrid.centre.web import app
from microgrid.sim.ports import free_ports
from microgrid.uplink import Broker
from microgrid.uplink.commands import targets_of
from microgrid.uplink.security import publish_kwargs
from microgrid.uplink.topics import island_topic

__all__ = ["Demo", "InProcessBroker", "start_demo"]

log = logging.getLogger("microgrid.centre.demo")


class InProcessBroker:
    """amqtt (a runtime dependency since the demo ships) on 127.0.0.1:``port``, anonymous, in a thread of its own."""

    def __init__(self, port: int) -> None:
        try:
            from amqtt.broker import Broker as Amqtt  # noqa: PLC0415 - only the demo without --broker needs it
        except ImportError as exc:
            raise RuntimeError("the demo's own broker needs amqtt (pip install amqtt), or give --broker") from exc
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="demo-broker", daemon=True)
        self._thread.start()
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        async def go() -> Any:
            broker = Amqtt(config)
            await broker.start()
            return broker

        self._broker = asyncio.run_coroutine_threadsafe(go(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@dataclass
class Demo:
    """A running demo: the screen's ``url``, the centre's ``fleet``, the islands; :meth:`stop` ends it all."""

    url: str
    broker: Broker
    fleet: FleetStore
    islands: list[SimIsland]
    district: str
    """The district the centre puts into emergency mode."""
    scenario: Scenario
    start: datetime
    """The simulated time of the story's start (UTC)."""
    finished: threading.Event = field(default_factory=threading.Event)
    """Set when the story is over (the islands go on cycling on the grid)."""
    log: list[str] = field(default_factory=list)
    """What the demo did, one line per event, with its simulated time."""
    commands: list[dict[str, Any]] = field(default_factory=list)
    """The commands the centre sent, in order."""
    story_h: float = -1.0
    """The simulated hours from the story's start of the last cycle played (-1: none yet): wait on it to catch a
    moment (a screenshot during the cut: ``story_h >= 4``)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _parts: list[Callable[[], Any]] = field(default_factory=list)
    _folder: Path | None = None

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until :meth:`stop` (True) or ``timeout_s`` [s] (False)."""
        return self._stop.wait(timeout_s)

    def stop(self) -> None:
        """Stop the clock, the islands (each says goodbye), the screen, the listener and the broker; idempotent."""
        if self._stop.is_set() and not self._parts:
            return
        self._stop.set()
        for part in reversed(self._parts):
            try:
                part()
            except Exception as exc:  # stopping the rest matters more
                log.warning("stopping the demo: %r", exc)
        self._parts.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def _district(specs: list[IslandSpec]) -> str:
    """The district with the most islands (ties: by name): the one the centre commands."""
    counts = Counter(s.district for s in specs)
    return min(counts, key=lambda d: (-counts[d], d))


def _clear_retained(broker: Broker, islands: list[str]) -> None:
    """Empty the retained status, alarms and online flag of ``islands`` on a given broker: a former demo's, with
    higher ``seq`` than this run's fresh outboxes, would make the centre drop this run's messages."""
    topics = [island_topic(broker.city, island, kind) for island in islands for kind in ("status", "alarms", "online")]
    mqtt_publish.multiple(
        [{"topic": topic, "payload": b"", "qos": 1, "retain": True} for topic in topics],
        hostname=broker.host,
        port=broker.port,
        client_id=f"microgrid-centre-demo-clear-{os.getpid()}",
        **publish_kwargs(broker.tls, broker.credentials),
    )


def _serve(fleet: FleetStore, host: str, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app(fleet), host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="demo-screen", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the screen did not start on {host}:{port}")
        time.sleep(0.02)
    return server, thread


def _link(islands: list[SimIsland], up: bool) -> None:
    for island in islands:
        if up:
            island.connect()
        else:
            island.disconnect()


def _command(demo: Demo, on: bool) -> None:
    """The centre's emergency command to the demo's district, through the real command path."""
    reason = f"wide-area cut: district {demo.district} on emergency" if on else "grid restored"
    sent = send_emergency(demo.broker, targets_of(districts=[demo.district]), on, reason)
    demo.commands.append(sent)


def _events(demo: Demo, t_h: float, done: set[str]) -> None:
    """The centre's commands and the lost link of the story, each once, when ``t_h`` reaches them."""
    s = demo.scenario
    offline = [i for i in demo.islands if i.spec.district != demo.district][-1:]
    steps: list[tuple[str, float, Callable[[], None]]] = [
        ("emergency on", s.emergency_h, lambda: _command(demo, True)),
        ("emergency off", s.lift_h, lambda: _command(demo, False)),
        ("link lost", s.offline_h[0], lambda: _link(offline, False)),
        ("link back", s.offline_h[1], lambda: _link(offline, True)),
    ]
    for name, at_h, act in steps:
        if name not in done and t_h >= at_h:
            done.add(name)
            try:
                act()
            except OSError as exc:
                log.error("demo: %s failed: %s", name, exc)
            who = ", ".join(i.spec.island for i in offline) if name.startswith("link") else f"district {demo.district}"
            demo.log.append(f"{t_h:5.2f} h: {name} ({who})")


def _run(demo: Demo, speed: float) -> None:
    """The clock thread: every ``step_min × 60 / speed`` real seconds, one cycle of every island."""
    s, done = demo.scenario, set[str]()
    period_s, tick, k = s.step_min * 60.0 / speed, time.monotonic(), 0
    while not demo._stop.is_set():
        t_h = k * s.step_h
        now = demo.start + timedelta(hours=t_h)
        _events(demo, t_h, done)
        for island in demo.islands:
            try:
                island.cycle(now, s.grid_up(island.spec.queue, t_h), s.step_h)
            except Exception:  # one island's failure must not stop the city
                log.exception("demo: the cycle of %s failed", island.spec.island)
        demo.story_h = t_h
        if t_h >= s.end_h and not demo.finished.is_set():
            demo.log.append(f"{t_h:5.2f} h: the story is over; the islands go on, on the grid")
            demo.finished.set()
        k += 1
        tick += period_s
        demo._stop.wait(max(0.0, tick - time.monotonic()))


def start_demo(
    islands: int = 24,
    *,
    broker: Broker | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    speed: float = 600.0,
    scenario: Scenario | None = None,
    seed: int = 0,
) -> Demo:
    """Start the broker (unless ``broker``), the centre, the screen on ``host:port`` (0: a free port) and
    ``islands`` simulated islands, then the story's clock; return the running :class:`Demo`."""
    scenario = scenario or Scenario()
    if speed <= 0:
        raise ValueError(f"speed must be positive (simulated seconds per real second), got {speed}")
    folder = Path(tempfile.mkdtemp(prefix="microgrid-demo-"))
    parts: list[Callable[[], Any]] = []
    specs = city(islands, seed=seed)
    try:
        if broker is None:
            own = InProcessBroker(free_ports(1)[0])
            parts.append(own.stop)
            broker = Broker("127.0.0.1", own.port, "kharkiv")
        else:
            _clear_retained(broker, [s.island for s in specs])
        fleet = FleetStore(folder / "centre.sqlite")
        parts.append(fleet.close)
        listener = Listener(broker, fleet, client_id=f"microgrid-centre-demo-{folder.name[-8:]}")
        listener.start()
        parts.append(listener.close)
        port = port or free_ports(1)[0]
        server, thread = _serve(fleet, host, port)
        parts.append(lambda: _shut(server, thread))
        failing = {s.island for s in random.Random(seed).sample([s for s in specs if s.kind != "hospital"], 2)}
        sims = [SimIsland(s, broker, folder, fails_to_start=s.island in failing) for s in specs]
        parts.extend(i.close for i in sims)
        for sim in sims:  # one after the other: amqtt 0.12 fails connections that subscribe at the same time
            _wait_for(sim.connect().listening.is_set)
        _wait_for(listener.subscribed.is_set)
    except BaseException:
        for part in reversed(parts):
            part()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=scenario.end_h)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    demo = Demo(url, broker, fleet, sims, _district(specs), scenario, start, _parts=parts, _folder=folder)
    clock = threading.Thread(target=_run, args=(demo, speed), name="demo-clock", daemon=True)
    clock.start()
    parts.append(lambda: clock.join(5))
    return demo


def _shut(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(5)


def _wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the islands or the centre could not connect to the broker")
        time.sleep(0.05)
