"""Spec section "Fuels f"."""

from __future__ import annotations

import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs

BUDGET_PREMIUM = 0.15
"""δ_f / λ_f: how much cheaper fuel within the long plan's budget is than fuel beyond it (extension "outlook")."""


def add_fuels(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """Fuel stock, for every fuel with a stock (absent = unlimited)::

    Σ_{t<d} Σ_{g burns f} F[g,t] ≤ stock_f

    d = T (the spec), or the step the next delivery comes (``inp.fuel_delivery_step``, extension
    "delivery": from it on a full tank is assumed). With the delivery's amount known
    (``inp.fuel_delivered``: :meth:`~microgrid.dispatch.inputs.DispatchInputs.fuel_after_delivery`), also::

    Σ_t Σ_{g burns f} F[g,t] ≤ stock_f + D_f         (D_f units delivered)
    Σ_{t≥d} Σ_{g burns f} F[g,t] ≤ stock_f           (the tank filled back to the stock it has now)
    """
    limited = {f: stock for f in inp.site.fuels if (stock := inp.fuel_stock(f)) is not None}
    burners = {f: [g.id for g in inp.site.generators if g.fuel == f] for f in limited}
    m.F = pyo.Set(initialize=[f for f in limited if burners[f]], ordered=True)
    m.fuel_stock_limit = pyo.Param(m.F, mutable=True, initialize=0.0)
    m.fuel_after_limit = pyo.Param(m.F, mutable=True, initialize=0.0)
    if inp.terminal is not None:
        m.fuel_budget = pyo.Param(m.F, mutable=True, initialize=0.0)
        m.fuel_value = pyo.Param(m.F, mutable=True, initialize=0.0)
        m.fuel_over_price = pyo.Param(m.F, mutable=True, initialize=0.0)
    set_fuel_data(m, inp)
    before = inp.fuel_steps()
    m.fuel_stock = pyo.Constraint(
        m.F,
        rule=lambda m, f: (
            sum(m.fuel_burnt[g, t] for g in burners[f] for t in before) <= m.fuel_stock_limit[f]
            if len(before)
            else pyo.Constraint.Skip
        ),
    )
    after = {f: rows[0] for f in m.F if (rows := inp.fuel_after_delivery(f)) is not None}
    m.fuel_after_delivery = pyo.Constraint(
        m.F,
        rule=lambda m, f: (
            sum(m.fuel_burnt[g, t] for g in burners[f] for t in after[f]) <= m.fuel_after_limit[f]
            if f in after
            else pyo.Constraint.Skip
        ),
    )
    if inp.terminal is not None:
        _add_budget(m, burners)


def _add_budget(m: pyo.ConcreteModel, burners: dict[str, list[str]]) -> None:
    """Extension "outlook": the fuel burnt in all, and beyond the long plan's budget B_f, priced by
    :func:`microgrid.dispatch.balance.add_objective` (one coefficient per fuel, so a kept model refreshes
    two numbers, not one per genset and step)::

    Φ_f = Σ_t Σ_{g burns f} F[g,t],   o_f ≥ Φ_f − B_f,   o_f ≥ 0
    """
    m.fuel_total = pyo.Var(m.F, within=pyo.NonNegativeReals)
    m.fuel_over_budget = pyo.Var(m.F, within=pyo.NonNegativeReals)
    m.fuel_total_row = pyo.Constraint(
        m.F, rule=lambda m, f: m.fuel_total[f] == sum(m.fuel_burnt[g, t] for g in burners[f] for t in m.T)
    )
    m.fuel_budget_row = pyo.Constraint(
        m.F, rule=lambda m, f: m.fuel_over_budget[f] - m.fuel_total[f] >= -m.fuel_budget[f]
    )


def set_fuel_data(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """The stock of every limited fuel burnt by a genset [fuel units]; with the outlook, its budget B_f,
    its value λ_f − δ_f per unit and 2 δ_f per unit beyond the budget (δ_f = BUDGET_PREMIUM · λ_f)."""
    for f in m.F:
        m.fuel_stock_limit[f] = inp.fuel_stock(f)
        rows = inp.fuel_after_delivery(f)
        m.fuel_after_limit[f] = 0.0 if rows is None else rows[1]
        if hasattr(m, "fuel_budget"):
            value = inp.fuel_value(f)
            m.fuel_budget[f] = inp.terminal.fuel_budget.get(f, inp.fuel_stock(f)) if inp.terminal else inp.fuel_stock(f)
            m.fuel_value[f] = value * (1 - BUDGET_PREMIUM)
            m.fuel_over_price[f] = 2 * BUDGET_PREMIUM * value


def fuel_value_cost(m: pyo.ConcreteModel) -> pyo.Expression | float:
    """Σ_f ((λ_f − δ_f) · Φ_f + 2 δ_f · o_f): the outlook's value of the fuel burnt (0 without it)."""
    if not hasattr(m, "fuel_budget"):
        return 0.0
    return sum(m.fuel_value[f] * m.fuel_total[f] + m.fuel_over_price[f] * m.fuel_over_budget[f] for f in m.F)
