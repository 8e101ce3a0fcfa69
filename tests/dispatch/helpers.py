"""Builders for tiny sites, a full-binary reference solve, and an independent invariant checker.

Nothing here imports the package's own checks (``microgrid.dispatch.results``): every invariant
is recomputed from the spec (``shared/spec/dispatch-model.md``) and the plan frame alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

import microgrid
from microgrid.dispatch import build_model, solve_model
from microgrid.dispatch.solve import SolveResult
from tests.conftest import tiny_site

T0 = pd.Timestamp("2026-01-01T00:00:00+00:00")
TOL_KW = 1e-5
"""Absolute tolerance for powers [kW] and energies [kWh] read back from HiGHS (its own is 1e-7)."""


# -- site pieces ----------------------------------------------------------------------------


def battery(id: str = "bat", **over: Any) -> dict[str, Any]:
    """A lossless 100 kWh, 50 kW battery, empty, SOC band [0, 1]; ``over`` replaces keys."""
    base: dict[str, Any] = {
        "id": id,
        "capacity_kwh": 100.0,
        "soc_min": 0.0,
        "soc_max": 1.0,
        "max_charge_kw": 50.0,
        "max_discharge_kw": 50.0,
        "charge_efficiency": 1.0,
        "discharge_efficiency": 1.0,
        "initial_soc": 0.0,
    }
    return base | over


def genset(id: str = "dg", **over: Any) -> dict[str, Any]:
    """A 100 kW diesel genset, min 0 kW, 0.25 l/kWh + 2 l/h, off for a day, no min up/down."""
    base: dict[str, Any] = {
        "id": id,
        "fuel": "diesel",
        "max_kw": 100.0,
        "min_kw": 0.0,
        "fuel_per_kwh": 0.25,
        "fuel_per_hour_running": 2.0,
        "startup_cost": 0.0,
        "min_up_h": 0.0,
        "min_down_h": 0.0,
        "initial_on": False,
        "initial_hours_in_state": 24.0,
    }
    return base | over


def diesel(price: float = 10.0, stock: float | None = None) -> dict[str, Any]:
    """The ``fuels`` section: diesel at ``price`` per litre (10 by default), ``stock`` litres."""
    fuel: dict[str, Any] = {"unit": "l", "price_per_unit": price}
    if stock is not None:
        fuel["stock"] = stock
    return {"diesel": fuel}


def tier(id: str, priority: int, voll: float) -> dict[str, Any]:
    """A load tier."""
    return {"id": id, "priority": priority, "value_of_lost_load_per_kwh": voll}


CRITICAL = tier("crit", 1, 1000.0)
COMFORT = tier("comfort", 3, 1.0)


def grid(max_import_kw: float = 100.0, max_export_kw: float = 0.0, **over: Any) -> dict[str, Any]:
    """A grid connection with constant prices unless ``over`` sets them (import 1.0 by default)."""
    base: dict[str, Any] = {
        "max_import_kw": max_import_kw,
        "max_export_kw": max_export_kw,
        "import_price_per_kwh": 1.0,
        "export_price_per_kwh": 0.0,
    }
    return base | over


# -- profiles, state, solving ----------------------------------------------------------------


def profiles_frame(columns: dict[str, list[float]], step_h: float = 1.0) -> pd.DataFrame:
    """A profiles frame (``timestamp`` + the given columns) of uniform steps of ``step_h`` hours."""
    steps = len(next(iter(columns.values())))
    assert all(len(v) == steps for v in columns.values()), "columns of unequal length"
    stamps = [(T0 + pd.Timedelta(hours=step_h) * t).isoformat() for t in range(steps)]
    return pd.DataFrame({"timestamp": stamps, **{k: [float(x) for x in v] for k, v in columns.items()}})


def setup(
    site_dict: dict[str, Any],
    columns: dict[str, list[float]],
    *,
    state: dict[str, Any] | None = None,
    step_h: float = 1.0,
) -> tuple[microgrid.Site, microgrid.Profiles, microgrid.SiteState]:
    """Validate a site dict, a profile table and a state dict through the public API."""
    site = microgrid.site_from_dict(site_dict)
    profiles = microgrid.profiles_from_frame(profiles_frame(columns, step_h), site)
    st = microgrid.state_from_dict(state, site) if state is not None else microgrid.SiteState.initial(site)
    return site, profiles, st


def solve(
    sections: dict[str, Any],
    columns: dict[str, list[float]],
    *,
    state: dict[str, Any] | None = None,
    step_h: float = 1.0,
    mip_gap: float = 0.0,
    check: bool = True,
) -> microgrid.Plan:
    """``microgrid.plan`` of ``tiny_site(**sections)`` to proven optimality; invariants checked."""
    site, profiles, st = setup(tiny_site(**sections), columns, state=state, step_h=step_h)
    result = microgrid.plan(site, profiles, st, mip_gap=mip_gap, time_limit_s=60)
    if check:
        assert_invariants(result)
    return result


def full_binary(
    site: microgrid.Site,
    profiles: microgrid.Profiles,
    state: microgrid.SiteState,
    *,
    mip_gap: float = 0.0,
    battery_mode_binaries: bool = True,
) -> SolveResult:
    """Solve the spec's model with every binary (battery modes and grid directions) in it."""
    inputs = microgrid.DispatchInputs(site=site, profiles=profiles, state=state, mip_gap=mip_gap, time_limit_s=60)
    model = build_model(inputs, battery_mode_binaries=battery_mode_binaries, grid_direction_binaries=True)
    return solve_model(model, mip_gap=mip_gap, time_limit_s=60)


def col(plan: microgrid.Plan, name: str) -> np.ndarray:
    """One plan column as a float array."""
    return plan.frame[name].to_numpy(dtype=float)


# -- the spec's objective and invariants, recomputed ---------------------------------------------


def _steps(hours: float, step_h: float) -> int:
    return max(0, math.ceil(hours / step_h - 1e-9))


def spec_objective(plan: microgrid.Plan) -> float:
    """The spec's objective of ``plan``, from the frame, the profiles and the site only."""
    f, site, prof, dt = plan.frame, plan.site, plan.profiles, plan.step_hours
    total = dt * float(
        np.sum(
            prof.import_price_per_kwh.to_numpy() * f["grid.import_kw"].to_numpy()
            - prof.export_price_per_kwh.to_numpy() * f["grid.export_kw"].to_numpy()
        )
    )
    for t in site.loads:
        total += dt * t.value_of_lost_load_per_kwh * float(f[f"load.{t.id}.shed_kw"].sum())
    for b in site.batteries:
        total += dt * b.wear_cost_per_kwh * float(f[f"battery.{b.id}.discharge_kw"].sum())
        total -= b.terminal_value_per_kwh * b.capacity_kwh * float(f[f"battery.{b.id}.soc"].iloc[-1])
    for g in site.generators:
        on = f[f"generator.{g.id}.on"].to_numpy().astype(int)
        kw = f[f"generator.{g.id}.kw"].to_numpy()
        fuel = dt * (g.fuel_per_kwh * kw + g.fuel_per_hour_running * on)
        before = np.concatenate(([int(plan.state.generators[g.id].on)], on[:-1]))
        starts = int(np.sum(np.maximum(on - before, 0)))
        total += site.fuels[g.fuel].price_per_unit * float(fuel.sum()) + g.startup_cost * starts
    return total


def assert_invariants(plan: microgrid.Plan, tol: float = TOL_KW) -> None:
    """Every constraint of the spec holds for ``plan`` (within ``tol``), and its objective adds up."""
    problems = (
        _balance_problems(plan, tol)
        + _battery_problems(plan, tol)
        + _generator_problems(plan, tol)
        + _load_pv_grid_problems(plan, tol)
    )
    assert not problems, "\n".join(problems)
    scale = max(1.0, abs(plan.objective))  # the objective is cost().total: check it against an independent sum
    assert abs(plan.objective - spec_objective(plan)) <= 1e-6 * scale
    if plan.solver_objective is not None and not plan.contingency and plan.reserve is None:
        # HiGHS's own value of the spec's objective; netting a simultaneous charge/discharge only lowers ours
        assert plan.objective <= plan.solver_objective + 1e-6 * scale
        assert plan.solver_objective - plan.objective <= 1e-3 * scale


def _balance_problems(plan: microgrid.Plan, tol: float) -> list[str]:
    f, site = plan.frame, plan.site
    supply = f["grid.import_kw"] - f["grid.export_kw"]
    for b in site.batteries:
        supply = supply + f[f"battery.{b.id}.discharge_kw"] - f[f"battery.{b.id}.charge_kw"]
    for g in site.generators:
        supply = supply + f[f"generator.{g.id}.kw"]
    for k in site.pv:
        supply = supply + f[f"pv.{k.id}.kw"]
    served = sum((f[f"load.{t.id}.served_kw"] for t in site.loads), start=pd.Series(0.0, index=f.index))
    residual = np.abs((supply - served).to_numpy())
    return [f"power balance off by {residual.max():.3g} kW"] if residual.max(initial=0) > tol else []


def _battery_problems(plan: microgrid.Plan, tol: float) -> list[str]:
    f, dt, out = plan.frame, plan.step_hours, []
    for b in plan.site.batteries:
        c = f[f"battery.{b.id}.charge_kw"].to_numpy()
        d = f[f"battery.{b.id}.discharge_kw"].to_numpy()
        e = f[f"battery.{b.id}.soc"].to_numpy() * b.capacity_kwh
        soc0 = plan.state.soc[b.id]
        before = np.concatenate(([soc0 * b.capacity_kwh], e[:-1]))
        drift = np.abs(e - before - dt * (b.charge_efficiency * c - d / b.discharge_efficiency))
        if drift.max() > tol * max(1.0, b.capacity_kwh):
            out.append(f"{b.id}: SOC dynamics off by {drift.max():.3g} kWh")
        low, high = min(b.soc_min, soc0) * b.capacity_kwh, max(b.soc_max, soc0) * b.capacity_kwh
        if e.min() < low - tol or e.max() > high + tol:
            out.append(f"{b.id}: energy {e.min():.6g}..{e.max():.6g} outside [{low:g}, {high:g}] kWh")
        if c.min() < -tol or d.min() < -tol or c.max() > b.max_charge_kw + tol or d.max() > b.max_discharge_kw + tol:
            out.append(f"{b.id}: charge or discharge outside its limits")
        if np.minimum(c, d).max() > tol:
            out.append(f"{b.id}: charges and discharges in the same step")
    return out


def _generator_problems(plan: microgrid.Plan, tol: float) -> list[str]:
    f, dt, steps, out = plan.frame, plan.step_hours, plan.steps, []
    burnt: dict[str, float] = {}
    for g in plan.site.generators:
        on = f[f"generator.{g.id}.on"].to_numpy()
        kw = f[f"generator.{g.id}.kw"].to_numpy()
        if not np.all(np.isin(on, (0, 1))):
            out.append(f"{g.id}: 'on' is not 0/1")
        if np.any(kw < g.min_kw * on - tol) or np.any(kw > g.max_kw * on + tol):
            out.append(f"{g.id}: output outside [min_kw, max_kw] when on or nonzero when off: {kw} / {on}")
        fuel = f[f"generator.{g.id}.fuel"].to_numpy()
        if np.abs(fuel - dt * (g.fuel_per_kwh * kw + g.fuel_per_hour_running * on)).max() > tol:
            out.append(f"{g.id}: fuel column is not Δ·(a·p + b0·u)")
        burnt[g.fuel] = burnt.get(g.fuel, 0.0) + float(fuel.sum())
        out += _up_down_problems(g, plan.state.generators[g.id], on.astype(int), dt, steps)
    for name, used in burnt.items():
        stock = plan.state.fuel_stock.get(name, plan.site.fuels[name].stock)
        if stock is not None and used > stock + tol * max(1.0, stock):
            out.append(f"fuel {name}: burns {used:.6g}, stock {stock:g}")
    return out


def _up_down_problems(g: Any, initial: microgrid.GeneratorState, on: np.ndarray, dt: float, steps: int) -> list[str]:
    out = []
    up, down = _steps(g.min_up_h, dt), _steps(g.min_down_h, dt)
    minimum_h = g.min_up_h if initial.on else g.min_down_h
    lock = _steps(minimum_h - initial.hours_in_state, dt) if initial.hours_in_state < minimum_h else 0
    if np.any(on[: min(lock, steps)] != int(initial.on)):
        out.append(f"{g.id}: leaves its initial state during the first {lock} steps: {on}")
    before = np.concatenate(([int(initial.on)], on[:-1]))
    for t in range(steps):
        if on[t] == 1 and before[t] == 0 and np.any(on[t : t + up] == 0):
            out.append(f"{g.id}: started at step {t}, stopped before {up} steps: {on}")
        if on[t] == 0 and before[t] == 1 and np.any(on[t : t + down] == 1):
            out.append(f"{g.id}: stopped at step {t}, restarted before {down} steps: {on}")
    return out


def _load_pv_grid_problems(plan: microgrid.Plan, tol: float) -> list[str]:
    f, prof, out = plan.frame, plan.profiles, []
    for t in plan.site.loads:
        demand = prof.load_kw[t.id].to_numpy()
        shed, served = f[f"load.{t.id}.shed_kw"].to_numpy(), f[f"load.{t.id}.served_kw"].to_numpy()
        if shed.min() < -tol or np.any(shed > demand + tol) or np.abs(served + shed - demand).max() > tol:
            out.append(f"load {t.id}: shed outside [0, demand] or served + shed ≠ demand")
    for k in plan.site.pv:
        pv = f[f"pv.{k.id}.kw"].to_numpy()
        if pv.min() < -tol or np.any(pv > prof.pv_kw[k.id].to_numpy() + tol):
            out.append(f"pv {k.id}: output outside [0, forecast]")
    gi, ge = (plan.site.grid.max_import_kw, plan.site.grid.max_export_kw) if plan.site.grid else (0.0, 0.0)
    alpha = prof.grid_available.to_numpy() if plan.site.grid else np.zeros(plan.steps)
    y, q = f["grid.import_kw"].to_numpy(), f["grid.export_kw"].to_numpy()
    if min(y.min(), q.min()) < -tol or np.any(y > gi * alpha + tol) or np.any(q > ge * alpha + tol):
        out.append(f"grid: import {y} / export {q} outside [0, limit·availability]")
    if np.minimum(y, q).max() > tol:
        out.append(f"grid: imports and exports in the same step: {y} / {q}")
    return out


# A battery with 5 kWh of room and nothing to give (SOC 0.9 = soc_min, soc_max 0.95), lossy,
# with power enough to circulate a lot: as a sink, it can only burn energy through its losses.
NEARLY_FULL = battery(
    initial_soc=0.9,
    soc_min=0.9,
    soc_max=0.95,
    charge_efficiency=0.9,
    discharge_efficiency=0.9,
    max_charge_kw=200.0,
    max_discharge_kw=200.0,
)
