"""Security of the Situation Centre's link against the real Mosquitto (Debian's 2.0; skipped where it is missing).

The broker's folder is made by the real command (``microgrid centre broker-config --make-certs``): a CA, the
server's certificate, one client certificate per island (``a``, ``b``) and for the centre, an ACL. Then:
an island publishes with its certificate and the centre (the real listener and fleet store) sees it; an island
that publishes as another, or sends a command, is not delivered; the centre's command (the real CLI) is taken;
clients without a certificate, with one from another CA, or that do not trust the broker cannot connect; the
password login (``--auth password``) lets in the right password only. Plain ``mqtt://`` is unchanged.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from microgrid.centre.broker import BrokerPlan, write_config
from microgrid.centre.fleet import FleetStore
from microgrid.centre.listen import Listener
from microgrid.sim.ports import free_ports
from microgrid.store import Store
from microgrid.store.outbox import Outbox
from microgrid.uplink import Broker, Island, parse_url
from microgrid.uplink.commands import command_payload
from microgrid.uplink.payloads import status_payload
from microgrid.uplink.publish import Publisher
from microgrid.uplink.security import Credentials, apply, credentials
from tests.conftest import WINTER
from tests.test_operate_cli import simulator, site_file  # noqa: F401 - fixtures
from tests.uplink.conftest import Centre, MosquittoBroker, has_mosquitto, wait_until
from tests.uplink.test_payloads import cycle, small_site

pytest.importorskip("cryptography")
pytestmark = pytest.mark.skipif(not has_mosquitto(), reason="mosquitto is not installed (.ci/run installs it)")

CITY = "kharkiv"


def cli(*args: object, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "microgrid", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)


@dataclass
class City:
    """A running Mosquitto made from ``broker-config``'s folder, on 127.0.0.1:``port``."""

    folder: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def certs(self) -> Path:
        return self.folder / "certs"

    def broker(self, who: str | None, *, ca: Path | None = None) -> Broker:
        """The broker as ``who`` sees it: TLS, the folder's CA (or ``ca``), ``who``'s certificate (None: none)."""
        found = Credentials(
            ca_file=ca or self.certs / "ca.crt",
            cert_file=None if who is None else self.certs / "clients" / f"{who}.crt",
            key_file=None if who is None else self.certs / "clients" / f"{who}.key",
        )
        return Broker("127.0.0.1", self.port, CITY, tls=True, credentials=found)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def start_city(folder: Path, port: int, *args: str) -> City:
    """``broker-config`` (the real command) into ``folder``, then Mosquitto with it."""
    done = cli("centre", "broker-config", folder, "--city", CITY, "--islands", "a,b", "--listen", f"127.0.0.1:{port}",
               "--run-as", getpass.getuser(), *args)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return start_mosquitto(folder, port)


def start_mosquitto(folder: Path, port: int) -> City:
    """Mosquitto with ``folder``'s configuration, listening on ``port``."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    log = (folder / "mosquitto.log").open("wb")
    proc = subprocess.Popen([exe, "-c", str(folder / "mosquitto.conf")], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return City(folder, port, proc)
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, (folder / "mosquitto.log").read_text()
            time.sleep(0.05)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    running = start_city(tmp_path_factory.mktemp("broker"), free_ports(1)[0], "--make-certs")
    yield running
    running.stop()


def connects(broker: Broker, timeout_s: float = 2.0) -> bool:
    """Whether a paho client set up for ``broker`` (TLS, credentials) gets a successful CONNACK in time."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    apply(client, broker.tls, broker.credentials)
    accepted, decided = threading.Event(), threading.Event()

    def on_connect(c: Any, u: Any, f: Any, reason: Any, p: Any) -> None:
        if not reason.is_failure:
            accepted.set()
        decided.set()

    client.on_connect = on_connect
    client.on_connect_fail = client.on_disconnect = lambda *args: decided.set()  # refused, TLS failed, closed
    try:
        client.connect_async(broker.host, broker.port, keepalive=5)
        client.loop_start()
        decided.wait(timeout_s)
        return accepted.is_set()
    finally:
        client.disconnect()
        client.loop_stop()


def raw_publish(broker: Broker, topic: str, payload: bytes, retain: bool = False) -> None:
    """One QoS 1 message from a plain paho client logged in as ``broker`` says; waits for the PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    apply(client, broker.tls, broker.credentials)
    client.connect(broker.host, broker.port, keepalive=5)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


@contextlib.contextmanager
def watching(city: City, path: Path) -> Iterator[FleetStore]:
    """The real centre while the block runs: the listener, logged in with the centre's certificate, into a fleet
    store at ``path``. (One connection per identity: nothing else may log in as ``centre`` meanwhile.)"""
    fleet = FleetStore(path)
    listener = Listener(city.broker("centre"), fleet)
    listener.start()
    try:
        assert listener.subscribed.wait(10), (city.folder / "mosquitto.log").read_text()
        yield fleet
    finally:
        listener.close()
        fleet.close()


@pytest.fixture
def centre(city: City, tmp_path: Path) -> Iterator[FleetStore]:
    with watching(city, tmp_path / "centre.sqlite") as fleet:
        yield fleet


def publisher(broker: Broker, island: str, path: Path) -> Publisher:
    return Publisher(broker, Island(island, "hospital"), small_site(), Outbox(path), keepalive_s=5, reconnect_max_s=1)


def statuses(fleet: FleetStore) -> dict[str, int]:
    """Island → seq of its latest status in the centre's store."""
    return {row["island"]: row["status"]["seq"] for row in fleet.islands() if row["status"]}


def test_an_island_publishes_with_its_certificate(city: City, centre: FleetStore, tmp_path: Path) -> None:
    pub = publisher(city.broker("a"), "a", tmp_path / "a.sqlite")
    pub.start()
    try:
        pub.queue(cycle())
        wait_until(lambda: statuses(centre).get("a") == 1, what="a's status at the centre")
        # the broker's acknowledgements reach the island after the centre may already have the status
        wait_until(lambda: pub.sent >= 2, what="the broker's acknowledgements of a's messages")
        assert pub.connected
    finally:
        pub.close()
        pub.outbox.close()


def test_an_island_cannot_publish_as_another(city: City, tmp_path: Path) -> None:
    """``a`` (its own certificate) publishes a valid, retained status on ``b``'s topic: the broker drops it (the
    centre's store has nothing from ``b``, no retained message waits there); ``a``'s own status, sent after,
    arrives."""
    as_a = city.broker("a")
    with watching(city, tmp_path / "centre.sqlite") as centre:
        forged = status_payload(Island("b", "hospital"), small_site(), cycle(), 99)
        raw_publish(as_a, f"{CITY}/islands/b/status", json.dumps(forged).encode(), retain=True)
        mine = status_payload(Island("a", "hospital"), small_site(), cycle(), 50)
        raw_publish(as_a, f"{CITY}/islands/a/status", json.dumps(mine).encode(), retain=True)
        wait_until(lambda: statuses(centre).get("a") == 50, what="a's own status")
        assert "b" not in statuses(centre)
    kept = retained(city.broker("centre"), f"{CITY}/islands/#")
    assert f"{CITY}/islands/a/status" in kept and not [t for t in kept if t.startswith(f"{CITY}/islands/b/")], kept
    assert retained(as_a, f"{CITY}/islands/#") == []  # an island reads no island's topics, not even its own


def retained(broker: Broker, topics: str, quiet_s: float = 0.3) -> list[str]:
    """The topics of the retained messages a fresh subscriber to ``topics`` gets (until ``quiet_s`` of silence)."""
    got: list[str] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    apply(client, broker.tls, broker.credentials)
    client.on_message = lambda c, u, message: got.append(message.topic) if message.retain else None
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(broker.host, broker.port, keepalive=5)
    client.subscribe(topics, qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(5)
        seen = -1
        while seen != len(got):
            seen = len(got)
            time.sleep(quiet_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return sorted(got)


def test_only_the_centre_commands(city: City, tmp_path: Path) -> None:
    """Island ``a`` sends ``b`` a valid emergency command: not delivered. The centre's (``microgrid centre
    emergency`` with the operator's certificate) is, and ``b`` queues it as an operator action."""
    path = tmp_path / "b.sqlite"
    pub = publisher(city.broker("b"), "b", path)
    pub.start()
    try:
        wait_until(pub.listening.is_set, what="b listening to commands")
        forged = command_payload("forged", True, ["b"], "from island a")
        raw_publish(city.broker("a"), f"{CITY}/commands", json.dumps(forged).encode())
        certs, mine = city.certs, city.certs / "clients" / "operator"  # the centre's desk that sends commands
        done = cli("centre", "emergency", "on", f"mqtts://127.0.0.1:{city.port}/{CITY}", "--islands", "b",
                   "--reason", "wide-area cut", "--mqtt-ca", certs / "ca.crt",
                   "--mqtt-cert", f"{mine}.crt", "--mqtt-key", f"{mine}.key")  # fmt: skip
        assert done.returncode == 0, done.stderr

        def pending() -> list[dict[str, Any]]:
            with Store(path, readonly=True) as reader:
                return reader.pending_actions()

        wait_until(lambda: len(pending()) >= 1, what="the centre's command at b")
        time.sleep(0.3)  # anything else on its way would be here by now
        assert [(a["action"], a["by"]) for a in pending()] == [("emergency", f"centre:{done.stdout.split()[1][:-1]}")]
    finally:
        pub.close()
        pub.outbox.close()


class Recorder:
    """A subscriber logged in as ``broker`` says, with client id ``client_id``: what it gets, how often it was
    disconnected."""

    def __init__(self, broker: Broker, topics: str, client_id: str) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.dropped = 0
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        apply(self.client, broker.tls, broker.credentials)
        self.client.on_message = lambda c, u, message: self.got.append((message.topic, bytes(message.payload)))
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_disconnect = lambda *args: setattr(self, "dropped", self.dropped + 1)
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.subscribe(topics, qos=1)
        self.client.loop_start()
        assert subscribed.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_nobody_takes_over_another_by_its_client_id(city: City, tmp_path: Path) -> None:
    """Island ``a`` connecting with island ``b``'s client id, or with the centre's, pushes neither off: ``b``
    stays connected (no Last Will ``online: false`` at the centre) and the centre keeps its connection (the broker
    makes the user name the client id). Without that, MQTT hands the id to the newcomer (checked by hand:
    ``b``'s Will fires)."""
    pub = publisher(city.broker("b"), "b", tmp_path / "b.sqlite")
    watcher = Recorder(city.broker("centre"), f"{CITY}/islands/b/online", "microgrid-centre")
    pub.start()
    try:
        wait_until(lambda: any(b'"online":true' in p for _, p in watcher.got), what="b's online at the centre")
        before = len(watcher.got)
        for stolen in ("microgrid-kharkiv-b", "b", "microgrid-centre", "centre"):
            intruder = Recorder(city.broker("a"), f"{CITY}/commands", stolen)
            intruder.close()
        time.sleep(0.3)  # a Will would be here by now
        assert pub.connected and watcher.dropped == 0
        assert not [p for _, p in watcher.got[before:] if b'"online":false' in p], watcher.got
    finally:
        watcher.close()
        pub.close()
        pub.outbox.close()


def test_only_the_centre_publishes_schedules(city: City) -> None:
    """A retained message on ``<city>/schedules/3.1``: island ``a``'s is dropped, the centre's is kept, and
    island ``b`` (a reader of schedules) gets it."""
    raw_publish(city.broker("a"), f"{CITY}/schedules/3.1", b'{"forged": true}', retain=True)
    assert retained(city.broker("b"), f"{CITY}/schedules/#") == []
    raw_publish(city.broker("centre"), f"{CITY}/schedules/3.1", b'{"from": "centre"}', retain=True)
    assert retained(city.broker("b"), f"{CITY}/schedules/#") == [f"{CITY}/schedules/3.1"]
    raw_publish(city.broker("centre"), f"{CITY}/schedules/3.1", b"", retain=True)  # cleared for the other tests


def test_serve_logs_in_as_the_centre(city: City, tmp_path: Path) -> None:
    """``microgrid centre serve mqtts://… --mqtt-cert centre.crt`` as a real process: its screen's API lists the
    islands' retained statuses (read as the centre; an island reads none: the forging test)."""
    raw_publish(city.broker("a"), f"{CITY}/islands/a/status", json.dumps(
        status_payload(Island("a", "hospital"), small_site(), cycle(), 60)).encode(), retain=True)  # fmt: skip

    def listed(who: str, settle_s: float) -> list[str]:
        """The islands on the screen's API of a ``serve`` logged in as ``who``, within ``settle_s`` of its start."""
        port, mine = free_ports(1)[0], city.certs / "clients" / who
        args = ["-m", "microgrid", "centre", "serve", f"mqtts://127.0.0.1:{city.port}/{CITY}", "--http",
                f"127.0.0.1:{port}", "--db", str(tmp_path / f"{who}.sqlite"), "--mqtt-ca", str(city.certs / "ca.crt"),
                "--mqtt-cert", f"{mine}.crt", "--mqtt-key", f"{mine}.key"]  # fmt: skip
        proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        api = f"http://127.0.0.1:{port}/api/islands"
        try:
            wait_until(lambda: proc.poll() is not None or answers(api), 30, "the screen")
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            end, islands = time.monotonic() + settle_s, []
            while not islands and time.monotonic() < end:
                islands = [row["island"] for row in httpx.get(api).json()]
                time.sleep(0.1)
            return islands
        finally:
            proc.terminate()
            proc.wait(10)

    assert "a" in listed("centre", 10.0)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def other_ca(folder: Path) -> Path:
    from microgrid.centre.pki import make_pki

    make_pki(folder, ["a"], ["127.0.0.1"], 1)
    return folder


@pytest.mark.parametrize("stranger", ["no certificate", "another CA", "not trusting the broker", "plain TCP"])
def test_strangers_cannot_connect(city: City, tmp_path: Path, stranger: str) -> None:
    assert connects(city.broker("a"))  # the same client, rightly set up, does
    if stranger == "no certificate":
        broker = city.broker(None)
    elif stranger == "another CA":  # the right name (CN a), signed by a CA the broker does not know
        elsewhere = other_ca(tmp_path / "elsewhere")
        found = Credentials(city.certs / "ca.crt", elsewhere / "clients" / "a.crt", elsewhere / "clients" / "a.key")
        broker = replace(city.broker("a"), credentials=found)
    elif stranger == "not trusting the broker":  # the island's own certificate, but another CA to check the server
        broker = city.broker("a", ca=other_ca(tmp_path / "elsewhere") / "ca.crt")
    else:
        broker = replace(city.broker("a"), tls=False, credentials=None)
    assert not connects(broker)


def test_password_login(tmp_path: Path) -> None:
    """``--auth password``: TLS with the server's certificate, then the user's password (its file as written);
    a wrong password is refused."""
    port = free_ports(1)[0]
    plan = BrokerPlan(CITY, ("a", "b"), bind="127.0.0.1", port=port, auth="password", run_as=getpass.getuser())
    write_config(plan, tmp_path / "pw", make_certs=True)  # the command itself: the module's broker
    town = start_mosquitto(tmp_path / "pw", port)
    try:
        ca = town.certs / "ca.crt"

        def login(user: str, password_of: str) -> Broker:
            found = credentials(True, ca_file=ca, username=user, password_file=town.folder / "passwords" / password_of)
            return Broker("127.0.0.1", town.port, CITY, tls=True, credentials=found)

        assert connects(login("a", "a"))
        assert not connects(login("a", "b"))
        assert not connects(town.broker(None))  # TLS alone, no login
    finally:
        town.stop()


def test_plain_mqtt_is_unchanged(tmp_path: Path) -> None:
    """``mqtt://`` (an anonymous loopback broker): no TLS, no login, the island published as before."""
    broker = parse_url(f"mqtt://127.0.0.1:{free_ports(1)[0]}/{CITY}")
    assert (broker.tls, broker.credentials) == (False, None)
    plain = MosquittoBroker(broker.port).start()
    watcher = Centre(broker.port)
    pub = publisher(broker, "a", tmp_path / "a.sqlite")
    pub.start()
    try:
        pub.queue(cycle())
        wait_until(lambda: bool(watcher.of("status")), what="a's status")
        assert watcher.of("status")[0]["island"] == "a"
    finally:
        pub.close()
        pub.outbox.close()
        watcher.close()
        plain.stop()


@pytest.mark.slow
def test_run_cannot_publish_as_another_island(
    city: City,
    centre: FleetStore,
    site_file: Path,  # noqa: F811
    simulator: object,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The real ``microgrid run --once --publish mqtts://`` with island ``a``'s certificate but ``--island-id b``:
    it connects over TLS with the certificate (the broker acknowledged every message: the outbox is empty), and
    the broker dropped them all (nothing from ``b`` at the centre, which takes ``a``'s: the first test)."""
    store, mine = tmp_path / "forger.sqlite", city.certs / "clients" / "a"
    done = cli("run", site_file, "--profiles", WINTER, "--once", "--store", store,
               "--publish", f"mqtts://127.0.0.1:{city.port}/{CITY}", "--island-id", "b", "--mqtt-ca",
               city.certs / "ca.crt", "--mqtt-cert", f"{mine}.crt", "--mqtt-key", f"{mine}.key")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)  # all sent and acknowledged
        assert conn.execute("SELECT count(*) FROM cycles").fetchone() == (1,)
    conn.close()
    time.sleep(0.5)  # anything on its way would be here by now
    assert "b" not in statuses(centre)


def test_a_refused_island_keeps_its_messages(city: City, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An island whose certificate the broker does not trust keeps running: the cycle's messages wait in its
    outbox (store-and-forward) and the refusal is logged."""
    elsewhere = other_ca(tmp_path / "elsewhere")
    found = Credentials(city.certs / "ca.crt", elsewhere / "clients" / "a.crt", elsewhere / "clients" / "a.key")
    pub = publisher(replace(city.broker("a"), credentials=found), "a", tmp_path / "a.sqlite")
    with caplog.at_level("WARNING", logger="microgrid.uplink"):
        pub.start()
        try:
            assert len(pub.queue(cycle())) == 3
            wait_until(lambda: "accept --mqtt-cert" in caplog.text, what="the refusal in the log")
            time.sleep(1.2)  # paho retried (every 1 s here): said once, not at every retry
            assert caplog.text.count("cannot connect to the centre's broker") == 1, caplog.text
            assert not pub.connected and len(pub.outbox) == 3 and pub.sent == 0
        finally:
            pub.close()
            pub.outbox.close()
