"""Extension "feeders": a tier is shed whole, as its feeder relay can execute it.

Formulation, switch and reasoning: ``docs/dispatch-extensions.md``. Over the first D steps each
sheddable tier is on or off (a binary per step, with minimum open and closed times and the relay's
state now); a reconnected tier draws more in its first step back (cold-load pickup). Later steps
keep the reference model's continuous shed: an energy budget for the rationing to come.
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs, FeederInputs
from microgrid.profiles import Profiles

__all__ = ["add_feeders", "big_m_kw", "demand_bounds_kw", "feeder_pickup_kw", "set_feeder_data"]


def _spec(inp: DispatchInputs) -> FeederInputs:
    assert inp.feeders is not None
    return inp.feeders


def big_m_kw(inp: DispatchInputs) -> dict[str, float]:
    """Per switched tier, a bound M_i ≥ L[i,t] over the discrete steps (:func:`demand_bounds_kw`)."""
    return demand_bounds_kw(_spec(inp), inp.profiles)


def demand_bounds_kw(spec: FeederInputs, profiles: Profiles) -> dict[str, float]:
    """Per switched tier, the next power of two of its largest demand over the discrete steps (at least
    1 kW, at least ``least_big_m_kw``), so that a kept model serves forecasts of the same order."""
    out = {}
    for tier in spec.tiers:
        peak = float(np.max(profiles.load_kw[tier].to_numpy()[: spec.discrete_steps], initial=0.0))
        out[tier] = max(float(2 ** math.ceil(math.log2(max(peak, 1.0)))), spec.least_big_m_kw.get(tier, 0.0))
    return out


def add_feeders(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """Relay open o[i,t] ∈ {0,1}, opening a[i,t] and closing z[i,t] ≥ 0, pickup k[i,t] ≥ 0, t < D::

        x[i,t] ≤ M_i · o[i,t],        x[i,t] ≥ L[i,t] − M_i · (1 − o[i,t])      (whole tier or nothing)
        a[i,t] ≥ o[i,t] − o[i,t−1],   z[i,t] ≥ o[i,t−1] − o[i,t],   o[i,−1] = 1 − closed0_i
        z[i,t] ≤ o[i,t−1],            z[i,t] ≤ 1 − o[i,t]                       (z is the closing, exactly)
        Σ_{τ=t−Doff+1}^{t} a[i,τ] ≤ o[i,t],     Σ_{τ=t−Don+1}^{t} z[i,τ] ≤ 1 − o[i,t]
        o[i,t] = o[i,−1] while the relay's minimum time now lasts
        k[i,t] ≥ f · L[i,t] − f · M_i · (1 − z[i,t])                            (cold-load pickup)

    and Σ_i k[i,t] is added to the demand of step t in the power balance. Needs the loads.
    """
    spec = _spec(inp)
    big = big_m_kw(inp)
    m.FT = pyo.Set(initialize=[(i, t) for i in spec.tiers for t in range(spec.discrete_steps)], ordered=True)
    m.feeder_open0 = pyo.Param(spec.tiers, mutable=True, initialize=0.0)
    m.feeder_open_min = pyo.Param(m.FT, mutable=True, initialize=0.0)
    m.feeder_open_max = pyo.Param(m.FT, mutable=True, initialize=1.0)
    m.feeder_on_rhs_kw = pyo.Param(m.FT, mutable=True, initialize=0.0)
    m.feeder_pickup_rhs_kw = pyo.Param(m.FT, mutable=True, initialize=0.0)
    set_feeder_data(m, inp)
    m.feeder_open = pyo.Var(
        m.FT, within=pyo.Binary, bounds=lambda m, i, t: (m.feeder_open_min[i, t], m.feeder_open_max[i, t])
    )
    m.feeder_opening = pyo.Var(m.FT, within=pyo.NonNegativeReals)
    m.feeder_closing = pyo.Var(m.FT, within=pyo.NonNegativeReals)
    m.feeder_pickup_kw = pyo.Var(m.FT, within=pyo.NonNegativeReals)

    def before(m: pyo.ConcreteModel, i: str, t: int) -> pyo.Expression:
        return m.feeder_open[i, t - 1] if t > 0 else m.feeder_open0[i]

    m.feeder_shed_max = pyo.Constraint(m.FT, rule=lambda m, i, t: m.shed_kw[i, t] <= big[i] * m.feeder_open[i, t])
    m.feeder_shed_all = pyo.Constraint(
        m.FT, rule=lambda m, i, t: m.shed_kw[i, t] - big[i] * m.feeder_open[i, t] >= m.feeder_on_rhs_kw[i, t]
    )
    m.feeder_opening_def = pyo.Constraint(
        m.FT, rule=lambda m, i, t: m.feeder_opening[i, t] >= m.feeder_open[i, t] - before(m, i, t)
    )
    m.feeder_closing_def = pyo.Constraint(
        m.FT, rule=lambda m, i, t: m.feeder_closing[i, t] >= before(m, i, t) - m.feeder_open[i, t]
    )
    m.feeder_closing_was_open = pyo.Constraint(m.FT, rule=lambda m, i, t: m.feeder_closing[i, t] <= before(m, i, t))
    m.feeder_closing_now_closed = pyo.Constraint(
        m.FT, rule=lambda m, i, t: m.feeder_closing[i, t] <= 1 - m.feeder_open[i, t]
    )
    _add_min_times(m, spec)
    m.feeder_pickup = pyo.Constraint(
        m.FT,
        rule=lambda m, i, t: (
            m.feeder_pickup_kw[i, t] - spec.pickup_fraction * big[i] * m.feeder_closing[i, t]
            >= m.feeder_pickup_rhs_kw[i, t]
        ),
    )


def _add_min_times(m: pyo.ConcreteModel, spec: FeederInputs) -> None:
    d_off, d_on = spec.min_off_steps, spec.min_on_steps
    if d_off > 0:
        m.feeder_min_off = pyo.Constraint(
            m.FT,
            rule=lambda m, i, t: (
                sum(m.feeder_opening[i, k] for k in range(max(0, t - d_off + 1), t + 1)) <= m.feeder_open[i, t]
            ),
        )
    if d_on > 0:
        m.feeder_min_on = pyo.Constraint(
            m.FT,
            rule=lambda m, i, t: (
                sum(m.feeder_closing[i, k] for k in range(max(0, t - d_on + 1), t + 1)) <= 1 - m.feeder_open[i, t]
            ),
        )


def set_feeder_data(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """The relays now (o[i,−1] and the lock), L[i,t] − M_i and f · (L[i,t] − M_i) for the discrete steps."""
    spec = _spec(inp)
    big = big_m_kw(inp)
    for tier in spec.tiers:
        open0 = 0.0 if spec.closed[tier] else 1.0
        m.feeder_open0[tier] = open0
        locked = spec.lock_left(tier, inp.step_h)
        demand = inp.profiles.load_kw[tier].to_numpy()
        for t in range(spec.discrete_steps):
            m.feeder_open_min[tier, t], m.feeder_open_max[tier, t] = (open0, open0) if t < locked else (0.0, 1.0)
            m.feeder_on_rhs_kw[tier, t] = float(demand[t]) - big[tier]
            m.feeder_pickup_rhs_kw[tier, t] = spec.pickup_fraction * (float(demand[t]) - big[tier])


def feeder_pickup_kw(m: pyo.ConcreteModel, t: int) -> pyo.Expression:
    """Σ_i k[i,t]: the cold-load pickup of step t [kW] (0 without the extension or after the discrete steps)."""
    if not hasattr(m, "FT"):
        return 0.0
    return sum(m.feeder_pickup_kw[i, k] for i, k in m.FT if k == t)
