"""Real MQTT parts for the uplink's tests, all on 127.0.0.1: two brokers, amqtt (pure Python, from PyPI) in a
thread of its own and Mosquitto (Debian's package; its tests are skipped where it is not installed) as a
process with a generated config; a subscriber standing for the centre (paho), and a TCP proxy that a test can
cut, freeze and restore (the broker unreachable from the island while the centre stays connected)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from microgrid.centre import Arrival, parse_topic
from microgrid.sim.ports import free_ports

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class AmqttBroker:
    """amqtt on ``port``, anonymous; :meth:`start` and :meth:`stop` (a broker that dies and comes back)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_ports(1)[0]
        self._rt: _LoopThread | None = None
        self._broker: Any = None

    def start(self) -> AmqttBroker:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        async def go() -> Any:
            broker = Broker(config)
            await broker.start()
            return broker

        self._rt = _LoopThread()
        self._broker = self._rt.run(go())
        return self

    def stop(self) -> None:
        if self._rt is not None:
            self._rt.run(self._broker.shutdown())
            self._rt.close()
            self._rt = None


class MosquittoBroker:
    """Mosquitto (``/usr/sbin/mosquitto``) on ``port``: anonymous, no persistence; :meth:`start`, :meth:`stop`."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_ports(1)[0]
        self._folder = tempfile.TemporaryDirectory()
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MosquittoBroker:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        conf = f"{self._folder.name}/mosquitto.conf"
        with open(conf, "w", encoding="utf-8") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n")
        self._proc = subprocess.Popen([exe, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                assert time.monotonic() < deadline and self._proc.poll() is None, "mosquitto did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None


def has_mosquitto() -> bool:
    return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()


BROKERS: dict[str, Callable[..., Any]] = {"amqtt": AmqttBroker, "mosquitto": MosquittoBroker}
"""Broker kind → class (``(port=None)``, ``start()``, ``stop()``, ``port``)."""


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs against both brokers; Mosquitto's run is skipped where it is not installed."""
    if request.param == "mosquitto" and not has_mosquitto():
        pytest.skip("mosquitto is not installed (.ci/run installs it from Debian's packages)")
    return str(request.param)


@pytest.fixture
def broker(broker_kind: str) -> Iterator[Any]:
    """A broker on a free loopback port: amqtt, then Mosquitto (``broker_kind``)."""
    running = BROKERS[broker_kind]().start()
    yield running
    running.stop()


class Proxy:
    """A TCP proxy 127.0.0.1:``port`` → 127.0.0.1:``target``: :meth:`cut` drops every connection and refuses
    new ones; :meth:`restore` listens again on the same port."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, free_ports(1)[0]
        self._rt = _LoopThread()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.frozen = False
        """While true, bytes are swallowed in both directions and connections stay open (a silent network)."""
        self.restore()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if not self.frozen:
                    writer.write(data)
                    await writer.drain()
        except OSError:
            pass
        finally:
            if not self.frozen:  # a silent network does not pass on a close either
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._open |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def restore(self) -> None:
        async def go() -> asyncio.Server:
            return await asyncio.start_server(self._handle, "127.0.0.1", self.port)

        self._server = self._rt.run(go())

    def cut(self) -> None:
        async def go() -> None:
            assert self._server is not None
            self._server.close()
            for writer in self._open:
                writer.transport.abort()
            self._open.clear()

        self._rt.run(go())

    def close(self) -> None:
        self.cut()
        self._rt.close()


class Centre:
    """A subscriber to ``<city>/islands/#`` (QoS 1) that keeps every arrival, in order, with its retain flag."""

    def __init__(self, port: int, city: str = "kharkiv", client_id: str = "centre") -> None:
        self.arrivals: list[tuple[Arrival, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.subscribe(f"{city}/islands/#", qos=1)
        self.client.loop_start()
        assert self._subscribed.wait(5), "the centre could not subscribe"

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        arrival = parse_topic(message.topic, message.payload)
        assert arrival is not None, (message.topic, message.payload)
        with self._lock:
            self.arrivals.append((arrival, bool(message.retain)))

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [a.payload for a, _ in self.arrivals if a.kind == kind]

    def seqs(self) -> list[int]:
        """The seq of every sequenced arrival, in the order they came."""
        with self._lock:
            return [a.payload["seq"] for a, _ in self.arrivals if "seq" in a.payload]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` every 20 ms; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True)


from tests.control.conftest import hospital, tcp_hospital, winter  # noqa: E402, F401 - fixtures for the real cycles
