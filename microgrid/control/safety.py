"""The safety layer: every decision passes through :func:`check` before anything is written.

Rules, applied in order (each clamp is reported as a note):

1. a battery's power stays within its **live** limits (the site's, capped by what the inverter
   reports now); it does not discharge at or below ``soc_min`` nor charge at or above
   ``soc_max``, and held for a whole interval it cannot cross them either (charge ≤ the room
   to ``soc_max`` / (ηc · Δ), discharge ≤ the energy above ``soc_min`` · ηd / Δ, Δ the
   control interval); a battery of unknown SOC is held at 0 kW;
2. a battery's power moves by at most ``ramp_fraction`` × its rated power per cycle from what
   was last written (rate of change limit);
3. a genset not asked to run gets a power setpoint of 0; one asked to run gets its setpoint
   within [min_kw, max_kw], also while it is still starting (its controller applies the setpoint
   once it is on line, so a genset started this interval takes its planned share after its
   start-up instead of idling at ``min_kw`` until the next cycle, with the grid-forming battery
   covering the difference);
4. a PV limit lies within [0, peak_kw];
5. the most important load tier (every tier of the lowest priority number) is never
   disconnected by the controller.

The result never leaves the device's or the site's limits; the writer refuses anything else
again (defence in depth). A NaN setpoint (it would slip through min/max) counts as 0 kW, or as
no curtailment for a PV limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from microgrid.control.decisions import Decision, live_limits_kw
from microgrid.control.estimate import Estimate
from microgrid.site import Site

__all__ = ["SafetyConfig", "check"]


@dataclass(frozen=True)
class SafetyConfig:
    """Tunable safety limits."""

    ramp_fraction: float = 1.0
    """Largest battery power change per cycle, as a fraction of its rated power (1.0: a battery
    never swings from full charge to full discharge in one cycle)."""


def _battery(
    site: Site, d: Decision, est: Estimate, last: Decision | None, cfg: SafetyConfig, *, hold_h: float | None
) -> tuple[dict[str, float], list[str]]:
    out, notes = {}, []
    dt_h = hold_h if hold_h is not None else site.control.interval.total_seconds() / 3600
    for bat in site.batteries:
        wanted = d.battery_kw.get(bat.id, 0.0)
        ramped = 0.0 if math.isnan(wanted) else wanted
        charge_kw, high = live_limits_kw(bat, est)
        low = -charge_kw
        soc = est.soc.get(bat.id)
        if soc is None:
            low = high = 0.0
        else:
            room_kwh, above_kwh = (bat.soc_max - soc) * bat.capacity_kwh, (soc - bat.soc_min) * bat.capacity_kwh
            low = max(low, min(0.0, -room_kwh / (bat.charge_efficiency * dt_h)))
            high = min(high, max(0.0, above_kwh * bat.discharge_efficiency / dt_h))
        if last is not None and bat.id in last.battery_kw:
            step = cfg.ramp_fraction * max(bat.max_charge_kw, bat.max_discharge_kw)
            ramped = min(max(ramped, last.battery_kw[bat.id] - step), last.battery_kw[bat.id] + step)
        kw = min(max(ramped, low), high)  # live limits last: they win over the ramp
        if not abs(kw - wanted) <= 1e-6:  # (a NaN is clamped too)
            notes.append(f"battery {bat.id}: {wanted:.1f} kW clamped to {kw:.1f} kW")
        out[bat.id] = kw
    return out, notes


def _islanded_charge(site: Site, d: Decision, est: Estimate, battery: dict[str, float]) -> list[str]:
    """While the grid is down, the batteries that do not form the grid charge from what PV and the gensets
    asked to run **and confirmed running** can spare beyond the connected load, no more: a charge beyond
    it comes from the grid-forming battery (a charge "from a dead grid": energy moved with losses, the
    grid-former drained), and a set still starting may never run (the drill ``genset-fails-to-start``:
    bess1 charged 64 kW for a quarter of an hour from a dg1 that only cranked). Their charges are scaled
    down together to fit; ``battery`` is changed in place."""
    forming = site.grid_forming_battery()
    if est.grid_up is not False or site.grid is None or forming is None:
        return []
    charging = {b: -kw for b, kw in battery.items() if kw < 0 and b != forming.id}
    if not charging:
        return []
    gensets = sum(
        g.max_kw
        for g in site.generators
        if d.generator_on.get(g.id) and g.id not in est.generators_out and _running(est, g.id)
    )
    load = sum(kw for t, kw in est.load_kw.items() if est.tier_connected.get(t, True))
    surplus = max(0.0, sum(est.pv_kw.values()) + gensets - load)
    wanted = sum(charging.values())
    if wanted <= surplus + 1e-6:
        return []
    share = surplus / wanted
    for b, kw in charging.items():
        battery[b] = -kw * share
    return [f"islanded: charges of {', '.join(charging)} scaled to the {surplus:.1f} kW PV and gensets spare"]


def _running(est: Estimate, gen_id: str) -> bool:
    """The genset is confirmed running by its controller now (its state read and ``on``)."""
    state = est.generators.get(gen_id)
    return state is not None and state.on


def _generators(site: Site, d: Decision, est: Estimate) -> tuple[dict[str, float], list[str]]:
    out, notes = {}, []
    for gen in site.generators:
        wanted = d.generator_kw.get(gen.id, 0.0)
        target = 0.0 if math.isnan(wanted) else wanted
        kw = min(max(target, gen.min_kw), gen.max_kw) if d.generator_on.get(gen.id) else 0.0
        if not abs(kw - wanted) <= 1e-6:
            why = "not asked to run" if not d.generator_on.get(gen.id) else "outside [min_kw, max_kw]"
            notes.append(f"generator {gen.id}: {wanted:.1f} kW → {kw:.1f} kW ({why})")
        out[gen.id] = kw
    return out, notes


def check(
    site: Site,
    decision: Decision,
    est: Estimate,
    last: Decision | None,
    cfg: SafetyConfig | None = None,
    *,
    hold_h: float | None = None,
) -> tuple[Decision, list[str]]:
    """The decision made safe for the live state, and a note per clamp.

    ``hold_h``: how long the setpoints will hold from now [h], for the batteries' energy limits (default:
    one control interval, a cycle's; a keep-alive's re-check passes what is left of the interval, so that a
    battery planned to reach its floor at the interval's end is not cut short as its SOC falls).
    """
    cfg = cfg or SafetyConfig()
    battery, notes = _battery(site, decision, est, last, cfg, hold_h=hold_h)
    notes += _islanded_charge(site, decision, est, battery)
    gen_kw, gen_notes = _generators(site, decision, est)
    peaks = {a.id: a.peak_kw for a in site.pv}
    pv = {
        k: (None if v is None or math.isnan(v) else min(max(v, 0.0), peaks[k]))
        for k, v in decision.pv_limit_kw.items()
        if k in peaks
    }
    for k, v in pv.items():
        if v != decision.pv_limit_kw[k]:
            notes.append(f"pv {k}: limit {decision.pv_limit_kw[k]} kW → {v} kW")
    tiers = dict(decision.tier_connected)
    if site.loads:
        top = min(t.priority for t in site.loads)
        for tier in (t for t in site.loads if t.priority == top):  # every tier tied at the top
            if not tiers.get(tier.id, True):
                notes.append(f"tier {tier.id}: never disconnected by the controller")
            tiers[tier.id] = True
    safe = replace(decision, battery_kw=battery, generator_kw=gen_kw, pv_limit_kw=pv, tier_connected=tiers)
    return safe, notes + gen_notes
