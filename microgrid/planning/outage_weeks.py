"""Outage weeks: the project's own week-long scenarios for fuel and energy stewardship.

Each :class:`OutageWeek` is a site, the true profiles of the week (15-min steps), the outage
schedule **as the operator is told it** (day-ahead publications that differ from what the grid
then does), the typical day the controller's forecast starts from, and a diesel stock set to a
fraction of what serving every tier through the week's true outages takes. Seeded and
deterministic; generated, not tuned to one week. Patterns:

* ``rotating``: the queue's 4 h on / 4 h off, its phase shifted daily, published at 18:00 local
  for the next day. The grid: every published cut starts up to 15 min early or late and ends up
  to 20 min late (restorations "a few minutes" late), and ``unannounced`` cuts of 2-4 h fall in
  published on-hours.
* ``repair``: rotating on the first day, then a repair outage announced at 18:00 on day 0 (that
  publication covers it whole): off from day 1 08:00 for ``repair_days`` (4.5), then rotating. The
  grid: it starts 1-4 h early and ends 6-18 h late (the schedule says nothing of the overrun: the
  controller sees a grid down while the schedule says on).
* ``spring``: a spring week with a three-zone tariff (night 23-07 at 2.16, peaks 08-11 and
  18-22 at 6.48, else 4.32 UAH/kWh), export allowed at 1.5 UAH/kWh, the PV array three times
  larger and rotating cuts of 4 h twice a day.

Sites: ``hospital`` (the shipped one) and ``boiler-house`` (``models/sites/boiler-house.yaml``).
Full service: the fuel of the linear relaxation of the reference model over the true week
(hourly), fuel unlimited and every tier valued at 100 × its value of lost load (nothing shed);
the stock is ``fuel_fraction`` × that (``spring`` keeps the site's own stock).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from microgrid.dispatch import DispatchInputs
from microgrid.dispatch.outlook import coarsen, solve_outlook
from microgrid.forecast.schedule import OutageSchedule, schedule_from_availability
from microgrid.plan_columns import generator_fuel
from microgrid.planning.scenarios import multi_day
from microgrid.profiles import Profiles, read_profiles
from microgrid.resources import shipped
from microgrid.site import Site, read_site
from microgrid.state import SiteState

__all__ = ["PATTERNS", "SITES", "OutageWeek", "full_service_fuel", "outage_week"]

PATTERNS = ("rotating", "repair", "spring")
SITES = ("hospital", "boiler-house")


@dataclass(frozen=True)
class OutageWeek:
    """One scenario (module docstring).

    Attributes
    ----------
    name
        ``<site>-<pattern>-<seed>``.
    site
        The site, its diesel stock set for the scenario.
    truth
        What happens: load, PV, grid availability and prices per 15-min step.
    published
        The outage schedule as published: ``(issued_at, schedule)``, each replacing the previous.
    reference
        The typical day the controller's forecast starts from (no outage in it).
    full_service_fuel
        Fuel that serving every tier through the true outages takes [fuel units].
    """

    name: str
    site: Site
    truth: Profiles
    published: tuple[tuple[datetime, OutageSchedule], ...]
    reference: Profiles
    full_service_fuel: float


def _site(name: str) -> Site:
    return read_site(Path(str(shipped("models", "sites", f"{name}.yaml"))))


def _typical_day(site: Site, name: str, pattern: str) -> Profiles:
    """The site's typical day (15 min, no outage): the hospital's sample days, or made for the boiler house."""
    if name == "hospital":
        day = "summer" if pattern == "spring" else "winter"
        profiles = read_profiles(Path(str(shipped("data", f"hospital-{day}-day.csv"))), site)
    else:
        profiles = _boiler_house_day(site)
    return dataclasses.replace(profiles, grid_available=profiles.grid_available * 0.0 + 1.0)


def _boiler_house_day(site: Site) -> Profiles:
    """A winter day of the boiler house and shelter [kW]: pumps steady, the shelter busiest in the evening."""
    index = pd.date_range(pd.Timestamp("2026-01-15", tz=site.site.timezone), periods=96, freq="15min")
    hour = (index.hour + index.minute / 60 + 7.5 / 60).to_numpy()

    def bump(centre: float, width: float) -> np.ndarray:
        return np.asarray(np.exp(-0.5 * ((hour - centre) / width) ** 2))

    wiggle = 1 + 0.03 * np.sin(hour * 2.3) + 0.02 * np.cos(hour * 4.7)
    frame = pd.DataFrame(
        {
            "timestamp": [t.isoformat() for t in index],
            "load.critical": (68 + 14 * bump(7.0, 2.0) + 10 * bump(19.0, 2.5)) * wiggle,
            "load.essential": (22 + 18 * bump(20.0, 3.0) + 8 * bump(9.0, 2.0)) * wiggle,
            "load.comfort": (10 + 28 * bump(12.5, 3.0)) * wiggle,
            "pv.roof": 14.0 * np.clip(np.sin(math.pi * (hour - 7.7) / 8.5), 0, None) ** 1.5,
            "grid.available": 1,
            "grid.import_price_per_kwh": np.where((index.hour >= 23) | (index.hour < 7), 2.16, 4.32),
        }
    )
    from microgrid.profiles import profiles_from_frame  # noqa: PLC0415 - only this site needs it

    return profiles_from_frame(frame.round(2), site)


def _local_days(index: pd.DatetimeIndex, tz: str) -> tuple[np.ndarray, np.ndarray]:
    local = index.tz_convert(tz)
    return (local.normalize() - local[0].normalize()).days.to_numpy(), (local.hour + local.minute / 60).to_numpy()


def _rotating(index: pd.DatetimeIndex, tz: str, rng: np.random.Generator, per_day_cuts: int = 3) -> np.ndarray:
    """Published availability: 4 h on / 4 h off (``per_day_cuts`` = 3) or twice 4 h off a day, phase shifted daily."""
    day, hour = _local_days(index, tz)
    phase = rng.integers(0, 8, size=int(day.max()) + 1)
    position = np.mod(hour + phase[day], 8.0 if per_day_cuts == 3 else 12.0)
    up: np.ndarray = (position < (4.0 if per_day_cuts == 3 else 8.0)).astype(float)
    return up


def _late(published: np.ndarray, rng: np.random.Generator, step_h: float) -> np.ndarray:
    """The grid as it happens: every published cut starts up to 15 min early or late, ends up to 20 min late."""
    truth = published.copy()
    edges = np.flatnonzero(np.diff(np.concatenate(([1.0], published))) != 0)
    for i in edges:
        if published[i] == 0:  # a cut starts at i
            shift = round(rng.uniform(-0.25, 0.25) / step_h)
            truth[i : i + shift] = 1.0 if shift > 0 else truth[i : i + shift]
            truth[max(0, i + shift) : i] = 0.0
        else:  # power back at i: restored up to 45 min late
            truth[i : i + round(rng.uniform(0.0, 1.0 / 3.0) / step_h)] = 0.0
    return truth


def _unannounced(truth: np.ndarray, published: np.ndarray, rng: np.random.Generator, step_h: float, n: int) -> None:
    on = np.flatnonzero(published > 0.5)
    for start in rng.choice(on, size=min(n, len(on)), replace=False) if len(on) else []:
        truth[start : start + round(rng.uniform(2.0, 4.0) / step_h)] = 0.0


def _publications(
    published: np.ndarray, index: pd.DatetimeIndex, tz: str, step: timedelta, announced_until: int = -1
) -> tuple[tuple[datetime, OutageSchedule], ...]:
    """Day-ahead publications: at the start, today and tomorrow; then at 18:00 every day, up to the day
    after (and at least to step ``announced_until``: an outage announced whole)."""
    day, _ = _local_days(index, tz)
    local_midnight = index.tz_convert(tz)[0].normalize()
    out = []
    for d in range(int(day.max()) + 1):
        issued = index[0] if d == 0 else (local_midnight + pd.Timedelta(days=d - 1, hours=18)).tz_convert("UTC")
        known = (day <= d + (1 if d == 0 else 0)) | ((np.arange(len(index)) <= announced_until) & (d > 0))
        series = pd.Series(published[known], index=index[known])
        out.append((issued.to_pydatetime(), schedule_from_availability(series, step, published_at=issued)))
    return tuple(out)


def full_service_fuel(site: Site, truth: Profiles, state: SiteState | None = None) -> float:
    """Fuel to serve every tier through ``truth``'s outages [fuel units]: the LP of the reference model,
    hourly, fuel unlimited, every tier at 100 × its value of lost load (module docstring)."""
    loads = tuple(
        t.model_copy(update={"value_of_lost_load_per_kwh": 100 * t.value_of_lost_load_per_kwh}) for t in site.loads
    )
    fuels = {k: f.model_copy(update={"stock": None}) for k, f in site.fuels.items()}
    unlimited = site.model_copy(update={"loads": loads, "fuels": fuels})
    start = state or SiteState.initial(unlimited)
    start = dataclasses.replace(start, fuel_stock={k: None for k in fuels})
    values = solve_outlook(DispatchInputs(unlimited, coarsen(truth, 1.0), start, 0.0, 120.0), at_h=0.0)
    return float(sum(values.frame[generator_fuel(g.id)].sum() for g in site.generators))


def _spring_site(site: Site) -> Site:
    pv = tuple(a.model_copy(update={"peak_kw": 3 * a.peak_kw}) for a in site.pv)
    assert site.grid is not None
    grid = site.grid.model_copy(update={"max_export_kw": 150.0, "export_price_per_kwh": 1.5})
    return site.model_copy(update={"pv": pv, "grid": grid})


def _spring_prices(index: pd.DatetimeIndex, tz: str) -> np.ndarray:
    hour = index.tz_convert(tz).hour.to_numpy()
    peak = ((hour >= 8) & (hour < 11)) | ((hour >= 18) & (hour < 22))
    night = (hour >= 23) | (hour < 7)
    return np.where(night, 2.16, np.where(peak, 6.48, 4.32))


def outage_week(
    site_name: str = "hospital",
    pattern: str = "rotating",
    *,
    seed: int = 0,
    fuel_fraction: float = 0.86,
    days: float = 7.0,
    unannounced: int = 2,
    repair_days: float = 4.5,
) -> OutageWeek:
    """The scenario ``site_name`` × ``pattern`` (module docstring), ``days`` long from 00:00 local."""
    if site_name not in SITES or pattern not in PATTERNS:
        raise ValueError(f"site must be one of {SITES} and pattern one of {PATTERNS}, got {site_name!r}, {pattern!r}")
    site = _site(site_name)
    if pattern == "spring":
        site = _spring_site(site)
    day = _typical_day(site, site_name, pattern)
    rng = np.random.default_rng([seed, SITES.index(site_name), PATTERNS.index(pattern)])
    base = multi_day(day, site, days, seed=int(rng.integers(1 << 30)), outages=None)
    tz, step_h = site.site.timezone, base.step_h
    published = _rotating(base.index, tz, rng, per_day_cuts=2 if pattern == "spring" else 3)
    announced = -1
    if pattern == "repair":
        days_in, hour = _local_days(base.index, tz)
        elapsed = days_in * 24 + hour
        repair = (elapsed >= 32.0) & (elapsed < 32.0 + 24 * repair_days)
        published = np.where(repair, 0.0, published)
        announced = int(np.flatnonzero(repair)[-1]) + 1 if repair.any() else -1
    truth_grid = _late(published, rng, step_h)
    if pattern == "repair":
        early, late = rng.uniform(1.0, 4.0), rng.uniform(6.0, 18.0)
        truth_grid[(elapsed >= 32.0 - early) & (elapsed < 32.0 + 24 * repair_days + late)] = 0.0
    _unannounced(truth_grid, published, rng, step_h, unannounced if pattern != "spring" else 1)
    prices = _spring_prices(base.index, tz) if pattern == "spring" else base.import_price_per_kwh.to_numpy()
    truth = dataclasses.replace(
        base,
        grid_available=pd.Series(truth_grid, index=base.index),
        import_price_per_kwh=pd.Series(prices, index=base.index),
        export_price_per_kwh=base.export_price_per_kwh * 0.0 + (site.grid.export_price_per_kwh if site.grid else 0.0),
    )
    full = full_service_fuel(site, truth)
    if pattern != "spring":  # spring keeps the site's own stock: its question is cost, not fuel
        fuels = {k: f.model_copy(update={"stock": round(fuel_fraction * full)}) for k, f in site.fuels.items()}
        site = site.model_copy(update={"fuels": fuels})
    publications = _publications(published, base.index, tz, timedelta(hours=step_h), announced)
    return OutageWeek(f"{site_name}-{pattern}-{seed}", site, truth, publications, day, full)
