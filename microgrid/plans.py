"""Plan: the result of a dispatch, as a pandas frame with the spec's CSV columns.

Columns (``shared/spec/site-and-profiles.md``), kW unless named otherwise:
``battery.<id>.charge_kw``, ``battery.<id>.discharge_kw``, ``battery.<id>.soc`` (fraction,
end of step), ``generator.<id>.kw``, ``generator.<id>.on`` (0/1), ``generator.<id>.fuel``
(fuel units burnt in the step), ``pv.<id>.kw``, ``load.<id>.served_kw``,
``load.<id>.shed_kw``, ``grid.import_kw``, ``grid.export_kw``; their names are written once in
:mod:`microgrid.plan_columns`.

Sign convention: every power is ≥ 0 and its direction is in its name.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microgrid.plan_columns import (
    GRID_EXPORT_KW,
    GRID_IMPORT_KW,
    battery_discharge_kw,
    battery_soc,
    generator_fuel,
    generator_on,
    load_shed_kw,
)
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.state import SiteState

__all__ = ["ContingencyWindow", "CostSplit", "EmergencyStage", "Plan", "ReserveReport", "SolveStatus", "cost_parts"]


class SolveStatus(enum.Enum):
    """How a solve ended.

    ``OPTIMAL`` is optimal within the requested relative MIP gap; ``TIME_LIMIT_FEASIBLE``
    is a feasible plan found before the time limit whose optimality was not proven.
    """

    OPTIMAL = "optimal"
    TIME_LIMIT_FEASIBLE = "time_limit_feasible"
    TIME_LIMIT_NO_SOLUTION = "time_limit_no_solution"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    ERROR = "error"

    @property
    def has_solution(self) -> bool:
        """True when the solver returned a plan (optimal or time-limited feasible)."""
        return self in (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT_FEASIBLE)


@dataclass(frozen=True)
class CostSplit:
    """The objective split by part, in the site's currency.

    ``grid`` is import cost minus export revenue; ``terminal`` is minus the value of the
    energy stored at the end (≤ 0). ``total`` equals the spec's objective.
    """

    grid: float
    fuel: float
    startup: float
    wear: float
    shedding: float
    terminal: float

    @property
    def total(self) -> float:
        """The whole objective."""
        return self.grid + self.fuel + self.startup + self.wear + self.shedding + self.terminal

    def as_dict(self) -> dict[str, float]:
        """Parts and total as a plain dict."""
        return {**{k: float(v) for k, v in self.__dict__.items()}, "total": self.total}


Money = Any
"""A float, or a numpy array of per-step values (:func:`cost_parts` works on either)."""


def cost_parts(
    site: Site,
    *,
    import_kwh: Money,
    export_kwh: Money,
    import_price: Money,
    export_price: Money,
    fuel: dict[str, Money],
    starts: dict[str, Money],
    discharge_kwh: dict[str, Money],
    shed_kwh: dict[str, Money],
    stored_change: dict[str, Money],
) -> dict[str, Money]:
    """The spec's cost, split by part [currency]: the one rule behind :meth:`Plan.cost`, the simulations' KPIs
    (:func:`microgrid.planning.kpis.add_costs`) and the demo's running cost.

    Energies [kWh] and counts per step or per interval (floats or arrays alike); ``fuel``: fuel burnt per
    generator (fuel units), ``starts`` per generator, ``discharge_kwh`` per battery, ``shed_kwh`` per load
    tier, ``stored_change`` per battery: the change of its SOC (fraction). Parts: ``grid`` (import cost −
    export revenue), ``fuel``, ``startup``, ``wear`` (battery throughput), ``unserved`` (value of lost
    load), ``storage`` (minus the value of the energy stored, at each battery's terminal value).
    """
    gens = {g.id: g for g in site.generators}
    return {
        "grid": import_price * import_kwh - export_price * export_kwh,
        "fuel": sum((site.fuels[gens[g].fuel].price_per_unit * v for g, v in fuel.items()), start=0.0),
        "startup": sum((gens[g].startup_cost * n for g, n in starts.items()), start=0.0),
        "wear": sum((b.wear_cost_per_kwh * discharge_kwh[b.id] for b in site.batteries), start=0.0),
        "unserved": sum((t.value_of_lost_load_per_kwh * shed_kwh[t.id] for t in site.loads), start=0.0),
        "storage": -sum(
            (b.terminal_value_per_kwh * b.capacity_kwh * stored_change[b.id] for b in site.batteries), start=0.0
        ),
    }


@dataclass(frozen=True)
class ContingencyWindow:
    """The "outage happens" shadow of one possible-outage window (``docs/dispatch-extensions.md``).

    Attributes
    ----------
    start, end
        The window ``[start, end)`` (UTC).
    first_step, last_step
        Its steps in the plan (both included).
    tiers
        The protected tiers the shadow must serve.
    demand_kwh, shed_kwh
        Their demand over the window, and what the shadow could not serve [kWh].
    penalty
        The shadow's shed at the tiers' values of lost load times the windows' weight ρ
        (:meth:`DispatchInputs.outage_weight`) (currency): its term in the optimised objective
        (not part of :attr:`Plan.objective`, the spec's cost of the plan).
    frame
        The shadow dispatch per step, in the plan's columns (``load.other.served_kw``: other
        tiers served from a surplus).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    first_step: int
    last_step: int
    tiers: tuple[str, ...]
    demand_kwh: float
    shed_kwh: float
    penalty: float
    frame: pd.DataFrame

    def summary(self) -> dict[str, Any]:
        """The figures, JSON-ready."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "tiers": list(self.tiers),
            "demand_kwh": self.demand_kwh,
            "shed_kwh": self.shed_kwh,
            "penalty": self.penalty,
        }


@dataclass(frozen=True)
class ReserveReport:
    """The operating reserve a plan keeps while islanded (extension "reserve", ``docs/dispatch-extensions.md``).

    Attributes
    ----------
    battery
        The grid-forming battery.
    held_kw
        Reserve held per step [kW] (0 where the grid is up).
    short_kwh
        Reserve energy missing at the end of each step [kWh] (0 when the reserve is whole).
    penalty
        The shortfalls priced (currency): their term in the optimised objective, not part of
        :attr:`Plan.objective` (the spec's cost of the plan).
    """

    battery: str
    held_kw: np.ndarray
    short_kwh: np.ndarray
    penalty: float

    def summary(self) -> dict[str, Any]:
        """The figures, JSON-ready."""
        return {
            "battery": self.battery,
            "max_kw": float(self.held_kw.max(initial=0.0)),
            "short_kwh_max": float(self.short_kwh.max(initial=0.0)),
            "steps_short": int(np.sum(self.short_kwh > 1e-6)),
            "penalty": self.penalty,
        }


@dataclass(frozen=True)
class EmergencyStage:
    """One stage of the emergency-mode lexicographic solve (``docs/dispatch-extensions.md``).

    Attributes
    ----------
    name
        ``shed priority <p>``, ``fuel`` or ``cost``.
    unit
        Unit of ``value``: ``kWh``, ``fraction of stock`` or the currency.
    value
        The stage's objective at its incumbent.
    bound
        The cap every later stage keeps on it (value + tolerance); None for the last stage.
    status
        How its solve ended; a time-limited stage keeps its incumbent's value.
    mip_gap
        Relative gap reached by the stage (inf when unknown).
    seconds
        Wall time of the stage's solve [s].
    """

    name: str
    unit: str
    value: float
    bound: float | None
    status: SolveStatus
    mip_gap: float
    seconds: float

    def summary(self) -> dict[str, Any]:
        """The figures, JSON-ready."""
        gap = self.mip_gap if np.isfinite(self.mip_gap) else None
        return {**self.__dict__, "status": self.status.value, "mip_gap": gap}


@dataclass(frozen=True)
class Plan:
    """A dispatch plan for T steps, with how it was obtained.

    Attributes
    ----------
    frame
        One row per step (index: step start, UTC), the spec's plan columns.
    status
        How the solve ended (``OPTIMAL`` or ``TIME_LIMIT_FEASIBLE`` for a plan).
    objective
        Objective of this plan (currency): ``cost().total``, the spec's objective of its columns.
    mip_gap
        Relative MIP gap reached (0 when proven optimal exactly).
    solve_seconds
        Wall time spent in the solver, hand-off included [s].
    timings
        Seconds per phase: ``build``, ``solve``, ``highs``, ``extract``.
    contingency
        The shadow of each possible-outage window, when that extension was on.
    stages
        The emergency-mode lexicographic stages, when the plan comes from one.
    reserve
        The operating reserve kept while islanded, when that extension was on.
    solver_objective
        HiGHS's own objective value for the model it solved (currency): the spec's objective of its
        solution plus the terms of any extension that was on; None for a plan not from one solve.
        ``objective`` is computed from the plan's columns instead, so the two check each other
        (removing a simultaneous charge and discharge may only lower ``objective``).
    """

    frame: pd.DataFrame
    site: Site
    profiles: Profiles
    state: SiteState
    status: SolveStatus
    objective: float
    mip_gap: float
    solve_seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    contingency: tuple[ContingencyWindow, ...] = ()
    stages: tuple[EmergencyStage, ...] = ()
    reserve: ReserveReport | None = None
    solver_objective: float | None = None

    @property
    def steps(self) -> int:
        """Number of steps T."""
        return len(self.frame)

    @property
    def step_hours(self) -> float:
        """Step length Δ [h]."""
        return self.profiles.step_h

    def to_frame(self) -> pd.DataFrame:
        """A copy of the plan frame (index: step start, UTC)."""
        return self.frame.copy()

    def to_csv(self, path: str | Path) -> None:
        """Write the spec's plan CSV: ``timestamp`` (local time with UTC offset) first."""
        out = self.frame.copy()
        local = pd.DatetimeIndex(out.index).tz_convert(self.site.site.timezone)
        out.index = pd.Index([t.isoformat() for t in local], name="timestamp")
        out.to_csv(path, float_format="%.6g")

    # -- summary figures -------------------------------------------------------------------

    def cost(self) -> CostSplit:
        """The objective of this plan, split by part (:func:`cost_parts` of the frame; ``terminal`` is minus the
        value stored at the end: the storage part less the value stored at the start)."""
        f, site, dt = self.frame, self.site, self.step_hours
        start = {b.id: self.state.soc_of(b) for b in site.batteries}
        parts = cost_parts(
            site,
            import_kwh=dt * f[GRID_IMPORT_KW].to_numpy(),
            export_kwh=dt * f[GRID_EXPORT_KW].to_numpy(),
            import_price=self.profiles.import_price_per_kwh.to_numpy(),
            export_price=self.profiles.export_price_per_kwh.to_numpy(),
            fuel={g.id: float(f[generator_fuel(g.id)].sum()) for g in site.generators},
            starts=dict(self.generator_starts()),
            discharge_kwh={b.id: dt * float(f[battery_discharge_kw(b.id)].sum()) for b in site.batteries},
            shed_kwh={t.id: dt * float(f[load_shed_kw(t.id)].sum()) for t in site.loads},
            stored_change={b.id: float(f[battery_soc(b.id)].iloc[-1]) - start[b.id] for b in site.batteries},
        )
        terminal = float(parts["storage"]) - sum(
            b.terminal_value_per_kwh * b.capacity_kwh * start[b.id] for b in site.batteries
        )
        return CostSplit(
            float(np.sum(parts["grid"])),
            float(parts["fuel"]),
            float(parts["startup"]),
            float(parts["wear"]),
            float(parts["unserved"]),
            terminal,
        )

    def energy_shed_kwh(self) -> dict[str, float]:
        """Energy not served per load tier over the plan [kWh]."""
        return {t.id: float(self.frame[load_shed_kw(t.id)].sum() * self.step_hours) for t in self.site.loads}

    def fuel_burnt(self) -> dict[str, float]:
        """Fuel burnt per fuel over the plan (fuel units)."""
        return {
            name: float(sum(self.frame[generator_fuel(g.id)].sum() for g in self.site.generators if g.fuel == name))
            for name in self.site.fuels
        }

    def generator_starts(self) -> dict[str, int]:
        """Number of off → on transitions per generator (from the initial state)."""
        starts = {}
        for gen in self.site.generators:
            on = self.frame[generator_on(gen.id)].to_numpy().astype(int)
            before = np.concatenate(([int(self.state.generators[gen.id].on)], on[:-1]))
            starts[gen.id] = int(np.sum((on == 1) & (before == 0)))
        return starts

    def summary(self) -> dict[str, Any]:
        """The spec's JSON object, followed by the summary figures (and the extensions' figures)."""
        out: dict[str, Any] = {
            "status": self.status.value,
            "objective": self.objective,
            "mip_gap": self.mip_gap,
            "solve_seconds": self.solve_seconds,
            "steps": self.steps,
            "step_hours": self.step_hours,
            "currency": self.site.site.currency,
            "cost": self.cost().as_dict(),
            "energy_shed_kwh": self.energy_shed_kwh(),
            "fuel_burnt": self.fuel_burnt(),
            "generator_starts": self.generator_starts(),
        }
        if self.contingency:
            out["contingency"] = [w.summary() for w in self.contingency]
        if self.stages:
            out["emergency_stages"] = [s.summary() for s in self.stages]
        if self.reserve is not None:
            out["reserve"] = self.reserve.summary()
        return out

    def to_json(self) -> str:
        """:meth:`summary` as one line of JSON."""
        return json.dumps(self.summary())
