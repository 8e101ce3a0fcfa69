"""Perfect foresight: the spec's dispatch model solved on the true profiles (the lower bound of a simulation).

:func:`perfect_foresight`: the spec's dispatch model (:func:`microgrid.dispatch.optimize`) solved on the
**true** profiles, in one MILP over the whole period, or over windows of ``window_days`` chained end to
end (each solved with ``lookahead_days`` more, whose steps are dropped; the state carried from one
window to the next: SOC, gensets' on state and hours in it, fuel stock). No plant, no forecast error, no
safety layer: what the model itself could do knowing the future. Its intervals are the plan's, with the
same columns and the same cost definition as a simulation (:mod:`~microgrid.planning.kpis`), so costs
compare like with like. It is a lower bound on the closed-loop cost up to (a) the MIP gap of each
window, (b) the window boundaries (each window values its final energy at the batteries' terminal
value, not at what the next window would make of it) and (c) the plant's latitude beyond the model: the
simulated batteries may be pulled below ``soc_min`` by an outage they must carry (the model never goes
below it), and the closed loop's fallbacks may shed a tier the model would keep.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from microgrid.autonomy import Autonomy
from microgrid.dispatch import DispatchInputs, optimize
from microgrid.dispatch.inputs import FeederInputs, ReserveInputs, check_fuel_delivered
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
from microgrid.planning.foresight import extend
from microgrid.planning.kpis import add_costs, kpis_of
from microgrid.planning.results import SimulationResult
from microgrid.plans import Plan
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.state import GeneratorState, SiteState

__all__ = ["PF_MIP_GAP", "PF_TIME_LIMIT_S", "PF_WHOLE_TIME_LIMIT_S", "perfect_foresight", "window"]


PF_MIP_GAP = 0.01
"""Default relative MIP gap of one perfect-foresight window."""
PF_TIME_LIMIT_S = 120.0
"""Default time limit of one perfect-foresight window [s].

Measured on the hospital (winter, 15-min steps, 2 gensets): a 7-day window (+1 day lookahead,
768 steps) does not reach a 0.5 % gap in 300 s; 1-day windows (+1 day) take 3-5 s each and cost
0.17 % more over a week, 2-day windows 0.12 % more (``window_days`` 1 or 2 for long periods)."""


PF_WHOLE_TIME_LIMIT_S = 900.0
"""Default time limit of perfect foresight over a whole period in one MILP [s]."""


def window(profiles: Profiles, start: int, steps: int) -> Profiles:
    """Steps ``start`` … ``start + steps − 1`` of ``profiles``."""
    return profiles.take(np.arange(start, min(start + steps, profiles.steps)))


def _state_after(site: Site, plan: Plan, keep: int, state: SiteState) -> SiteState:
    """The state at the end of row ``keep − 1`` of ``plan`` (which started from ``state``)."""
    frame, dt = plan.frame.iloc[:keep], plan.step_hours
    soc = {b.id: float(frame[battery_soc(b.id)].iloc[-1]) for b in site.batteries}
    gens = {}
    for gen in site.generators:
        on = frame[generator_on(gen.id)].to_numpy().astype(int)
        last = int(on[-1])
        changed = np.flatnonzero(on != last)
        run = keep - 1 - int(changed[-1]) if len(changed) else keep
        before = state.generators[gen.id]
        extra = before.hours_in_state if run == keep and before.on == bool(last) else 0.0
        gens[gen.id] = GeneratorState(bool(last), run * dt + extra)
    fuel: dict[str, float | None] = {}
    for name in site.fuels:
        stock = state.fuel_stock.get(name, site.fuels[name].stock)
        burnt = sum(float(frame[generator_fuel(g.id)].sum()) for g in site.generators if g.fuel == name)
        fuel[name] = None if stock is None else max(stock - burnt, 0.0)
    return SiteState(soc=soc, generators=gens, fuel_stock=fuel)


def _intervals(site: Site, truth: Profiles, plan: Plan, *, keep: int, state: SiteState, solve_s: float) -> pd.DataFrame:
    """A plan's first ``keep`` rows in the columns of a simulation's intervals."""
    f, dt = plan.frame.iloc[:keep], plan.step_hours
    out = pd.DataFrame(index=f.index)
    for b in site.batteries:
        for col in (battery_charge_kw(b.id), battery_discharge_kw(b.id), battery_soc(b.id)):
            out[col] = f[col]
    stock = dict(state.fuel_stock)
    for g in site.generators:
        on = f[generator_on(g.id)].to_numpy().astype(int)
        before = np.concatenate(([int(state.generators[g.id].on)], on[:-1]))
        out[generator_kw(g.id)] = f[generator_kw(g.id)]
        out[generator_on(g.id)] = on
        out[generator_fuel(g.id)] = f[generator_fuel(g.id)]
        out[generator_hours(g.id)] = on * dt
        out[generator_starts(g.id)] = ((on == 1) & (before == 0)).astype(int)
    for name in site.fuels:
        burnt = sum(
            (out[generator_fuel(g.id)] for g in site.generators if g.fuel == name),
            start=pd.Series(0.0, index=out.index),
        )
        start = stock.get(name, site.fuels[name].stock)
        out[fuel_stock(name)] = np.nan if start is None else start - np.cumsum(np.asarray(burnt, dtype=float))
    for a in site.pv:
        out[pv_available_kw(a.id)] = truth.pv_kw[a.id].loc[f.index]
        out[pv_kw(a.id)] = f[pv_kw(a.id)]
    for t in site.loads:
        out[load_demand_kw(t.id)] = truth.load_kw[t.id].loc[f.index]
        out[load_served_kw(t.id)] = f[load_served_kw(t.id)]
        out[load_shed_kw(t.id)] = f[load_shed_kw(t.id)]
    out[GRID_AVAILABLE] = truth.grid_available.loc[f.index].astype(float)
    out[GRID_IMPORT_KW], out[GRID_EXPORT_KW] = f[GRID_IMPORT_KW], f[GRID_EXPORT_KW]
    out[PRICE_IMPORT_PER_KWH] = truth.import_price_per_kwh.loc[f.index]
    out[PRICE_EXPORT_PER_KWH] = truth.export_price_per_kwh.loc[f.index]
    out["spill_kw"] = 0.0
    out["source"], out["reason"] = "perfect_foresight", ""
    out["solve_s"] = np.where(np.arange(keep) == 0, solve_s, np.nan)
    return out


def _autonomy(site: Site, truth: Profiles, intervals: pd.DataFrame, initial: SiteState) -> pd.DataFrame:
    """The autonomy figures at the start of every interval, from the true future (as a controller's forecast)."""
    horizon = round(site.control.horizon / timedelta(hours=truth.step_h))
    rows = []
    soc = dict(initial.soc)
    for i, stamp in enumerate(intervals.index):
        position = truth.index.get_loc(stamp)
        assert isinstance(position, int)
        fuel = {n: (initial.fuel_stock.get(n) if i == 0 else _stock(intervals, n, i - 1)) for n in site.fuels}
        state = SiteState(soc=soc, generators={}, fuel_stock=fuel)
        auto = Autonomy.of(site, window(truth, position, horizon), state)
        rows.append((auto.critical_h, auto.critical_essential_h))
        soc = {b.id: float(intervals[battery_soc(b.id)].iloc[i]) for b in site.batteries}
    return pd.DataFrame(rows, index=intervals.index, columns=["autonomy.critical_h", "autonomy.critical_essential_h"])


def _delivery(
    site: Site,
    profiles: Profiles,
    state: SiteState,
    n: int,
    *,
    at: datetime | None,
    units: Mapping[str, float] | None,
) -> tuple[int, dict[str, float | None]] | None:
    """``perfect_foresight``'s delivery as (the step it comes, what it brings per fuel with a stock: an
    amount, or None for filled back), checked; None without one or when it comes at or after step ``n``."""
    if at is None:
        if units is not None:
            raise ValueError("fuel_delivered needs fuel_delivery_at: when the truck comes")
        return None
    check_fuel_delivered(site, units or {})
    step = int(profiles.index[:n].searchsorted(pd.Timestamp(at).tz_convert("UTC")))
    if step >= n:
        return None
    limited = [f for f in site.fuels if state.fuel_stock.get(f, site.fuels[f].stock) is not None]
    return step, {f: None if units is None else float(units.get(f, 0.0)) for f in limited}


def _pour(site: Site, intervals: pd.DataFrame, initial: SiteState, step: int, units: dict[str, float | None]) -> None:
    """The delivery in the ``fuel.*`` stock columns: from ``step`` on, what it brought is in the tank."""
    for name, amount in units.items():
        column = intervals[fuel_stock(name)].to_numpy(dtype=float, copy=True)
        start = initial.fuel_stock.get(name, site.fuels[name].stock) or 0.0
        poured = amount if amount is not None else start - (column[step - 1] if step > 0 else start)
        column[step:] += poured
        intervals[fuel_stock(name)] = column


def _stock(intervals: pd.DataFrame, name: str, row: int) -> float | None:
    value = float(intervals[fuel_stock(name)].iloc[row])
    return None if math.isnan(value) else value


def _operational(inputs: DispatchInputs) -> DispatchInputs:
    """``inputs`` with the site's reserve and its feeders switched whole over the whole window."""
    site, profiles = inputs.site, inputs.profiles
    feeders = site.control.feeders
    if feeders is not None:
        whole = feeders.model_copy(update={"discrete_h": profiles.steps * profiles.step_h})
        site = site.model_copy(update={"control": site.control.model_copy(update={"feeders": whole})})
    return dataclasses.replace(
        inputs,
        site=site,
        reserve=ReserveInputs.of(site, step_h=profiles.step_h),
        feeders=FeederInputs.of(site, profiles.step_h, profiles.steps),
    )


def perfect_foresight(
    site: Site,
    profiles: Profiles,
    *,
    state: SiteState | None = None,
    days: float | None = None,
    window_days: float | None = None,
    lookahead_days: float = 1.0,
    mip_gap: float | None = None,
    time_limit_s: float | None = None,
    threads: int | None = 1,
    autonomy: bool = True,
    operational: bool = False,
    fuel_delivery_at: datetime | None = None,
    fuel_delivered: Mapping[str, float] | None = None,
) -> SimulationResult:
    """The spec's model over the whole period with the true profiles (module docstring).

    Parameters
    ----------
    window_days, lookahead_days
        None (default): one MILP over the whole period, which is what a planner means by perfect
        foresight: fuel and stored energy are allotted knowing every day of the period (chained windows
        value what they leave at the site's terminal value and may burn on day one the fuel day five
        needs). Else each window plans ``window_days + lookahead_days`` and keeps its first ``window_days``
        (cheaper for long periods without a binding fuel stock: on the hospital 2-day windows cost 0.12 %
        more than one 7-day window).
    mip_gap
        Relative MIP gap of each window (default :data:`PF_MIP_GAP`).
    time_limit_s
        Time limit of each window [s] (default :data:`PF_TIME_LIMIT_S`).
    autonomy
        Also compute the autonomy figures at every interval (from the true future).
    operational
        Plan with the controller's obligations, as ``plan(..., operational=True)`` does: the site's
        ``control.reserve`` while islanded (its ``min_kw``) and ``control.feeders`` (whole tiers, minimum
        on/off times, over the whole period: the controller's plan does so over its first ``discrete_h``
        only, and its rolling horizon makes every step a first one). Perfect foresight then knows the
        future but keeps the reserve and switches whole feeders as the closed loop must: the baseline for
        what the closed loop loses by not knowing.
    fuel_delivery_at, fuel_delivered
        A fuel delivery within the period, as ``simulate`` takes it: it comes at the first step that starts
        at or after ``fuel_delivery_at`` and brings ``fuel_delivered`` [fuel units per fuel name; a fuel
        not named gets nothing], or None: each fuel with a stock filled back to its level at the start.
        The stocks then bound the fuel burnt before it, and all the fuel burnt by the stock plus what it
        brings (``DispatchInputs.fuel_delivered``); the ``fuel.*`` columns show the delivery. Needs the one
        MILP of the period (``window_days`` None) when it falls within the period.

    Raises
    ------
    ValueError
        For a delivery within the period with ``window_days``, ``fuel_delivered`` without
        ``fuel_delivery_at``, or an amount for a fuel the site does not have or that is not ≥ 0.
    """
    initial = state or SiteState.initial(site)
    n = round(days * 24 / profiles.step_h) if days is not None else profiles.steps
    per_window = n if window_days is None else max(1, round(window_days * 24 / profiles.step_h))
    ahead = 0 if window_days is None else max(0, round(lookahead_days * 24 / profiles.step_h))
    truth = extend(profiles, n + ahead)
    delivery = _delivery(site, truth, initial, n, at=fuel_delivery_at, units=fuel_delivered)
    if delivery is not None and window_days is not None:
        raise ValueError("perfect foresight with a fuel delivery within the period needs one MILP (window_days=None)")
    gap = PF_MIP_GAP if mip_gap is None else mip_gap
    default_limit = PF_TIME_LIMIT_S if window_days is not None else PF_WHOLE_TIME_LIMIT_S
    limit = default_limit if time_limit_s is None else time_limit_s
    parts, current = [], initial
    for start in range(0, n, per_window):
        keep = min(per_window, n - start)
        profiles_w = window(truth, start, keep + ahead)
        inputs = DispatchInputs(site, profiles_w, current, gap, limit)
        if delivery is not None:
            inputs = dataclasses.replace(inputs, fuel_delivery_step=delivery[0], fuel_delivered=delivery[1])
        if operational:
            inputs = _operational(inputs)
        began = time.perf_counter()
        plan = optimize(inputs, threads=threads)
        parts.append(_intervals(site, truth, plan, keep=keep, state=current, solve_s=time.perf_counter() - began))
        current = _state_after(site, plan, keep, current)
    intervals = pd.concat(parts)
    intervals.index.name = "timestamp"
    if delivery is not None:
        _pour(site, intervals, initial, *delivery)
    if autonomy:
        intervals = intervals.join(_autonomy(site, truth, intervals, initial))
    else:
        intervals["autonomy.critical_h"] = intervals["autonomy.critical_essential_h"] = np.nan
    intervals["writes.refused"] = 0
    intervals = add_costs(intervals, site, {b.id: initial.soc[b.id] for b in site.batteries})
    return SimulationResult(intervals, kpis_of(intervals, site), "perfect_foresight")
