"""Spec sections "Power balance, every step" and "Objective"."""

from __future__ import annotations

import pyomo.environ as pyo

from microgrid.dispatch.feeders import feeder_pickup_kw
from microgrid.dispatch.fuels import fuel_value_cost
from microgrid.dispatch.inputs import DispatchInputs


def add_balance(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """Supply equals served demand in every step [kW]::

    Σ_b (d[b,t] − c[b,t]) + Σ_g p[g,t] + Σ_k pv[k,t] + y[t] − q[t] = Σ_i (L[i,t] − x[i,t])

    (+ Σ_i k[i,t] on the right with the feeders extension: cold-load pickup, :mod:`.feeders`).
    """

    def balance(m: pyo.ConcreteModel, t: int) -> pyo.Expression:
        supply = (
            sum(m.discharge_kw[b, t] - m.charge_kw[b, t] for b in m.B)
            + sum(m.gen_kw[g, t] for g in m.G)
            + sum(m.pv_kw[k, t] for k in m.K)
            + m.import_kw[t]
            - m.export_kw[t]
        )
        return supply == sum(m.demand_kw[i, t] - m.shed_kw[i, t] for i in m.I) + feeder_pickup_kw(m, t)

    m.balance = pyo.Constraint(m.T, rule=balance)


def add_objective(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """Minimise, in the site's currency::

      Σ_t Δ · ( ci[t]·y[t] − ce[t]·q[t] + Σ_i v_i·x[i,t] + Σ_b w_b·d[b,t] )
    + Σ_t Σ_g ( π_{f_g} · F[g,t] + S_g · s[g,t] )
    − Σ_b τ_b · e[b,T−1]

    τ_b is the site's terminal value, a mutable parameter: the outlook extension (``inp.terminal``,
    ``docs/dispatch-extensions.md``) replaces it with the long plan's value of the energy left, and
    adds its value of the fuel burnt (:func:`.fuels.fuel_value_cost`).
    """
    site, dt, last = inp.site, inp.step_h, inp.steps - 1
    m.import_price = pyo.Param(m.T, mutable=True, initialize=0.0)
    m.export_price = pyo.Param(m.T, mutable=True, initialize=0.0)
    m.terminal_value = pyo.Param(m.B, mutable=True, initialize=0.0)
    set_price_data(m, inp)
    voll = {tier.id: tier.value_of_lost_load_per_kwh for tier in site.loads}
    wear = {b.id: b.wear_cost_per_kwh for b in site.batteries}
    gens = {g.id: g for g in site.generators}
    price = {g: site.fuels[gen.fuel].price_per_unit for g, gen in gens.items()}
    per_step = sum(
        dt * (m.import_price[t] * m.import_kw[t] - m.export_price[t] * m.export_kw[t])
        + dt * sum(voll[i] * m.shed_kw[i, t] for i in m.I)
        + dt * sum(wear[b] * m.discharge_kw[b, t] for b in m.B)
        + sum(price[g] * m.fuel_burnt[g, t] + gens[g].startup_cost * m.gen_start[g, t] for g in m.G)
        for t in m.T
    )
    m.cost = pyo.Objective(
        expr=per_step + fuel_value_cost(m) - sum(m.terminal_value[b] * m.energy_kwh[b, last] for b in m.B),
        sense=pyo.minimize,
    )


def set_price_data(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """The grid prices ci[t] and ce[t] [currency/kWh]; τ_b per battery."""
    ci = inp.profiles.import_price_per_kwh.to_numpy().tolist()
    ce = inp.profiles.export_price_per_kwh.to_numpy().tolist()
    m.import_price.store_values(dict(enumerate(ci)), check=False)
    m.export_price.store_values(dict(enumerate(ce)), check=False)
    for bat in inp.site.batteries:
        m.terminal_value[bat.id] = inp.energy_value(bat)
