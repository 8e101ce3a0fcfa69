"""Spec section "Batteries b"."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs
from microgrid.site import Battery


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
    dt = inp.step_h
    m.B = pyo.Set(initialize=list(batteries), ordered=True)
    # The state's numbers are mutable parameters: a kept model takes a new state (set_battery_data).
    m.energy0_kwh = pyo.Param(m.B, mutable=True, initialize=0.0)
    m.energy_min_kwh = pyo.Param(m.B, mutable=True, initialize=0.0)
    m.energy_max_kwh = pyo.Param(m.B, mutable=True, initialize=0.0)
    m.charge_now_kw = pyo.Param(m.B, mutable=True, initialize=0.0)
    m.discharge_now_kw = pyo.Param(m.B, mutable=True, initialize=0.0)
    set_battery_data(m, inp)
    m.charge_kw = pyo.Var(
        m.B, m.T, bounds=lambda m, b, t: (0.0, m.charge_now_kw[b] if t == 0 else batteries[b].max_charge_kw)
    )
    m.discharge_kw = pyo.Var(
        m.B, m.T, bounds=lambda m, b, t: (0.0, m.discharge_now_kw[b] if t == 0 else batteries[b].max_discharge_kw)
    )
    m.energy_kwh = pyo.Var(m.B, m.T, bounds=lambda m, b, t: (m.energy_min_kwh[b], m.energy_max_kwh[b]))

    def dynamics(m: pyo.ConcreteModel, b: str, t: int) -> pyo.Expression:
        bat = batteries[b]
        before = m.energy_kwh[b, t - 1] if t > 0 else m.energy0_kwh[b]
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


def set_battery_data(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """The state's numbers: e[b,−1] = soc0 · E [kWh], the energy bounds around it, and the first step's power
    bounds c[b,0] ≤ Pc_now, d[b,0] ≤ Pd_now (``inp.power_now_kw``, within the site's; else Pc, Pd)."""
    now = inp.power_now_kw or {}
    for bat in inp.site.batteries:
        m.energy0_kwh[bat.id] = inp.state.soc_of(bat) * bat.capacity_kwh
        m.energy_min_kwh[bat.id], m.energy_max_kwh[bat.id] = inp.state.energy_band_kwh(bat)
        charge_kw, discharge_kw = now.get(bat.id, (bat.max_charge_kw, bat.max_discharge_kw))
        m.charge_now_kw[bat.id] = min(max(charge_kw, 0.0), bat.max_charge_kw)
        m.discharge_now_kw[bat.id] = min(max(discharge_kw, 0.0), bat.max_discharge_kw)


def energy_path_kwh(
    bat: Battery, start_kwh: float, charge_kw: np.ndarray, discharge_kw: np.ndarray, step_h: float
) -> np.ndarray:
    """The energy [kWh] at the end of each step of a charge/discharge path from ``start_kwh``: the SOC
    dynamics of :func:`add_batteries` in numpy, ``e[t] = e[t−1] + Δ · (ηc · c[t] − d[t] / ηd)``."""
    flow = step_h * (bat.charge_efficiency * charge_kw - discharge_kw / bat.discharge_efficiency)
    energy: np.ndarray = start_kwh + np.cumsum(flow)
    return energy
