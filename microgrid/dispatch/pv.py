"""Spec section "PV arrays k"."""

from __future__ import annotations

import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs


def add_pv(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """PV output [kW] within the forecast availability; curtailment is free::

    0 ≤ pv[k,t] ≤ A[k,t]
    """
    m.K = pyo.Set(initialize=list(inp.profiles.pv_kw.columns), ordered=True)
    m.pv_available_kw = pyo.Param(m.K, m.T, mutable=True, initialize=0.0)
    set_pv_data(m, inp)
    m.pv_kw = pyo.Var(m.K, m.T, bounds=lambda m, k, t: (0.0, m.pv_available_kw[k, t]))


def set_pv_data(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """The forecast availability A[k,t] [kW]."""
    values = {(k, t): kw for k in m.K for t, kw in enumerate(inp.profiles.pv_kw[k].to_numpy().tolist())}
    m.pv_available_kw.store_values(values, check=False)
