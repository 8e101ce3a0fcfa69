"""Build → solve → extract → check: turn a site, a forecast and a state into a trusted Plan.

Two binaries of the spec are dropped when doing so provably cannot change the optimum:

* the grid direction k[t], whenever ci[t] ≥ ce[t] at every step: simultaneous import and
  export then never pays, and netting them afterwards keeps the power and lowers the cost;
* the battery mode m[b,t], tentatively: the model without it is a relaxation, so its optimum
  is a lower bound. When its solution charges and discharges no battery at once (or can be
  netted without crossing an SOC ceiling, which never raises the cost since wear and terminal
  values are ≥ 0), it is optimal for the spec's model too. Otherwise the model is solved again
  with the binaries, within what is left of the time limit.

Either way the reported objective is the spec model's objective of the returned plan.

With the contingency extension on (``inputs.possible_outage``), the shadow batteries follow the
same rule: relaxed first, netted, and solved again with binaries when netting (of the main plan
or of a shadow) would overfill a shadow battery. Emergency mode is :mod:`.emergency`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pyomo.common.gc_manager import PauseGC

from microgrid.dispatch.contingency import contingency_windows, has_contingency
from microgrid.dispatch.emergency import optimize_emergency
from microgrid.dispatch.fuels import BUDGET_PREMIUM
from microgrid.dispatch.generators import respect_min_times, walk_min_times
from microgrid.dispatch.inputs import DispatchInputs, FeederInputs, ReserveInputs
from microgrid.dispatch.repair import Repair
from microgrid.dispatch.reserve import reserve_report
from microgrid.dispatch.results import check_plan, extract, net_batteries, net_grid
from microgrid.dispatch.reuse import ModelCache, new_model
from microgrid.dispatch.solve import MipStart, SolveResult, solve_model
from microgrid.errors import InfeasibleError, SolveError
from microgrid.plan_columns import (
    GRID_IMPORT_KW,
    battery_charge_kw,
    battery_soc,
    generator_fuel,
    generator_on,
    load_shed_kw,
)
from microgrid.plans import ContingencyWindow, Plan, ReserveReport, SolveStatus
from microgrid.profiles import Profiles, profiles_from_frame, read_profiles
from microgrid.site import Site, read_site
from microgrid.state import SiteState, read_state, state_from_dict

__all__ = ["mip_start", "optimize", "plan"]

_Attempt = tuple[
    pd.DataFrame | None, tuple[ContingencyWindow, ...], SolveResult, dict[str, float], ReserveReport | None
]

log = logging.getLogger(__name__)

REPAIR = Repair()
"""How a warm-started solve repairs a poor start (:class:`~microgrid.dispatch.repair.Repair`): over the
hospital's 19 slowest recorded closed-loop solves (of 288; gap 0.05, 1 s) HiGHS alone 17.4 s, with the
repair 6.7 s (13 of them proven within ≈ 0.2 s by the dive's plan)."""

SHED_WHOLE = 0.99
"""A previous plan's step sheds a tier whole (its relay open) when it sheds at least this share of it."""


def mip_start(previous: Plan, inp: DispatchInputs) -> MipStart | None:
    """The discrete decisions of ``previous``, moved onto ``inp``'s steps, as a MIP start.

    A step takes the decision of the previous plan's step at the same time; steps past its end
    repeat its last step. None when ``inp`` starts before ``previous`` or after its end. Only the
    binaries: HiGHS completes the rest by an LP (a start with every variable gained nothing).
    Genset decisions are made to respect the state now (initial lock, min up/down times): a genset
    that did not start as planned would otherwise make the whole start infeasible.
    """
    frame, index = previous.frame, inp.profiles.index
    if index[0] < frame.index[0] or index[0] > frame.index[-1]:
        return None
    rows = frame.iloc[frame.index.get_indexer(index, method="ffill")]
    start: dict[str, dict[Any, float]] = {"gen_on": {}, "mode": {}, "grid_dir": {}}
    for gen in inp.site.generators:
        if (col := generator_on(gen.id)) in rows:
            on = respect_min_times(rows[col].to_numpy().tolist(), gen, inp)
            start["gen_on"] |= {(gen.id, t): v for t, v in enumerate(on)}
    for bat in inp.site.batteries:
        if (col := battery_charge_kw(bat.id)) in rows:
            start["mode"] |= {(bat.id, t): float(v > 0) for t, v in enumerate(rows[col].to_numpy())}
    start["grid_dir"] = {t: float(v > 0) for t, v in enumerate(rows[GRID_IMPORT_KW].to_numpy())}
    if inp.feeders is not None:
        start["feeder_open"] = _feeder_start(rows, inp, inp.feeders)
    return start


def _feeder_start(rows: pd.DataFrame, inp: DispatchInputs, feeders: FeederInputs) -> dict[Any, float]:
    """Relays open where the previous plan shed a tier whole, walked from the relays now (min open/closed times)."""
    n, out = feeders.discrete_steps, {}
    for tier in feeders.tiers:
        shed = rows[load_shed_kw(tier)].to_numpy()[:n]
        demand = inp.profiles.load_kw[tier].to_numpy()[:n]
        wanted = [float(x >= SHED_WHOLE * d and d > 0) for x, d in zip(shed, demand, strict=True)]
        opened = walk_min_times(
            wanted,
            on_now=not feeders.closed[tier],
            locked=feeders.lock_left(tier, inp.step_h),
            up=feeders.min_off_steps,
            down=feeders.min_on_steps,
        )
        out.update({(tier, t): v for t, v in enumerate(opened)})
    return out


def _attempt(
    inp: DispatchInputs,
    *,
    mode_binaries: bool,
    time_limit_s: float,
    threads: int | None,
    start: MipStart | None = None,
    cache: ModelCache | None = None,
    repair: Repair | None = None,
) -> _Attempt:
    relax_grid = inp.grid_arbitrage_impossible()
    flags = {"battery_mode_binaries": mode_binaries, "grid_direction_binaries": not relax_grid}
    # The garbage collector is paused for the model's whole life, as pyomo's own writers do while they
    # compile: a pyomo model is ~10^5 small objects, all alive until it is dropped, and every collection
    # while it is built re-scans them (≈ 30 ms per closed-loop cycle of the hospital). A model is cyclic
    # garbage (a scalar block holds itself): it goes in the first collection after the pause, in one pass.
    with PauseGC():
        t0 = time.perf_counter()
        kept = cache.take(inp, **flags) if cache is not None else new_model(inp, keep=False, **flags)
        model = kept.model
        t1 = time.perf_counter()
        result = solve_model(
            model,
            mip_gap=inp.mip_gap,
            time_limit_s=time_limit_s,
            threads=threads,
            start=start,
            compiled=kept.compiled,
            repair=repair,
            bases=kept.bases,
        )
        t2 = time.perf_counter()
        frame: pd.DataFrame | None = None
        windows: tuple[ContingencyWindow, ...] = ()
        reserve: ReserveReport | None = None
        if result.status.has_solution:
            frame = extract(model, inp)
            if inp.reserve is not None:
                reserve = ReserveReport(inp.reserve.battery, *reserve_report(model, inp))
            if relax_grid:
                frame = net_grid(frame)
            if not mode_binaries:
                frame = net_batteries(frame, inp)
            if frame is not None and has_contingency(inp):
                shadows = contingency_windows(model, inp, frame, net=not mode_binaries)
                frame, windows = (frame, shadows) if shadows is not None else (None, ())
        if cache is not None:
            cache.give_back(kept)
    timings = {"build": t1 - t0, "solve": t2 - t1, "highs": result.highs_seconds, "extract": time.perf_counter() - t2}
    return frame, windows, result, timings, reserve


def _no_plan(result: SolveResult, name: str) -> SolveError:
    if result.status in (SolveStatus.INFEASIBLE, SolveStatus.TIME_LIMIT_NO_SOLUTION):
        why = (
            "is infeasible" if result.status is SolveStatus.INFEASIBLE else "has no feasible plan within the time limit"
        )
        return InfeasibleError(f"the dispatch model of {name!r} {why}")
    return SolveError(f"HiGHS failed on {name!r}: {result.status.value}")


def optimize(
    inp: DispatchInputs,
    *,
    threads: int | None = None,
    warm_from: Plan | None = None,
    cache: ModelCache | None = None,
    repair: Repair | None = REPAIR,
) -> Plan:
    """Solve the spec's dispatch model for ``inp`` and return a checked :class:`Plan`.

    ``warm_from``: the previous plan of a rolling horizon; its discrete decisions, moved onto
    ``inp``'s steps, are HiGHS's MIP start (a better incumbent when the time limit binds).

    ``repair``: with ``warm_from``, how a poor start is repaired by an LP dive (:class:`~.repair.Repair`;
    None: HiGHS alone). Search only: same model, same optimum.

    ``cache``: keep the built and compiled model for the next inputs of the same shape, which then
    only patch their numbers in (:mod:`microgrid.dispatch.reuse`; same model, ≈ 40 ms less per
    solve of the hospital). A rolling horizon passes the same cache every time.

    With ``inp.possible_outage`` flagging steps, the contingency extension is on: the plan's
    ``contingency`` reports each window's shadow dispatch, and ``objective`` stays the spec's
    cost of the plan (the shadow's shed penalty is reported per window, and counted in the gap).

    Raises
    ------
    InfeasibleError
        No feasible plan exists (or none was found within the time limit).
    SolveError
        HiGHS failed, or its plan fails the residual checks.
    """
    started = time.perf_counter()
    relax_modes = bool(inp.site.batteries)
    start = mip_start(warm_from, inp) if warm_from is not None else None
    frame, windows, result, timings, reserve = _attempt(
        inp,
        mode_binaries=not relax_modes,
        time_limit_s=inp.time_limit_s,
        threads=threads,
        start=start,
        cache=cache,
        repair=repair,
    )
    if relax_modes and frame is None and result.status.has_solution:
        # What is left of the limit, but at least a tenth of it: a re-solve may overrun by that much.
        left = max(0.1 * inp.time_limit_s, inp.time_limit_s - (time.perf_counter() - started))
        log.info("relaxed battery modes needed simultaneous charge/discharge: solving with mode binaries")
        frame, windows, result, again, reserve = _attempt(
            inp, mode_binaries=True, time_limit_s=left, threads=threads, start=start, cache=cache, repair=repair
        )
        timings = {k: timings[k] + again[k] for k in timings}
    if frame is None:
        raise _no_plan(result, inp.site.site.name)
    problems = check_plan(frame, inp)
    if problems:
        raise SolveError(f"the plan from HiGHS fails its checks: {'; '.join(problems)}")
    draft = Plan(frame, inp.site, inp.profiles, inp.state, result.status, 0.0, 0.0, result.wall_seconds, timings)
    objective = draft.cost().total
    penalties = sum(w.penalty for w in windows) + (reserve.penalty if reserve is not None else 0.0)
    gap = _gap(objective + penalties + terminal_terms(frame, inp), result.dual_bound)
    status = (
        SolveStatus.OPTIMAL if result.status is SolveStatus.OPTIMAL or gap <= inp.mip_gap + 1e-12 else result.status
    )
    return Plan(
        frame,
        inp.site,
        inp.profiles,
        inp.state,
        status,
        objective,
        gap,
        timings["solve"],
        timings,
        contingency=windows,
        reserve=reserve,
        solver_objective=result.objective,
    )


def terminal_terms(frame: pd.DataFrame, inp: DispatchInputs) -> float:
    """What the outlook's terminal values add to the spec's cost of ``frame`` in the optimised objective::

    Σ_f (λ_f − δ_f) · Σ_t Σ_{g burns f} F[g,t]  +  2 δ_f · o_f  −  Σ_b (τ_b − τ_b^site) · e[b,T−1]   [currency]
    """
    if inp.terminal is None:
        return 0.0
    fuel = 0.0
    for name in inp.site.fuels:
        burnt = sum(float(frame[generator_fuel(g.id)].sum()) for g in inp.site.generators if g.fuel == name)
        value, budget = inp.fuel_value(name), inp.terminal.fuel_budget.get(name)
        fuel += value * (1 - BUDGET_PREMIUM) * burnt
        if budget is not None and inp.fuel_stock(name) is not None:
            fuel += 2 * BUDGET_PREMIUM * value * max(0.0, burnt - budget)
    energy = sum(
        (inp.energy_value(b) - b.terminal_value_per_kwh) * b.capacity_kwh * float(frame[battery_soc(b.id)].iloc[-1])
        for b in inp.site.batteries
    )
    return fuel - energy


def _gap(objective: float, bound: float | None) -> float:
    if bound is None:
        return float("inf")
    diff = max(0.0, objective - bound)
    return 0.0 if diff <= 1e-9 * max(1.0, abs(objective)) else diff / max(abs(objective), 1e-9)


def plan(
    site: Site | str | Path,
    profiles: Profiles | pd.DataFrame | str | Path,
    state: SiteState | dict[str, object] | str | Path | None = None,
    *,
    mip_gap: float | None = None,
    time_limit_s: float | None = None,
    threads: int | None = None,
    possible_outage: npt.ArrayLike | None = None,
    protect_tiers: tuple[str, ...] = (),
    emergency: bool = False,
    operational: bool = False,
) -> Plan:
    """Plan the dispatch of ``site`` for ``profiles`` from ``state`` (the notebook entry point).

    Parameters
    ----------
    site
        A :class:`Site` or the path of a site YAML.
    profiles
        :class:`Profiles`, a frame in the profiles-CSV layout, or the path of a profiles CSV.
    state
        :class:`SiteState`, a dict in the state-JSON layout, a path, or None for the site's
        ``initial_*`` values.
    mip_gap, time_limit_s
        Override the site's ``control.mip_gap`` (relative) and ``control.time_limit_s`` [s].
    threads
        HiGHS threads (None: HiGHS's default).
    possible_outage
        One bool per step (the step lies in a ``possible`` outage window): switches on the
        contingency extension. Off (None) by default: the spec's model.
    protect_tiers
        Tiers to carry through a possible outage (default: the site's
        ``grid.schedule.possible_outage_tiers``, else the most important priority).
    emergency
        Emergency mode: no grid at any step, lexicographic maximum autonomy
        (:func:`microgrid.dispatch.emergency.optimize_emergency`).
    operational
        Plan as the controller does: with the site's ``control.reserve`` (its ``min_kw``: no measured
        forecast error here) and ``control.feeders`` (every relay closed, free to switch). Off by
        default: the spec's model.

    Returns
    -------
    Plan
        Call ``.to_frame()`` for the per-step table, ``.summary()`` for the figures.
    """
    site = site if isinstance(site, Site) else read_site(site)
    if isinstance(profiles, pd.DataFrame):
        profiles = profiles_from_frame(profiles.reset_index() if "timestamp" not in profiles else profiles, site)
    elif not isinstance(profiles, Profiles):
        profiles = read_profiles(profiles, site)
    if state is None:
        state = SiteState.initial(site)
    elif isinstance(state, dict):
        state = state_from_dict(state, site)
    elif not isinstance(state, SiteState):
        state = read_state(state, site)
    inputs = DispatchInputs(
        site=site,
        profiles=profiles,
        state=state,
        mip_gap=site.control.mip_gap if mip_gap is None else mip_gap,
        time_limit_s=site.control.time_limit_s if time_limit_s is None else time_limit_s,
        possible_outage=None if possible_outage is None else np.asarray(possible_outage, dtype=bool),
        protect_tiers=protect_tiers,
        reserve=ReserveInputs.of(site, step_h=profiles.step_h) if operational else None,
        feeders=FeederInputs.of(site, profiles.step_h, profiles.steps) if operational else None,
    )
    if emergency:
        return optimize_emergency(inputs, threads=threads)
    return optimize(inputs, threads=threads)
