"""The messages an island publishes to the Situation Centre: pure builders, JSON-ready dicts.

The cycle's status is assembled once, by :func:`microgrid.control.recording.summary` (what the store
records and ``microgrid status`` and SCADA show) and :func:`microgrid.control.alarms.alarms`;
:func:`facts` adds the few live flows the summary does not keep (battery, genset and PV power), and
the builders here only rearrange them into the documented payloads (``models/centre/*.schema.json``).

Units and signs: power kW (battery positive = discharge; gensets and PV positive = generation),
SOC %, autonomy and hours-to-dry h, fuel in the fuel's own unit (``l``…) and its unit per hour.
Times are UTC ISO 8601 (``2026-12-05T02:15:00Z``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from microgrid.control.alarms import alarms
from microgrid.control.cycle import CycleReport
from microgrid.control.decisions import asset_limits
from microgrid.control.recording import summary
from microgrid.site import Site

__all__ = [
    "SCHEMA",
    "CycleFacts",
    "Island",
    "alarms_payload",
    "cycle_payload",
    "facts",
    "fuel_outlook",
    "online_payload",
    "status_payload",
    "supply_source",
]

SCHEMA = 1
"""The payloads' version (``schema`` in every message); a change that breaks a reader bumps it."""
AUTONOMY_CAP_H = 10000.0
"""Autonomy figures above this [h] are published as this (an island PV alone carries); as SCADA does."""


@dataclass(frozen=True)
class Island:
    """Who publishes: the island's id (topic-safe), its kind (:data:`~microgrid.uplink.topics.KINDS`),
    position [° WGS84], district and outage queue (``"3.1"``; None: unknown or none)."""

    island: str
    kind: str = "other"
    latitude: float | None = None
    longitude: float | None = None
    district: str | None = None
    queue: str | None = None
    """The outage queue: the centre's commands for it and its published schedules reach this island."""


@dataclass(frozen=True)
class CycleFacts:
    """One cycle as the payloads need it: its start (UTC), mode, the recorded summary, and live flows [kW]."""

    start: datetime
    mode: str
    summary: Mapping[str, Any]
    phases_s: Mapping[str, float] = field(default_factory=dict)
    battery_kw: float | None = None
    """Sum over batteries, positive = discharge; None: unknown."""
    generator_kw: Mapping[str, float | None] = field(default_factory=dict)
    """Measured output of each genset; None: not read."""
    pv_kw: float | None = None


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _measured(report: CycleReport, site: Site, asset: str, point: str) -> float | None:
    for binding in site.devices:
        if binding.asset == asset and (m := report.snapshot.get(binding.id, {}).get(point)) is not None:
            return float(m.value) if isinstance(m.value, int | float) else None
    return None


def facts(report: CycleReport, site: Site) -> CycleFacts:
    """The facts of ``report``'s cycle (its summary as the store records it, and the live flows)."""
    est = report.estimate
    gen_kw = {g.id: _measured(report, site, g.id, "generator_power_kw") for g in site.generators}
    return CycleFacts(
        start=report.start,
        mode=report.mode.value,
        summary=summary(report, asset_limits(site)),
        phases_s=dict(report.phases_s),
        battery_kw=sum(est.battery_kw.values()) if est and est.battery_kw else None,
        generator_kw=gen_kw,
        pv_kw=sum(est.pv_kw.values()) if est and est.pv_kw else None,
    )


def supply_source(cycle: CycleFacts) -> str:
    """What carries the island now: ``grid`` when it is up, else ``diesel`` when a genset runs, else
    ``battery`` when batteries discharge, else ``pv`` when PV produces; ``none`` when nothing does,
    ``unknown`` when the grid's state is unknown and nothing else is seen."""
    state = cycle.summary.get("state") or {}
    grid_up = state.get("grid_up")
    if grid_up:
        return "grid"
    if any(g.get("on") for g in (state.get("generators") or {}).values()):
        return "diesel"
    if (cycle.battery_kw or 0.0) > 0.0:
        return "battery"
    if (cycle.pv_kw or 0.0) > 0.0:
        return "pv"
    return "unknown" if grid_up is None else "none"


def fuel_outlook(site: Site, cycle: CycleFacts) -> dict[str, dict[str, Any]]:
    """Per fuel: unit, stock, burn [unit/h] at the running gensets' current output, and hours to dry
    (stock / burn; None when nothing burns it or the stock is unknown)."""
    state = cycle.summary.get("state") or {}
    stocks, running = state.get("fuel_stock") or {}, state.get("generators") or {}
    out: dict[str, dict[str, Any]] = {}
    for name, fuel in site.fuels.items():
        burn = 0.0
        for g in site.generators:
            if g.fuel == name and (running.get(g.id) or {}).get("on"):
                burn += g.fuel_per_hour(cycle.generator_kw.get(g.id) or 0.0, True)
        stock = stocks.get(name, fuel.stock)
        hours = stock / burn if stock is not None and burn > 0 else None
        out[name] = {
            "unit": fuel.unit,
            "stock": None if stock is None else round(float(stock), 3),
            "burn_per_h": round(burn, 3),
            "hours_to_dry": None if hours is None else round(hours, 2),
        }
    return out


def _autonomy(cycle: CycleFacts) -> dict[str, float] | None:
    recorded = cycle.summary.get("autonomy")
    if recorded is None:
        return None
    capped = {k: min(float(v), AUTONOMY_CAP_H) for k, v in recorded.items() if not math.isnan(float(v))}
    return {
        "critical_h": capped.get("critical_h", 0.0),
        "critical_essential_h": capped.get("critical_essential_h", 0.0),
    }


def _emergency(cycle: CycleFacts) -> dict[str, Any]:
    emergency = cycle.summary.get("emergency") or {}
    active = bool(emergency.get("active"))
    since, reason = emergency.get("since"), emergency.get("reason")
    return {"active": active, "since": str(since) if active and since else None, "reason": reason if active else None}


def _grid(cycle: CycleFacts) -> str:
    up = (cycle.summary.get("state") or {}).get("grid_up")
    return "unknown" if up is None else "up" if up else "down"


def status_payload(island: Island, site: Site, cycle: CycleFacts, seq: int) -> dict[str, Any]:
    """``…/status``: the island after ``cycle`` (models/centre/status.schema.json)."""
    state, plan = cycle.summary.get("state") or {}, cycle.summary.get("plan") or {}
    position = None
    if island.latitude is not None and island.longitude is not None:
        position = {"latitude": island.latitude, "longitude": island.longitude}
    active = alarms(cycle.summary)
    return {
        "schema": SCHEMA,
        "seq": seq,
        "island": island.island,
        "name": site.site.name,
        "kind": island.kind,
        "position": position,
        "district": island.district,
        "queue": island.queue,
        "ts": _iso(cycle.start),
        "mode": cycle.mode,
        "grid": _grid(cycle),
        "source": supply_source(cycle),
        "setpoint_source": cycle.summary.get("source"),
        "emergency": _emergency(cycle),
        "autonomy": _autonomy(cycle),
        "soc_pct": {b: round(float(s) * 100, 2) for b, s in (state.get("soc") or {}).items() if s is not None},
        "fuel": fuel_outlook(site, cycle),
        "alarm_count": len(active),
        "alarms": active,
        "last_cycle": {
            "ts": _iso(cycle.start),
            "plan_status": plan.get("status"),
            "reason": cycle.summary.get("reason"),
        },
    }


def alarms_payload(island: Island, cycle: CycleFacts, seq: int) -> dict[str, Any]:
    """``…/alarms``: the active alarms after ``cycle``, most severe first (alarms.schema.json)."""
    active = alarms(cycle.summary)
    return {"schema": SCHEMA, "seq": seq, "island": island.island, "ts": _iso(cycle.start), "alarms": active}


def cycle_payload(island: Island, cycle: CycleFacts, seq: int) -> dict[str, Any]:
    """``…/cycle``: one control cycle, what it decided and how long its phases took (cycle.schema.json)."""
    plan = cycle.summary.get("plan") or {}
    return {
        "schema": SCHEMA,
        "seq": seq,
        "island": island.island,
        "ts": _iso(cycle.start),
        "mode": cycle.mode,
        "setpoint_source": cycle.summary.get("source"),
        "reason": cycle.summary.get("reason") or "",
        "plan_status": plan.get("status"),
        "solve_s": plan.get("solve_seconds"),
        "phases_ms": {k: round(v * 1000, 1) for k, v in cycle.phases_s.items()},
    }


def online_payload(island: Island, online: bool, ts: datetime) -> dict[str, Any]:
    """``…/online``: true when the island connects; false is its Last Will, sent by the broker (online.schema.json)."""
    return {"schema": SCHEMA, "island": island.island, "online": online, "ts": _iso(ts)}
