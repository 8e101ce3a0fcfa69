"""Extension "contingency": carry the protected tiers through every possible outage window.

Formulation, switch and reasoning: ``docs/dispatch-extensions.md``. For each maximal run
W = [a, b] of steps flagged ``possible_outage``, a shadow "the outage happens" dispatch starts
from the main plan's state at the end of step a − 1 and must serve the protected tiers from
batteries, PV and gensets alone. Its shed is priced at the tiers' value of lost load; nothing
else of the shadow costs anything. Windows are disjoint, so every shadow variable is indexed
by its step t ∈ S (the union of the windows) and knows its window's start ``a(t)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from microgrid.dispatch.batteries import energy_path_kwh
from microgrid.dispatch.generators import initial_lock_steps
from microgrid.dispatch.inputs import DispatchInputs, ceil_steps
from microgrid.plan_columns import (
    battery_charge_kw,
    battery_discharge_kw,
    battery_soc,
    generator_fuel,
    generator_kw,
    generator_on,
    load_served_kw,
    load_shed_kw,
    pv_kw,
)
from microgrid.plans import ContingencyWindow

__all__ = ["add_contingency", "contingency_windows", "has_contingency"]

_ABS_TOL_KW = 1e-4


def has_contingency(inp: DispatchInputs) -> bool:
    """True when some step with the grid available is flagged ``possible_outage`` (the extension is on)."""
    return bool(inp.outage_windows())


def add_contingency(m: pyo.ConcreteModel, inp: DispatchInputs, *, mode_binaries: bool) -> None:
    """The shadow dispatch of every possible-outage window, and its shed cost ``m.contingency_cost``.

    Needs the main model's batteries, generators, fuels, PV and loads (it reads e[b,a−1],
    u[g,τ], s[g,τ], z[g,τ] and F[g,τ] for τ < a).
    """
    starts = {t: a for a, b in inp.outage_windows() for t in range(a, b + 1)}
    m.S = pyo.Set(initialize=sorted(starts), ordered=True)
    m.cont_window_start = starts
    _add_shadow_batteries(m, inp, starts, mode_binaries=mode_binaries)
    _add_shadow_generators(m, inp, starts)
    _add_shadow_fuel(m, inp)
    available = {k: inp.profiles.pv_kw[k].to_numpy() for k in inp.profiles.pv_kw.columns}
    m.cont_pv_kw = pyo.Var(m.K, m.S, bounds=lambda _, k, t: (0.0, float(available[k][t])))
    _add_shadow_balance(m, inp)


def _add_shadow_batteries(
    m: pyo.ConcreteModel, inp: DispatchInputs, starts: dict[int, int], *, mode_binaries: bool
) -> None:
    """Shadow charge c', discharge d' [kW] and energy e' [kWh], with the main battery's limits::

    e'[b,t] = e'[b,t−1] + Δ · (ηc · c'[b,t] − d'[b,t] / ηd),   e'[b,a−1] = e[b,a−1]  (soc0 · E if a = 0)
    c'[b,t] ≤ Pc · m'[b,t],   d'[b,t] ≤ Pd · (1 − m'[b,t])     (only with mode binaries)
    """
    bats = {b.id: b for b in inp.site.batteries}
    band = {b: inp.state.energy_band_kwh(bat) for b, bat in bats.items()}
    m.cont_charge_kw = pyo.Var(m.B, m.S, bounds=lambda _, b, t: (0.0, bats[b].max_charge_kw))
    m.cont_discharge_kw = pyo.Var(m.B, m.S, bounds=lambda _, b, t: (0.0, bats[b].max_discharge_kw))
    m.cont_energy_kwh = pyo.Var(
        m.B,
        m.S,
        bounds=lambda _, b, t: band[b],
    )

    def dynamics(m: pyo.ConcreteModel, b: str, t: int) -> pyo.Expression:
        bat, a = bats[b], starts[t]
        if t > a:
            before = m.cont_energy_kwh[b, t - 1]
        else:
            before = m.energy_kwh[b, a - 1] if a > 0 else inp.state.soc_of(bat) * bat.capacity_kwh
        flow = bat.charge_efficiency * m.cont_charge_kw[b, t] - m.cont_discharge_kw[b, t] / bat.discharge_efficiency
        return m.cont_energy_kwh[b, t] == before + inp.step_h * flow

    m.cont_battery_dynamics = pyo.Constraint(m.B, m.S, rule=dynamics)
    if mode_binaries:
        m.cont_mode = pyo.Var(m.B, m.S, within=pyo.Binary)
        m.cont_charge_mode = pyo.Constraint(
            m.B, m.S, rule=lambda m, b, t: m.cont_charge_kw[b, t] <= bats[b].max_charge_kw * m.cont_mode[b, t]
        )
        m.cont_discharge_mode = pyo.Constraint(
            m.B,
            m.S,
            rule=lambda m, b, t: m.cont_discharge_kw[b, t] <= bats[b].max_discharge_kw * (1 - m.cont_mode[b, t]),
        )


def _add_shadow_generators(m: pyo.ConcreteModel, inp: DispatchInputs, starts: dict[int, int]) -> None:
    """Shadow on u', start s', stop z', output p' and fuel F', continuing the main plan's history::

    Pmin · u'[g,t] ≤ p'[g,t] ≤ Pmax · u'[g,t]
    s'[g,t] ≥ u'[g,t] − u'[g,t−1],  z'[g,t] ≥ u'[g,t−1] − u'[g,t],   u'[g,a−1] = u[g,a−1] (on0 if a = 0)
    Σ_{τ=t−U+1}^{t} ŝ[g,τ] ≤ u'[g,t],   Σ_{τ=t−D+1}^{t} ẑ[g,τ] ≤ 1 − u'[g,t]
        (ŝ, ẑ: the shadow's s', z' from a on, the main plan's s, z before a)
    u'[g,t] = on0 during the initial lock;   F'[g,t] = Δ · (a · p'[g,t] + b0 · u'[g,t])
    """
    gens = {g.id: g for g in inp.site.generators}
    on0 = {g: int(inp.state.generators[g].on) for g in gens}
    m.cont_gen_on = pyo.Var(m.G, m.S, within=pyo.Binary)
    m.cont_gen_start = pyo.Var(m.G, m.S, within=pyo.NonNegativeReals)
    m.cont_gen_stop = pyo.Var(m.G, m.S, within=pyo.NonNegativeReals)
    m.cont_gen_kw = pyo.Var(m.G, m.S, bounds=lambda _, g, t: (0.0, gens[g].max_kw))

    def prev_on(m: pyo.ConcreteModel, g: str, t: int) -> pyo.Expression | int:
        if t > starts[t]:
            return m.cont_gen_on[g, t - 1]
        return m.gen_on[g, t - 1] if t > 0 else on0[g]

    def moved(var: pyo.Var, shadow: pyo.Var, g: str, t: int, span: int) -> pyo.Expression:
        a = starts[t]
        return sum(shadow[g, k] if k >= a else var[g, k] for k in range(max(0, t - span + 1), t + 1))

    m.cont_gen_min = pyo.Constraint(
        m.G, m.S, rule=lambda m, g, t: gens[g].min_kw * m.cont_gen_on[g, t] <= m.cont_gen_kw[g, t]
    )
    m.cont_gen_max = pyo.Constraint(
        m.G, m.S, rule=lambda m, g, t: m.cont_gen_kw[g, t] <= gens[g].max_kw * m.cont_gen_on[g, t]
    )
    m.cont_gen_start_def = pyo.Constraint(
        m.G, m.S, rule=lambda m, g, t: m.cont_gen_start[g, t] >= m.cont_gen_on[g, t] - prev_on(m, g, t)
    )
    m.cont_gen_stop_def = pyo.Constraint(
        m.G, m.S, rule=lambda m, g, t: m.cont_gen_stop[g, t] >= prev_on(m, g, t) - m.cont_gen_on[g, t]
    )
    up = {g: ceil_steps(gen.min_up_h, inp.step_h) for g, gen in gens.items()}
    down = {g: ceil_steps(gen.min_down_h, inp.step_h) for g, gen in gens.items()}
    m.cont_gen_min_up = pyo.Constraint(
        [(g, t) for g in gens for t in m.S if up[g] > 0],
        rule=lambda m, g, t: moved(m.gen_start, m.cont_gen_start, g, t, up[g]) <= m.cont_gen_on[g, t],
    )
    m.cont_gen_min_down = pyo.Constraint(
        [(g, t) for g in gens for t in m.S if down[g] > 0],
        rule=lambda m, g, t: moved(m.gen_stop, m.cont_gen_stop, g, t, down[g]) <= 1 - m.cont_gen_on[g, t],
    )
    for g, gen in gens.items():
        lock = initial_lock_steps(gen, inp)
        for t in m.S:
            if t < lock:
                m.cont_gen_on[g, t].fix(on0[g])
    m.cont_fuel_burnt = pyo.Expression(
        m.G,
        m.S,
        rule=lambda m, g, t: (
            inp.step_h
            * (gens[g].fuel_per_kwh * m.cont_gen_kw[g, t] + gens[g].fuel_per_hour_running * m.cont_gen_on[g, t])
        ),
    )


def _add_shadow_fuel(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """For every fuel with a stock and every window W = [a, b] that starts before the delivery step d
    (d = T without one: ``inp.fuel_delivery_step``)::

    Σ_{g burns f} ( Σ_{τ<a} F[g,τ] + Σ_{t∈W, t<d} F'[g,t] ) ≤ stock_f
    """
    before = inp.fuel_steps()
    rows = []
    for f in m.F:  # the main model's fuels with a stock and a burner
        burners = [g.id for g in inp.site.generators if g.fuel == f]
        rows += [(f, a, min(b + 1, len(before)), burners) for a, b in inp.outage_windows() if a < len(before)]
    m.cont_fuel_stock = pyo.Constraint(
        range(len(rows)),
        rule=lambda m, r: (
            sum(
                sum(m.fuel_burnt[g, k] for k in range(rows[r][1]))
                + sum(m.cont_fuel_burnt[g, t] for t in range(rows[r][1], rows[r][2]))
                for g in rows[r][3]
            )
            <= inp.fuel_stock(rows[r][0])
        ),
    )


def _add_shadow_balance(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """Shadow shed x' of the protected tiers P, other tiers served o' as a sink, no grid::

    0 ≤ x'[i,t] ≤ L[i,t] (i ∈ P),   0 ≤ o'[t] ≤ Σ_{i∉P} L[i,t]
    Σ_b (d'[b,t] − c'[b,t]) + Σ_g p'[g,t] + Σ_k pv'[k,t] = Σ_{i∈P} (L[i,t] − x'[i,t]) + o'[t]
    contingency_cost = ρ · Σ_{t∈S} Δ · Σ_{i∈P} v_i · x'[i,t]     (ρ: :meth:`DispatchInputs.outage_weight`)
    """
    protected = list(inp.protected_tiers())
    others = [i for i in m.I if i not in protected]
    m.P = pyo.Set(initialize=protected, ordered=True)
    m.cont_shed_kw = pyo.Var(m.P, m.S, bounds=lambda _, i, t: (0.0, pyo.value(m.demand_kw[i, t])))
    m.cont_other_kw = pyo.Var(m.S, bounds=lambda _, t: (0.0, sum(pyo.value(m.demand_kw[i, t]) for i in others)))

    def balance(m: pyo.ConcreteModel, t: int) -> pyo.Expression:
        supply = (
            sum(m.cont_discharge_kw[b, t] - m.cont_charge_kw[b, t] for b in m.B)
            + sum(m.cont_gen_kw[g, t] for g in m.G)
            + sum(m.cont_pv_kw[k, t] for k in m.K)
        )
        return supply == sum(m.demand_kw[i, t] - m.cont_shed_kw[i, t] for i in m.P) + m.cont_other_kw[t]

    m.cont_balance = pyo.Constraint(m.S, rule=balance)
    voll = {tier.id: tier.value_of_lost_load_per_kwh for tier in inp.site.loads}
    weight = inp.outage_weight()
    m.contingency_cost = pyo.Expression(
        expr=weight * sum(inp.step_h * voll[i] * m.cont_shed_kw[i, t] for i in m.P for t in m.S)
    )


# -- reading the shadow back -------------------------------------------------------------------


def _column(var: pyo.Var, key: object, steps: range) -> np.ndarray:
    out = np.array([var[key, t].value for t in steps], dtype=float)
    out[np.isnan(out)] = 0.0
    clipped: np.ndarray = np.maximum(out, 0.0) + 0.0
    return clipped


def contingency_windows(
    m: pyo.ConcreteModel, inp: DispatchInputs, main: pd.DataFrame, *, net: bool
) -> tuple[ContingencyWindow, ...] | None:
    """The shadow dispatch of each window, read from the solved model ``m``.

    ``main`` is the (netted) plan frame: each shadow starts from its battery energy at the end
    of step a − 1. With ``net`` (battery modes relaxed), simultaneous shadow charge and discharge
    are netted; None when that, or the main plan's netting, would push a shadow battery above its
    ceiling (the caller must then solve with the mode binaries).
    """
    windows = []
    for a, b in inp.outage_windows():
        frame = _shadow_frame(m, inp, main, a, b, net=net)
        if frame is None:
            return None
        windows.append(_window_report(inp, frame, a, b))
    return tuple(windows)


def _shadow_frame(
    m: pyo.ConcreteModel, inp: DispatchInputs, main: pd.DataFrame, a: int, b: int, *, net: bool
) -> pd.DataFrame | None:
    steps, dt, cols = range(a, b + 1), inp.step_h, {}
    for bat in inp.site.batteries:
        charge, discharge = _column(m.cont_charge_kw, bat.id, steps), _column(m.cont_discharge_kw, bat.id, steps)
        start = float(main[battery_soc(bat.id)].iloc[a - 1]) if a > 0 else inp.state.soc_of(bat)
        if net:
            both = np.minimum(charge, discharge)
            charge, discharge = charge - both, discharge - both
        energy = energy_path_kwh(bat, start * bat.capacity_kwh, charge, discharge, dt)
        if np.any(energy > inp.state.energy_band_kwh(bat)[1] + _ABS_TOL_KW):
            return None
        cols[battery_charge_kw(bat.id)], cols[battery_discharge_kw(bat.id)] = charge, discharge
        cols[battery_soc(bat.id)] = energy / bat.capacity_kwh
    for gen in inp.site.generators:
        on = np.round(_column(m.cont_gen_on, gen.id, steps))
        kw = _column(m.cont_gen_kw, gen.id, steps) * on
        cols[generator_kw(gen.id)], cols[generator_on(gen.id)] = kw, on.astype(int)
        cols[generator_fuel(gen.id)] = dt * (gen.fuel_per_kwh * kw + gen.fuel_per_hour_running * on)
    for arr in inp.site.pv:
        cols[pv_kw(arr.id)] = _column(m.cont_pv_kw, arr.id, steps)
    for tier in inp.protected_tiers():
        demand = inp.profiles.load_kw[tier].to_numpy()[a : b + 1]
        shed = np.minimum(_column(m.cont_shed_kw, tier, steps), demand)
        cols[load_served_kw(tier)], cols[load_shed_kw(tier)] = demand - shed, shed
    cols[load_served_kw("other")] = np.array([m.cont_other_kw[t].value or 0.0 for t in steps], dtype=float)
    frame = pd.DataFrame(cols, index=inp.profiles.index[a : b + 1].copy())
    frame.index.name = "timestamp"
    return frame


def _window_report(inp: DispatchInputs, frame: pd.DataFrame, a: int, b: int) -> ContingencyWindow:
    dt, tiers = inp.step_h, inp.protected_tiers()
    voll = {t.id: t.value_of_lost_load_per_kwh for t in inp.site.loads}
    shed = {i: float(frame[load_shed_kw(i)].sum() * dt) for i in tiers}
    demand = float(inp.profiles.load_kw[list(tiers)].to_numpy()[a : b + 1].sum() * dt) if tiers else 0.0
    return ContingencyWindow(
        start=inp.profiles.index[a],
        end=inp.profiles.index[b] + pd.Timedelta(hours=dt),
        first_step=a,
        last_step=b,
        tiers=tiers,
        demand_kwh=demand,
        shed_kwh=sum(shed.values()),
        penalty=inp.outage_weight() * sum(voll[i] * kwh for i, kwh in shed.items()),
        frame=frame,
    )
