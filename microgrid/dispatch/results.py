"""Extract a plan frame from a solved model, repair relaxed parts, and check residuals.

A plan is only trusted when :func:`check_plan` finds no problem: power balance and SOC
dynamics hold in every step, and every value lies within its bounds.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from microgrid.dispatch.batteries import energy_path_kwh
from microgrid.dispatch.inputs import DispatchInputs
from microgrid.plan_columns import (
    GRID_EXPORT_KW,
    GRID_IMPORT_KW,
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

__all__ = ["check_plan", "extract", "net_batteries", "net_grid"]

_ABS_TOL_KW = 1e-4
"""Residual tolerance in kW (and kWh for energies); HiGHS's own feasibility tolerance is 1e-7."""


def _nonneg(values: np.ndarray) -> np.ndarray:
    """Clip solver noise below zero (``+ 0.0`` also turns -0.0 into 0.0)."""
    out: np.ndarray = np.maximum(values, 0.0) + 0.0
    return out


_SERIES: weakref.WeakKeyDictionary[pyo.Var, dict[tuple[object, int], list[Any]]] = weakref.WeakKeyDictionary()
"""Per variable (a kept model's are read every solve): its elements ``[key, 0..steps)`` in order."""


_SERIES_LOCK = threading.Lock()


def variable_series(var: pyo.Var, key: object, steps: int) -> list[Any]:
    """The elements ``var[key, t]`` (``var[t]`` for key None), t = 0..steps − 1, kept per variable."""
    kept = _SERIES.get(var)
    elements = kept.get((key, steps)) if kept is not None else None
    if elements is None:
        elements = [var[key, t] if key is not None else var[t] for t in range(steps)]
        with _SERIES_LOCK:
            _SERIES.setdefault(var, {})[key, steps] = elements
    return elements


def _values(var: pyo.Var, key: object, steps: int) -> np.ndarray:
    out = np.array([v.value for v in variable_series(var, key, steps)], dtype=float)
    out[np.isnan(out)] = 0.0
    return out


def extract(m: pyo.ConcreteModel, inp: DispatchInputs) -> pd.DataFrame:
    """Read the solved model into the spec's plan columns (index: step start, UTC)."""
    site, steps, dt = inp.site, inp.steps, inp.step_h
    cols: dict[str, np.ndarray] = {}
    for bat in site.batteries:
        cols[battery_charge_kw(bat.id)] = _nonneg(_values(m.charge_kw, bat.id, steps))
        cols[battery_discharge_kw(bat.id)] = _nonneg(_values(m.discharge_kw, bat.id, steps))
        cols[battery_soc(bat.id)] = _values(m.energy_kwh, bat.id, steps) / bat.capacity_kwh
    for gen in site.generators:
        on = np.round(_values(m.gen_on, gen.id, steps))
        kw = _nonneg(_values(m.gen_kw, gen.id, steps)) * on
        cols[generator_kw(gen.id)] = kw
        cols[generator_on(gen.id)] = on.astype(int)
        cols[generator_fuel(gen.id)] = dt * (gen.fuel_per_kwh * kw + gen.fuel_per_hour_running * on)
    for arr in site.pv:
        cols[pv_kw(arr.id)] = _nonneg(_values(m.pv_kw, arr.id, steps))
    for tier in site.loads:
        demand = inp.profiles.load_kw[tier.id].to_numpy()
        shed = np.clip(_values(m.shed_kw, tier.id, steps), 0.0, demand) + 0.0
        cols[load_served_kw(tier.id)] = demand - shed + _pickup_kw(m, tier.id, steps)
        cols[load_shed_kw(tier.id)] = shed
    cols[GRID_IMPORT_KW] = _nonneg(_values(m.import_kw, None, steps))
    cols[GRID_EXPORT_KW] = _nonneg(_values(m.export_kw, None, steps))
    frame = pd.DataFrame(cols, index=inp.profiles.index.copy())
    frame.index.name = "timestamp"
    return frame


def _pickup_kw(m: pyo.ConcreteModel, tier: str, steps: int) -> np.ndarray:
    """A reconnected tier's cold-load pickup per step [kW] (feeders extension; zeros without it)."""
    out = np.zeros(steps)
    if hasattr(m, "FT"):
        for i, t in m.FT:
            if i == tier:
                out[t] = max(m.feeder_pickup_kw[i, t].value or 0.0, 0.0)
    return out


def net_grid(frame: pd.DataFrame) -> pd.DataFrame:
    """Replace simultaneous import y and export q by their net flow.

    Valid whenever ci[t] ≥ ce[t]: the net flow is the same power at no higher cost.
    """
    out = frame.copy()
    both = np.minimum(out[GRID_IMPORT_KW], out[GRID_EXPORT_KW])
    out[GRID_IMPORT_KW] -= both
    out[GRID_EXPORT_KW] -= both
    return out


def net_batteries(frame: pd.DataFrame, inp: DispatchInputs) -> pd.DataFrame | None:
    """Remove simultaneous charge and discharge of a battery, keeping its net power.

    Netting stores more energy (less is lost), so it never raises the objective (wear and
    terminal value are ≥ 0), but it may push the SOC above its ceiling: then None is
    returned and the caller must solve with the mode binaries.
    """
    out = frame.copy()
    for bat in inp.site.batteries:
        c_col, d_col = battery_charge_kw(bat.id), battery_discharge_kw(bat.id)
        both = np.minimum(out[c_col].to_numpy(), out[d_col].to_numpy())
        if not np.any(both > _ABS_TOL_KW):
            continue
        charge, discharge = out[c_col].to_numpy() - both, out[d_col].to_numpy() - both
        energy = energy_path_kwh(bat, inp.state.soc_of(bat) * bat.capacity_kwh, charge, discharge, inp.step_h)
        if np.any(energy > inp.state.energy_band_kwh(bat)[1] + _ABS_TOL_KW):
            return None
        out[c_col], out[d_col] = charge, discharge
        out[battery_soc(bat.id)] = energy / bat.capacity_kwh
    return out


def power_residual_kw(frame: pd.DataFrame, inp: DispatchInputs) -> np.ndarray:
    """Supply minus served demand per step [kW]; zero for a valid plan."""

    def col(name: str) -> np.ndarray:
        values: np.ndarray = frame[name].to_numpy(dtype=float)
        return values

    residual: np.ndarray = col(GRID_IMPORT_KW) - col(GRID_EXPORT_KW)
    for bat in inp.site.batteries:
        residual = residual + col(battery_discharge_kw(bat.id)) - col(battery_charge_kw(bat.id))
    for gen in inp.site.generators:
        residual = residual + col(generator_kw(gen.id))
    for arr in inp.site.pv:
        residual = residual + col(pv_kw(arr.id))
    for tier in inp.site.loads:
        residual = residual - col(load_served_kw(tier.id))
    return residual


def _battery_problems(frame: pd.DataFrame, inp: DispatchInputs) -> list[str]:
    problems = []
    for bat in inp.site.batteries:
        charge = frame[battery_charge_kw(bat.id)].to_numpy()
        discharge = frame[battery_discharge_kw(bat.id)].to_numpy()
        energy = frame[battery_soc(bat.id)].to_numpy() * bat.capacity_kwh
        path = energy_path_kwh(bat, inp.state.soc_of(bat) * bat.capacity_kwh, charge, discharge, inp.step_h)
        drift = np.abs(energy - path)
        if drift.max(initial=0) > _ABS_TOL_KW * max(1.0, bat.capacity_kwh):
            problems.append(f"battery {bat.id}: SOC dynamics off by {drift.max():.3g} kWh")
        low, high = inp.state.energy_band_kwh(bat)
        if energy.min(initial=low) < low - _ABS_TOL_KW or energy.max(initial=high) > high + _ABS_TOL_KW:
            problems.append(f"battery {bat.id}: energy outside [{low:g}, {high:g}] kWh")
        if (
            charge.max(initial=0) > bat.max_charge_kw + _ABS_TOL_KW
            or discharge.max(initial=0) > bat.max_discharge_kw + _ABS_TOL_KW
        ):
            problems.append(f"battery {bat.id}: power above its limits")
        if np.minimum(charge, discharge).max(initial=0) > _ABS_TOL_KW:
            problems.append(f"battery {bat.id}: charges and discharges in the same step")
    return problems


def check_plan(frame: pd.DataFrame, inp: DispatchInputs) -> list[str]:
    """Every reason not to trust ``frame`` (empty when it is a valid plan of the spec's model)."""
    problems = []
    residual = power_residual_kw(frame, inp)
    scale = max(1.0, float(inp.profiles.load_kw.to_numpy().max(initial=0.0)))
    worst = float(np.abs(residual).max(initial=0.0))
    if worst > _ABS_TOL_KW * scale:
        step = int(np.abs(residual).argmax())
        problems.append(f"power balance off by {worst:.3g} kW at step {step}")
    problems += _battery_problems(frame, inp)
    for gen in inp.site.generators:
        kw, on = frame[generator_kw(gen.id)].to_numpy(), frame[generator_on(gen.id)].to_numpy()
        if np.any(kw < gen.min_kw * on - _ABS_TOL_KW) or np.any(kw > gen.max_kw * on + _ABS_TOL_KW):
            problems.append(f"generator {gen.id}: output outside [min_kw, max_kw] while on, or nonzero while off")
    before = len(inp.fuel_steps())  # the steps before a delivery within the horizon
    for fuel, spec in inp.site.fuels.items():
        stock = inp.fuel_stock(fuel)
        burnt = sum(frame[generator_fuel(g.id)].iloc[:before].sum() for g in inp.site.generators if g.fuel == fuel)
        if stock is not None and burnt > stock + _ABS_TOL_KW * max(1.0, stock):
            where = "" if before == inp.steps else f" before the delivery at step {before}"
            problems.append(f"fuel {fuel}: burns {burnt:.6g} {spec.unit}{where}, stock is {stock:g}")
        if (after := inp.fuel_after_delivery(fuel)) is not None:
            steps, bound = after
            within = slice(steps.start, steps.stop)
            burnt = sum(frame[generator_fuel(g.id)].iloc[within].sum() for g in inp.site.generators if g.fuel == fuel)
            if burnt > bound + _ABS_TOL_KW * max(1.0, bound):
                problems.append(f"fuel {fuel}: burns {burnt:.6g} {spec.unit} with the delivery, {bound:g} to burn")
    for arr in inp.site.pv:
        if np.any(frame[pv_kw(arr.id)].to_numpy() > inp.profiles.pv_kw[arr.id].to_numpy() + _ABS_TOL_KW):
            problems.append(f"pv {arr.id}: output above the forecast")
    problems += _grid_problems(frame, inp)
    problems += _feeder_problems(frame, inp)
    return problems


def _feeder_problems(frame: pd.DataFrame, inp: DispatchInputs) -> list[str]:
    """With the feeders extension, a switched tier is served whole or shed whole in its discrete steps."""
    if inp.feeders is None:
        return []
    problems = []
    n = inp.feeders.discrete_steps
    for tier in inp.feeders.tiers:
        shed = frame[load_shed_kw(tier)].to_numpy()[:n]
        demand = inp.profiles.load_kw[tier].to_numpy()[:n]
        partial = (shed > _ABS_TOL_KW) & (shed < demand - _ABS_TOL_KW * max(1.0, float(demand.max(initial=1.0))))
        if partial.any():
            problems.append(f"tier {tier}: shed in part at step {int(np.argmax(partial))} (its feeder is on or off)")
    return problems


def _grid_problems(frame: pd.DataFrame, inp: DispatchInputs) -> list[str]:
    grid = inp.site.grid
    gi, ge = (grid.max_import_kw, grid.max_export_kw) if grid else (0.0, 0.0)
    alpha = inp.profiles.grid_available.to_numpy()
    y, q = frame[GRID_IMPORT_KW].to_numpy(), frame[GRID_EXPORT_KW].to_numpy()
    problems = []
    if np.any(y > gi * alpha + _ABS_TOL_KW) or np.any(q > ge * alpha + _ABS_TOL_KW):
        problems.append("grid: import or export above its limit (or during an outage)")
    if ge > 0 and np.minimum(y, q).max(initial=0) > _ABS_TOL_KW:
        problems.append("grid: imports and exports in the same step")
    return problems
