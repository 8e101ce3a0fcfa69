"""Record phase: a cycle report as store rows, and the status summary ``microgrid status`` shows.

The summary is the cycle's ``summary`` JSON: the state estimated (SOC, gensets, fuel, grid),
the plan's figures, the setpoint source in force and why, device health and the store's own
health. Everything else goes to the store's tables (telemetry with quality, the plan frame,
every setpoint with its outcome, events).

The store's own health: a failing store records nothing, so it cannot say so while it fails
(``microgrid status`` finds out by itself: :mod:`microgrid.store.health`). Once it records again,
the next cycle carries a ``store`` event "store failed from .. to ..: why; N record(s) waited in
memory" (:func:`_store_recovery`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from microgrid.control.cycle import CycleReport
from microgrid.store import CycleRow, EventRow, PlanRow, SetpointRow, Store, TelemetryRow

__all__ = ["record", "summary"]


def summary(report: CycleReport, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    """What an operator needs to see of a cycle (JSON-ready); ``limits``: the site's asset limits
    (:func:`~microgrid.control.decisions.asset_limits`), which ``microgrid override`` checks against."""
    est, plan, decision = report.estimate, report.plan, report.decision
    out: dict[str, Any] = {
        "heartbeat": report.heartbeat,
        "source": report.source,
        "reason": report.reason,
        "health": est.health if est else {},
        "implausible": est.implausible if est else {},
        "ignores_writes": est.ignores_writes if est else {},
        "faults": est.faults if est else {},
        "notes": report.notes,
        "refused": {d: r.refused for d, r in report.writes.items() if r.refused},
        "unknown": {d: r.unknown for d, r in report.writes.items() if r.unknown},
    }
    if report.emergency:
        out["emergency"] = report.emergency
    if report.manual:
        out["manual"] = report.manual
    if report.fuel_delivery_at is not None:
        out["fuel_delivery_at"] = report.fuel_delivery_at.isoformat()
    if limits is not None:
        out["limits"] = limits
    if report.outlook is not None and report.outlook.scheduled_now is not None:
        out["schedule"] = {"now": report.outlook.scheduled_now, "voided": report.outlook.voided}
    if report.autonomy is not None:
        out["autonomy"] = {
            "critical_h": round(report.autonomy.critical_h, 2),
            "critical_essential_h": round(report.autonomy.critical_essential_h, 2),
        }
    if est is not None:
        out["state"] = {
            "grid_up": est.grid_up,
            "soc": est.soc,
            "generators": {g: {"on": s.on, "hours_in_state": s.hours_in_state} for g, s in est.generators.items()},
            "fuel_stock": est.fuel_stock,
            "load_kw": est.load_kw,
        }
    if plan is not None:
        out["plan"] = {
            "status": plan.status.value,
            "objective": plan.objective,
            "mip_gap": plan.mip_gap,
            "solve_seconds": plan.solve_seconds,
            "energy_shed_kwh": plan.energy_shed_kwh(),
            "fuel_burnt": plan.fuel_burnt(),
        }
    if decision is not None:
        out["setpoints"] = {
            "battery_kw": decision.battery_kw,
            "generator_on": decision.generator_on,
            "generator_kw": decision.generator_kw,
            "tier_connected": decision.tier_connected,
        }
    return out


def _setpoint_rows(report: CycleReport, dry_run: bool) -> list[SetpointRow]:
    rows = []
    for device, points in report.planned_writes.items():
        result = report.writes.get(device)
        for point, value in points.items():
            number = float(value) if isinstance(value, int | float) else None
            if dry_run or result is None:
                rows.append(SetpointRow(report.start, device, point, number, "dry-run"))
            elif point in result.refused:
                rows.append(SetpointRow(report.start, device, point, number, "refused", result.refused[point]))
            elif point in result.unknown:
                rows.append(SetpointRow(report.start, device, point, number, "unknown", result.unknown[point]))
            elif point in result.mismatches:
                why = result.notes.get(point) or f"read back {result.mismatches[point][1]}"
                rows.append(SetpointRow(report.start, device, point, number, "mismatch", why))
            elif point in result.skipped:
                rows.append(
                    SetpointRow(report.start, device, point, number, "skipped", "unchanged, keep-alive not due")
                )
            else:
                rows.append(SetpointRow(report.start, device, point, number, "written", result.notes.get(point, "")))
    return rows


_FAILING: WeakKeyDictionary[Store, dict[str, Any]] = WeakKeyDictionary()
"""Store → what :func:`_store_recovery` saw of its failure so far (``since``, ``why``, ``waited``)."""
_LAST_CYCLE: WeakKeyDictionary[Store, datetime] = WeakKeyDictionary()


def _store_recovery(store: Store, now: datetime) -> list[EventRow]:
    """The ``store`` event of a failure that is over, once (module docstring).

    Called before each cycle is recorded: a store found failing remembers since when (the cycle
    before, the first that could not be written) and how many records wait in memory; a store found
    writable again after that gives the event, stamped with this cycle (the failure ended with the
    last cycle's record, which wrote the backlog)."""
    before, _LAST_CYCLE[store] = _LAST_CYCLE.get(store, now), now
    seen = _FAILING.get(store)
    if not store.healthy:
        seen = _FAILING.setdefault(store, {"since": before, "waited": 0})
        seen.update(why=store.last_error, waited=max(seen["waited"], store.backlog))
        return []
    if seen is None:
        return []
    del _FAILING[store]
    message = (
        f"store failed from {seen['since']:%Y-%m-%d %H:%M:%S} to {before:%Y-%m-%d %H:%M:%S} UTC ({seen['why']}); "
        f"{seen['waited']} record(s) waited in memory and were written when it recovered"
    )
    detail = {"since": seen["since"], "until": before, "why": seen["why"], "waited": seen["waited"]}
    return [EventRow(now, "store", message, detail)]


def record(
    store: Store,
    report: CycleReport,
    *,
    dry_run: bool = False,
    limits: dict[str, Any] | None = None,
    replaces: int | None = None,
) -> bool:
    """Write one cycle to ``store`` (one transaction); False when the store is failing.

    ``replaces``: the id of this interval's cycle recorded before a restart (``Store.record_cycle``).
    """
    telemetry = [
        TelemetryRow(m.timestamp, device, name, m.value, m.unit, m.quality.value)
        for device, measurements in report.snapshot.items()
        for name, m in measurements.items()
    ]
    plan = None
    if report.plan is not None:
        p = report.plan
        plan = PlanRow(report.start, p.status.value, p.objective, p.mip_gap, p.solve_seconds, p.frame)
    events = [EventRow(report.start, kind, message) for kind, message in report.events]
    events += [EventRow(report.start, "safety", note) for note in report.notes]
    events += _store_recovery(store, report.start)
    if report.source not in ("plan", "manual"):
        events.append(EventRow(report.start, "fallback", f"{report.source}: {report.reason}"))
    cycle = CycleRow(
        report.start, report.mode.value, report.source, report.reason, report.phases_s, summary(report, limits)
    )
    return store.record_cycle(
        cycle,
        telemetry=telemetry,
        plan=plan,
        setpoints=_setpoint_rows(report, dry_run),
        events=events,
        replaces=replaces,
    )
