"""What the SCADA points say, from one cycle's report: pure, no sockets.

:func:`cycle_values` turns a :class:`~microgrid.control.cycle.CycleReport` (and the summary the
controller records of it, :func:`microgrid.control.recording.summary`) into point name → value in
the point's unit (``None``: unknown, served as the point's sentinel). Units: kW (battery positive =
discharge, genset and PV positive = generation, tiers positive = consumption), h, %, the fuel's own
unit. The points the server keeps itself (heartbeat, cycle age, commands read back, the
watchdog's alarm) are not here: :mod:`microgrid.scada.server` adds them at read time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from microgrid.control.alarms import alarms
from microgrid.control.cycle import CycleReport
from microgrid.scada.pointmap import ScadaMap
from microgrid.site import Site
from microgrid.telemetry.registers import Value

__all__ = ["ALARM_BITS", "HEALTH", "alarm_bits", "cycle_values", "reason_code"]

MODES = {"auto": 1, "manual": 2, "safe": 3, "dry-run": 4}
SOURCES = {"plan": 1, "previous_plan": 2, "rules": 3, "manual": 4, "autonomous": 5}
HEALTH = {"ok": 0, "lost": 1, "frozen": 2, "degraded": 3, "implausible": 4, "ignores-writes": 5, "fault": 6}
SCHEDULE = {None: 0, "on": 1, "off": 2, "possible": 3}
REASONS = (
    ("state incomplete", 1),
    ("the previous solve is still running", 2),
    ("solve exceeded its wall-clock budget", 3),
    ("no plan", 4),
    ("no device answered", 5),
)
"""Prefix of a fallback's reason → ``fallback_reason`` code (9: any other)."""
ALARM_BITS = {"emergency": 0, "fallback": 1, "device": 2, "write": 3, "late": 4, "watchdog": 5, "incomplete": 6}
AUTONOMY_CAP_H = 10000.0
"""Autonomy figures above this [h] are served as this (an island that PV alone carries)."""


def reason_code(source: str, reason: str) -> int:
    """``fallback_reason``: 0 for a plan or manual setpoints, else the code of the reason's prefix (9: other)."""
    if source in ("plan", "manual"):
        return 0
    return next((code for prefix, code in REASONS if reason.startswith(prefix)), 9)


def alarm_bits(summary: Mapping[str, Any]) -> int:
    """The ``alarms`` bitfield's bits that a cycle's summary sets (0, 1, 2, 3 and 6)."""
    bits = 0
    if (summary.get("emergency") or {}).get("active"):
        bits |= 1 << ALARM_BITS["emergency"]
    if summary.get("source") not in (None, "plan", "manual"):
        bits |= 1 << ALARM_BITS["fallback"]
    if any(h != "ok" for h in summary.get("health", {}).values()):
        bits |= 1 << ALARM_BITS["device"]
    if summary.get("refused") or summary.get("unknown"):
        bits |= 1 << ALARM_BITS["write"]
    if summary.get("autonomy") is None:
        bits |= 1 << ALARM_BITS["incomplete"]
    return bits


def _measured(report: CycleReport, site: Site, asset: str, point: str) -> float | None:
    """The value of ``point`` read this cycle from the device bound to ``asset``."""
    for binding in site.devices:
        if binding.asset == asset and (m := report.snapshot.get(binding.id, {}).get(point)) is not None:
            return float(m.value) if isinstance(m.value, int | float) else None
    return None


def _health(report: CycleReport, site: Site, asset: str) -> int | None:
    health = report.estimate.health if report.estimate else {}
    for binding in site.devices:
        if binding.asset == asset and binding.id in health:
            return HEALTH.get(health[binding.id], HEALTH["degraded"])
    return None


def _autonomy(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else min(value, AUTONOMY_CAP_H)


def _status(report: CycleReport, summary: Mapping[str, Any]) -> dict[str, Value | None]:
    est, autonomy = report.estimate, report.autonomy
    grid = est.grid_up if est else None
    schedule = report.outlook.scheduled_now if report.outlook else None
    return {
        "mode": MODES[report.mode.value],
        "setpoint_source": SOURCES.get(report.source),
        "fallback_reason": reason_code(report.source, report.reason),
        "emergency_active": int(bool(report.emergency.get("active"))),
        "grid_state": 2 if grid is None else int(grid),
        "schedule_now": SCHEDULE.get(schedule, 0),
        "autonomy_critical_h": _autonomy(autonomy.critical_h) if autonomy else None,
        "autonomy_critical_essential_h": _autonomy(autonomy.critical_essential_h) if autonomy else None,
        "alarms": alarm_bits(summary),
        "active_alarm_count": len(alarms(summary)),
    }


def _batteries(site: Site, ids: tuple[str, ...], report: CycleReport) -> dict[str, Value | None]:
    est, decision = report.estimate, report.decision
    out: dict[str, Value | None] = {}
    for n, bat in enumerate(ids, start=1):
        soc = est.soc.get(bat) if est else None
        out[f"battery{n}_soc_pct"] = None if soc is None else soc * 100
        out[f"battery{n}_power_kw"] = est.battery_kw.get(bat) if est else None
        out[f"battery{n}_setpoint_kw"] = decision.battery_kw.get(bat) if decision else None
        out[f"battery{n}_health"] = _health(report, site, bat)
    return out


def _gensets(site: Site, ids: tuple[str, ...], report: CycleReport) -> dict[str, Value | None]:
    est = report.estimate
    out: dict[str, Value | None] = {}
    for n, gen in enumerate(ids, start=1):
        state = est.generators.get(gen) if est else None
        out[f"genset{n}_state"] = None if state is None else int(state.on)
        out[f"genset{n}_hours_in_state_h"] = None if state is None else state.hours_in_state
        out[f"genset{n}_power_kw"] = _measured(report, site, gen, "generator_power_kw")
        out[f"genset{n}_fuel_level_pct"] = _measured(report, site, gen, "fuel_level_pct")
        out[f"genset{n}_health"] = _health(report, site, gen)
    return out


def _tier(report: CycleReport, tier: str) -> tuple[float | None, float | None, float | None]:
    """(demand, served, shed) [kW] this interval: planned (step 0) when a plan drives it, else measured."""
    plan, est = report.plan, report.estimate
    if plan is not None and report.source in ("plan", "manual") and f"load.{tier}.served_kw" in plan.frame:
        served = float(plan.frame[f"load.{tier}.served_kw"].iloc[0])
        shed = float(plan.frame[f"load.{tier}.shed_kw"].iloc[0])
        return served + shed, served, shed
    demand = est.load_kw.get(tier) if est else None
    connected = est.tier_connected.get(tier) if est else None
    if demand is None or connected is None:
        return demand, None, None
    return demand, demand if connected else 0.0, 0.0 if connected else demand


def _others(report: CycleReport, scada: ScadaMap, site: Site) -> dict[str, Value | None]:
    est, decision = report.estimate, report.decision
    out: dict[str, Value | None] = {}
    for n, pv in enumerate(scada.assets["pv"], start=1):
        out[f"pv{n}_power_kw"] = _measured(report, site, pv, "pv_power_kw")
        out[f"pv{n}_curtailment_limit_kw"] = decision.pv_limit_kw.get(pv) if decision else None
    for n, tier in enumerate(scada.assets["tiers"], start=1):
        demand, served, shed = _tier(report, tier)
        out |= {f"tier{n}_demand_kw": demand, f"tier{n}_served_kw": served, f"tier{n}_shed_kw": shed}
        connected = est.tier_connected.get(tier) if est else None
        out[f"tier{n}_relay_state"] = None if connected is None else int(connected)
    for n, fuel in enumerate(scada.assets["fuels"], start=1):
        out[f"fuel{n}_stock"] = est.fuel_stock.get(fuel) if est else None
    return out


def cycle_values(
    site: Site, scada: ScadaMap, report: CycleReport, summary: Mapping[str, Any]
) -> dict[str, Value | None]:
    """Every status and asset point's value after ``report``'s cycle (module docstring)."""
    out = _status(report, summary)
    out |= _batteries(site, scada.assets["batteries"], report)
    out |= _gensets(site, scada.assets["gensets"], report)
    out |= _others(report, scada, site)
    return out
