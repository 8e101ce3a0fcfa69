"""Commands from the Situation Centre to islands (``<city>/commands``; models/centre/command.schema.json): pure.

Here: declare or lift emergency mode for a set of islands (ids, or ``"all"``). An island takes a
command meant for it through the same path as ``microgrid override --emergency``: an operator action
queued in its store, by ``centre:<id>``, applied at the start of the next cycle. A command that fails
the schema is ignored and logged (:mod:`microgrid.uplink.publish` records it as a ``centre`` event).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jsonschema

from microgrid.resources import shipped

__all__ = ["COMMANDS", "Verdict", "command_payload", "command_schema", "verdict"]

COMMANDS = "commands"
"""The topic's last part: ``<city>/commands``."""

Verdict = tuple[dict[str, Any] | None, str | None]
"""(the command, when it is for this island; why it was refused, when it is invalid)."""


@cache
def command_schema() -> dict[str, Any]:
    """The shipped JSON Schema of a command."""
    text = shipped("models", "centre", "command.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def verdict(raw: bytes, island: str) -> Verdict:
    """What ``island`` does with ``raw``: ``(command, None)`` to take it, ``(None, None)`` when it is valid but
    meant for other islands, ``(None, why)`` when it is not a valid command."""
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not JSON: {exc}"
    try:
        jsonschema.validate(payload, command_schema(), cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "(top level)"
        return None, f"{where}: {exc.message}"
    targets = payload["islands"]
    return (payload if targets == "all" or island in targets else None), None


def command_payload(
    command_id: str, on: bool, islands: list[str] | str, reason: str, ts: datetime | None = None
) -> dict[str, Any]:
    """An emergency command (``islands``: ids or ``"all"``), as the centre publishes it."""
    stamp = (ts or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "schema": 1,
        "id": command_id,
        "ts": stamp,
        "action": "emergency",
        "on": on,
        "islands": islands,
        "reason": reason,
    }
