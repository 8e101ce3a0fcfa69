"""Outage survival: the chance the critical tiers get through an outage of a given length.

Monte Carlo over the start time (and with it the season and the time of day), and the error of
the load and PV forecast: each sample forces a grid outage from a random step of ``profiles``
for ``max(durations_h)`` hours, starting from ``state`` (SOC, gensets, fuel stock), and counts
the hours the critical tiers are carried in full before the first interval they are not.

Two ways to evaluate a sample (``method``):

``"greedy"`` (the default)
    :func:`microgrid.autonomy_hours` on the sample's true profiles: PV first, then the
    batteries down to their floor, then the gensets in order of fuel per kWh, every other tier
    shed from the start. It is transparent, hand-checkable and takes about a millisecond per
    sample, so thousands of samples (and survival inside a sizing sweep) are cheap. It is an
    *upper-bound-ish* figure for a controller that sheds the lower tiers at once; it ignores
    min up/down times and start delays.
``"rules"`` / ``"mpc"``
    the closed-loop simulation (:func:`microgrid.planning.simulate`) of the outage window with
    that controller, the outage known to it from the start: what the real controller would do,
    including its choices about the lower tiers. Slower (``"mpc"`` solves a MILP per interval):
    use tens of samples, not thousands.

The sample's truth: the load and the PV of the window are the profiles' (repeated past their
end, so a one-day profile serves any duration) times ``1 + ε``, one ``ε ~ N(0, forecast_error²)``
per sample for the load and one for the PV (clipped at 0): a persistent forecast bias, which is
what decides an outage's end (a step-by-step noise averages out within hours). With
``method="rules"|"mpc"`` the controller still forecasts the unperturbed profiles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from microgrid.autonomy import autonomy_hours
from microgrid.plan_columns import load_shed_kw
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.state import SiteState

__all__ = ["SurvivalResult", "outage_window", "season_of", "survival"]

Method = Literal["greedy", "rules", "mpc"]
_SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring"}
_SEASONS |= {6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}
_SHED_TOLERANCE_KW = 1e-3


def season_of(month: int) -> str:
    """Meteorological season of a month (1-12): ``winter`` is December to February."""
    return _SEASONS[month]


@dataclass(frozen=True)
class SurvivalResult:
    """The outcome of :func:`survival`.

    Attributes
    ----------
    hours_survived
        One row per sample: ``start`` (UTC), ``month`` and ``season`` (local time of the
        start), ``load_factor`` and ``pv_factor`` (the sample's truth / profiles), ``hours``
        (hours the critical tiers were fully carried, capped at ``max_hours``) and ``capped``.
    probability
        Per outage duration [h] (the index): the share of samples that carried the critical
        tiers through it.
    max_hours
        The outage length simulated [h] (the largest duration).
    method
        ``greedy``, ``rules`` or ``mpc`` (module docstring).
    tiers
        The tiers that count as critical.
    """

    hours_survived: pd.DataFrame
    probability: pd.Series
    max_hours: float
    method: str
    tiers: tuple[str, ...]

    def curve(self, hours: Sequence[float] | None = None) -> pd.Series:
        """P(carried through an outage of h hours) for each h (default: 0 to ``max_hours`` by step)."""
        grid = np.asarray(hours if hours is not None else np.linspace(0, self.max_hours, 97), dtype=float)
        survived = self.hours_survived["hours"].to_numpy()
        return pd.Series([float(np.mean(survived >= h - 1e-9)) for h in grid], index=grid, name="probability")

    def by_season(self) -> pd.DataFrame:
        """The probability per duration (columns) for each season (rows) that has samples."""
        durations = self.probability.index
        rows = {
            season: [float(np.mean(group["hours"].to_numpy() >= d - 1e-9)) for d in durations]
            for season, group in self.hours_survived.groupby("season", sort=False)
        }
        return pd.DataFrame.from_dict(rows, orient="index", columns=durations)


def outage_window(
    profiles: Profiles, start_step: int, steps: int, *, load_factor: float = 1.0, pv_factor: float = 1.0
) -> Profiles:
    """``steps`` steps of ``profiles`` from ``start_step`` (wrapping past the end), the grid down throughout.

    Load and PV are multiplied by ``load_factor`` and ``pv_factor``; prices are kept.
    """
    step = pd.Timedelta(hours=profiles.step_h)
    index = pd.DatetimeIndex(profiles.index[start_step] + step * np.arange(steps), name=profiles.index.name)
    window = profiles.take((start_step + np.arange(steps)) % profiles.steps, index)
    return dataclasses.replace(
        window,
        load_kw=window.load_kw * max(load_factor, 0.0),
        pv_kw=window.pv_kw * max(pv_factor, 0.0),
        grid_available=pd.Series(np.zeros(steps), index=index),
    )


def critical_tiers(site: Site, max_priority: int | None = None) -> tuple[str, ...]:
    """The tiers with ``priority ≤ max_priority`` (default: the most important priority)."""
    if not site.loads:
        return ()
    limit = min(t.priority for t in site.loads) if max_priority is None else max_priority
    return tuple(t.id for t in site.loads if t.priority <= limit)


def _simulated_hours(
    site: Site, window: Profiles, state: SiteState, tiers: tuple[str, ...], *, method: Method, seed: int
) -> float:
    from microgrid.planning.closed_loop import simulate  # noqa: PLC0415 - the simulation engine loads only when asked

    result = simulate(site, window, state=state, controller=method, seed=seed)
    shed = result.intervals[[load_shed_kw(t) for t in tiers]].sum(axis=1).to_numpy()
    failed = np.flatnonzero(shed > _SHED_TOLERANCE_KW)
    return float(failed[0] if len(failed) else len(shed)) * window.step_h


def _checked_durations(durations_h: Sequence[float], samples: int, forecast_error: float) -> list[float]:
    """The durations as floats, after checking them, ``samples`` and ``forecast_error``."""
    durations = [float(d) for d in durations_h]
    if not durations or min(durations) <= 0:
        raise ValueError(f"durations_h must be positive hours, got {durations}")
    if samples < 1 or forecast_error < 0:
        raise ValueError(f"need samples ≥ 1 and forecast_error ≥ 0, got {samples} and {forecast_error}")
    return durations


def _draws(profiles: Profiles, samples: int, forecast_error: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The samples' start steps and their (load, PV) relative errors, from ``seed``."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, profiles.steps, size=samples)
    errors = rng.normal(0.0, forecast_error, size=(samples, 2)) if forecast_error > 0 else np.zeros((samples, 2))
    return starts, errors


def _sample_hours(
    site: Site,
    window: Profiles,
    state: SiteState,
    tiers: tuple[str, ...],
    *,
    method: Method,
    seed: int,
    max_hours: float,
) -> float:
    """Hours the critical ``tiers`` are carried in full through ``window`` by ``method``."""
    if method == "greedy":
        limit = max(t.priority for t in site.loads if t.id in tiers) if tiers else 1
        return autonomy_hours(site, window, state, max_priority=limit, max_hours=max_hours)
    return _simulated_hours(site, window, state, tiers, method=method, seed=seed)


def _sample_row(
    site: Site, window: Profiles, errors: tuple[float, float], hours: float, max_hours: float
) -> dict[str, object]:
    """One row of :attr:`SurvivalResult.hours_survived` (``errors``: the sample's load and PV errors)."""
    load_err, pv_err = errors
    local = window.index[0].tz_convert(site.site.timezone)
    return {
        "start": window.index[0],
        "month": local.month,
        "season": season_of(local.month),
        "load_factor": max(1 + load_err, 0.0),
        "pv_factor": max(1 + pv_err, 0.0),
        "hours": min(float(hours), max_hours),
        "capped": hours >= max_hours - 1e-9,
    }


def _probability(frame: pd.DataFrame, durations: list[float]) -> pd.Series:
    """The share of samples that carried the critical tiers through each duration."""
    survived = frame["hours"].to_numpy()
    return pd.Series(
        [float(np.mean(survived >= d - 1e-9)) for d in durations],
        index=pd.Index(durations, name="duration_h"),
        name="probability",
    )


def survival(
    site: Site,
    profiles: Profiles,
    *,
    state: SiteState | None = None,
    durations_h: Sequence[float] = (4, 8, 12, 24, 48, 72),
    samples: int = 500,
    forecast_error: float = 0.1,
    seed: int = 0,
    method: Method = "greedy",
    max_priority: int | None = None,
) -> SurvivalResult:
    """Probability of carrying the critical tiers through outages of ``durations_h`` hours.

    Parameters
    ----------
    site, profiles
        The site and a forecast (any length; start times are drawn from all its steps).
    state
        Where every sample starts (SOC, gensets, fuel stock); default the site file's.
    durations_h
        Outage lengths [h] to report; the largest is the length simulated.
    samples
        Number of Monte Carlo samples.
    forecast_error
        Standard deviation of the relative error of the load and of the PV (0.1 = 10 %).
    seed
        Seed of the random start times and errors: the same seed gives the same result.
    method
        ``greedy`` (fast, :func:`microgrid.autonomy_hours`), ``rules`` or ``mpc`` (closed-loop
        simulation); see the module docstring.
    max_priority
        Tiers with ``priority ≤ max_priority`` are critical (default: the most important priority).
    """
    durations = _checked_durations(durations_h, samples, forecast_error)
    state = state if state is not None else SiteState.initial(site)
    tiers = critical_tiers(site, max_priority)
    max_hours = max(durations)
    steps = int(np.ceil(max_hours / profiles.step_h - 1e-9))
    starts, errors = _draws(profiles, samples, forecast_error, seed)
    rows = []
    for sample, (start, (load_err, pv_err)) in enumerate(zip(starts, errors, strict=True)):
        window = outage_window(profiles, int(start), steps, load_factor=1 + load_err, pv_factor=1 + pv_err)
        hours = _sample_hours(site, window, state, tiers, method=method, seed=seed + sample, max_hours=max_hours)
        rows.append(_sample_row(site, window, (load_err, pv_err), hours, max_hours))
    frame = pd.DataFrame(rows, index=pd.RangeIndex(samples, name="sample"))
    return SurvivalResult(frame, _probability(frame, durations), max_hours, method, tiers)
