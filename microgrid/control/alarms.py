"""The active alarms of a cycle, read from its recorded summary (:func:`microgrid.control.recording.summary`).

An alarm is anything an operator must act on or know about now, one sentence each, most severe
first: emergency mode; a fallback in force (any setpoint source but ``plan`` and ``manual``); every
device whose health is not ``ok`` (``lost``, ``frozen``, ``degraded``, ``implausible`` with why,
``ignores-writes`` with why, ``fault`` with the fault it reports); every write whose outcome is
unknown or that was refused, with why.
The store's own health is not in a cycle's summary (a failing store records nothing): ``microgrid
status`` adds what :func:`microgrid.store.health.store_health` finds, and the alarms raised between
cycles (:func:`event_alarms`: the SCADA watchdog's, until SCADA acknowledges it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["alarms", "event_alarms"]

_WHY_OF = {"implausible": "implausible", "ignores-writes": "ignores_writes", "fault": "faults"}
"""Health → the summary's key that says why."""


def alarms(summary: Mapping[str, Any]) -> list[str]:
    """The alarms of one cycle's summary, most severe first (module docstring); empty when all is well."""
    out = []
    emergency = summary.get("emergency") or {}
    if emergency.get("active"):
        out.append(f"emergency mode since {emergency.get('since')}: {emergency.get('reason')}")
    source = summary.get("source")
    if source is not None and source not in ("plan", "manual"):
        out.append(f"fallback in force: {source} ({summary.get('reason') or 'no reason recorded'})")
    for device, health in summary.get("health", {}).items():
        if health != "ok":
            why = summary.get(_WHY_OF.get(health, ""), {}).get(device)
            out.append(f"device {device} {health}" + (f": {why}" if why else ""))
    for kind, said in (("unknown", "outcome unknown"), ("refused", "refused")):
        for device, points in summary.get(kind, {}).items():
            out += [f"write {device}.{point} {said}: {why}" for point, why in points.items()]
    return out


def event_alarms(last: Mapping[str, Any] | None) -> list[str]:
    """The alarm a kind of event raises between cycles: the last event of that kind (a store row, e.g.
    ``Store.last_event("scada")``) is an alarm while its ``detail`` says ``{"alarm": true}``; a later
    event of the kind without it (an acknowledgement) clears it."""
    if last is None or not (last.get("detail") or {}).get("alarm"):
        return []
    return [f"{last['kind']}: {last['message']} (since {last['ts']:%Y-%m-%d %H:%M} UTC)"]
