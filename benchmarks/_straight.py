"""The spec's dispatch model built the obvious way in raw highspy: the yardstick of ``plan.py --suite``.

Written from ``shared/spec/dispatch-model.md`` alone, without ``microgrid.dispatch``: one highspy
variable per spec variable (every binary in: battery modes m, genset states u, grid directions k
where export is allowed), one ``addConstr`` per spec row, the objective as column costs, HiGHS's
default options but the gap and time limit. It reads only the validated inputs (``Site``,
``Profiles``, ``SiteState``). Its optimum must agree with ``microgrid.plan``'s (the suite checks it):
the two are independent implementations of one page.

Units: kW, kWh, h, fuel units, the site's currency; powers non-negative, direction in the name.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np

from microgrid.dispatch.highs_process import new_highs  # the first Highs of a process prints a banner

INF = highspy.kHighsInf
BINARY = highspy.HighsVarType.kInteger


@dataclass(frozen=True)
class StraightResult:
    """One straightforward solve: status, objective and bound [currency], gap, seconds, the power arrays."""

    status: str
    objective: float
    bound: float
    gap: float
    build_s: float
    highs_s: float
    extract_s: float
    columns: dict[str, np.ndarray]


def _steps(hours: float, step_h: float) -> int:
    """ceil(hours / Δ), robust to 0.5 / 0.25 style floating error."""
    return max(0, math.ceil(hours / step_h - 1e-9))


def _add_batteries(h: Any, site: Any, state: Any, dt: float, steps: int) -> tuple[dict[str, list[Any]], list[Any]]:
    """c, d, m, e per battery; returns the family lists and each step's battery net output d − c."""
    fam: dict[str, list[Any]] = {}
    net = [0.0] * steps
    for b in site.batteries:
        cap, soc0 = b.capacity_kwh, state.soc_of(b)
        low, high = min(b.soc_min, soc0) * cap, max(b.soc_max, soc0) * cap
        before: Any = soc0 * cap
        for t in range(steps):
            c = h.addVariable(0.0, b.max_charge_kw)
            d = h.addVariable(0.0, b.max_discharge_kw, obj=dt * b.wear_cost_per_kwh)
            m = h.addVariable(0.0, 1.0, type=BINARY)
            tau = -b.terminal_value_per_kwh if t == steps - 1 else 0.0
            e = h.addVariable(low, high, obj=tau)
            h.addConstr(c <= b.max_charge_kw * m)
            h.addConstr(d <= b.max_discharge_kw * (1 - m))
            out = (1.0 / b.discharge_efficiency) * d  # not d / eff: highspy 1.11's variables have no __truediv__
            h.addConstr(e == before + dt * (b.charge_efficiency * c - out))
            before = e
            net[t] = net[t] + d - c
            for name, var in (("c", c), ("d", d), ("e", e)):
                fam.setdefault(f"{b.id}.{name}", []).append(var)
    return fam, net


def _add_generator(h: Any, g: Any, state: Any, *, price: float, dt: float, steps: int) -> tuple[list[Any], list[Any]]:
    """u, s, z, p of genset ``g`` with the spec's rows; returns (p, fuel burnt per step as expressions)."""
    on0 = 1.0 if state.generators[g.id].on else 0.0
    h0 = state.generators[g.id].hours_in_state
    up, down = _steps(g.min_up_h, dt), _steps(g.min_down_h, dt)
    lock_on = _steps(g.min_up_h - h0, dt) if on0 and h0 < g.min_up_h else 0
    lock_off = _steps(g.min_down_h - h0, dt) if not on0 and h0 < g.min_down_h else 0
    u, s, z, p, fuel = [], [], [], [], []
    for t in range(steps):
        low, high = (1.0, 1.0) if t < lock_on else (0.0, 0.0) if t < lock_off else (0.0, 1.0)
        u.append(h.addVariable(low, high, obj=price * dt * g.fuel_per_hour_running, type=BINARY))
        s.append(h.addVariable(0.0, INF, obj=g.startup_cost))
        z.append(h.addVariable(0.0, INF))
        p.append(h.addVariable(0.0, g.max_kw, obj=price * dt * g.fuel_per_kwh))
        previous: Any = on0 if t == 0 else u[t - 1]
        h.addConstr(p[t] >= g.min_kw * u[t])
        h.addConstr(p[t] <= g.max_kw * u[t])
        h.addConstr(s[t] >= u[t] - previous)
        h.addConstr(z[t] >= previous - u[t])
        if up > 0:
            h.addConstr(h.qsum(s[max(0, t - up + 1) : t + 1]) <= u[t])
        if down > 0:
            h.addConstr(h.qsum(z[max(0, t - down + 1) : t + 1]) <= 1 - u[t])
        fuel.append(dt * (g.fuel_per_kwh * p[t] + g.fuel_per_hour_running * u[t]))
    return p, fuel


def _add_grid(h: Any, site: Any, profiles: Any, dt: float, steps: int) -> tuple[list[Any], list[Any]]:
    """Import y and export q per step (with direction binaries where export is allowed)."""
    grid = site.grid
    if grid is None:
        return [], []
    alpha = profiles.grid_available.to_numpy(dtype=float)
    ci = profiles.import_price_per_kwh.to_numpy(dtype=float)
    ce = profiles.export_price_per_kwh.to_numpy(dtype=float)
    y, q = [], []
    for t in range(steps):
        y.append(h.addVariable(0.0, grid.max_import_kw * alpha[t], obj=dt * ci[t]))
        q.append(h.addVariable(0.0, grid.max_export_kw * alpha[t], obj=-dt * ce[t]))
        if grid.max_export_kw > 0:
            k = h.addVariable(0.0, 1.0, type=BINARY)
            h.addConstr(y[t] <= grid.max_import_kw * k)
            h.addConstr(q[t] <= grid.max_export_kw * (1 - k))
    return y, q


def _build(h: Any, site: Any, profiles: Any, state: Any) -> dict[str, list[Any]]:
    """Every section of the spec into ``h``; returns the variables the result reads back, by name."""
    dt, steps = profiles.step_h, profiles.steps
    fam, supply = _add_batteries(h, site, state, dt, steps)
    burnt: dict[str, list[Any]] = {}
    for g in site.generators:
        price = site.fuels[g.fuel].price_per_unit
        fam[f"{g.id}.p"], fuel = _add_generator(h, g, state, price=price, dt=dt, steps=steps)
        burnt.setdefault(g.fuel, []).extend(fuel)
        supply = [supply[t] + fam[f"{g.id}.p"][t] for t in range(steps)]
    for name, terms in burnt.items():
        stock = state.fuel_stock.get(name, site.fuels[name].stock)
        if stock is not None:
            h.addConstr(h.qsum(terms) <= stock)
    for k in site.pv:
        avail = profiles.pv_kw[k.id].to_numpy(dtype=float)
        fam[f"{k.id}.pv"] = [h.addVariable(0.0, avail[t]) for t in range(steps)]
        supply = [supply[t] + fam[f"{k.id}.pv"][t] for t in range(steps)]
    demand = np.zeros(steps)
    for i in site.loads:
        load = profiles.load_kw[i.id].to_numpy(dtype=float)
        fam[f"{i.id}.x"] = [h.addVariable(0.0, load[t], obj=dt * i.value_of_lost_load_per_kwh) for t in range(steps)]
        supply = [supply[t] + fam[f"{i.id}.x"][t] for t in range(steps)]
        demand += load
    fam["y"], fam["q"] = _add_grid(h, site, profiles, dt, steps)
    for t in range(steps):
        grid = fam["y"][t] - fam["q"][t] if fam["y"] else 0.0
        h.addConstr(supply[t] + grid == float(demand[t]))
    return fam


def solve_straight(site: Any, profiles: Any, state: Any, *, mip_gap: float, time_limit_s: float) -> StraightResult:
    """Build, solve (HiGHS defaults but ``mip_rel_gap`` and ``time_limit``) and read back the spec's model."""
    began = time.perf_counter()
    h = new_highs()
    fam = _build(h, site, profiles, state)
    h.setOptionValue("mip_rel_gap", mip_gap)
    h.setOptionValue("time_limit", time_limit_s)
    built = time.perf_counter()
    h.run()
    ran = time.perf_counter()
    info = h.getInfo()
    status = h.modelStatusToString(h.getModelStatus())
    values = np.asarray(h.getSolution().col_value)
    columns = {name: values[[v.index for v in vs]] for name, vs in fam.items() if vs}
    return StraightResult(
        status,
        float(info.objective_function_value),
        float(info.mip_dual_bound),
        float(info.mip_gap),
        built - began,
        ran - built,
        time.perf_counter() - ran,
        columns,
    )
