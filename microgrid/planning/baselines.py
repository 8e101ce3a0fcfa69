"""Baselines beside the closed loop: perfect foresight (the lower bound) and the rule-based peer.

* **Perfect foresight** (:func:`~microgrid.planning.hindsight.perfect_foresight`): the spec's dispatch model
  (:func:`microgrid.dispatch.optimize`) solved on the **true** profiles, over windows of
  ``window_days`` chained end to end (each solved with ``lookahead_days`` more, whose steps are
  dropped; the state carried from one window to the next: SOC, gensets' on state and hours in it,
  fuel stock). No plant, no forecast error, no safety layer: what the model itself could do
  knowing the future. Its intervals are the plan's, with the same columns and the same cost
  definition as a simulation (:mod:`~microgrid.planning.kpis`), so costs compare like with like.
  It is a lower bound on the closed-loop cost up to (a) the MIP gap of each window, (b) the
  window boundaries (each window values its final energy at the batteries' terminal value, not
  at what the next window would make of it) and (c) the plant's latitude beyond the model: the
  simulated batteries may be pulled below ``soc_min`` by an outage they must carry (the model
  never goes below it), and the closed loop's fallbacks may shed a tier the model would keep.
* **Rules** (``simulate(..., controller="rules")``): the controller in ``safe`` mode, the
  documented fallback rules of :mod:`microgrid.control.decisions` every interval, through the
  same in-process plant: the peer to beat.

:func:`compare` runs all three on the same profiles and returns one KPI row each.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from microgrid.dispatch.effort import deterministic as work_limits
from microgrid.planning.closed_loop import simulate
from microgrid.planning.hindsight import perfect_foresight, window
from microgrid.planning.results import SimulationResult
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.state import SiteState

__all__ = ["CONTROLLERS", "compare", "perfect_foresight", "run_controller", "window"]

CONTROLLERS = ("mpc", "rules", "perfect_foresight")
"""What a study can run: the closed loop (``mpc``), the rule-based peer (``rules``), perfect foresight."""


def run_controller(
    controller: str,
    site: Site,
    profiles: Profiles,
    *,
    state: SiteState | None = None,
    days: float | None = None,
    mip_gap: float | None = None,
    time_limit_s: float | None = None,
    deterministic: bool = False,
    **closed_loop: Any,
) -> SimulationResult:
    """One of :data:`CONTROLLERS` over ``profiles``: ``mpc`` and ``rules`` in closed loop
    (:func:`~microgrid.planning.closed_loop.simulate`, which takes ``closed_loop``'s options), perfect
    foresight as one MILP of the period (:func:`~microgrid.planning.hindsight.perfect_foresight`).

    ``deterministic``: every solve on work limits instead of ``time_limit_s``
    (:func:`microgrid.dispatch.effort.deterministic`), so that two runs give the same result on any machine.
    A fuel delivery (``fuel_delivery_at``, ``fuel_delivered`` among ``closed_loop``) reaches perfect
    foresight too.

    Raises
    ------
    ValueError
        For a controller not in :data:`CONTROLLERS`.
    """
    if controller not in CONTROLLERS:
        raise ValueError(f"controller must be one of {', '.join(CONTROLLERS)}, got {controller!r}")
    with work_limits() if deterministic else contextlib.nullcontext():
        if controller == "perfect_foresight":
            keys = ("fuel_delivery_at", "fuel_delivered")
            truck: dict[str, Any] = {k: v for k, v in closed_loop.items() if k in keys}
            return perfect_foresight(
                site, profiles, state=state, days=days, mip_gap=mip_gap, time_limit_s=time_limit_s, **truck
            )
        options = {"mip_gap": mip_gap, "time_limit_s": time_limit_s} | closed_loop
        return simulate(site, profiles, state=state, days=days, controller=controller, **options)


def compare(
    site: Site,
    profiles: Profiles,
    *,
    state: SiteState | None = None,
    days: float | None = None,
    forecast: str = "controller",
    forecast_error: float = 0.0,
    seed: int = 0,
    mip_gap: float | None = None,
    time_limit_s: float | None = None,
    window_days: float | None = None,
    lookahead_days: float = 1.0,
    progress: bool = False,
    done: dict[str, SimulationResult] | None = None,
    fuel_delivery_at: datetime | None = None,
    fuel_delivered: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The closed loop (``mpc``), the rule-based peer (``rules``) and ``perfect_foresight`` on the same profiles.

    Returns one row per controller (index ``controller``) and one column per KPI, plus
    ``cost_above_perfect_foresight`` (cost_total minus perfect foresight's). ``forecast``,
    ``forecast_error``, ``seed``, ``mip_gap`` and ``time_limit_s`` apply to the closed loop
    (:func:`~microgrid.planning.closed_loop.simulate`); perfect foresight is one MILP over the whole
    period (``window_days``: chained windows instead) with its own solver defaults.
    ``done``: results already simulated with these settings (by controller name), reused as they are.
    ``fuel_delivery_at``, ``fuel_delivered``: a fuel delivery, as ``simulate`` takes it, for all three (the
    closed loop is told it and the truck comes; perfect foresight plans with it).
    """
    truck: dict[str, Any] = {"fuel_delivery_at": fuel_delivery_at, "fuel_delivered": fuel_delivered}
    results = dict(done or {})
    if "mpc" not in results:
        results["mpc"] = simulate(
            site,
            profiles,
            state=state,
            days=days,
            forecast=forecast,
            forecast_error=forecast_error,
            seed=seed,
            mip_gap=mip_gap,
            time_limit_s=time_limit_s,
            progress=progress,
            **truck,
        )
    if "rules" not in results:
        results["rules"] = simulate(
            site, profiles, state=state, days=days, controller="rules", progress=progress, **truck
        )
    if "perfect_foresight" not in results:
        results["perfect_foresight"] = perfect_foresight(
            site, profiles, state=state, days=days, window_days=window_days, lookahead_days=lookahead_days, **truck
        )
    results = {name: results[name] for name in ("mpc", "rules", "perfect_foresight")}
    table = pd.DataFrame({name: r.kpis for name, r in results.items()}).T
    table.index.name = "controller"
    table["cost_above_perfect_foresight"] = table["cost_total"] - float(results["perfect_foresight"].kpis["cost_total"])
    return table
