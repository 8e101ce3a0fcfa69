"""Decisions: what the assets should do this interval, from a plan or from the fallback rules.

A :class:`Decision` is asset-level and in our units (kW, battery positive = discharge); the
safety layer (:mod:`microgrid.control.safety`) checks it and :mod:`microgrid.control.points`
turns it into register writes.

**The rule-based dispatch** (the fallback when no plan can be trusted; also ``safe`` mode):

1. every load tier stays connected, except when the grid is not up, no genset is running and
   the batteries are at their floor (SOC ≤ soc_min + 5 % of the band): then the least
   important tiers are disconnected, one per cycle, never the most important one;
2. gensets (only when the grid is not up) start when the batteries' energy-weighted SOC falls
   below ``soc_min + 25 %`` of the band and stop above ``soc_min + 70 %`` (hysteresis); a
   running genset is loaded to ``max_kw`` (the surplus charges the batteries);
3. with the grid up, each battery charges at its live limit while below ``soc_max``;
4. with the grid down, batteries share the net load (measured demand − running gensets) in
   proportion to their discharge limits, or absorb the surplus likewise (PV is not measured
   here: the grid-forming inverter takes what PV adds);
5. PV is never curtailed by the rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from microgrid.control.estimate import Estimate
from microgrid.plan_columns import (
    battery_charge_kw,
    battery_discharge_kw,
    battery_soc,
    generator_kw,
    generator_on,
    load_shed_kw,
    pv_kw,
)
from microgrid.site import Battery, Site

__all__ = [
    "SOC_MATCH",
    "Decision",
    "asset_limits",
    "from_plan_row",
    "live_limits_kw",
    "manual_payload",
    "overlay",
    "override_problems",
    "rules",
    "state_matches",
]

SHED_ALL = 0.99
"""A tier is disconnected only when the plan sheds at least this share of its demand."""


@dataclass(frozen=True)
class Decision:
    """Asset-level setpoints for one interval.

    Attributes
    ----------
    battery_kw
        Battery id → power [kW], positive = discharge.
    generator_on, generator_kw
        Genset id → run request, and power [kW] when running.
    pv_limit_kw
        PV array id → output cap [kW], or None for no curtailment.
    tier_connected
        Load tier → feeder relay closed.
    source
        ``plan``, ``previous_plan``, ``rules`` or ``manual``.
    reason
        Why this source was used.
    """

    battery_kw: dict[str, float] = field(default_factory=dict)
    generator_on: dict[str, bool] = field(default_factory=dict)
    generator_kw: dict[str, float] = field(default_factory=dict)
    pv_limit_kw: dict[str, float | None] = field(default_factory=dict)
    tier_connected: dict[str, bool] = field(default_factory=dict)
    source: str = "plan"
    reason: str = ""

    def with_source(self, source: str, reason: str) -> Decision:
        """The same setpoints, attributed to another source."""
        return replace(self, source=source, reason=reason)


def from_plan_row(
    site: Site, row: pd.Series, demand_kw: dict[str, float], available_pv_kw: dict[str, float]
) -> Decision:
    """The decision of one step of a plan frame (spec column names)."""
    pv_limit: dict[str, float | None] = {}
    for array in site.pv:
        kw = float(row[pv_kw(array.id)])
        pv_limit[array.id] = kw if kw < available_pv_kw.get(array.id, 0.0) - 0.5 else None
    return Decision(
        battery_kw={
            b.id: float(row[battery_discharge_kw(b.id)] - row[battery_charge_kw(b.id)]) for b in site.batteries
        },
        generator_on={g.id: bool(row[generator_on(g.id)]) for g in site.generators},
        generator_kw={g.id: float(row[generator_kw(g.id)]) for g in site.generators},
        pv_limit_kw=pv_limit,
        tier_connected={
            t.id: not float(row[load_shed_kw(t.id)]) >= SHED_ALL * max(demand_kw.get(t.id, 0.0), 1e-9)
            or demand_kw.get(t.id, 0.0) <= 0.0
            for t in site.loads
        },
    )


SOC_MATCH = 0.05
"""How far (fraction of capacity) a battery's SOC may be from a previous plan's for that plan to be replayed."""


def state_matches(plan: Any, row: int, est: Estimate) -> bool:
    """The state now is the one the plan expected at the start of its step ``row`` (its end of step
    ``row − 1``): the grid as planned, every genset running as planned, every battery's SOC within
    :data:`SOC_MATCH` of the planned SOC. A state not known now does not match."""
    frame, site = plan.frame, plan.site
    before = frame.iloc[row - 1]
    if est.grid_up is None or bool(plan.profiles.grid_available.iloc[row] >= 0.5) != est.grid_up:
        return False
    for gen in site.generators:
        state = est.generators.get(gen.id)
        if state is None or state.on != bool(before[generator_on(gen.id)]):
            return False
    for bat in site.batteries:
        soc = est.soc.get(bat.id)
        if soc is None or abs(soc - float(before[battery_soc(bat.id)])) > SOC_MATCH:
            return False
    return True


def overlay(base: Decision, manual: Decision) -> Decision:
    """``base`` with the assets ``manual`` names set as it says (an operator's partial override): the
    others keep ``base``'s setpoints. A genset named in ``generator_kw`` only runs if that kW is > 0."""
    named = [*manual.battery_kw, *manual.generator_kw, *manual.tier_connected, *manual.pv_limit_kw]
    return Decision(
        battery_kw=base.battery_kw | manual.battery_kw,
        generator_on=base.generator_on | manual.generator_on,
        generator_kw=base.generator_kw | manual.generator_kw,
        pv_limit_kw=base.pv_limit_kw | manual.pv_limit_kw,
        tier_connected=base.tier_connected | manual.tier_connected,
        source="manual",
        reason=f"operator setpoints for {', '.join(named) or 'nothing'}; the rest from {base.source}",
    )


def manual_payload(manual: Decision) -> dict[str, dict[str, Any]]:
    """An operator's override as ``microgrid override`` queues it (``battery_kw``, ``generator_kw``,
    ``tier_connected``; the assets named only): what the store records and a restart resumes."""
    out: dict[str, dict[str, Any]] = {
        "battery_kw": dict(manual.battery_kw),
        "generator_kw": {g: kw if manual.generator_on.get(g, kw > 0) else 0.0 for g, kw in manual.generator_kw.items()},
        "tier_connected": dict(manual.tier_connected),
    }
    return {k: v for k, v in out.items() if v}


def asset_limits(site: Site) -> dict[str, dict[str, Any]]:
    """What an operator's override is checked against (JSON-ready; recorded with every cycle, so that
    ``microgrid override`` checks without the site file): batteries [−max charge, max discharge] kW,
    gensets [min, max] kW, tiers by priority, and the tiers never switched off (the most important)."""
    top = min((t.priority for t in site.loads), default=None)
    return {
        "battery_kw": {b.id: [-b.max_charge_kw, b.max_discharge_kw] for b in site.batteries},
        "generator_kw": {g.id: [g.min_kw, g.max_kw] for g in site.generators},
        "tier_connected": {t.id: t.priority == top for t in site.loads},
    }


def override_problems(payload: dict[str, dict[str, Any]], limits: dict[str, dict[str, Any]]) -> list[str]:
    """Every reason to refuse an operator's override (empty: acceptable). ``payload``: ``battery_kw`` and
    ``generator_kw`` (id → kW; a genset's 0 stops it, else within [min_kw, max_kw]), ``tier_connected``
    (id → bool; the most important tiers cannot be switched off); ``limits``: :func:`asset_limits`."""
    problems = []
    for group, values in payload.items():
        known = limits.get(group)
        if known is None or not isinstance(values, dict):
            problems.append(f"unknown setpoint group {group!r} (battery_kw, generator_kw, tier_connected)")
            continue
        for asset, value in values.items():
            if asset not in known:
                problems.append(f"{group}: no such asset {asset!r} (the site has {', '.join(sorted(known)) or 'none'})")
            elif group == "tier_connected":
                if not isinstance(value, bool):
                    problems.append(f"tier {asset}: on or off, got {value!r}")
                elif known[asset] and not value:
                    problems.append(f"tier {asset}: the most important tier is never switched off")
            elif not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                problems.append(f"{asset}: a finite number of kW, got {value!r}")
            elif not _within(group, value, known[asset]):
                low, high = known[asset]
                allowed = f"0 (stop) or {low:g} … {high:g}" if group == "generator_kw" else f"{low:g} … {high:g}"
                problems.append(f"{asset}: {value:g} kW is outside its limits ({allowed} kW)")
    return problems


def _within(group: str, value: float, bounds: list[float]) -> bool:
    low, high = bounds
    if group == "generator_kw":
        return value == 0 or low <= value <= high
    return low <= value <= high


def _band_position(site: Site, est: Estimate) -> float | None:
    """Energy-weighted SOC of the batteries as a position in their bands (0 = floor, 1 = ceiling)."""
    known = [b for b in site.batteries if b.id in est.soc]
    if not known:
        return None
    total = sum(b.capacity_kwh for b in known)
    soc = sum(est.soc[b.id] * b.capacity_kwh for b in known) / total
    low = sum(b.soc_min * b.capacity_kwh for b in known) / total
    high = sum(b.soc_max * b.capacity_kwh for b in known) / total
    return (soc - low) / max(high - low, 1e-9)


def rules(site: Site, est: Estimate, previous: Decision | None, reason: str) -> Decision:
    """The documented rule-based dispatch (module docstring)."""
    position = _band_position(site, est)
    grid_up = est.grid_up is True
    gen_on = {}
    for gen in site.generators:
        was_on = est.generators[gen.id].on if gen.id in est.generators else False
        if gen.id in est.generators_out or grid_up:  # failed to start: the others carry the site
            gen_on[gen.id] = False
        elif position is None:
            gen_on[gen.id] = True  # batteries unknown and no grid: run the gensets
        else:
            gen_on[gen.id] = position < 0.25 or (was_on and position < 0.70)
    gen_kw = {g.id: g.max_kw if gen_on[g.id] else 0.0 for g in site.generators}
    running_kw = sum(kw for g, kw in gen_kw.items() if g in est.generators and est.generators[g].on)
    battery_kw = _battery_rules(site, est, grid_up, running_kw)  # a genset still starting delivers nothing yet
    running = any(s.on for g, s in est.generators.items() if gen_on.get(g))  # requested is not running
    tiers = _tier_rules(site, est, previous, grid_up=grid_up, position=position, gens=running)
    return Decision(battery_kw, gen_on, gen_kw, {a.id: None for a in site.pv}, tiers, "rules", reason)


def live_limits_kw(bat: Battery, est: Estimate) -> tuple[float, float]:
    """The most a battery may charge and discharge now [kW, both ≥ 0]: the limits its inverter reports,
    never beyond the site file's ``max_charge_kw`` / ``max_discharge_kw`` nor below 0 (a NaN counts as 0);
    the site's when the inverter reports none."""
    charge = min(bat.max_charge_kw, max(0.0, est.charge_limit_kw.get(bat.id, bat.max_charge_kw)))
    discharge = min(bat.max_discharge_kw, max(0.0, est.discharge_limit_kw.get(bat.id, bat.max_discharge_kw)))
    return charge, discharge


def _battery_rules(site: Site, est: Estimate, grid_up: bool, gen_kw: float) -> dict[str, float]:
    if grid_up:
        return {b.id: -live_limits_kw(b, est)[0] if est.soc.get(b.id, 1.0) < b.soc_max else 0.0 for b in site.batteries}
    net = sum(est.load_kw.values()) - gen_kw  # PV is not curtailed: the grid-forming inverter takes the rest
    limits = {b.id: live_limits_kw(b, est)[1] for b in site.batteries if b.id in est.soc}
    total = sum(limits.values()) or 1.0
    return {b.id: net * limits.get(b.id, 0.0) / total for b in site.batteries}


def _tier_rules(
    site: Site, est: Estimate, previous: Decision | None, *, grid_up: bool, position: float | None, gens: bool
) -> dict[str, bool]:
    connected = {t.id: True for t in site.loads}
    if previous is not None:
        connected |= {t: c for t, c in previous.tier_connected.items() if t in connected}
    if not site.loads:
        return {}
    if grid_up or gens or position is None or position > 0.05:
        return {t.id: True for t in site.loads}
    top = min(t.priority for t in site.loads)
    sheddable = sorted((t for t in site.loads if t.priority > top), key=lambda t: t.priority)
    for tier in reversed(sheddable):  # least important first, never a tier of the top priority
        if connected[tier.id]:
            connected[tier.id] = False
            break
    return connected
