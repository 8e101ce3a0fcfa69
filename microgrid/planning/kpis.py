"""KPIs of a simulated (or perfectly foreseen) period, from its table of intervals.

The table (:class:`~microgrid.planning.results.SimulationResult` ``.intervals``) has one row per
interval; its money columns are computed here by :func:`add_costs`, the same way for every
controller, so that costs compare like with like:

* ``cost.grid``: import kWh × import price − export kWh × export price;
* ``cost.fuel``: fuel burnt × the fuel's price;
* ``cost.startup``: genset starts × their startup cost;
* ``cost.wear``: kWh discharged × the battery's wear cost;
* ``cost.unserved``: kWh not served per tier × its value of lost load (a tier the controller
  disconnects and a tier the plant trips both count);
* ``cost.storage``: − terminal value × the change of stored energy over the interval. Summed
  over the period it is − τ · (E_end − E_start): the spec's terminal value, counted from the
  energy stored at the start, so that a controller that ends the period with fuller batteries
  is credited (and one that empties them charged) exactly as the dispatch model values it.

``cost_total`` is the sum of the six parts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from microgrid.plan_columns import (
    GRID_AVAILABLE,
    GRID_EXPORT_KW,
    GRID_IMPORT_KW,
    PRICE_EXPORT_PER_KWH,
    PRICE_IMPORT_PER_KWH,
    battery_charge_kw,
    battery_discharge_kw,
    battery_soc,
    fuel_stock,
    generator_fuel,
    generator_hours,
    generator_kw,
    generator_on,
    generator_starts,
    load_demand_kw,
    load_served_kw,
    load_shed_kw,
    pv_available_kw,
    pv_kw,
)
from microgrid.plans import cost_parts
from microgrid.site import Site

__all__ = ["COST_PARTS", "add_costs", "kpis_of", "ordered_columns", "step_hours"]

COST_PARTS = ("grid", "fuel", "startup", "wear", "unserved", "storage")
_GENERATOR_COLUMNS = (generator_kw, generator_on, generator_fuel, generator_hours, generator_starts)
"""The money columns ``cost.<part>`` of an intervals table, in order."""


def step_hours(intervals: pd.DataFrame, site: Site) -> float:
    """Interval length [h]: the index spacing, else the site's control interval."""
    if len(intervals.index) > 1:
        return float((intervals.index[1] - intervals.index[0]) / pd.Timedelta(hours=1))
    return float(site.control.interval / pd.Timedelta(hours=1))


def add_costs(frame: pd.DataFrame, site: Site, initial_soc: dict[str, float]) -> pd.DataFrame:
    """``frame`` with its ``cost.<part>`` columns (money per interval), from its energy columns.

    ``initial_soc``: battery id → SOC (fraction) at the start of the first interval.
    """
    dt = step_hours(frame, site)
    out = frame.copy()

    def column(name: str) -> np.ndarray:
        return out[name].to_numpy(dtype=float)

    def change(b: str) -> np.ndarray:
        soc = column(battery_soc(b))
        return soc - np.concatenate(([initial_soc[b]], soc[:-1]))

    parts = cost_parts(
        site,
        import_kwh=dt * column(GRID_IMPORT_KW),
        export_kwh=dt * column(GRID_EXPORT_KW),
        import_price=column(PRICE_IMPORT_PER_KWH),
        export_price=column(PRICE_EXPORT_PER_KWH),
        fuel={g.id: column(generator_fuel(g.id)) for g in site.generators},
        starts={g.id: column(generator_starts(g.id)) for g in site.generators},
        discharge_kwh={b.id: dt * column(battery_discharge_kw(b.id)) for b in site.batteries},
        shed_kwh={t.id: dt * column(load_shed_kw(t.id)) for t in site.loads},
        stored_change={b.id: change(b.id) for b in site.batteries},
    )
    for part in COST_PARTS:
        out[f"cost.{part}"] = np.broadcast_to(np.asarray(parts[part], dtype=float), len(out)).copy()
    return out[ordered_columns(out, site)]


def ordered_columns(frame: pd.DataFrame, site: Site) -> list[str]:
    """``frame``'s columns in the documented order: assets, grid, prices, costs, then the rest as they come."""
    order = [c(b.id) for b in site.batteries for c in (battery_charge_kw, battery_discharge_kw, battery_soc)]
    order += [c(g.id) for g in site.generators for c in _GENERATOR_COLUMNS]
    order += [fuel_stock(name) for name in site.fuels]
    order += [c(a.id) for a in site.pv for c in (pv_available_kw, pv_kw)]
    order += [c(t.id) for t in site.loads for c in (load_demand_kw, load_served_kw, load_shed_kw)]
    order += [GRID_AVAILABLE, GRID_IMPORT_KW, GRID_EXPORT_KW, PRICE_IMPORT_PER_KWH, PRICE_EXPORT_PER_KWH]
    order += [f"cost.{part}" for part in COST_PARTS]
    known = [c for c in order if c in frame.columns]
    return known + [c for c in frame.columns if c not in set(known)]


def _sum(intervals: pd.DataFrame, column: str) -> float:
    return float(intervals[column].sum()) if column in intervals else 0.0


def _generator_kpis(intervals: pd.DataFrame, site: Site, dt: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for gen in site.generators:
        on = intervals[generator_on(gen.id)].to_numpy(dtype=float)
        hours_col, starts_col = generator_hours(gen.id), generator_starts(gen.id)
        out[f"generator_hours.{gen.id}"] = (
            _sum(intervals, hours_col) if hours_col in intervals else float(on.sum() * dt)
        )
        if starts_col in intervals:
            out[f"generator_starts.{gen.id}"] = _sum(intervals, starts_col)
        else:
            out[f"generator_starts.{gen.id}"] = float(np.sum((on[1:] > 0.5) & (on[:-1] < 0.5)))
    return out


def _below_floor(intervals: pd.DataFrame, site: Site) -> float:
    """Intervals the grid-forming battery ended more than 0.5 % of its capacity below ``soc_min`` while a
    genset had fuel to carry the site: every fuel with a stock holds at least what its thriftiest genset
    burns in one interval at its minimum load (a few centilitres left in the tank do not count)."""
    forming = site.grid_forming_battery()
    column = battery_soc(forming.id) if forming is not None else ""
    if forming is None or column not in intervals or not site.generators:
        return 0.0
    below = intervals[column].to_numpy(dtype=float) < forming.soc_min - 0.005
    dt = step_hours(intervals, site)
    fuelled = np.ones(len(intervals), dtype=bool)
    for name in {g.fuel for g in site.generators}:
        if fuel_stock(name) in intervals:
            stock = intervals[fuel_stock(name)].to_numpy(dtype=float)
            least = min(
                (g.fuel_per_kwh * g.min_kw + g.fuel_per_hour_running) * dt for g in site.generators if g.fuel == name
            )
            fuelled &= np.isnan(stock) | (stock >= max(least, 1e-6))
    return float(np.sum(below & fuelled))


def kpis_of(intervals: pd.DataFrame, site: Site) -> pd.Series:
    """The named KPIs of a table of intervals (see :class:`~microgrid.planning.results.SimulationResult`).

    Money in the site's currency, energy in kWh, fuel in the fuel's unit, time in hours.
    """
    dt = step_hours(intervals, site)
    k: dict[str, float] = {f"cost_{part}": _sum(intervals, f"cost.{part}") for part in COST_PARTS}
    k = {"cost_total": sum(k.values()), **k}
    for name in site.fuels:
        burners = [g.id for g in site.generators if g.fuel == name]
        k[f"fuel_burnt.{name}"] = sum(_sum(intervals, generator_fuel(g)) for g in burners)
        stock = intervals[fuel_stock(name)] if fuel_stock(name) in intervals else pd.Series(dtype=float)
        k[f"fuel_left.{name}"] = float(stock.iloc[-1]) if len(stock) else float("nan")
    for tier in site.loads:
        k[f"unserved_kwh.{tier.id}"] = _sum(intervals, load_shed_kw(tier.id)) * dt
    available = intervals[GRID_AVAILABLE].to_numpy(dtype=float) if GRID_AVAILABLE in intervals else np.zeros(0)
    k["hours_islanded"] = float(np.sum(1.0 - available) * dt)
    k |= _generator_kpis(intervals, site, dt)
    for bat in site.batteries:
        k[f"battery_cycles.{bat.id}"] = _sum(intervals, battery_discharge_kw(bat.id)) * dt / bat.capacity_kwh
    k["grid_forming_below_floor"] = _below_floor(intervals, site)
    autonomy = intervals.get("autonomy.critical_h", pd.Series(dtype=float)).dropna()
    k["min_autonomy_critical_h"] = float(autonomy.min()) if len(autonomy) else float("nan")
    k["intervals"] = float(len(intervals))
    solves = intervals.get("solve_s", pd.Series(dtype=float)).dropna()
    k["solve_s_median"] = float(solves.median()) if len(solves) else float("nan")
    return pd.Series(k, dtype=float)
