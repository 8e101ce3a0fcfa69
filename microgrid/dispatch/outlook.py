"""Extension "outlook": a long, coarse plan that values fuel and stored energy for the fine plan's end.

Formulation and reasoning: ``docs/dispatch-extensions.md``. The reference model over the whole outlook
the operator has (days, at hourly steps), as a linear programme (every binary relaxed to [0, 1]):
its row duals give λ_f, the value of a unit of fuel, and μ_b[t], the value of a kWh in battery b at
the end of step t. The fine plan (24 h at the control interval) then values what it leaves at its
end as the long plan does (:class:`~microgrid.dispatch.inputs.TerminalValues`): fuel at λ_f, energy at
μ_b at the fine horizon's end. Without it, fuel has no value beyond tomorrow, and a 24 h plan burns
on comfort load what the critical tier needs on day five.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from microgrid.dispatch.fuels import BUDGET_PREMIUM
from microgrid.dispatch.inputs import DispatchInputs, TerminalValues
from microgrid.dispatch.results import extract, variable_series
from microgrid.dispatch.reuse import KeptModel, ModelCache, new_model
from microgrid.dispatch.solve import CompiledModel, solve_model
from microgrid.errors import InfeasibleError, SolveError
from microgrid.plan_columns import battery_soc, generator_fuel, generator_kw, generator_on
from microgrid.plans import SolveStatus
from microgrid.profiles import Profiles
from microgrid.site import Site

__all__ = ["OutlookValues", "coarsen", "fuel_reserve", "no_fuel_into_storage", "serve_first_cap", "solve_outlook"]


@dataclass(frozen=True)
class OutlookValues:
    """What the long plan says (``docs/dispatch-extensions.md``).

    Attributes
    ----------
    terminal
        λ_f per fuel and μ_b per battery at ``at_h`` hours from the start (≥ 0, at most
        :func:`serve_first_cap`).
    fuel_burnt
        Fuel the long plan burns in the first ``at_h`` hours, per fuel (fuel units).
    energy_kwh
        Energy the long plan has in each battery at ``at_h`` hours [kWh].
    frame
        The long plan, in the plan columns (index: step start, UTC; gensets' ``on`` is the relaxed u).
    objective
        The long plan's objective (the LP's, with the rationing premium) [currency].
    seconds
        Wall time of build, solve and extraction [s].
    """

    terminal: TerminalValues
    fuel_burnt: dict[str, float]
    energy_kwh: dict[str, float]
    frame: pd.DataFrame
    objective: float
    seconds: float


def coarsen(profiles: Profiles, step_h: float) -> Profiles:
    """``profiles`` as averages over steps of ``step_h`` hours (a whole multiple of theirs; a last,
    incomplete coarse step is dropped). Grid availability averages too (a fraction in an LP)."""
    per = round(step_h / profiles.step_h)
    if per <= 1:
        return profiles
    n = profiles.steps // per
    index = profiles.index[: n * per : per]

    def mean(values: np.ndarray) -> np.ndarray:
        return np.asarray(values[: n * per].reshape(n, per, *values.shape[1:]).mean(axis=1))

    def frame(f: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(mean(f.to_numpy(dtype=float)), index=index, columns=f.columns)

    def series(s: pd.Series) -> pd.Series:
        return pd.Series(mean(s.to_numpy(dtype=float)), index=index)

    return Profiles(
        index,
        profiles.step_h * per,
        frame(profiles.load_kw),
        frame(profiles.pv_kw),
        series(profiles.grid_available),
        series(profiles.import_price_per_kwh),
        series(profiles.export_price_per_kwh),
    )


@dataclass
class _Matrix:
    """The compiled constraint matrix (column-wise) read out of HiGHS once (each read copies it)."""

    start: np.ndarray
    index: np.ndarray
    value: np.ndarray

    @classmethod
    def of(cls, compiled: CompiledModel) -> _Matrix:
        matrix = compiled.lp.a_matrix_
        return cls(np.asarray(matrix.start_), np.asarray(matrix.index_), np.asarray(matrix.value_, dtype=float))


def _entry(compiled: CompiledModel, matrix: _Matrix, row: int, var: object) -> float:
    """The coefficient of ``var`` in compiled row ``row`` (0 when absent)."""
    column = compiled.position[id(var)]
    start, end = matrix.start[column], matrix.start[column + 1]
    hit = np.flatnonzero(matrix.index[start:end] == row)
    return float(matrix.value[start:end][hit[0]]) if len(hit) else 0.0


def _duals(
    m: pyo.ConcreteModel, compiled: CompiledModel, duals: np.ndarray, inp: DispatchInputs, k: int
) -> TerminalValues:
    """λ_f from the fuel-stock rows and μ_b from the battery-dynamics rows of step ``k`` + 1.

    A row a·x (≤ or =) b with dual y: raising b by δ changes the objective by y·δ. One more unit of
    fuel raises the stock row's b by one (its fuel terms have positive coefficients): λ = −y. One more
    kWh at the end of step k is e[b,k] + δ in the row of step k + 1 (c the row's coefficient of
    e[b,k]), i.e. b − c·δ: μ = y·c. Both clipped at 0.
    """
    row_of = compiled.row_position
    matrix = _Matrix.of(compiled)
    fuel_value = {}
    for f in m.F:
        row = row_of[id(m.fuel_stock[f])]
        burner = next(g.id for g in inp.site.generators if g.fuel == f)
        coefficient = _entry(compiled, matrix, row, m.gen_kw[burner, 0])
        sign = np.sign(coefficient or _entry(compiled, matrix, row, m.gen_on[burner, 0]) or 1.0)
        fuel_value[f] = max(0.0, -float(duals[row]) * sign)
    energy_value = {}
    if k + 1 < inp.steps:
        for b in m.B:
            row = row_of[id(m.battery_dynamics[b, k + 1])]
            energy_value[b] = max(0.0, float(duals[row]) * _entry(compiled, matrix, row, m.energy_kwh[b, k]))
    return TerminalValues(fuel_value, energy_value)


def serve_first_cap(inp: DispatchInputs) -> TerminalValues:
    """The most the values may be: what keeps serving the most important tier now worth its fuel.

    A long plan short of fuel for its whole outlook values a litre at what it would serve at the
    margin: the most important tier, days ahead. The fine plan would then be indifferent between
    serving that tier now and keeping the fuel for it later, and shedding it now (a plan no relay can
    execute: the tier is never switched) blacks the site out now, while the grid may be back before
    "later". So λ_f is capped where a kWh from the hungriest genset burning f, at its minimum load,
    costs half the tier's value of lost load v₁: λ_f ≤ v₁ / (2 · (a + b0 / Pmin)) − π_f, and μ_b ≤ v₁ / 2.
    Lower tiers are still rationed at the values the long plan gives.
    """
    top = min((t.priority for t in inp.site.loads), default=None)
    v1 = max((t.value_of_lost_load_per_kwh for t in inp.site.loads if t.priority == top), default=0.0)
    fuel = {}
    for name, spec in inp.site.fuels.items():
        burners = [g for g in inp.site.generators if g.fuel == name]
        if burners:
            hungriest = max(g.fuel_per_kwh + g.fuel_per_hour_running / max(g.min_kw, 0.1 * g.max_kw) for g in burners)
            fuel[name] = max(0.0, v1 / (2 * hungriest) - spec.price_per_unit)
    return TerminalValues(fuel, {b.id: v1 / 2 for b in inp.site.batteries})


def fuel_reserve(site: Site, profiles: Profiles, hours: float) -> dict[str, float]:
    """Fuel to carry the most important tiers for ``hours`` from gensets alone [fuel units per fuel]: their
    mean forecast demand D, from the fuel's most economical genset at that load (a · D + b0, capped at
    its output; several hours of the biggest if one is not enough)."""
    top = min((t.priority for t in site.loads), default=None)
    tiers = [t.id for t in site.loads if t.priority == top]
    demand = float(profiles.load_kw[tiers].sum(axis=1).mean()) if tiers else 0.0
    out = {}
    for name in site.fuels:
        burners = [g for g in site.generators if g.fuel == name]
        if burners and demand > 0:
            per_hour = min(
                math.ceil(demand / g.max_kw) * g.fuel_per_hour_running + g.fuel_per_kwh * demand for g in burners
            )
            out[name] = per_hour * hours
    return out


def _capped(values: TerminalValues, cap: TerminalValues) -> TerminalValues:
    return TerminalValues(
        {f: min(v, cap.fuel_value.get(f, v)) for f, v in values.fuel_value.items()},
        {b: min(v, cap.energy_value.get(b, v)) for b, v in values.energy_value.items()},
    )


STORAGE_BELOW_FUEL = 0.95
"""μ_b as a share, at most, of what the fine plan pays to make a stored kWh from a capped fuel
(:func:`no_fuel_into_storage`)."""


def no_fuel_into_storage(inp: DispatchInputs, values: TerminalValues, cap: TerminalValues) -> TerminalValues:
    """The values with μ_b below what the fine plan pays to make a stored kWh from a fuel whose λ_f the cap
    lowered: no profit in burning fuel to fill a battery for the horizon's end.

    The LP's values are consistent (a stored kWh is worth no more than the fuel that makes it), but the
    cap lowers λ_f alone: with λ_f at its cap and μ_b at v₁ / 2, a genset at full output makes a stored
    kWh for (π_f + (1 − δ) λ_f) · (a + b0 / Pmax) / ηc, less than μ_b, and the fine plan ran it flat out
    to charge the battery in an outage, shedding every tier but the most important (the boiler house,
    70 % of full service's diesel: ≈ 200 kWh of diesel in the battery when the grid came back, the tank
    dry a day later). So for every battery μ_b ≤ STORAGE_BELOW_FUEL × min over capped fuels f and their
    gensets g of (π_f + (1 − δ) λ_f) · (a_g + b0_g / Pmax_g) / ηc_b (δ: ``BUDGET_PREMIUM``). Values the
    cap left alone are the LP's, untouched. ``cap``: :func:`serve_first_cap` of ``inp``, already applied.
    """
    top = cap.fuel_value
    capped = [f for f, v in values.fuel_value.items() if f in top and v >= top[f] - 1e-9]
    costs = [
        (inp.site.fuels[f].price_per_unit + (1 - BUDGET_PREMIUM) * values.fuel_value[f])
        * (g.fuel_per_kwh + g.fuel_per_hour_running / g.max_kw)
        for f in capped
        for g in inp.site.generators
        if g.fuel == f and g.max_kw > 0
    ]
    if not costs:
        return values
    per_kwh = STORAGE_BELOW_FUEL * min(costs)
    batteries = {b.id: b for b in inp.site.batteries}
    energy = {b: min(v, per_kwh / batteries[b].charge_efficiency) for b, v in values.energy_value.items()}
    return dataclasses.replace(values, energy_value=energy)


def _relaxed_generators(frame: pd.DataFrame, m: pyo.ConcreteModel, inp: DispatchInputs) -> pd.DataFrame:
    """The gensets' columns as the LP solved them (``extract`` rounds u to 0/1, which a relaxation is not)."""
    out = frame.copy()
    for g in inp.site.generators:
        kw = np.maximum(np.array([v.value or 0.0 for v in variable_series(m.gen_kw, g.id, inp.steps)]), 0.0)
        on = np.array([v.value or 0.0 for v in variable_series(m.gen_on, g.id, inp.steps)])
        out[generator_kw(g.id)], out[generator_on(g.id)] = kw, on
        out[generator_fuel(g.id)] = inp.step_h * (g.fuel_per_kwh * kw + g.fuel_per_hour_running * on)
    return out


def solve_outlook(inp: DispatchInputs, *, at_h: float, cache: ModelCache | None = None) -> OutlookValues:
    """Solve the LP relaxation of ``inp`` and read the values at ``at_h`` hours (module docstring).

    ``inp`` is the long, coarse horizon (e.g. 7 days of hourly steps, :func:`coarsen`); its
    extensions are ignored (the outlook is the reference model, with the rationing premium of
    :func:`microgrid.dispatch.loads.add_rationing_premium`). ``cache``: keep the built LP for the next
    outlook of the same shape (a controller re-solves it every hour).

    Raises
    ------
    InfeasibleError, SolveError
        No plan (a locked genset with nowhere for its minimum load; HiGHS failing).
    """
    started = time.perf_counter()
    inp = dataclasses.replace(inp, possible_outage=None, reserve=None, feeders=None, terminal=None)
    flags = {"battery_mode_binaries": False, "grid_direction_binaries": False, "linear": True}
    kept = cache.take(inp, **flags) if cache is not None else new_model(inp, keep=False, **flags)
    try:
        return _solve(kept, inp, at_h, started)
    finally:
        if cache is not None:
            cache.give_back(kept)


def _solve(kept: KeptModel, inp: DispatchInputs, at_h: float, started: float) -> OutlookValues:
    model, compiled = kept.model, kept.compiled
    if compiled is None:
        raise InfeasibleError(f"the outlook of {inp.site.site.name!r}: infeasible (a row of constants)")
    result = solve_model(model, mip_gap=0.0, time_limit_s=inp.time_limit_s, compiled=compiled, duals=True)
    if result.status is not SolveStatus.OPTIMAL or result.row_duals is None:
        kind = InfeasibleError if result.status is SolveStatus.INFEASIBLE else SolveError
        raise kind(f"the outlook of {inp.site.site.name!r}: {result.status.value}")
    k = min(inp.steps, max(1, round(at_h / inp.step_h))) - 1
    cap = serve_first_cap(inp)
    values = no_fuel_into_storage(inp, _capped(_duals(model, compiled, result.row_duals, inp, k), cap), cap)
    frame = _relaxed_generators(extract(model, inp), model, inp)
    burnt = {
        f: float(sum(frame[generator_fuel(g.id)].iloc[: k + 1].sum() for g in inp.site.generators if g.fuel == f))
        for f in inp.site.fuels
    }
    limited = {f: b for f, b in burnt.items() if inp.fuel_stock(f) is not None}
    terminal = dataclasses.replace(values, fuel_budget=limited)
    energy = {b.id: float(frame[battery_soc(b.id)].iloc[k]) * b.capacity_kwh for b in inp.site.batteries}
    objective = float(result.objective) if result.objective is not None else float("nan")
    return OutlookValues(terminal, burnt, energy, frame, objective, time.perf_counter() - started)
