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
