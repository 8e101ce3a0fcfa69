"""The simulated controller's view of the future: its own forecaster learning from the plant, or the
true profiles with seeded forecast error (see :mod:`microgrid.planning.closed_loop`), and the outage
schedule as it was published."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from microgrid.control.forecast import Forecaster
from microgrid.forecast.schedule import OutageSchedule, ScheduleFeed, schedule_from_availability
from microgrid.profiles import Profiles
from microgrid.site import Site

__all__ = ["FORECASTS", "extend", "forecast_reference", "simulation_forecaster", "truth_schedule", "with_solver"]

ERROR_CORRELATION_H = 3.0
"""Correlation time of the forecast errors [h]."""


def extend(profiles: Profiles, steps: int) -> Profiles:
    """``profiles`` repeated from their start until they cover ``steps`` steps (as the plant repeats them)."""
    if steps <= profiles.steps:
        return profiles
    index = pd.date_range(profiles.index[0], periods=steps, freq=pd.Timedelta(hours=profiles.step_h))
    return profiles.take(np.arange(steps) % profiles.steps, index)


def _perturbed(frame: pd.DataFrame, rng: np.random.Generator, level: float, phi: float) -> pd.DataFrame:
    from microgrid.planning.scenarios import ar1  # noqa: PLC0415 - keep scenarios optional for this module

    out = frame.copy()
    for column in frame.columns:
        factor = np.maximum(1.0 + ar1(rng, len(frame), phi, level), 0.0)
        out[column] = frame[column].to_numpy() * factor
    return out


def forecast_reference(
    truth: Profiles, *, forecast_error: float = 0.0, seed: int = 0, grid_known: bool = True
) -> Profiles:
    """What the controller is told about the future: ``truth`` with seeded forecast error (module docstring)."""
    phi = math.exp(-truth.step_h / ERROR_CORRELATION_H)
    rng = np.random.default_rng(seed)
    load, pv = truth.load_kw, truth.pv_kw
    if forecast_error > 0:
        load = _perturbed(load, rng, forecast_error, phi)
        pv = _perturbed(pv, rng, forecast_error, phi)
    grid = truth.grid_available if grid_known else pd.Series(1.0, index=truth.index)
    return Profiles(truth.index, truth.step_h, load, pv, grid, truth.import_price_per_kwh, truth.export_price_per_kwh)


FORECASTS = ("controller", "oracle")


def truth_schedule(truth: Profiles, step: timedelta) -> list[tuple[datetime, OutageSchedule]]:
    """The true outage pattern published in full before the first step (``grid_known``)."""
    start = truth.index[0].to_pydatetime()
    return [(start, schedule_from_availability(truth.grid_available, step, published_at=start))]


def simulation_forecaster(
    site: Site,
    truth: Profiles,
    *,
    forecast: str,
    schedules: ScheduleFeed | None,
    reference: Profiles | None = None,
    forecast_error: float = 0.0,
    seed: int = 0,
) -> Forecaster:
    """The controller's forecaster in a simulation (:mod:`microgrid.planning.closed_loop`'s docstring).

    ``controller``: the site's own forecaster, learning load and the clear-sky index from what the
    plant measures, from ``reference`` (a typical day; default: the truth's first day with no
    outage in it) while its history is short. ``oracle``: the true future ± seeded error, read by
    timestamp, nothing learnt. Both take the grid from ``schedules`` (else the reference's).
    """
    if forecast not in FORECASTS:
        raise ValueError(f"forecast must be one of {', '.join(FORECASTS)}, got {forecast!r}")
    if forecast == "oracle":
        oracle = forecast_reference(truth, forecast_error=forecast_error, seed=seed, grid_known=False)
        blind = site.forecast.model_copy(update={"pv": "reference", "min_history_days": 1e9, "pv_file": None})
        return Forecaster(site.model_copy(update={"forecast": blind}), oracle, schedules=schedules)
    if reference is None:
        per_day = round(24 / truth.step_h)
        day = truth.index[:per_day]
        reference = Profiles(
            day,
            truth.step_h,
            truth.load_kw.iloc[:per_day],
            truth.pv_kw.iloc[:per_day],
            pd.Series(1.0, index=day),
            truth.import_price_per_kwh.iloc[:per_day],
            truth.export_price_per_kwh.iloc[:per_day],
        )
    return Forecaster(site, reference, schedules=schedules)


def with_solver(site: Site, mip_gap: float | None = None, time_limit_s: float | None = None) -> Site:
    """``site`` with its control section's MIP gap and time limit replaced (None: keep the site's)."""
    update: dict[str, float] = {}
    if mip_gap is not None:
        update["mip_gap"] = mip_gap
    if time_limit_s is not None:
        update["time_limit_s"] = time_limit_s
    if not update:
        return site
    return site.model_copy(update={"control": site.control.model_copy(update=update)})
