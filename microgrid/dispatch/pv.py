"""Spec section "PV arrays k"."""

from __future__ import annotations

import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs


def add_pv(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """PV output [kW] within the forecast availability; curtailment is free::

    0 ≤ pv[k,t] ≤ A[k,t]
    """
    available = {k: inp.profiles.pv_kw[k].to_numpy() for k in inp.profiles.pv_kw.columns}
    m.K = pyo.Set(initialize=list(available), ordered=True)
    m.pv_kw = pyo.Var(m.K, m.T, bounds=lambda _, k, t: (0.0, float(available[k][t])))
