"""The centre's batched ingest on a real SQLite file and a real broker: a batch is one transaction, all or
nothing (the seq filter included); the listener acknowledges only what it kept, so what a failing store
refused comes again (retried; after a restart, resent by Mosquitto from the centre's persistent session).
The tests that take ``store`` run on SQLite, then on a real PostgreSQL (tests/centre/conftest.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from microgrid.centre import Arrival
from microgrid.centre.fleet import FleetStore
from microgrid.centre.listen import Listener
from microgrid.uplink import Broker
from tests.centre.conftest import Store
from tests.uplink.conftest import MosquittoBroker, has_mosquitto, wait_until

BEGIN = {"sqlite": "BEGIN IMMEDIATE", "postgresql": "BEGIN"}


def status(island: str, seq: int, critical_h: float = 5.0) -> Arrival:
    payload = {"seq": seq, "island": island, "ts": "2026-12-05T02:15:00Z", "autonomy": {"critical_h": critical_h}}
    return Arrival("kharkiv", island, "status", payload)


def seqs(store: Store) -> list[tuple[str, int]]:
    return [(island, seq) for island, seq in store.query("SELECT island, seq FROM messages ORDER BY island, seq")]


def test_a_batch_is_one_transaction_all_or_nothing(store: Store) -> None:
    fleet = FleetStore(store.where)
    statements = store.trace(fleet)
    batch = [status("a", 1), status("b", 1), status("a", 1), status("a", 3), status("a", 2), status("b", 2, 1.0)]
    assert fleet.ingest_many(batch) == [True, True, False, True, False, True]
    assert statements.count(BEGIN[store.kind]) == 1 and fleet.version == 1
    assert [r["island"] for r in fleet.islands()] == ["b", "a"]  # b: 1 h of autonomy, a: 5 h
    assert json.loads(fleet.islands_json()) == fleet.islands() and fleet.island("a")["status"]["seq"] == 3  # type: ignore[index]
    store.refuse()
    with pytest.raises(store.error, match="disk is full"):
        fleet.ingest_many([status("a", 4), status("c", 1)])
    assert fleet.island("c") is None and fleet.version == 1 and fleet.seen.last[("a", "status")] == 3
    store.allow()
    assert fleet.ingest_many([status("a", 4), status("c", 1)]) == [True, True]  # not taken for duplicates
    fleet.close()
    again = FleetStore(store.where)  # the file says what memory said
    assert again.islands() == fleet.islands() and seqs(store) == [
        ("a", 1),
        ("a", 3),
        ("a", 4),
        ("b", 1),
        ("b", 2),
        ("c", 1),
    ]
    again.close()


def publish(port: int, island: str, first: int, count: int) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"island-{island}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    for seq in range(first, first + count):
        body = json.dumps({"seq": seq, "island": island, "ts": "2026-12-05T02:15:00Z"})
        client.publish(f"kharkiv/islands/{island}/status", body, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


needs_mosquitto = pytest.mark.skipif(not has_mosquitto(), reason="mosquitto is not installed")


@needs_mosquitto
def test_what_the_store_refused_is_retried_then_kept_once(store: Store) -> None:
    broker = MosquittoBroker().start()
    fleet = FleetStore(store.where)
    listener = Listener(Broker("127.0.0.1", broker.port, "kharkiv"), fleet, client_id="centre-retry")
    try:
        listener.start()
        assert listener.subscribed.wait(10)
        store.refuse()
        publish(broker.port, "h", 1, 5)
        time.sleep(1.5)  # the writer has failed at least once, nothing acknowledged
        assert seqs(store) == [] and fleet.version == 0
        store.allow()
        wait_until(lambda: len(seqs(store)) == 5, what="the refused messages kept")
        with store.writing_elsewhere():  # another writer holds the store: messages pile up meanwhile
            batches = listener.batches
            publish(broker.port, "h", 6, 40)
            time.sleep(0.3)
        wait_until(lambda: len(seqs(store)) == 45, what="45 messages")
        assert seqs(store) == [("h", seq) for seq in range(1, 46)] and listener.batches - batches < 20
    finally:
        listener.close()
        fleet.close()
        broker.stop()


@needs_mosquitto
def test_what_was_not_kept_comes_again_after_a_restart(store: Store) -> None:
    """The centre stops while its store refuses: nothing was acknowledged, so Mosquitto sends the messages
    again to the centre's persistent session when it comes back, and they are kept once."""
    broker = MosquittoBroker().start()
    city = Broker("127.0.0.1", broker.port, "kharkiv")
    fleet = FleetStore(store.where)
    listener = Listener(city, fleet, client_id="centre-restart")
    try:
        listener.start()
        assert listener.subscribed.wait(10)
        store.refuse()
        publish(broker.port, "h", 1, 3)
        time.sleep(1.0)
        listener.close()
        fleet.close()
        store.allow()
        assert seqs(store) == []
        fleet = FleetStore(store.where)
        listener = Listener(city, fleet, client_id="centre-restart")
        listener.start()
        wait_until(lambda: len(seqs(store)) == 3, what="the three messages, again")
        assert seqs(store) == [("h", 1), ("h", 2), ("h", 3)]
    finally:
        listener.close()
        fleet.close()
        broker.stop()


def test_the_event_stream_coalesces_changes_and_ends_when_closing(tmp_path: Path) -> None:
    """20 changes in 1 s with ``poll_s`` 0.5: a handful of events, the last one showing the last change; once
    ``app.state.closing`` is set (what Ctrl-C does) the stream ends by itself."""
    import threading

    import httpx
    import uvicorn

    from microgrid.centre.web import app
    from microgrid.sim.ports import free_ports

    fleet = FleetStore(tmp_path / "centre.sqlite")
    fleet.ingest(status("h", 1))
    screen, port = app(fleet, poll_s=0.5), free_ports(1)[0]
    server = uvicorn.Server(uvicorn.Config(screen, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn")
        shown: list[int] = []
        with httpx.stream("GET", f"http://127.0.0.1:{port}/events", timeout=10) as response:
            lines = (line for line in response.iter_lines() if line.startswith("data: "))
            shown.append(json.loads(next(lines)[6:])[0]["status"]["seq"])
            for seq in range(2, 22):
                fleet.ingest(status("h", seq))
                time.sleep(0.05)
            while shown[-1] != 21:
                shown.append(json.loads(next(lines)[6:])[0]["status"]["seq"])
            screen.state.closing.set()
            assert list(lines) == []  # the stream ended
        assert shown[0] == 1 and shown == sorted(shown) and len(shown) <= 5, shown
    finally:
        server.should_exit = True
        thread.join(10)
        fleet.close()


@needs_mosquitto
def test_a_backlog_after_the_centre_was_away_is_kept_whole(store: Store) -> None:
    """600 messages published while the centre was away (far more than Mosquitto's 20 in flight): all kept,
    once, in order, when it comes back; acknowledged batch by batch."""
    broker = MosquittoBroker().start()
    city = Broker("127.0.0.1", broker.port, "kharkiv")
    fleet = FleetStore(store.where)
    listener = Listener(city, fleet, client_id="centre-away")
    try:
        listener.start()
        assert listener.subscribed.wait(10)
        listener.close()  # the session stays at the broker
        for island in ("a", "b"):
            publish(broker.port, island, 1, 300)
        listener = Listener(city, fleet, client_id="centre-away")
        started = time.monotonic()
        listener.start()
        wait_until(lambda: len(seqs(store)) == 600, timeout_s=30, what="the backlog")
        took_s = time.monotonic() - started
        assert seqs(store) == [(island, seq) for island in ("a", "b") for seq in range(1, 301)]
        assert listener.batches < 600, listener.batches
        print(f"{store.kind}: 600 messages caught up in {took_s:.2f} s, {listener.batches} batches")
    finally:
        listener.close()
        fleet.close()
        broker.stop()
