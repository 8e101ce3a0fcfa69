"""Spec section "Loads: priority tiers i"."""

from __future__ import annotations

import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs


def add_loads(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """Load shed per tier [kW], at most the tier's demand::

    0 ≤ x[i,t] ≤ L[i,t]
    """
    m.I = pyo.Set(initialize=list(inp.profiles.load_kw.columns), ordered=True)
    m.demand_kw = pyo.Param(m.I, m.T, mutable=True, initialize=0.0)
    set_load_data(m, inp)
    m.shed_kw = pyo.Var(m.I, m.T, bounds=lambda m, i, t: (0.0, m.demand_kw[i, t]))


def set_load_data(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """The forecast demand L[i,t] [kW]."""
    values = {(i, t): kw for i in m.I for t, kw in enumerate(inp.profiles.load_kw[i].to_numpy().tolist())}
    m.demand_kw.store_values(values, check=False)


SPREAD = 0.01
"""The premium per quarter of a tier's demand shed in a step, relative to its value of lost load."""


def add_rationing_premium(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """Each further quarter of a tier shed in a step costs ``SPREAD`` more per kWh::

        h[i,t,q] ≥ x[i,t] − q · L[i,t],  h ≥ 0  (q = ¼, ½, ¾),   cost += Σ Δ · SPREAD · v_i · h[i,t,q]

    Extension "outlook" (its long plan only): an LP is indifferent to *when* it rations a tier (a kWh
    shed on day 1 or day 5 costs the same) and would pick a vertex that sheds nothing until the last
    days; the fine plan, which follows the long plan's fuel budget, would burn on day 1 what day 5
    needs. The convex premium makes it shed evenly (to a quarter of the tier), as a planner would, for
    at most 3 % more per kWh. Needs the objective.
    """
    voll = {t.id: t.value_of_lost_load_per_kwh for t in inp.site.loads}
    quarters = (0.25, 0.5, 0.75)
    m.Q = pyo.Set(initialize=range(len(quarters)))
    m.shed_beyond_kw = pyo.Var(m.I, m.T, m.Q, within=pyo.NonNegativeReals)
    m.shed_beyond = pyo.Constraint(
        m.I,
        m.T,
        m.Q,
        rule=lambda m, i, t, q: m.shed_beyond_kw[i, t, q] >= m.shed_kw[i, t] - quarters[q] * m.demand_kw[i, t],
    )
    premium = sum(inp.step_h * SPREAD * voll[i] * m.shed_beyond_kw[i, t, q] for i in m.I for t in m.T for q in m.Q)
    m.cost.expr = m.cost.expr + premium


SERVE_NOW = 0.05
"""The premium on a kWh shed at the fine plan's first step, relative to its tier's value of lost load;
falling linearly to 0 at the horizon's last step."""


def urgency(steps: int) -> list[float]:
    """u[t] = 1 − t / (T − 1): 1 at the first step, 0 at the last (a single step: 1). How much more a kWh
    shed at step t should weigh than one shed at the horizon's end, where the plan is decided again
    before it comes (the service-now premium here, emergency mode's deferral weights)."""
    last = steps - 1
    return [1.0 - t / last if last > 0 else 1.0 for t in range(steps)]


def add_service_now_premium(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """A kWh shed at step t costs ``SERVE_NOW`` · (1 − t / (T − 1)) of its value of lost load more::

        cost += Σ_i Σ_t Δ · v_i · SERVE_NOW · (1 − t / (T − 1)) · x[i,t]

    Extension "outlook" (the fine plan, with the outlook's terminal values): when the long plan rations
    a tier somewhere in its week, the value it gives fuel and stored energy is that tier's value of lost
    load (λ_f ≈ v_i · η / a), and the fine plan is indifferent between serving the tier now and keeping
    the energy for the end of its horizon; its vertex then sheds now, with the batteries full and the
    gensets off (three winter days of the hospital: 1,198 kWh of the essential tier shed with 967 l
    left). Rationing that the long plan only assumes (outages beyond the published schedule) should
    happen when it is needed, not before: the grid may be back, and the long plan is solved again
    every hour. Needs the objective.
    """
    voll = {t.id: t.value_of_lost_load_per_kwh for t in inp.site.loads}
    weight = [SERVE_NOW * u for u in urgency(inp.steps)]
    premium = sum(inp.step_h * voll[i] * weight[t] * m.shed_kw[i, t] for i in m.I for t in m.T if weight[t] > 0)
    m.cost.expr = m.cost.expr + premium
