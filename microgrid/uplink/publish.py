"""Publishing an island to the Situation Centre over MQTT, with store-and-forward (docs/situation-centre.md).

* After each cycle :meth:`Publisher.enqueue` (chained to the runner's ``on_cycle``) writes the
  cycle's messages (status, alarms when they changed, cycle) to the outbox in the island's store
  (:class:`~microgrid.store.outbox.Outbox`), numbered by ``seq``, in one transaction. It never
  raises: a cycle must go on when publishing cannot.
* A sender thread drains the outbox in ``seq`` order, one message in flight at a time: publish (QoS 1,
  status and alarms retained), wait for the broker's PUBACK, then delete the row. While the broker
  is unreachable the rows wait; paho reconnects (``reconnect_min_s`` doubling up to
  ``reconnect_max_s``) and re-sends the message that was in flight, then the sender goes on with the
  rest, oldest first. A restart re-sends the rows never acknowledged: at-least-once; the centre
  drops a ``seq`` it has seen.
* On connect the island publishes ``online: true`` (retained); the Last Will, registered with the
  broker at connect, is ``online: false`` (retained): the broker sends it when the connection dies
  (within 1.5 × ``keepalive_s`` for a silent one). A clean :meth:`Publisher.close` publishes it itself.
* Commands: the island subscribes to ``<city>/commands`` (QoS 1); a valid command meant for it is
  queued in its store as the operator action ``microgrid override`` would queue, by ``centre:<id>``
  (:mod:`microgrid.uplink.commands`); an invalid one is ignored, logged and recorded as a ``centre`` event.
* Schedules: an island with an outage queue subscribes to ``<city>/schedules/<queue>`` (retained) and keeps a
  valid schedule where its controller reads the outage schedule (:mod:`microgrid.uplink.schedules`), recorded.

paho-mqtt (2.x) is imported here only: the CLI loads this module inside ``run --publish``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from microgrid.control.alarms import alarms
from microgrid.control.cycle import CycleReport
from microgrid.site import Site
from microgrid.store import EventRow, Store, StoreError
from microgrid.store.outbox import Outbox, Outgoing, Queued
from microgrid.uplink.commands import COMMANDS, verdict
from microgrid.uplink.payloads import (
    CycleFacts,
    Island,
    alarms_payload,
    cycle_payload,
    facts,
    online_payload,
    status_payload,
)
from microgrid.uplink.schedules import schedule_topic, take_schedule
from microgrid.uplink.security import apply
from microgrid.uplink.topics import Broker, island_topic

__all__ = ["Publisher"]

log = logging.getLogger("microgrid.uplink")


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


class Publisher:
    """One island's publisher (module docstring).

    Parameters
    ----------
    broker
        Host, port and city (from ``--publish mqtt[s]://host:port/<city>``), TLS and credentials.
    island
        The island's id, kind and position.
    site
        The site (fuels and gensets for the hours-to-dry, its name).
    outbox
        The outbox in the island's store.
    keepalive_s
        MQTT keep-alive [s]: the broker declares the island dead (Last Will) after 1.5 × this of silence.
    """

    def __init__(
        self,
        broker: Broker,
        island: Island,
        site: Site,
        outbox: Outbox,
        *,
        keepalive_s: int = 30,
        reconnect_min_s: int = 1,
        reconnect_max_s: int = 30,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.broker, self.island, self.site, self.outbox = broker, island, site, outbox
        self.keepalive_s = keepalive_s
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sent = 0
        """Messages the broker acknowledged (and deleted from the outbox) since start."""
        self._last_alarms: list[str] | None = None
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._acked: set[int] = set()
        """Message ids the broker acknowledged since the last :meth:`_send` began."""
        self._ack = threading.Condition()
        self._thread: threading.Thread | None = None
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"microgrid-{broker.city}-{island.island}")
        self._client.reconnect_delay_set(min_delay=reconnect_min_s, max_delay=reconnect_max_s)
        apply(self._client, broker.tls, broker.credentials)  # mqtts://: TLS; a certificate and/or a login
        self._client.on_connect_fail = self._on_connect_fail
        self._failing = False
        self._client.will_set(self.topic("online"), _json(online_payload(island, False, self.clock())), 1, True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_command
        self._client.message_callback_add(schedule_topic(broker.city, "+"), self._on_schedule)
        self.listening = threading.Event()
        """Set once the broker confirmed the subscription to the centre's commands."""
        self._client.on_subscribe = lambda *args: self.listening.set()
        self._sink: Store | None = None
        """The store's connection of paho's thread, for the centre's commands (opened at the first one)."""

    def topic(self, kind: str) -> str:
        """This island's topic of ``kind`` (status, alarms, cycle, online)."""
        return island_topic(self.broker.city, self.island.island, kind)

    # -- the cycle's side -------------------------------------------------------------------------

    def messages(self, cycle: CycleFacts) -> list[Outgoing]:
        """The messages of one cycle: status (retained), alarms (retained; when they changed), cycle."""
        island, site = self.island, self.site
        out = [Outgoing(self.topic("status"), lambda seq: _json(status_payload(island, site, cycle, seq)), 1, True)]
        if (now := alarms(cycle.summary)) != self._last_alarms:
            out.append(Outgoing(self.topic("alarms"), lambda seq: _json(alarms_payload(island, cycle, seq)), 1, True))
            self._last_alarms = now
        out.append(Outgoing(self.topic("cycle"), lambda seq: _json(cycle_payload(island, cycle, seq)), 1, False))
        return out

    def queue(self, cycle: CycleFacts) -> list[int]:
        """Queue ``cycle``'s messages in the outbox and wake the sender; their ``seq`` (empty on failure).
        Never raises: the cycle goes on when the outbox cannot be written (logged)."""
        try:
            seqs = self.outbox.put(self.messages(cycle), self.clock())
        except (StoreError, ValueError, TypeError) as exc:
            log.error("cannot queue the cycle's messages for the centre: %s", exc)
            self._last_alarms = None  # send them again next time
            return []
        self._wake.set()
        return seqs

    def enqueue(self, report: CycleReport) -> list[int]:
        """:meth:`queue` the messages of ``report``'s cycle (what the runner calls after each cycle)."""
        try:
            cycle = facts(report, self.site)
        except Exception as exc:  # a report the payloads cannot read: the cycle must still go on
            log.error("cannot build the cycle's messages for the centre: %r", exc)
            return []
        return self.queue(cycle)

    def attach(self, runner: Any) -> None:
        """Queue every cycle of ``runner`` (a :class:`~microgrid.control.runner.Runner`) before its ``on_cycle``."""
        before: Callable[[CycleReport], None] | None = runner.on_cycle

        def on_cycle(report: CycleReport) -> None:
            self.enqueue(report)
            if before is not None:
                before(report)

        runner.on_cycle = on_cycle

    # -- the connection's side --------------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the background: an unreachable broker is retried) and start the sender."""
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=self.keepalive_s)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._drain, name="microgrid-uplink", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._refused(f"it refused the connection: {reason}")
            return
        self._failing = False
        log.info("connected to the centre's broker %s:%d", self.broker.host, self.broker.port)
        client.publish(self.topic("online"), _json(online_payload(self.island, True, self.clock())), 1, True)
        topics = [(f"{self.broker.city}/{COMMANDS}", 1)]
        if self.island.queue is not None:  # the day's outage schedule of its queue (retained)
            topics.append((schedule_topic(self.broker.city, self.island.queue), 1))
        client.subscribe(topics)
        self._connected.set()
        self._wake.set()

    def _refused(self, why: str) -> None:
        """Log, once until the next successful connection (paho retries on its own), why the broker is not had."""
        if not self._failing:
            self._failing = True
            log.warning(
                "cannot connect to the centre's broker %s:%d (%s); messages wait in the outbox, retrying",
                self.broker.host,
                self.broker.port,
                why,
            )

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        tls = "TLS failed: does --mqtt-ca sign the broker's certificate, for this host name?"
        self._refused(tls if self.broker.tls else "unreachable")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self._connected.is_set():
            log.warning("lost the centre's broker (%s): messages wait in the outbox", reason)
        elif self.broker.tls:  # closed before its CONNACK: a client certificate the broker does not accept
            self._refused(f"it closed the connection at once ({reason}): does it accept --mqtt-cert?")
        self._connected.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._ack:
            self._acked.add(mid)
            self._ack.notify_all()

    def _on_command(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """A command from the centre: queue it as an operator action when it is for this island (module docstring)."""
        if message.topic.startswith(f"{self.broker.city}/islands/"):
            return  # not subscribed to: amqtt 0.12 hands a new subscriber the retained messages of others' filters
        island = self.island
        command, why = verdict(bytes(message.payload), island.island, island.district, island.queue)
        try:
            if self._sink is None:
                self._sink = Store(self.outbox.path, retention_days=None)
            if why is not None:
                log.warning("ignored a command from the centre: %s", why)
                self._sink.record_events(EventRow(self.clock(), "centre", f"ignored a command: {why}"))
            elif command is not None:
                by = f"centre:{command['id']}"
                self._sink.add_action(command["action"], {"on": command["on"]}, by=by)
                log.info(
                    "the centre's command %s queued: emergency %s", command["id"], "on" if command["on"] else "off"
                )
        except StoreError as exc:
            log.error("cannot queue the centre's command: %s", exc)

    def _on_schedule(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """The day's outage schedule of a queue: kept where the controller reads it when it is this island's queue,
        recorded as a ``centre`` event (:mod:`microgrid.uplink.schedules`); an invalid one is ignored and logged."""
        taken = take_schedule(bytes(message.payload), self.site, self.island.queue)
        if taken.note is None:
            return
        (log.warning if taken.refused else log.info)("%s", taken.note)
        try:
            if self._sink is None:
                self._sink = Store(self.outbox.path, retention_days=None)
            self._sink.record_events(EventRow(self.clock(), "centre", taken.note))
        except StoreError as exc:
            log.error("cannot record the centre's schedule: %s", exc)

    def _send(self, message: Queued) -> bool:
        """Publish ``message`` and wait for its PUBACK (paho re-sends it after a reconnect); False if stopped.
        The lock is not held while publishing: paho calls ``on_publish`` holding its own."""
        with self._ack:
            self._acked.clear()  # ids are reused (16 bits): only acknowledgements from now on count
        info = self._client.publish(message.topic, message.payload, message.qos, message.retain)
        with self._ack:
            while info.mid not in self._acked:
                if self._stop.is_set():
                    return False
                self._ack.wait(0.5)
        return True

    def _drain(self) -> None:
        """The sender thread: oldest first, one in flight, delete after the broker's acknowledgement."""
        while not self._stop.is_set():
            if not self._connected.wait(0.5):
                continue
            try:
                waiting = self.outbox.peek(1)
            except StoreError as exc:
                log.error("%s", exc)
                self._stop.wait(1.0)
                continue
            if not waiting:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            if not self._send(waiting[0]):
                return
            try:
                self.outbox.ack(waiting[0].seq)
                self.sent += 1
            except StoreError as exc:  # sent again later: the centre drops the seq it has seen
                log.error("%s", exc)

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` [s] for the sender to empty the outbox; True when it did."""
        deadline = time.monotonic() + timeout_s
        while len(self.outbox) > 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self, timeout_s: float = 2.0) -> None:
        """Say goodbye (``online: false``, retained), stop the sender and disconnect; unsent rows stay queued."""
        self._stop.set()
        self._wake.set()  # the sender may be waiting for work: let it see the stop at once
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._connected.is_set():
            self._connected.clear()  # a disconnection of our own: not worth a warning
            info = self._client.publish(
                self.topic("online"), _json(online_payload(self.island, False, self.clock())), 1, True
            )
            with contextlib.suppress(RuntimeError, ValueError):  # lost meanwhile: the Will says it
                info.wait_for_publish(timeout_s)
        self._client.disconnect()
        self._client.loop_stop()
        if self._sink is not None:
            self._sink.close()
