"""The centre's MQTT subscriber: ``<city>/islands/#`` at QoS 1, each message into the fleet store.

paho-mqtt runs its own network thread (reconnecting by itself); a persistent session (``clean_session``
false, a fixed client id) lets the broker keep QoS 1 messages for the centre while it is away.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from microgrid.centre.fleet import FleetStore
from microgrid.centre.ingest import parse_topic
from microgrid.uplink.security import apply
from microgrid.uplink.topics import Broker

__all__ = ["Listener"]

log = logging.getLogger("microgrid.centre")


class Listener:
    """Subscribes to ``broker``'s city and feeds ``fleet``; :meth:`start`, :meth:`close`."""

    def __init__(self, broker: Broker, fleet: FleetStore, *, client_id: str = "microgrid-centre") -> None:
        self.broker, self.fleet = broker, fleet
        self.subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self._client.reconnect_delay_set(1, 10)
        apply(self._client, broker.tls, broker.credentials)  # mqtts://: TLS; the centre's certificate and/or login
        self._client.on_connect_fail = lambda *args: log.warning(
            "cannot reach the broker %s:%d%s; retrying", broker.host, broker.port, " (TLS)" if broker.tls else ""
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *args: self.subscribed.set()
        self._client.on_message = self._on_message

    def start(self) -> None:
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self._client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("the broker refused the centre: %s", reason)
            return
        client.subscribe(f"{self.broker.city}/islands/#", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        arrival = parse_topic(message.topic, bytes(message.payload))
        if arrival is None:
            log.warning("ignored a message on %s: not a microgrid island's topic or not JSON", message.topic)
            return
        try:
            self.fleet.ingest(arrival)
        except Exception as exc:  # one bad message must not stop the centre
            log.error("cannot keep the message on %s: %r", message.topic, exc)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
