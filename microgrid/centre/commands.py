"""Sending commands to islands: one MQTT message on ``<city>/commands`` (QoS 1), published and acknowledged."""

from __future__ import annotations

import json
import uuid
from typing import Any

import paho.mqtt.publish as mqtt_publish

from microgrid.uplink.commands import COMMANDS, command_payload, verdict
from microgrid.uplink.topics import Broker

__all__ = ["send_emergency"]


def send_emergency(
    broker: Broker, islands: list[str] | str, on: bool, reason: str, *, command_id: str | None = None
) -> dict[str, Any]:
    """Declare (``on``) or lift emergency mode on ``islands`` (ids or ``"all"``); return the command sent.

    Raises
    ------
    ValueError
        The command would fail its schema (an island id, a reason too long): nothing sent.
    OSError
        The broker cannot be reached.
    """
    command = command_payload(command_id or uuid.uuid4().hex[:12], on, islands, reason)
    if (why := verdict(json.dumps(command).encode(), "")[1]) is not None:
        raise ValueError(why)
    mqtt_publish.single(
        f"{broker.city}/{COMMANDS}",
        json.dumps(command, separators=(",", ":")),
        qos=1,
        hostname=broker.host,
        port=broker.port,
        client_id=f"microgrid-centre-command-{command['id']}",
    )
    return command
