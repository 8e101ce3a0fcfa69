"""Sending commands to islands: one MQTT message on ``<city>/commands`` (QoS 1), published and acknowledged;
the day's outage schedule of a queue as a retained message on ``<city>/schedules/<queue>``."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.publish as mqtt_publish
from paho.mqtt import MQTTException

from microgrid.forecast.schedule import read_schedule
from microgrid.uplink.commands import COMMANDS, Targets, check, command_payload
from microgrid.uplink.schedules import schedule_payload, schedule_topic
from microgrid.uplink.security import publish_kwargs
from microgrid.uplink.topics import Broker

if TYPE_CHECKING:
    from microgrid.forecast.schedule import OutageSchedule

__all__ = ["send_emergency", "send_schedule"]


class _QuietAfterDisconnect(logging.Filter):
    """paho's one-shot publish logs "Client is not connected" at ERROR once it has disconnected, after every
    successful send (its loop runs once more): not an error an operator should read after a command went out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Client is not connected")


logging.getLogger("paho.mqtt.client").addFilter(_QuietAfterDisconnect())


def _publish(broker: Broker, topic: str, payload: dict[str, Any], *, retain: bool, client_id: str) -> None:
    """One message, QoS 1, published and acknowledged (the connection's options in one place)."""
    try:
        mqtt_publish.single(
            topic,
            json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
            qos=1,
            retain=retain,
            hostname=broker.host,
            port=broker.port,
            client_id=client_id,
            **publish_kwargs(broker.tls, broker.credentials),  # mqtts://: TLS; the centre's certificate/login
        )
    except MQTTException as exc:  # the broker refused the login
        raise PermissionError(f"the broker refused the centre's connection: {exc}") from None


def send_emergency(
    broker: Broker, islands: list[str] | str | Targets, on: bool, reason: str, *, command_id: str | None = None
) -> dict[str, Any]:
    """Declare (``on``) or lift emergency mode on ``islands`` (ids, ``"all"``, or targets of
    :func:`~microgrid.uplink.commands.targets_of`: islands, districts, queues); return the command sent.

    Raises
    ------
    ValueError
        The command would fail its schema (an island id, a reason too long): nothing sent.
    OSError
        The broker cannot be reached (:class:`ssl.SSLError`: TLS failed; :class:`PermissionError`: it refused
        the login). A publish the broker's ACL denies is dropped silently (MQTT 3.1.1): no error.
    """
    command = command_payload(command_id or uuid.uuid4().hex[:12], on, islands, reason)
    if (why := check(command, "command.schema.json")) is not None:
        raise ValueError(why)
    _publish(
        broker,
        f"{broker.city}/{COMMANDS}",
        command,
        retain=False,
        client_id=f"microgrid-centre-command-{command['id']}",
    )
    return command


def send_schedule(
    broker: Broker,
    queue: str,
    path: Path,
    *,
    by: str = "centre",
    tz: str = "Europe/Kyiv",
    schedule_id: str | None = None,
) -> tuple[dict[str, Any], OutageSchedule]:
    """Publish the outage schedule file ``path`` (CSV or JSON, docs/outage-schedules.md) for ``queue``, retained
    on ``<city>/schedules/<queue>``, once it reads as the islands' controllers will read it (local times in ``tz``
    unless the file names a zone); return the message sent and the schedule read.

    Raises
    ------
    ScheduleError
        The file is not a schedule of ``queue`` (the line or key named): nothing sent.
    ValueError
        The message would fail its schema (a queue that is not topic-safe, ``by`` empty): nothing sent.
    OSError
        The file cannot be read, or the broker cannot be reached (:class:`PermissionError`: it refused the login).
    """
    message = schedule_payload(queue, path, by, schedule_id=schedule_id)
    if (why := check(message, "schedule.schema.json")) is not None:
        raise ValueError(why)
    schedule = read_schedule(path, queue, tz)  # as the islands will read it; the file and line named
    topic = schedule_topic(broker.city, queue)
    _publish(broker, topic, message, retain=True, client_id=f"microgrid-centre-schedule-{message['id']}")
    return message, schedule
