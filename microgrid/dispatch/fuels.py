"""Spec section "Fuels f"."""

from __future__ import annotations

import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs


def add_fuels(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """Fuel stock, for every fuel with a stock (absent = unlimited)::

    Σ_t Σ_{g burns f} F[g,t] ≤ stock_f
    """
    limited = {f: stock for f in inp.site.fuels if (stock := inp.fuel_stock(f)) is not None}
    burners = {f: [g.id for g in inp.site.generators if g.fuel == f] for f in limited}
    m.F = pyo.Set(initialize=[f for f in limited if burners[f]], ordered=True)
    m.fuel_stock_limit = pyo.Param(m.F, mutable=True, initialize=0.0)
    set_fuel_data(m, inp)
    m.fuel_stock = pyo.Constraint(
        m.F, rule=lambda m, f: sum(m.fuel_burnt[g, t] for g in burners[f] for t in m.T) <= m.fuel_stock_limit[f]
    )


def set_fuel_data(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """The stock of every limited fuel burnt by a genset [fuel units]."""
    for f in m.F:
        m.fuel_stock_limit[f] = inp.fuel_stock(f)
