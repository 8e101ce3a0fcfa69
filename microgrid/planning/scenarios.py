"""Profiles for long periods: days to a year, built from a typical day (seeded, deterministic).

:func:`multi_day` repeats a base day (e.g. ``data/hospital-winter-day.csv``) for ``days``
days with day-to-day variation, and lays a grid outage pattern over it:

* **loads**: every tier × a daily level (an AR(1) over days, φ = 0.7, standard deviation
  ``load_variation``: cold spells last a few days) × a small tier-specific daily factor (a third
  of ``load_variation``) × an intraday wiggle (AR(1) over steps, φ = 0.9, sd 2 %). The least
  important tiers (every tier after the first priority) drop 20 % on Saturdays and Sundays;
* **PV**: × a daily clearness factor ``clip(1 + pv_variation · N(0, 1), 0.05, 1.3)`` × an
  intraday cloud factor (AR(1), φ = 0.8, sd ``pv_variation / 2``, clipped to [0, 1.2]);
* **grid** (``outages``): ``"shifting"`` (default) is a Kharkiv-like published schedule,
  ``on_h`` hours on then ``off_h`` hours off, whose phase moves to a random whole hour every
  day, plus unannounced emergency outages (on average ``emergency_per_week``, each 1-3 h);
  ``"base"`` repeats the base day's own pattern; ``None`` keeps the grid up throughout;
* **prices**: the base day's, by position in the day (a time-of-day tariff).

Every draw comes from ``numpy.random.default_rng(seed)`` in a fixed order: the same arguments
always give the same profiles. Values are step averages, as everywhere in microgrid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from microgrid.profiles import Profiles, read_profiles
from microgrid.resources import shipped
from microgrid.site import Site, read_site

__all__ = ["ar1", "hospital_winter", "multi_day", "shifting_outages", "to_frame"]


def ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """``n`` values of a stationary AR(1) with coefficient ``phi`` and standard deviation ``sd`` (mean 0)."""
    out = np.empty(n)
    if n == 0:
        return out
    innovations = rng.standard_normal(n) * sd * np.sqrt(max(1.0 - phi * phi, 0.0))
    out[0] = rng.standard_normal() * sd
    for i in range(1, n):
        out[i] = phi * out[i - 1] + innovations[i]
    return out


def shifting_outages(
    index: pd.DatetimeIndex,
    tz: str,
    *,
    rng: np.random.Generator,
    on_h: float = 4.0,
    off_h: float = 4.0,
    emergency_per_week: float = 1.0,
) -> np.ndarray:
    """Grid availability (1/0) per step of ``index``: a shifting on/off schedule plus emergency outages."""
    local = index.tz_convert(tz)
    hours = (local.hour + local.minute / 60).to_numpy()
    day = (local.normalize() - local[0].normalize()).days.to_numpy()
    period = on_h + off_h
    phases = rng.integers(0, max(1, round(period)), size=int(day.max()) + 1 if len(day) else 0)
    position = np.mod(hours + phases[day], period) if len(day) else np.array([])
    up = (position < on_h).astype(float)
    step_h = (index[1] - index[0]) / pd.Timedelta(hours=1) if len(index) > 1 else 0.25
    weeks = len(index) * step_h / 168
    for _ in range(int(rng.poisson(emergency_per_week * weeks))):
        start = int(rng.integers(0, len(index)))
        length = round(float(rng.uniform(1.0, 3.0)) / step_h)
        up[start : start + length] = 0.0
    return up


def multi_day(
    base: Profiles,
    site: Site,
    days: float,
    *,
    seed: int = 0,
    load_variation: float = 0.06,
    pv_variation: float = 0.35,
    outages: str | None = "shifting",
    on_h: float = 4.0,
    off_h: float = 4.0,
    emergency_per_week: float = 1.0,
) -> Profiles:
    """``days`` days of profiles from the typical day ``base`` (module docstring), from ``base``'s first step.

    ``base`` must cover whole days (e.g. 96 steps of 15 min); a longer base repeats by position.
    """
    per_day = round(24 / base.step_h)
    steps = round(days * per_day)
    index = pd.date_range(base.index[0], periods=steps, freq=pd.Timedelta(hours=base.step_h))
    position = np.arange(steps) % base.steps
    day = np.arange(steps) // per_day
    n_days = int(day.max()) + 1 if steps else 0
    rng = np.random.default_rng(seed)
    level = 1.0 + ar1(rng, n_days, 0.7, load_variation)
    weekend = index.tz_convert(site.site.timezone).day_of_week.to_numpy() >= 5
    top = min((t.priority for t in site.loads), default=1)
    load = {}
    for tier in site.loads:
        own = 1.0 + rng.standard_normal(n_days) * load_variation / 3
        wiggle = 1.0 + ar1(rng, steps, 0.9, 0.02)
        factor = level[day] * own[day] * wiggle * np.where(weekend & (tier.priority > top), 0.8, 1.0)
        load[tier.id] = np.maximum(base.load_kw[tier.id].to_numpy()[position] * factor, 0.0)
    pv = {}
    for array in site.pv:
        clear = np.clip(1.0 + pv_variation * rng.standard_normal(n_days), 0.05, 1.3)
        clouds = np.clip(1.0 + ar1(rng, steps, 0.8, pv_variation / 2), 0.0, 1.2)
        pv[array.id] = np.maximum(base.pv_kw[array.id].to_numpy()[position] * clear[day] * clouds, 0.0)
    if site.grid is None:
        grid = np.zeros(steps)
    elif outages == "shifting":
        grid = shifting_outages(
            index, site.site.timezone, rng=rng, on_h=on_h, off_h=off_h, emergency_per_week=emergency_per_week
        )
    elif outages == "base":
        grid = base.grid_available.to_numpy(dtype=float)[position]
    elif outages is None:
        grid = np.ones(steps)
    else:
        raise ValueError(f"outages must be 'shifting', 'base' or None, got {outages!r}")
    return Profiles(
        index=index,
        step_h=base.step_h,
        load_kw=pd.DataFrame({k: v.round(2) for k, v in load.items()}, index=index),
        pv_kw=pd.DataFrame({k: v.round(2) for k, v in pv.items()}, index=index),
        grid_available=pd.Series(grid, index=index),
        import_price_per_kwh=pd.Series(base.import_price_per_kwh.to_numpy()[position], index=index),
        export_price_per_kwh=pd.Series(base.export_price_per_kwh.to_numpy()[position], index=index),
    )


def hospital_winter(
    days: float = 30.0,
    *,
    seed: int = 0,
    outages: str | None = "shifting",
    load_variation: float = 0.06,
    pv_variation: float = 0.35,
    emergency_per_week: float = 1.0,
    fuel_stock: float | None = None,
) -> tuple[Site, Profiles]:
    """The shipped hospital and ``days`` winter days from its winter sample day (:func:`multi_day`).

    ``fuel_stock``: the diesel in the tank at the start [l] (None: the site file's 1,500 l, about
    four days of this outage pattern; the plant models no deliveries).
    """
    site = read_site(Path(str(shipped("models", "sites", "hospital.yaml"))))
    if fuel_stock is not None:
        fuels = {k: v.model_copy(update={"stock": fuel_stock}) for k, v in site.fuels.items()}
        site = site.model_copy(update={"fuels": fuels})
    base = read_profiles(Path(str(shipped("data", "hospital-winter-day.csv"))), site)
    profiles = multi_day(
        base,
        site,
        days,
        seed=seed,
        outages=outages,
        load_variation=load_variation,
        pv_variation=pv_variation,
        emergency_per_week=emergency_per_week,
    )
    return site, profiles


def to_frame(profiles: Profiles, tz: str = "UTC") -> pd.DataFrame:
    """``profiles`` in the profiles-CSV layout (``timestamp`` in ``tz`` with its UTC offset first)."""
    frame = pd.DataFrame({"timestamp": [t.isoformat() for t in profiles.index.tz_convert(tz)]})
    for tier in profiles.load_kw.columns:
        frame[f"load.{tier}"] = profiles.load_kw[tier].to_numpy()
    for array in profiles.pv_kw.columns:
        frame[f"pv.{array}"] = profiles.pv_kw[array].to_numpy()
    frame["grid.available"] = profiles.grid_available.to_numpy().astype(int)
    frame["grid.import_price_per_kwh"] = profiles.import_price_per_kwh.to_numpy()
    frame["grid.export_price_per_kwh"] = profiles.export_price_per_kwh.to_numpy()
    return frame
