"""Commands from the Situation Centre to islands (``<city>/commands``; models/centre/command.schema.json): pure.

Here: declare or lift emergency mode for a set of islands, named by any of: island ids (or ``"all"``),
districts, outage queues (``"3.1"``). An island takes a command when it matches any of its targets, through
the same path as ``microgrid override --emergency``: an operator action queued in its store, by
``centre:<id>``, applied at the start of the next cycle. A command that fails the schema is ignored and
logged (:mod:`microgrid.uplink.publish` records it as a ``centre`` event).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jsonschema

from microgrid.resources import shipped

__all__ = [
    "COMMANDS",
    "Targets",
    "Verdict",
    "check",
    "command_payload",
    "command_schema",
    "parsed",
    "targets_of",
    "verdict",
]

COMMANDS = "commands"
"""The topic's last part: ``<city>/commands``."""

Verdict = tuple[dict[str, Any] | None, str | None]
"""(the command, when it is for this island; why it was refused, when it is invalid)."""


@cache
def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(shipped("models", "centre", name).read_text(encoding="utf-8"))
    return schema


def command_schema() -> dict[str, Any]:
    """The shipped JSON Schema of a command."""
    return _schema("command.schema.json")


def check(payload: Any, schema_file: str) -> str | None:
    """Why ``payload`` fails the shipped schema ``schema_file`` (``"where: what"``), None when it is valid."""
    try:
        jsonschema.validate(payload, _schema(schema_file), cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "(top level)"
        return f"{where}: {exc.message}"
    return None


def parsed(raw: bytes, schema_file: str) -> tuple[dict[str, Any] | None, str | None]:
    """``raw`` as JSON checked against the shipped ``schema_file``: ``(message, None)``, or ``(None, why)``."""
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not JSON: {exc}"
    why = check(payload, schema_file)
    return (None, why) if why is not None else (payload, None)


def verdict(raw: bytes, island: str, district: str | None = None, queue: str | None = None) -> Verdict:
    """What ``island`` (in ``district``, on outage ``queue``; None: none) does with ``raw``: ``(command, None)``
    to take it, ``(None, None)`` when it is valid but meant for other islands, ``(None, why)`` when it is not a
    valid command. It is meant for the island when any target matches: its id among ``islands`` (or
    ``islands: "all"``), its district among ``districts``, its queue among ``queues`` (exact names)."""
    payload, why = parsed(raw, "command.schema.json")
    if payload is None:
        return None, why
    ids = payload.get("islands", [])
    mine = (
        ids == "all"
        or island in ids
        or (district is not None and district in payload.get("districts", []))
        or (queue is not None and queue in payload.get("queues", []))
    )
    return (payload if mine else None), None


Targets = dict[str, list[str] | str]
"""A command's targets: any of ``islands`` (ids, or ``"all"``), ``districts``, ``queues``."""


def targets_of(
    islands: list[str] | str | None = None, districts: list[str] | None = None, queues: list[str] | None = None
) -> Targets:
    """The targets given (None and empty lists left out; ``islands="all"`` stands alone); ValueError when none is."""
    if islands == "all":
        return {"islands": "all"}
    found: Targets = {k: v for k, v in (("islands", islands), ("districts", districts), ("queues", queues)) if v}
    if not found:
        raise ValueError("no target: give island ids, districts, queues or all")
    return found


def command_payload(
    command_id: str, on: bool, islands: list[str] | str | Targets, reason: str, ts: datetime | None = None
) -> dict[str, Any]:
    """An emergency command, as the centre publishes it. ``islands``: ids, ``"all"``, or the targets of
    :func:`targets_of` (islands, districts, queues)."""
    stamp = (ts or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    targets = islands if isinstance(islands, dict) else {"islands": islands}
    return {
        "schema": 1,
        "id": command_id,
        "ts": stamp,
        "action": "emergency",
        "on": on,
        **targets,
        "reason": reason,
    }
