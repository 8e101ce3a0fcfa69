"""Spec section "Generators g"."""

from __future__ import annotations

import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs, ceil_steps
from microgrid.site import Generator


def add_generators(m: pyo.ConcreteModel, inp: DispatchInputs, *, binary: bool = True) -> None:
    """On u ∈ {0,1}, start s ≥ 0, stop z ≥ 0, output p [kW] and fuel burnt F::

    Pmin · u[g,t] ≤ p[g,t] ≤ Pmax · u[g,t]
    s[g,t] ≥ u[g,t] − u[g,t−1],   z[g,t] ≥ u[g,t−1] − u[g,t],   u[g,−1] = on0
    Σ_{τ=max(0,t−U+1)}^{t} s[g,τ] ≤ u[g,t]          U = ceil(min_up_h / Δ)
    Σ_{τ=max(0,t−D+1)}^{t} z[g,τ] ≤ 1 − u[g,t]      D = ceil(min_down_h / Δ)
    u[g,t] = on0 for t < ceil((min_up_h − h0) / Δ)   (or min_down_h when off)
    F[g,t] = Δ · (a · p[g,t] + b0 · u[g,t])          [fuel units]

    With ``binary=False``, u ∈ [0, 1] (the LP relaxation of the outlook).
    """
    gens = {g.id: g for g in inp.site.generators}
    dt = inp.step_h
    m.G = pyo.Set(initialize=list(gens), ordered=True)
    # The state's numbers are mutable parameters (a kept model takes a new state: set_generator_data):
    # u[g,−1] and, over the first steps a lock can cover, bounds that hold u at on0 while it lasts.
    lockable = {g: min(inp.steps, ceil_steps(max(gen.min_up_h, gen.min_down_h), dt)) for g, gen in gens.items()}
    m.gen_on0 = pyo.Param(m.G, mutable=True, initialize=0.0)
    m.GL = pyo.Set(initialize=[(g, t) for g in gens for t in range(lockable[g])], ordered=True)
    m.gen_on_min = pyo.Param(m.GL, mutable=True, initialize=0.0)
    m.gen_on_max = pyo.Param(m.GL, mutable=True, initialize=1.0)
    m.gen_available = pyo.Param(m.G, mutable=True, initialize=1.0)
    set_generator_data(m, inp)

    def on_bounds(m: pyo.ConcreteModel, g: str, t: int) -> tuple[object, object]:
        if (g, t) in m.GL:
            return m.gen_on_min[g, t], m.gen_on_max[g, t]
        return 0, m.gen_available[g]

    m.gen_on = pyo.Var(m.G, m.T, within=pyo.Binary if binary else pyo.UnitInterval, bounds=on_bounds)
    m.gen_start = pyo.Var(m.G, m.T, within=pyo.NonNegativeReals)
    m.gen_stop = pyo.Var(m.G, m.T, within=pyo.NonNegativeReals)
    m.gen_kw = pyo.Var(m.G, m.T, bounds=lambda _, g, t: (0.0, gens[g].max_kw))

    def prev_on(m: pyo.ConcreteModel, g: str, t: int) -> pyo.Expression:
        return m.gen_on[g, t - 1] if t > 0 else m.gen_on0[g]

    m.gen_min = pyo.Constraint(m.G, m.T, rule=lambda m, g, t: gens[g].min_kw * m.gen_on[g, t] <= m.gen_kw[g, t])
    m.gen_max = pyo.Constraint(m.G, m.T, rule=lambda m, g, t: m.gen_kw[g, t] <= gens[g].max_kw * m.gen_on[g, t])
    m.gen_start_def = pyo.Constraint(
        m.G, m.T, rule=lambda m, g, t: m.gen_start[g, t] >= m.gen_on[g, t] - prev_on(m, g, t)
    )
    m.gen_stop_def = pyo.Constraint(
        m.G, m.T, rule=lambda m, g, t: m.gen_stop[g, t] >= prev_on(m, g, t) - m.gen_on[g, t]
    )
    up = {g: ceil_steps(gen.min_up_h, dt) for g, gen in gens.items()}
    down = {g: ceil_steps(gen.min_down_h, dt) for g, gen in gens.items()}
    m.gen_min_up = pyo.Constraint(
        [(g, t) for g in gens for t in range(inp.steps) if up[g] > 0],
        rule=lambda m, g, t: sum(m.gen_start[g, k] for k in range(max(0, t - up[g] + 1), t + 1)) <= m.gen_on[g, t],
    )
    m.gen_min_down = pyo.Constraint(
        [(g, t) for g in gens for t in range(inp.steps) if down[g] > 0],
        rule=lambda m, g, t: sum(m.gen_stop[g, k] for k in range(max(0, t - down[g] + 1), t + 1)) <= 1 - m.gen_on[g, t],
    )
    m.fuel_burnt = pyo.Expression(
        m.G,
        m.T,
        rule=lambda m, g, t: (
            dt * (gens[g].fuel_per_kwh * m.gen_kw[g, t] + gens[g].fuel_per_hour_running * m.gen_on[g, t])
        ),
    )


def set_generator_data(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """The state's numbers: u[g,−1] = on0, u[g,t] held at on0 for the initial lock's steps, and u[g,t] = 0
    for a genset left out (``inp.generators_out``; a running one is never left out: its lock holds)."""
    on0 = {g.id: float(inp.state.generators[g.id].on) for g in inp.site.generators}
    locked = {g.id: initial_lock_steps(g, inp) for g in inp.site.generators}
    for g, on in on0.items():
        m.gen_on0[g] = on
        m.gen_available[g] = 0.0 if g in inp.generators_out and not on else 1.0
    for g, t in m.GL:
        high = 1.0 if m.gen_available[g].value else 0.0
        m.gen_on_min[g, t], m.gen_on_max[g, t] = (on0[g], on0[g]) if t < locked[g] else (0.0, high)


def initial_lock_steps(gen: Generator, inp: DispatchInputs) -> int:
    """Steps at the start during which the genset must keep its initial state.

    ``ceil((min_up_h − h0) / Δ)`` when running, ``ceil((min_down_h − h0) / Δ)`` when stopped.
    """
    state = inp.state.generators[gen.id]
    minimum_h = gen.min_up_h if state.on else gen.min_down_h
    if state.hours_in_state >= minimum_h:
        return 0
    return ceil_steps(minimum_h - state.hours_in_state, inp.step_h)


def respect_min_times(wanted: list[float], gen: Generator, inp: DispatchInputs) -> list[float]:
    """On/off per step closest to ``wanted`` (1/0) that the genset's timing rules allow.

    Walks forward from the state now: during the initial lock the genset keeps its state; a
    switch (to on, or to off) then holds for ``U`` (or ``D``) steps whatever ``wanted`` says.
    Used to turn a shifted previous plan into a MIP start HiGHS can accept: a start that
    breaks one min up/down row is discarded whole.
    """
    state = inp.state.generators[gen.id]
    up, down = ceil_steps(gen.min_up_h, inp.step_h), ceil_steps(gen.min_down_h, inp.step_h)
    return walk_min_times(wanted, on_now=state.on, locked=initial_lock_steps(gen, inp), up=up, down=down)


def walk_min_times(wanted: list[float], *, on_now: bool, locked: int, up: int, down: int) -> list[float]:
    """1/0 per step closest to ``wanted`` for a switch that is ``on_now``, must keep its state for the
    first ``locked`` steps, and once switched holds on for ``up`` or off for ``down`` steps."""
    previous = 1.0 if on_now else 0.0
    hold_until = locked
    out: list[float] = []
    for t, value in enumerate(wanted):
        on = previous if t < hold_until else (1.0 if value > 0.5 else 0.0)
        if on != previous:
            hold_until = t + (up if on else down)
        out.append(on)
        previous = on
    return out
