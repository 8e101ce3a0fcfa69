"""Publishing to a real MQTT broker (amqtt on 127.0.0.1): each cycle reaches the centre; while the broker is
unreachable messages wait in the island's SQLite file and are replayed in order, none lost, none twice after the
centre's seq filter; the Last Will marks a publisher that dies offline."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from microgrid.centre import SeqFilter
from microgrid.control.runner import Runner
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.store import Store
from microgrid.store.outbox import Outbox
from microgrid.uplink import Broker, Island
from microgrid.uplink.publish import Publisher
from tests.control.conftest import Optimizer, Rig, run_rig
from tests.uplink.conftest import BROKERS, Centre, Proxy, wait_until
from tests.uplink.test_payloads import ISLAND, SCHEMAS, T0, cycle, small_site


def publisher(path: Path, port: int, island: Island = ISLAND, site: Site | None = None) -> Publisher:
    outbox = Outbox(path)
    broker = Broker("127.0.0.1", port, "kharkiv")
    return Publisher(broker, island, site or small_site(), outbox, keepalive_s=2, reconnect_min_s=1, reconnect_max_s=1)


def close(pub: Publisher) -> None:
    pub.close()
    pub.outbox.close()


def accepted(centre: Centre) -> list[int]:
    """The seqs the centre keeps (its :class:`SeqFilter`), in arrival order."""
    seen = SeqFilter()
    return [a.payload["seq"] for a, _ in list(centre.arrivals) if "seq" in a.payload and seen.accept(a)]


def test_the_centre_sees_every_cycle_of_a_real_controller(
    broker: Any, tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    """Two cycles of the controller on the simulated hospital: status, alarms and cycle arrive, valid, in seq
    order; the outbox lives in the history's file and is empty once the broker acknowledged everything."""
    centre = Centre(broker.port)
    path = tmp_path / "history.sqlite"

    async def body(rig: Rig) -> list[Any]:
        with Store(path, retention_days=None) as store:
            runner = Runner(rig.ctl, store)
            pub = publisher(path, broker.port, Island("hospital-7", "hospital", 49.99, 36.23), tcp_hospital)
            pub.attach(runner)
            pub.start()
            try:
                reports = [await runner.run_once()]
                await rig.step(900.0)
                reports.append(await runner.run_once())
                await asyncio.to_thread(wait_until, lambda: len(centre.of("cycle")) == 2, what="two cycles")
                assert len(pub.outbox) == 0 and pub.sent == 5  # 2 status, 1 alarms (unchanged after), 2 cycle
            finally:
                close(pub)
            return reports

    reports = run_rig(tcp_hospital, winter, body, optimizer=Optimizer("stub"))
    centre.close()
    for kind in ("status", "alarms", "cycle", "online"):
        for payload in centre.of(kind):
            SCHEMAS[kind].validate(payload)
    status = centre.of("status")[-1]
    assert status["ts"] == reports[-1].start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (status["island"], status["kind"], status["name"]) == ("hospital-7", "hospital", tcp_hospital.site.name)
    assert set(status["soc_pct"]) == {b.id for b in tcp_hospital.batteries}
    assert status["mode"] == reports[-1].mode.value and status["setpoint_source"] == reports[-1].source
    assert centre.seqs() == [1, 2, 3, 4, 5] == accepted(centre)
    assert [p["online"] for p in centre.of("online")] == [True, False]  # a clean close says goodbye
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM cycles").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_an_unreachable_broker_loses_nothing_and_duplicates_nothing(broker: Any, tmp_path: Path) -> None:
    """The island's link is cut (the centre stays connected): five cycles wait in SQLite, the controller restarts
    meanwhile, the link returns: every message arrives once, in seq order, and the retained status is the last."""
    centre = Centre(broker.port)
    proxy = Proxy(broker.port)
    path = tmp_path / "history.sqlite"
    pub = publisher(path, proxy.port)
    pub.start()
    try:
        wait_until(lambda: pub.connected, what="the connection")
        first = pub.queue(cycle())
        wait_until(lambda: len(pub.outbox) == 0, what="the first cycle acknowledged")
        proxy.cut()
        wait_until(lambda: not pub.connected, what="the cut to be seen")
        waiting = []
        for n in range(1, 6):  # alarms change on cycles 2 and 4
            health = {"bms": "lost" if n in (2, 3) else "ok"}
            waiting += pub.queue(replace(cycle(health=health), start=T0 + timedelta(minutes=15 * n)))
        assert len(pub.outbox) == len(waiting) == 12 and waiting == sorted(waiting)
        time.sleep(1.5)  # paho retries meanwhile, refused
        assert centre.seqs() == first
    finally:
        close(pub)  # the controller restarts while the broker is away: the rows stay in the file
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT seq FROM outbox ORDER BY seq")] == waiting
    pub = publisher(path, proxy.port)
    pub.start()
    try:
        later = pub.queue(replace(cycle(), start=T0 + timedelta(hours=2)))
        assert later[0] > waiting[-1]  # seq goes on after the restart
        proxy.restore()
        wait_until(lambda: len(pub.outbox) == 0, 15, "the replay")
        wait_until(lambda: len(accepted(centre)) == len(first + waiting + later), what="the centre")
    finally:
        close(pub)
        proxy.close()
    centre.close()
    assert accepted(centre) == first + waiting + later
    raw = centre.seqs()
    assert all(a <= b for a, b in itertools.pairwise(raw)), raw  # in order (a re-sent one next to itself)
    last = Centre(broker.port, client_id="late")  # a centre that connects now gets the retained last status
    wait_until(lambda: len(last.of("status")) >= 1, what="the retained status")
    assert {(p["seq"], p["ts"]) for p in last.of("status")} == {(later[0], "2026-12-05T04:15:00Z")}
    last.close()


def test_a_broker_that_dies_and_comes_back(broker_kind: str, tmp_path: Path) -> None:
    """The broker itself is stopped (its retained messages gone) and started again on the same port: the waiting
    messages are replayed in order, so the retained status on the new broker is the latest."""
    broker = BROKERS[broker_kind]().start()
    pub = publisher(tmp_path / "history.sqlite", broker.port)
    pub.start()
    try:
        wait_until(lambda: pub.connected, what="the connection")
        pub.queue(cycle())
        wait_until(lambda: len(pub.outbox) == 0, what="the first cycle acknowledged")
        broker.stop()
        wait_until(lambda: not pub.connected, what="the broker's death")
        seqs = [s for n in range(1, 4) for s in pub.queue(replace(cycle(), start=T0 + timedelta(minutes=15 * n)))]
        assert len(pub.outbox) == len(seqs) == 6
        broker = BROKERS[broker_kind](broker.port).start()
        wait_until(lambda: len(pub.outbox) == 0, 15, "the replay")
        centre = Centre(broker.port)
        wait_until(lambda: bool(centre.of("status")) and bool(centre.of("online")), what="retained messages")
        assert {(p["seq"], p["ts"]) for p in centre.of("status")} == {(seqs[-2], "2026-12-05T03:00:00Z")}
        assert {p["online"] for p in centre.of("online")} == {True}
        centre.close()
    finally:
        close(pub)
        broker.stop()


_DYING = """
import sys, time
from microgrid.resources import shipped
from microgrid.site import read_site
from microgrid.store.outbox import Outbox
from microgrid.uplink import Broker, Island
from microgrid.uplink.publish import Publisher
site = read_site(shipped("models", "sites", "hospital.yaml"))
broker = Broker("127.0.0.1", int(sys.argv[2]), "kharkiv")
pub = Publisher(broker, Island("dying"), site, Outbox(sys.argv[1]), keepalive_s=5)
pub.start()
while not pub.connected:
    time.sleep(0.02)
print("up", flush=True)
time.sleep(60)
"""


def test_the_last_will_marks_a_dead_island_offline(broker: Any, tmp_path: Path) -> None:
    """A publisher process killed (SIGKILL: no goodbye): the broker publishes its Will, online false, retained."""
    centre = Centre(broker.port)
    args = [sys.executable, "-c", _DYING, str(tmp_path / "h.sqlite"), str(broker.port)]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        wait_until(lambda: [p["online"] for p in centre.of("online")] == [True], what="online")
        proc.kill()
    wait_until(lambda: [p["online"] for p in centre.of("online")] == [True, False], 5, "the Will")
    will = centre.of("online")[-1]
    SCHEMAS["online"].validate(will)
    assert will["island"] == "dying"
    centre.close()
    late = Centre(broker.port, client_id="late")
    wait_until(lambda: len(late.of("online")) >= 1, what="the retained Will")
    assert {p["online"] for p in late.of("online")} == {False}  # amqtt may hand a retained message over twice
    late.close()


def test_a_silent_island_is_marked_offline_within_its_keep_alive(broker_kind: str, broker: Any, tmp_path: Path) -> None:
    """The island's network goes silent (connection open, nothing passes, not even the close): the broker sends
    the Will when the keep-alive (2 s here) runs out. MQTT says after 1.5 × keep-alive without a packet;
    Mosquitto 2.0.11 took 5.1-5.5 s here, hence the bound of 2 × keep-alive + 2 s. amqtt 0.12 does not
    enforce keep-alive at all (no Will within 10 s): skipped for it."""
    if broker_kind == "amqtt":
        pytest.skip("amqtt 0.12 does not enforce the keep-alive: a silent client is never declared dead")
    centre = Centre(broker.port)
    proxy = Proxy(broker.port)
    pub = publisher(tmp_path / "h.sqlite", proxy.port)
    pub.start()
    try:
        wait_until(lambda: [p["online"] for p in centre.of("online")] == [True], what="online")
        proxy.frozen = True
        started = time.monotonic()
        wait_until(lambda: [p["online"] for p in centre.of("online")] == [True, False], 10, "the Will")
        silent_s = time.monotonic() - started
    finally:
        pub.close()
        pub.outbox.close()
        proxy.close()
        centre.close()
    assert silent_s <= 2 * pub.keepalive_s + 2.0, silent_s  # the broker's own check: the close is not passed on
