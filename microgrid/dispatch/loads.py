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
