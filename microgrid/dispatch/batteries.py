"""Spec section "Batteries b"."""

from __future__ import annotations

import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs


def add_batteries(m: pyo.ConcreteModel, inp: DispatchInputs, *, mode_binaries: bool) -> None:
    """Charge c, discharge d [kW], mode m ∈ {0,1} and end-of-step energy e [kWh]::

        c[b,t] ≤ Pc · m[b,t]
        d[b,t] ≤ Pd · (1 − m[b,t])
        e[b,t] = e[b,t−1] + Δ · (ηc · c[b,t] − d[b,t] / ηd),      e[b,−1] = soc0 · E
        min(soc_min, soc0) · E ≤ e[b,t] ≤ max(soc_max, soc0) · E

    With ``mode_binaries=False`` the mode constraints are left out (c ≤ Pc, d ≤ Pd stay as
    bounds): a relaxation, which :mod:`microgrid.dispatch.optimize` only keeps when its
    solution needs no simultaneous charge and discharge.
    """
    batteries = {b.id: b for b in inp.site.batteries}
    soc0 = {b: inp.state.soc.get(b, bat.initial_soc) for b, bat in batteries.items()}
    dt = inp.step_h
    m.B = pyo.Set(initialize=list(batteries), ordered=True)
    m.charge_kw = pyo.Var(m.B, m.T, bounds=lambda _, b, t: (0.0, batteries[b].max_charge_kw))
    m.discharge_kw = pyo.Var(m.B, m.T, bounds=lambda _, b, t: (0.0, batteries[b].max_discharge_kw))

    def energy_bounds(_: object, b: str, t: int) -> tuple[float, float]:
        bat = batteries[b]
        low = min(bat.soc_min, soc0[b]) * bat.capacity_kwh
        return low, max(bat.soc_max, soc0[b]) * bat.capacity_kwh

    m.energy_kwh = pyo.Var(m.B, m.T, bounds=energy_bounds)

    def dynamics(m: pyo.ConcreteModel, b: str, t: int) -> pyo.Expression:
        bat = batteries[b]
        before = m.energy_kwh[b, t - 1] if t > 0 else soc0[b] * bat.capacity_kwh
        flow = bat.charge_efficiency * m.charge_kw[b, t] - m.discharge_kw[b, t] / bat.discharge_efficiency
        return m.energy_kwh[b, t] == before + dt * flow

    m.battery_dynamics = pyo.Constraint(m.B, m.T, rule=dynamics)
    if mode_binaries:
        m.mode = pyo.Var(m.B, m.T, within=pyo.Binary)
        m.charge_mode = pyo.Constraint(
            m.B, m.T, rule=lambda m, b, t: m.charge_kw[b, t] <= batteries[b].max_charge_kw * m.mode[b, t]
        )
        m.discharge_mode = pyo.Constraint(
            m.B,
            m.T,
            rule=lambda m, b, t: m.discharge_kw[b, t] <= batteries[b].max_discharge_kw * (1 - m.mode[b, t]),
        )
