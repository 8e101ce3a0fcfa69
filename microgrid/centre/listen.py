"""The centre's MQTT subscriber: ``<city>/islands/#`` at QoS 1, each message into the fleet store.

paho-mqtt runs its own network thread (reconnecting by itself); a persistent session (``clean_session``
false, a fixed client id) lets the broker keep QoS 1 messages for the centre while it is away.

The network thread only parses and queues; a writer thread keeps what has arrived in the fleet store,
one transaction per batch (all the messages that came while the previous batch was committing, at most
``max_batch``), and only then acknowledges them to the broker (paho's manual acknowledgement): a
message the centre acknowledged is in the file, and one it had not kept when it died is sent again by
the broker (the seq filter drops what was already kept). A batch that cannot be kept (a full disk) is
retried every second, unacknowledged, until it can or the listener closes.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from microgrid.centre.fleet import FleetStore
from microgrid.centre.ingest import Arrival, parse_topic
from microgrid.uplink.security import apply
from microgrid.uplink.topics import Broker

__all__ = ["Listener"]

log = logging.getLogger("microgrid.centre")


class Listener:
    """Subscribes to ``broker``'s city and feeds ``fleet``; :meth:`start`, :meth:`close`."""

    def __init__(
        self, broker: Broker, fleet: FleetStore, *, client_id: str = "microgrid-centre", max_batch: int = 2000
    ) -> None:
        self.broker, self.fleet, self.max_batch = broker, fleet, max_batch
        self.subscribed = threading.Event()
        self.batches = 0
        """Transactions the writer committed (messages per batch = messages kept / this)."""
        self._inbox: queue.SimpleQueue[tuple[Arrival | None, int, int]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write, name="microgrid-centre-writer", daemon=True)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, manual_ack=True
        )
        self._client.reconnect_delay_set(1, 10)
        apply(self._client, broker.tls, broker.credentials)  # mqtts://: TLS; the centre's certificate and/or login
        self._client.on_connect_fail = lambda *args: log.warning(
            "cannot reach the broker %s:%d%s; retrying", broker.host, broker.port, " (TLS)" if broker.tls else ""
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *args: self.subscribed.set()
        self._client.on_message = self._on_message

    def start(self) -> None:
        self._writer.start()
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self._client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("the broker refused the centre: %s", reason)
            return
        client.subscribe(f"{self.broker.city}/islands/#", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """paho's thread: parse and queue for the writer (which acknowledges); nothing slow here."""
        arrival = parse_topic(message.topic, bytes(message.payload))
        if arrival is None:
            log.warning("ignored a message on %s: not a microgrid island's topic or not JSON", message.topic)
        self._inbox.put((arrival, message.mid, message.qos))

    def _take(self, wait_s: float = 0.2) -> list[tuple[Arrival | None, int, int]]:
        """What has arrived (waiting up to ``wait_s`` [s] for the first), at most ``max_batch``."""
        try:
            batch = [self._inbox.get(timeout=wait_s) if wait_s > 0 else self._inbox.get_nowait()]
        except queue.Empty:
            return []
        while len(batch) < self.max_batch:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self) -> None:
        """The writer thread: keep each batch in one transaction, then acknowledge its messages; once
        closing, one last batch of what has arrived."""
        while not self._stop.is_set():
            self._keep(self._take())
        self._keep(self._take(wait_s=0.0))

    def _keep(self, batch: list[tuple[Arrival | None, int, int]]) -> None:
        arrivals = [arrival for arrival, _, _ in batch if arrival is not None]
        while arrivals:
            try:
                self.fleet.ingest_many(arrivals)
                self.batches += 1
                break
            except Exception as exc:  # the store failing: keep them unacknowledged, try again
                log.error("cannot keep %d message(s) in the fleet store: %r", len(arrivals), exc)
                if self._stop.wait(1.0):
                    return
        for _, mid, qos in batch:
            if qos > 0:
                self._client.ack(mid, qos)

    def close(self) -> None:
        """Keep and acknowledge what has arrived, then disconnect."""
        self._stop.set()
        if self._writer.is_alive():
            self._writer.join(10)
        self._client.disconnect()
        self._client.loop_stop()
