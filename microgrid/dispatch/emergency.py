"""Emergency mode: the schedule is voided, so assume no grid at all and maximise autonomy.

A lexicographic solve of the spec's model with α[t] = 0 at every step (procedure and
tolerances: ``docs/dispatch-extensions.md``):

1. for each priority, most important first: minimise the energy shed of its tiers [kWh, each
   step's weighted by :func:`deferral_weights`: shed later rather than now], then keep it at most
   that value (plus a small tolerance) in every later stage; with the reserve extension, the
   reserve shortfall [kWh] right after the most important priority; when the grid is up now, right
   after the most important priority (and the reserve), **the grid now** (:func:`grid_now_value`):
   serve every tier at step 0 as far as the grid allows (the later stages charge with the rest);
   with the outlook's values
   (``inputs.terminal``), a less important priority's stage minimises its shed at its value of
   lost load plus the fuel at the outlook's value [currency] (fuel the long plan needs later is not
   burnt on it now);
2. minimise the fuel burnt, each fuel as a fraction of its stock (fuels without a stock do not
   limit autonomy and are left to the cost stage; fuel burnt once a delivery has come,
   ``inputs.fuel_delivery_step``, is left to it too), then keep it;
3. minimise the spec's objective.

Each stage gets an equal share of what is left of ``time_limit_s`` and starts from the previous
stage's plan (HiGHS MIP start: feasible by construction). A stage that hits its limit keeps its
incumbent's value as the cap; a stage without any incumbent is skipped (the previous stage's plan
stands, and the later stages still run).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyomo.environ as pyo

from microgrid.dispatch.inputs import DispatchInputs
from microgrid.dispatch.loads import urgency
from microgrid.dispatch.model import build_model
from microgrid.dispatch.reserve import reserve_report, reserve_shortfall_kwh
from microgrid.dispatch.results import check_plan, extract
from microgrid.dispatch.solve import SolveResult, solve_model
from microgrid.errors import InfeasibleError, SolveError
from microgrid.plans import EmergencyStage, Plan, ReserveReport, SolveStatus

__all__ = ["deferral_weights", "emergency_inputs", "grid_now_value", "optimize_emergency"]

log = logging.getLogger(__name__)

REL_TOL = 1e-6
"""A stage's cap is value + REL_TOL · |value| + ABS_TOL (in the stage's unit): room for the solver's
feasibility tolerance (1e-7), so the previous stage's plan stays feasible, and no more: a later
stage can buy at most that much of an earlier stage's quantity."""
ABS_TOL = 1e-6
DEFER = 0.5
"""In the shed stages a kWh shed at the horizon's last step weighs 1 − DEFER of one shed now
(:func:`deferral_weights`)."""


@dataclass(frozen=True)
class _Stage:
    name: str
    unit: str
    objective: Callable[[pyo.ConcreteModel], pyo.Expression]


def emergency_inputs(inp: DispatchInputs) -> DispatchInputs:
    """``inp`` with the grid unavailable from step 1 on and no possible-outage windows.

    Step 0 keeps its availability: it is the step now, and a grid the meter sees up now is up
    (the controller sets it from the meter). Emergency mode then charges from the grid while it
    lasts instead of draining the batteries grid-parallel.
    """
    alpha = pd.Series(0.0, index=inp.profiles.index)
    alpha.iloc[0] = float(inp.profiles.grid_available.iloc[0])
    profiles = dataclasses.replace(inp.profiles, grid_available=alpha)
    return dataclasses.replace(inp, profiles=profiles, possible_outage=None)


def _stages(inp: DispatchInputs, shed_priorities: int | None) -> list[_Stage]:
    dt, out, weight = inp.step_h, [], deferral_weights(inp.steps)
    priorities = sorted({t.priority for t in inp.site.loads})
    for k, p in enumerate(priorities[:shed_priorities]):
        tiers = [t.id for t in inp.site.loads if t.priority == p]
        if k > 0 and inp.terminal is not None and any(inp.terminal.fuel_value.values()):
            out.append(_Stage(f"shed priority {p}", inp.site.site.currency, _shed_against_fuel(inp, tiers, weight)))
        else:
            out.append(_Stage(f"shed priority {p}", "kWh (deferral-weighted)", _shed_of(tiers, dt, weight)))
        if k == 0 and inp.reserve is not None:  # the reserve protects the most important tiers: right after them
            out.append(_Stage("reserve", "kWh", lambda m: reserve_shortfall_kwh(m, inp)))
        if k == 0 and inp.site.grid is not None and float(inp.profiles.grid_available.iloc[0]) > 0:
            out.append(_Stage("grid now", inp.site.site.currency, lambda m: grid_now_value(m, inp)))
    stocks = {f: inp.fuel_stock(f) for f in inp.site.fuels}
    weights = {g.id: 1.0 / stock for g in inp.site.generators if (stock := stocks[g.fuel]) is not None and stock > 0}
    if weights:
        out.append(
            _Stage(
                "fuel",
                "fraction of stock",
                lambda m: sum(w * m.fuel_burnt[g, t] for g, w in weights.items() for t in inp.fuel_steps()),
            )
        )
    out.append(_Stage("cost", inp.site.site.currency, lambda m: m.cost.expr))
    return out


def deferral_weights(steps: int) -> list[float]:
    """w[t] = 1 − DEFER · t / (T − 1): the weight of a kWh shed at step t in the shed stages.

    No grid for the whole horizon is emergency mode's worst case, not a forecast: a kWh the plan
    sheds at step t is lost only if the cut lasts that long, and the grid may be back before. With
    equal weights the shed stage is indifferent to *when* it sheds what the fuel cannot carry, and
    a solver's vertex may well shed now (a critical tier no relay switches: the grid-forming battery
    carries it to empty, then the site goes dark). Decreasing weights serve now and shed as late
    as the fuel allows; the rolling horizon decides again every interval.
    """
    return [1.0 - DEFER * (1.0 - u) for u in urgency(steps)]


def grid_now_value(m: pyo.ConcreteModel, inp: DispatchInputs) -> pyo.Expression:
    """The grid-now stage's objective [currency]: step 0's shed, each tier at its value of lost load.

    Emergency mode assumes no grid from step 1 on. While the grid is up *now*, the stages after the
    most important tier would otherwise trade a tier's service now for energy kept for the outage they
    assume (with the outlook's fuel value near a tier's break-even: shedding the essential tier while
    the grid is up at its import cap, to charge; seen in a closed-loop outage week). A site whose grid
    is back serves its tiers from it; only the most important tier's stage (before this one) may shed
    now to protect itself. What the grid gives beyond the load is left to the later stages, which
    charge with it (a kWh stored now serves when the grid goes).
    """
    voll = {t.id: t.value_of_lost_load_per_kwh for t in inp.site.loads}
    return sum(inp.step_h * voll[i] * m.shed_kw[i, 0] for i in m.I)


def _shed_of(tiers: list[str], dt: float, weight: list[float]) -> Callable[[pyo.ConcreteModel], pyo.Expression]:
    def shed_kwh(m: pyo.ConcreteModel) -> pyo.Expression:
        return sum(weight[t] * dt * m.shed_kw[i, t] for i in tiers for t in m.T)

    return shed_kwh


def _shed_against_fuel(
    inp: DispatchInputs, tiers: list[str], weight: list[float]
) -> Callable[[pyo.ConcreteModel], pyo.Expression]:
    """With the outlook's values: the tiers' shed at their value of lost load (deferral-weighted) plus the
    fuel at its value beyond the horizon, λ_f [currency]. A tier below the most important one is then
    served from fuel only where the long plan says the fuel is worth less than that service (else it is
    kept for later)."""
    voll = {t.id: t.value_of_lost_load_per_kwh for t in inp.site.loads}
    value = {g.id: inp.fuel_value(g.fuel) for g in inp.site.generators}

    def cost(m: pyo.ConcreteModel) -> pyo.Expression:
        shed = sum(weight[t] * inp.step_h * voll[i] * m.shed_kw[i, t] for i in tiers for t in m.T)
        return shed + sum(value[g] * m.fuel_burnt[g, t] for g in m.G for t in m.T)

    return cost


def _binaries_now(m: pyo.ConcreteModel) -> dict[str, dict[object, float]]:
    """The current values of the model's binaries, as a MIP start for the next stage."""
    start: dict[str, dict[object, float]] = {}
    for name in ("gen_on", "mode", "feeder_open"):
        var = m.find_component(name)
        if isinstance(var, pyo.Var):
            start[name] = {k: round(v.value) for k, v in var.items() if v.value is not None}
    return start


def _cap(value: float) -> float:
    return value + REL_TOL * abs(value) + ABS_TOL


def optimize_emergency(inp: DispatchInputs, *, threads: int | None = None, shed_priorities: int | None = 2) -> Plan:
    """Plan for maximum autonomy with no grid at any step (emergency mode) and return a checked Plan.

    Parameters
    ----------
    inp
        The inputs; their grid availability is used for step 0 only (none from step 1 on) and
        their possible-outage windows are ignored.
    shed_priorities
        How many priority levels (most important first) get a shed stage of their own before
        the fuel stage; the rest are left to the cost stage. Default 2: critical, then essential,
        then fuel, then cost (the less important tiers are served only from what saves no fuel).
        None: every priority.

    Returns
    -------
    Plan
        Its ``profiles`` say no grid; ``stages`` has the value of each stage; ``objective`` is the
        spec's cost of the plan; ``status`` is ``OPTIMAL`` only if every stage was.

    Raises
    ------
    InfeasibleError
        The first stage finds no plan (e.g. a genset locked on that nothing can absorb).
    SolveError
        HiGHS failed, or the plan fails the residual checks.
    """
    started = time.perf_counter()
    einp = emergency_inputs(inp)
    t0 = time.perf_counter()
    model = build_model(einp, battery_mode_binaries=True, grid_direction_binaries=False)
    timings = {"build": time.perf_counter() - t0, "solve": 0.0, "highs": 0.0, "extract": 0.0}
    model.cost.deactivate()
    stages, done = _stages(einp, shed_priorities), []
    last: SolveResult | None = None
    for k, stage in enumerate(stages):
        left = inp.time_limit_s - (time.perf_counter() - started)
        budget = max(0.1 * inp.time_limit_s / len(stages), left / (len(stages) - k))
        expr = stage.objective(model)
        model.stage_objective = pyo.Objective(expr=expr, sense=pyo.minimize)
        start = _binaries_now(model) if last is not None else None
        result = solve_model(model, mip_gap=inp.mip_gap, time_limit_s=budget, threads=threads, start=start)
        model.del_component(model.stage_objective)
        timings["solve"] += result.wall_seconds
        timings["highs"] += result.highs_seconds
        if not result.status.has_solution:
            if last is None:
                raise _no_plan(result, inp.site.site.name)
            log.warning("emergency stage %r found no plan in %.3g s: keeping the previous stage's", stage.name, budget)
            continue
        last = result
        value = float(pyo.value(expr))
        bound = _cap(value) if k < len(stages) - 1 else None
        if bound is not None:
            setattr(model, f"stage_cap_{k}", pyo.Constraint(expr=expr <= bound))
        gap = _gap(value, result.dual_bound)
        done.append(EmergencyStage(stage.name, stage.unit, value, bound, result.status, gap, result.wall_seconds))
    return _extract_plan(model, einp, tuple(done), timings, complete=len(done) == len(stages))


def _extract_plan(
    model: pyo.ConcreteModel,
    inp: DispatchInputs,
    done: tuple[EmergencyStage, ...],
    timings: dict[str, float],
    *,
    complete: bool,
) -> Plan:
    t0 = time.perf_counter()
    frame = extract(model, inp)
    problems = check_plan(frame, inp)
    timings["extract"] = time.perf_counter() - t0
    if problems:
        raise SolveError(f"the emergency plan from HiGHS fails its checks: {'; '.join(problems)}")
    optimal = complete and all(s.status is SolveStatus.OPTIMAL for s in done)
    status = SolveStatus.OPTIMAL if optimal else SolveStatus.TIME_LIMIT_FEASIBLE
    reserve = ReserveReport(inp.reserve.battery, *reserve_report(model, inp)) if inp.reserve is not None else None
    draft = Plan(
        frame,
        inp.site,
        inp.profiles,
        inp.state,
        status,
        0.0,
        0.0,
        timings["solve"],
        timings,
        stages=done,
        reserve=reserve,
    )
    objective = draft.cost().total
    gap = done[-1].mip_gap if done[-1].name == "cost" else float("inf")
    return dataclasses.replace(draft, objective=objective, mip_gap=gap)


def _gap(value: float, bound: float | None) -> float:
    if bound is None:
        return float("inf")
    diff = max(0.0, value - bound)
    return 0.0 if diff <= 1e-9 * max(1.0, abs(value)) else diff / max(abs(value), 1e-9)


def _no_plan(result: SolveResult, name: str) -> SolveError:
    if result.status in (SolveStatus.INFEASIBLE, SolveStatus.TIME_LIMIT_NO_SOLUTION):
        return InfeasibleError(f"the emergency dispatch model of {name!r} has no feasible plan ({result.status.value})")
    return SolveError(f"HiGHS failed on the emergency model of {name!r}: {result.status.value}")
