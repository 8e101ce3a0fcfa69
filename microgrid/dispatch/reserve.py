"""Extension "reserve": operating reserve held by the grid-forming battery while islanded.

Formulation, switch and reasoning: ``docs/dispatch-extensions.md``. In every step with no grid
(α[t] = 0) the grid-forming battery b takes every deviation from the plan; it keeps power headroom
r[t] and, at the end of the step, energy above its floor for r[t] over the hold time. Both are soft:
what is missing is priced, so a battery already below its floor is brought back up first, with the
grid up too. And b is ready early: of two charges at the same price the earlier costs a little less,
so it is full before a cut that comes early, not just in time for the published one (b only: at the
instant of a cut its charge just stops, where another battery's would drain b until the next write).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs, ReserveInputs

__all__ = ["add_reserve", "reserve_penalty", "reserve_report", "reserve_shortfall_kwh", "set_reserve_data"]


def _spec(inp: DispatchInputs) -> ReserveInputs:
    assert inp.reserve is not None
    return inp.reserve


def add_reserve(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """Reserve r [kW] and its shortfalls: energy s_e [kWh] and power s_p [kW]::

        r[t] ≥ isl[t] · R
        d[b,t] − c[b,t] + r[t] − s_p[t] ≤ Pd_b
        e[b,t] − (h / ηd_b) · r[t] + s_e[t] ≥ soc_min_b · E_b               (every step: the floor)
        r[t] ≥ p[g,t] + R + Pmax_g · s[g,t] − Pmax_g      (ride-through: a start may fail)
        r[t] ≥ p[g,t] + R                                  (genset trip, N-1; both only where isl[t] = 1)
        cost += Σ_t π[t] · (Δ / h · s_e[t] + Δ · s_p[t])     π[0] = π₀ if isl[0] = 1 (the step executed
                                                            now, islanded), π otherwise
        cost += ε · Σ_t (t / T) · Δ · c[b,t]                (early charging, b the grid-forming battery)

    isl[t] = 1 − α[t] (1 in an outage), R the forecast-error reserve, h the hold time, π₀ and π the
    shortfall costs per kWh, ε the early-charge spread (``ReserveInputs``). With the grid up r[t] may
    be 0, so only a battery below its floor (the plan starts there: the spec's bound is widened to the
    state) is short, at π: charged back at once rather than at the latest hour the next outage allows
    (the grid may go early). Needs the batteries, generators and grid of the model.
    """
    spec = _spec(inp)
    bat = next(b for b in inp.site.batteries if b.id == spec.battery)
    gens = {g.id: g for g in inp.site.generators}
    m.reserve_min_kw = pyo.Param(m.T, mutable=True, initialize=0.0)
    m.reserve_floor_kwh = pyo.Param(m.T, mutable=True, initialize=0.0)
    m.reserve_gen_rhs_kw = pyo.Param(m.G, m.T, mutable=True, initialize=0.0)
    m.reserve_trip_rhs_kw = pyo.Param(m.G, m.T, mutable=True, initialize=0.0)
    m.reserve_now_price = pyo.Param(mutable=True, initialize=0.0)
    set_reserve_data(m, inp)
    m.reserve_kw = pyo.Var(m.T, bounds=lambda m, t: (m.reserve_min_kw[t], None))
    m.reserve_short_kwh = pyo.Var(m.T, within=pyo.NonNegativeReals)
    m.reserve_short_kw = pyo.Var(m.T, within=pyo.NonNegativeReals)
    b = bat.id
    m.reserve_power = pyo.Constraint(
        m.T,
        rule=lambda m, t: (
            m.discharge_kw[b, t] - m.charge_kw[b, t] + m.reserve_kw[t] - m.reserve_short_kw[t] <= bat.max_discharge_kw
        ),
    )
    hold = spec.hold_h / bat.discharge_efficiency
    m.reserve_energy = pyo.Constraint(
        m.T,
        rule=lambda m, t: (
            m.energy_kwh[b, t] - hold * m.reserve_kw[t] + m.reserve_short_kwh[t] >= m.reserve_floor_kwh[t]
        ),
    )
    if spec.ride_through:
        m.reserve_ride_through = pyo.Constraint(
            m.G,
            m.T,
            rule=lambda m, g, t: (
                m.reserve_kw[t] - m.gen_kw[g, t] - gens[g].max_kw * m.gen_start[g, t] >= m.reserve_gen_rhs_kw[g, t]
            ),
        )
    if spec.genset_trip:
        m.reserve_trip = pyo.Constraint(
            m.G, m.T, rule=lambda m, g, t: m.reserve_kw[t] - m.gen_kw[g, t] >= m.reserve_trip_rhs_kw[g, t]
        )
    m.reserve_cost = pyo.Expression(expr=reserve_penalty(m, inp))


def reserve_penalty(m: pyo.ConcreteModel, inp: DispatchInputs) -> pyo.Expression:
    """Σ_t π[t] · (Δ / h · s_e[t] + Δ · s_p[t]) + ε · Σ_t (t / T) · Δ · c[b,t] [currency]: π₀ in the
    first step when it is islanded, π otherwise; the early-charge spread ε on the grid-forming battery b."""
    spec = _spec(inp)
    later = spec.shortfall_cost_per_kwh
    short = m.reserve_now_price * _short_kwh(m, inp, 0) + sum(later * _short_kwh(m, inp, t) for t in m.T if t > 0)
    if spec.early_charge_per_kwh <= 0:
        return short
    late = spec.early_charge_per_kwh * inp.step_h / inp.steps
    return short + sum(late * t * m.charge_kw[spec.battery, t] for t in m.T if t > 0)


def reserve_shortfall_kwh(m: pyo.ConcreteModel, inp: DispatchInputs) -> pyo.Expression:
    """Σ_t (Δ / h · s_e[t] + Δ · s_p[t]): reserve missing, as kWh missing for the hold time [kWh]."""
    return sum(_short_kwh(m, inp, t) for t in m.T)


def _short_kwh(m: pyo.ConcreteModel, inp: DispatchInputs, t: int) -> pyo.Expression:
    dt = inp.step_h
    return dt / _spec(inp).hold_h * m.reserve_short_kwh[t] + dt * m.reserve_short_kw[t]


def set_reserve_data(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """isl[t] · R, soc_min · E, the first step's shortfall price, and the right-hand sides of the genset
    rows (trivial where isl[t] = 0)::

    ride-through:  isl · (R + Pmax) − 2 · Pmax        genset trip:  isl · (R + Pmax) − Pmax
    """
    spec = _spec(inp)
    bat = next(b for b in inp.site.batteries if b.id == spec.battery)
    islanded = islanded_steps(inp).astype(float).tolist()
    m.reserve_min_kw.store_values({t: spec.kw * i for t, i in enumerate(islanded)}, check=False)
    floor = bat.soc_min * bat.capacity_kwh
    m.reserve_floor_kwh.store_values(dict.fromkeys(range(inp.steps), floor), check=False)
    now = spec.shortfall_cost_per_kwh if spec.now_cost_per_kwh is None else spec.now_cost_per_kwh
    m.reserve_now_price.set_value(now if islanded and islanded[0] else spec.shortfall_cost_per_kwh)
    gens = {g.id: g.max_kw for g in inp.site.generators}
    ride = {(g, t): i * (spec.kw + p) - 2 * p for g, p in gens.items() for t, i in enumerate(islanded)}
    trip = {(g, t): i * (spec.kw + p) - p for g, p in gens.items() for t, i in enumerate(islanded)}
    m.reserve_gen_rhs_kw.store_values(ride, check=False)
    m.reserve_trip_rhs_kw.store_values(trip, check=False)


def islanded_steps(inp: DispatchInputs) -> np.ndarray:
    """Bool per step: no grid (α[t] = 0, or a site without a grid section)."""
    if inp.site.grid is None:
        return np.ones(inp.steps, dtype=bool)
    return np.asarray(inp.profiles.grid_available.to_numpy() < 0.5)


def reserve_report(m: pyo.ConcreteModel, inp: DispatchInputs) -> tuple[np.ndarray, np.ndarray, float]:
    """Of a solved model: reserve held [kW] and energy short [kWh] per step, and the penalty [currency]."""
    steps = range(inp.steps)
    held = np.array([m.reserve_kw[t].value or 0.0 for t in steps], dtype=float)
    short = np.array([max(m.reserve_short_kwh[t].value or 0.0, 0.0) for t in steps], dtype=float)
    return held, short, float(pyo.value(m.reserve_cost))
