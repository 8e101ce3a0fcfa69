"""The autonomy figure: how many hours the most important tiers can be carried if the grid goes now.

A greedy, documented estimate (not an optimum), stepped through the forecast (repeated past
its end, up to ``max_hours``), from the state now:

1. only the tiers with ``priority ≤ max_priority`` are served (the others are shed at once);
2. PV serves them first; PV surplus charges the batteries (within their charge power, up to
   ``soc_max``, with the charge efficiency);
3. the batteries cover what is left, down to ``soc_min`` (or their SOC now, if lower), within
   their discharge power and with the discharge efficiency;
4. then the gensets, in order of fuel per kWh, each between ``min_kw`` and ``max_kw`` (a
   surplus above the demand charges the batteries), burning ``fuel_per_kwh`` per kWh and
   ``fuel_per_hour_running`` per hour from the fuel stock (unlimited when no stock is given);
5. autonomy ends, part-way through a step, when the demand can no longer be met.

The result is capped at ``max_hours`` (168 h by default): "at least a week".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microgrid.profiles import Profiles
from microgrid.site import Battery, Site
from microgrid.state import SiteState

__all__ = ["Autonomy", "autonomy_hours"]


@dataclass
class _Bat:
    """One battery as plain floats (the loop below runs up to 2 × 672 steps per cycle)."""

    energy_kwh: float
    floor_kwh: float
    ceiling_kwh: float
    charge_kw: float
    discharge_kw: float
    eta_c: float
    eta_d: float


@dataclass
class _Gen:
    min_kw: float
    max_kw: float
    fuel_per_kwh: float
    fuel_per_hour: float
    fuel: str


def _charge(bats: list[_Bat], surplus_kw: float, dt: float) -> None:
    for bat in bats:
        room = bat.ceiling_kwh - bat.energy_kwh
        kw = min(surplus_kw, bat.charge_kw, max(room, 0.0) / (bat.eta_c * dt))
        bat.energy_kwh += kw * bat.eta_c * dt
        surplus_kw -= kw


def _discharge(bats: list[_Bat], need_kw: float, dt: float) -> float:
    """Cover up to ``need_kw`` from the batteries; return what is left uncovered [kW]."""
    for bat in bats:
        usable = max(bat.energy_kwh - bat.floor_kwh, 0.0)
        kw = min(need_kw, bat.discharge_kw, usable * bat.eta_d / dt)
        bat.energy_kwh -= kw * dt / bat.eta_d
        need_kw -= kw
    return need_kw


def _gensets(gens: list[_Gen], fuel: dict[str, float | None], need_kw: float, dt: float) -> tuple[float, float]:
    """Run gensets (cheapest per kWh first) for ``need_kw``; return (share of the step covered, surplus kW)."""
    surplus = 0.0
    for gen in gens:
        if need_kw <= 1e-9:
            break
        kw = min(max(need_kw, gen.min_kw), gen.max_kw)
        burn_per_h = gen.fuel_per_kwh * kw + gen.fuel_per_hour
        left = fuel[gen.fuel]
        hours = dt if left is None or burn_per_h <= 0 else min(dt, left / burn_per_h)
        if left is not None:
            fuel[gen.fuel] = left - burn_per_h * hours
        if hours < dt - 1e-12:  # the tank ran dry inside the step
            return hours / dt if kw >= need_kw else 0.0, 0.0
        surplus += max(kw - need_kw, 0.0)
        need_kw -= kw
    return (1.0, surplus) if need_kw <= 1e-9 else (0.0, 0.0)


def _battery_share(bats: list[_Bat], max_kw: float, net_kw: float, dt: float) -> float:
    """Share of a step the batteries alone could carry ``net_kw`` (0 when their power is too small)."""
    if max_kw < net_kw:
        return 0.0
    energy = sum(max(b.energy_kwh - b.floor_kwh, 0.0) * b.eta_d for b in bats)
    return min(1.0, energy / (net_kw * dt))


def _batteries(site: Site, state: SiteState) -> list[_Bat]:
    def one(b: Battery) -> _Bat:
        soc = state.soc_of(b)
        cap = b.capacity_kwh
        return _Bat(
            soc * cap,
            min(b.soc_min, soc) * cap,
            b.soc_max * cap,
            b.max_charge_kw,
            b.max_discharge_kw,
            b.charge_efficiency,
            b.discharge_efficiency,
        )

    return [one(b) for b in site.batteries]


def autonomy_hours(
    site: Site, profiles: Profiles, state: SiteState, *, max_priority: int = 1, max_hours: float = 168.0
) -> float:
    """Hours the tiers with ``priority ≤ max_priority`` can be carried without the grid (module docstring)."""
    tiers = [t.id for t in site.loads if t.priority <= max_priority and t.id in profiles.load_kw.columns]
    # Column by column: selecting a list of columns builds an index (≈ 2 ms with pandas' Arrow strings).
    demand = sum((profiles.load_kw[t].to_numpy() for t in tiers), np.zeros(profiles.steps))
    pv = profiles.pv_kw.to_numpy().sum(axis=1) if len(profiles.pv_kw.columns) else np.zeros(profiles.steps)
    net_kw: list[float] = (demand - pv).tolist()
    bats = _batteries(site, state)
    max_discharge_kw = sum(b.discharge_kw for b in bats)
    gens = [
        _Gen(g.min_kw, g.max_kw, g.fuel_per_kwh, g.fuel_per_hour_running, g.fuel)
        for g in sorted(site.generators, key=lambda g: g.fuel_per_kwh)
    ]
    fuel = {f: state.fuel_stock.get(f, spec.stock) for f, spec in site.fuels.items()}
    dt, steps, n = profiles.step_h, profiles.steps, 0
    last_round: tuple[list[float], dict[str, float | None]] | None = None
    while n * dt < max_hours - 1e-9:
        if n % steps == 0 and n > 0:  # the forecast starts over
            this_round = ([b.energy_kwh for b in bats], dict(fuel))
            skipped = _rounds_alike(last_round, this_round, fuel, int((max_hours - n * dt) / (steps * dt) + 1e-9))
            n += steps * skipped
            last_round = (this_round[0], dict(fuel)) if skipped else this_round
        net, hours = net_kw[n % steps], n * dt
        n += 1
        if net <= 0:
            _charge(bats, -net, dt)
            continue
        alone = _battery_share(bats, max_discharge_kw, net, dt)  # before this step drains them
        if (left := _discharge(bats, net, dt)) > 1e-9:
            covered, surplus = _gensets(gens, fuel, left, dt)
            if covered < 1.0:  # the last step: the better of gensets or batteries alone at full demand
                return min(hours + max(covered, alone) * dt, max_hours)
            _charge(bats, surplus, dt)
    return max_hours


def _rounds_alike(
    last: tuple[list[float], dict[str, float | None]] | None,
    now: tuple[list[float], dict[str, float | None]],
    fuel: dict[str, float | None],
    rounds_left: int,
) -> int:
    """Whole rounds of the forecast to skip, burning their fuel (0 unless the batteries start this round
    exactly as they started the last one).

    From the same battery energies a round repeats the last one step for step, as long as no tank
    runs dry in it (fuel only matters then): it burns the same fuel. Skips all but the last round a
    tank can pay for in full, so the round where it runs dry is stepped through.
    """
    if last is None or last[0] != now[0]:
        return 0
    burnt = {f: (before or 0.0) - (now[1][f] or 0.0) for f, before in last[1].items() if before is not None}
    skip = rounds_left
    for f, per_round in burnt.items():
        if per_round > 0:
            skip = min(skip, int((fuel[f] or 0.0) // per_round) - 1)
    skip = max(skip, 0)
    for f, per_round in burnt.items():
        fuel[f] = (fuel[f] or 0.0) - skip * per_round
    return skip


@dataclass(frozen=True)
class Autonomy:
    """Autonomy now [h]: the most important tier alone, and the two most important priorities."""

    critical_h: float
    critical_essential_h: float

    @classmethod
    def of(cls, site: Site, profiles: Profiles, state: SiteState) -> Autonomy:
        """Both figures for ``site`` from ``state`` over ``profiles``."""
        priorities = sorted({t.priority for t in site.loads})
        first = priorities[0] if priorities else 1
        second = priorities[1] if len(priorities) > 1 else first
        return cls(
            autonomy_hours(site, profiles, state, max_priority=first),
            autonomy_hours(site, profiles, state, max_priority=second),
        )
