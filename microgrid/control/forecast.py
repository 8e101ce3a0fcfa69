"""Forecast phase: what the controller expects over its horizon, built fresh every cycle.

Per step of the horizon (``site.control.interval`` steps from the interval start):

* **load** per tier: :func:`microgrid.forecast.load.load_forecast` over the measured history
  the controller keeps (seeded from the store at a restart), falling back to the reference
  profiles while the history is short; then step 0 of a tier whose feeder is closed is the
  measured demand now (persistence);
* **PV** per array: :func:`microgrid.forecast.pv.pv_forecast` (clear-sky for the site's
  location scaled by the recent measured clear-sky index, an external forecast file where it
  covers, or the reference);
* **grid**: the reference's availability, or with an outage schedule configured its status
  per step (``off`` → 0; ``on``, ``possible`` and steps the schedule does not cover → 1;
  ``possible`` steps are also flagged for the contingency extension). Then the meter wins:
  a grid seen **down** now is down for ``outage_assumed_h`` (1 h) and through the rest of a
  ``possible`` window it fell in; a grid of unknown state is not counted on in step 0; a
  grid seen **up** is up in step 0. In **emergency mode** the grid is 0 at every step;
* **prices**: the site's tariff zones or price file when it has them
  (:mod:`microgrid.tariffs`), else the reference's.

A schedule or PV file that turns bad keeps the last good one (the problem is reported in
the cycle's events).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from microgrid.control.estimate import Estimate
from microgrid.errors import InputError
from microgrid.forecast.load import load_forecast
from microgrid.forecast.pv import pv_forecast, read_pv_forecast
from microgrid.forecast.reference import reference_rows, time_of_day_rows
from microgrid.forecast.schedule import OutageSchedule, ScheduleSource, schedule_source
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.tariffs import site_prices

__all__ = ["Forecaster", "MeasuredHistory", "Outlook", "apply_present", "rolling_forecast", "time_of_day_rows"]


@dataclass
class MeasuredHistory:
    """Measured demand per tier and PV per array, one row per cycle, newest last (bounded)."""

    max_rows: int = 96 * 35
    rows: deque[tuple[datetime, dict[str, float], dict[str, float]]] = field(default_factory=deque)

    def add(self, when: datetime, load_kw: dict[str, float], pv_kw: dict[str, float]) -> None:
        """Append one cycle's measurements (older rows beyond ``max_rows`` are dropped)."""
        if self.rows and when <= self.rows[-1][0]:
            return  # a repeated or out-of-order cycle adds nothing
        self.rows.append((when, dict(load_kw), dict(pv_kw)))
        while len(self.rows) > self.max_rows:
            self.rows.popleft()

    def net_change_rms_kw(self, interval: timedelta, *, min_pairs: int = 4) -> float | None:
        """RMS of the change in measured net load (Σ demand − Σ PV) from one cycle to the next [kW].

        Over pairs of cycles exactly ``interval`` apart that measured the same tiers and arrays (a
        feeder switched in between says nothing about forecast error); None with fewer than
        ``min_pairs`` pairs.
        """
        changes = []
        rows = list(self.rows)
        for (t0, load0, pv0), (t1, load1, pv1) in itertools.pairwise(rows):
            if t1 - t0 != interval or load0.keys() != load1.keys() or pv0.keys() != pv1.keys():
                continue
            net0 = sum(load0.values()) - sum(pv0.values())
            net1 = sum(load1.values()) - sum(pv1.values())
            changes.append(net1 - net0)
        if len(changes) < min_pairs:
            return None
        return math.sqrt(sum(c * c for c in changes) / len(changes))

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(load kW per tier, PV kW per array), UTC-indexed; NaN where not measured."""
        index = pd.DatetimeIndex([r[0] for r in self.rows], tz="UTC") if self.rows else pd.DatetimeIndex([], tz="UTC")
        load = pd.DataFrame([r[1] for r in self.rows], index=index, dtype=float)
        pv = pd.DataFrame([r[2] for r in self.rows], index=index, dtype=float)
        return load, pv


@dataclass
class Outlook:
    """One cycle's forecast: the profiles to plan on and what the schedule says."""

    profiles: Profiles
    possible_outage: np.ndarray | None = None
    """Bool per step: in a ``possible`` window of the schedule (None without a schedule)."""
    scheduled_now: str | None = None
    """The schedule's status of step 0 (None without a schedule)."""
    voided: bool = False
    notes: list[str] = field(default_factory=list)

    def without_grid(self, *, up_now: bool = False) -> Outlook:
        """The same outlook with no grid (emergency mode): none at all, or from step 1 on when the
        meter sees it up now (``up_now``: the meter wins for the step now)."""
        alpha = self.profiles.grid_available * 0.0
        if up_now:
            alpha.iloc[0] = 1.0
        return replace(self, profiles=replace(self.profiles, grid_available=alpha), possible_outage=None)


class Forecaster:
    """Builds each cycle's :class:`Outlook` (module docstring)."""

    def __init__(self, site: Site, reference: Profiles, *, outage_assumed_h: float = 1.0) -> None:
        self.site, self.reference, self.outage_assumed_h = site, reference, outage_assumed_h
        steps_per_day = round(timedelta(days=1) / site.control.interval)
        self.history = MeasuredHistory(max_rows=steps_per_day * (site.forecast.load_history_days + 1))
        self.schedules: ScheduleSource | None = schedule_source(site)
        self._pv_file: pd.DataFrame | None = None

    def seed(self, load_kw: pd.DataFrame, pv_kw: pd.DataFrame) -> int:
        """Fill the history from recorded measurements (a restart); return the rows added."""
        step = pd.Timedelta(self.site.control.interval)

        def per_interval(frame: pd.DataFrame) -> pd.DataFrame:  # readings of one cycle share its interval
            return frame.groupby(pd.DatetimeIndex(frame.index).floor(step)).last() if len(frame) else frame

        load_kw, pv_kw = per_interval(load_kw), per_interval(pv_kw)
        index = load_kw.index.union(pv_kw.index)
        load, pv = load_kw.reindex(index), pv_kw.reindex(index)
        before = len(self.history.rows)
        for when in index:
            kw = {t: float(v) for t, v in load.loc[when].items() if pd.notna(v)}
            self.history.add(when.to_pydatetime(), kw, {a: float(v) for a, v in pv.loc[when].items() if pd.notna(v)})
        return len(self.history.rows) - before

    def observe(self, est: Estimate) -> None:
        """Remember the measured demand of connected tiers and the PV power of this cycle."""
        load = {t: kw for t, kw in est.load_kw.items() if est.tier_connected.get(t, True)}
        self.history.add(est.time, load, dict(est.pv_kw))

    def __call__(self, start: datetime, est: Estimate | None) -> Outlook:
        """The outlook for the horizon starting at ``start`` (UTC interval start)."""
        site, step = self.site, self.site.control.interval
        index = pd.date_range(
            pd.Timestamp(start).tz_convert("UTC"), periods=round(site.control.horizon / step), freq=pd.Timedelta(step)
        )
        rows = reference_rows(self.reference, index, site.site.timezone)
        notes: list[str] = []
        load = self._load(index, rows)
        pv = self._pv(index, notes)
        alpha = self.reference.grid_available.iloc[rows].set_axis(index).astype(float)
        outlook = Outlook(profiles=self.reference, notes=notes)
        schedule = self._schedule(notes)
        if schedule is not None:
            status = schedule.per_step(index, step)
            alpha = pd.Series(np.where(status.to_numpy() == "off", 0.0, 1.0), index=index)
            outlook.possible_outage = status.to_numpy() == "possible"
            outlook.scheduled_now, outlook.voided = str(status.iloc[0]), schedule.voided
        if est is not None:
            self._present(est, load, alpha, outlook.possible_outage)
        imp, exp = self._prices(index, rows, notes)
        outlook.profiles = Profiles(
            index=index,
            step_h=step / timedelta(hours=1),
            load_kw=load,
            pv_kw=pv,
            grid_available=alpha if site.grid is not None else alpha * 0.0,
            import_price_per_kwh=imp,
            export_price_per_kwh=exp,
        )
        return outlook

    # -- parts ---------------------------------------------------------------------------------

    def _load(self, index: pd.DatetimeIndex, rows: np.ndarray) -> pd.DataFrame:
        cfg = self.site.forecast
        history, _ = self.history.frames()
        if len(history) == 0:
            return self.reference.load_kw.iloc[rows].set_axis(index)
        return load_forecast(
            history,
            self.reference,
            index,
            self.site.site.timezone,
            history_days=cfg.load_history_days,
            halflife_days=cfg.load_halflife_days,
            min_history_days=cfg.min_history_days,
        )

    def _pv(self, index: pd.DatetimeIndex, notes: list[str]) -> pd.DataFrame:
        if self.site.forecast.pv_file is not None:
            try:
                self._pv_file = read_pv_forecast(self.site.resolve(self.site.forecast.pv_file), self.site)
            except InputError as exc:
                notes.append(f"PV forecast file: {exc} (keeping the last good one)")
        _, measured = self.history.frames()
        return pv_forecast(self.site, index, reference=self.reference, measured_kw=measured, file_kw=self._pv_file)

    def _schedule(self, notes: list[str]) -> OutageSchedule | None:
        if self.schedules is None:
            return None
        update = self.schedules.refresh()
        if update.error:
            notes.append(f"outage schedule: {update.error}")
        return update.schedule

    def _present(self, est: Estimate, load: pd.DataFrame, alpha: pd.Series, possible: np.ndarray | None) -> None:
        apply_present(
            est, load, alpha, self.site.control.interval, outage_assumed_h=self.outage_assumed_h, possible=possible
        )

    def _prices(self, index: pd.DatetimeIndex, rows: np.ndarray, notes: list[str]) -> tuple[pd.Series, pd.Series]:
        grid = self.site.grid
        if grid is not None and (grid.tariff or grid.price_file):
            try:
                imp, exp = site_prices(self.site, index)
                if not np.isnan(imp).any():
                    return pd.Series(imp, index=index), pd.Series(exp, index=index)
                notes.append("prices: the tariff / price file does not cover the horizon; the reference's prices used")
            except InputError as exc:
                notes.append(f"price file: {exc} (the reference's prices used)")
        return (
            self.reference.import_price_per_kwh.iloc[rows].set_axis(index),
            self.reference.export_price_per_kwh.iloc[rows].set_axis(index),
        )


def apply_present(
    est: Estimate,
    load: pd.DataFrame,
    alpha: pd.Series,
    interval: timedelta,
    *,
    outage_assumed_h: float = 1.0,
    possible: np.ndarray | None = None,
) -> None:
    """Let the present override a forecast, in place (module docstring).

    ``load`` (kW per tier) and ``alpha`` (grid availability) are per step of ``interval`` from
    now. Step 0's demand of a connected tier becomes the measured demand. A grid measured down
    is down for ``outage_assumed_h`` (at least one step) and, when step 0 is in a ``possible``
    window (``possible``: bool per step, or None), through the rest of that window, whose steps
    are then no longer flagged; a grid of unknown state is down in step 0; a grid measured up
    is up in step 0.
    """
    first = load.index[0]
    for tier, kw in est.load_kw.items():
        if est.tier_connected.get(tier, True) and tier in load.columns:
            load.loc[first, tier] = kw
    if est.grid_up is False:
        down = max(1, math.ceil(timedelta(hours=outage_assumed_h) / interval))
        if possible is not None and possible[0]:  # the possible outage happened: all of its window
            down = max(down, int(np.argmin(possible)) if not possible.all() else len(possible))
            possible[:down] = False
        alpha.iloc[:down] = 0.0
    elif est.grid_up is None:
        alpha.iloc[0] = 0.0
    else:
        alpha.iloc[0] = 1.0


def rolling_forecast(
    site: Site,
    reference: Profiles,
    start: datetime,
    *,
    est: Estimate | None = None,
    outage_assumed_h: float = 1.0,
) -> Profiles:
    """The profiles of a fresh :class:`Forecaster` (no history, the site's schedule if any) for ``start``."""
    return Forecaster(site, reference, outage_assumed_h=outage_assumed_h)(start, est).profiles
