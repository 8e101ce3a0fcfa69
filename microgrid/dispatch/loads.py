"""Spec section "Loads: priority tiers i"."""

from __future__ import annotations

import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs


def add_loads(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """Load shed per tier [kW], at most the tier's demand::

    0 ≤ x[i,t] ≤ L[i,t]
    """
    demand = {i: inp.profiles.load_kw[i].to_numpy() for i in inp.profiles.load_kw.columns}
    m.I = pyo.Set(initialize=list(demand), ordered=True)
    m.demand_kw = {(i, t): float(demand[i][t]) for i in demand for t in range(inp.steps)}
    m.shed_kw = pyo.Var(m.I, m.T, bounds=lambda _, i, t: (0.0, float(demand[i][t])))
