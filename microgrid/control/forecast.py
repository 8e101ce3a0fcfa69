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
  ``possible`` steps are also flagged for the contingency extension, and with
  ``grid.schedule.late_return_h`` so are the steps that long after each published outage end:
  :func:`late_returns`). Then the meter wins:
  a grid seen **down** now is down for ``outage_assumed_h`` (1 h) and through the rest of a
  ``possible`` window it fell in; in a published outage (the schedule says ``off`` now) it is
  down instead to one step past the published end, the rest of that hour after the end a
  ``possible`` outage (a late return: the contingency's shadow carries the protected tiers,
  with a genset if need be, rather than the batteries holding an hour's load at every outage's
  end); a grid of unknown state is not counted on in step 0; a
  grid seen **up** is up in step 0. In **emergency mode** the grid is 0 at every step;
* **prices**: the site's tariff zones or price file when it has them
  (:mod:`microgrid.tariffs`), else the reference's.

A schedule or PV file that turns bad keeps the last good one (the problem is reported in
the cycle's events).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import pandas as pd

from microgrid.control.estimate import Estimate
from microgrid.control.history import MeasuredHistory
from microgrid.errors import InputError
from microgrid.forecast.load import load_forecast
from microgrid.forecast.pv import pv_forecast, read_pv_forecast
from microgrid.forecast.reference import reference_rows, time_of_day_rows
from microgrid.forecast.schedule import OutageSchedule, ScheduleFeed, schedule_source
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.tariffs import site_prices

__all__ = [
    "FROM_SITE",
    "ForecastSource",
    "Forecaster",
    "MeasuredHistory",
    "Outlook",
    "apply_present",
    "rolling_forecast",
    "time_of_day_rows",
]


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

    def with_cut(self, steps: int) -> Outlook:
        """The same outlook with a cut outside the schedule planned for its first ``steps`` steps; every
        later step the grid is up becomes a ``possible`` outage, so that the contingency extension carries
        the protected tiers to the horizon's end should the cut last (``grid.schedule.unannounced_cut_h``).
        ``steps = 0`` (the grid seen back while emergency mode holds): the schedule, every step it is up a
        possible outage."""
        alpha = self.profiles.grid_available.copy()
        alpha.iloc[:steps] = 0.0
        possible = np.zeros(len(alpha), dtype=bool)
        possible[steps:] = alpha.to_numpy()[steps:] > 0.5
        return replace(self, profiles=replace(self.profiles, grid_available=alpha), possible_outage=possible)

    def without_grid(self, *, up_now: bool = False) -> Outlook:
        """The same outlook with no grid (emergency mode): none at all, or from step 1 on when the
        meter sees it up now (``up_now``: the meter wins for the step now)."""
        alpha = self.profiles.grid_available * 0.0
        if up_now:
            alpha.iloc[0] = 1.0
        return replace(self, profiles=replace(self.profiles, grid_available=alpha), possible_outage=None)


class ForecastSource(Protocol):
    """What the cycle needs from its forecaster: :class:`Forecaster` on a site and in a simulation (with
    a simulated schedule feed, or the true profiles ± error as its reference); a test may pass another."""

    def __call__(self, start: datetime, est: Estimate | None) -> Outlook:
        """The outlook for the horizon from ``start`` (UTC interval start)."""
        ...

    def forecast(
        self,
        start: datetime,
        est: Estimate | None,
        steps: int,
        *,
        beyond: str | None = None,
        step: timedelta | None = None,
    ) -> Outlook:
        """The outlook for ``steps`` steps of ``step`` (the long one), the grid beyond the schedule as ``beyond``."""
        ...

    def observe(self, est: Estimate) -> None:
        """Learn from this cycle's measurements."""
        ...

    def seed(self, load_kw: pd.DataFrame, pv_kw: pd.DataFrame) -> int:
        """Learn from recorded measurements (a restart); return how many rows were taken."""
        ...

    def net_change_rms_kw(self, interval: timedelta) -> float | None:
        """RMS of the measured net load's change from one cycle to the next [kW] (None: not known yet)."""
        ...


class _FromSite:
    """The site's own ``grid.schedule`` file or folder (:func:`schedule_source`)."""


FROM_SITE = _FromSite()


class Forecaster:
    """Builds each cycle's :class:`Outlook` (module docstring).

    Parameters
    ----------
    reference
        The reference profiles: a typical day (matched by local time of day), or a period covering
        every horizon asked for (matched by timestamp, e.g. a simulation's true profiles ± error).
    schedules
        Where the outage schedule comes from: the site's ``grid.schedule`` (default), another feed
        (a simulation's :class:`~microgrid.forecast.schedule.PublishedSchedules`), or None (no schedule:
        the reference's grid availability).
    """

    def __init__(
        self,
        site: Site,
        reference: Profiles,
        *,
        outage_assumed_h: float = 1.0,
        schedules: ScheduleFeed | _FromSite | None = FROM_SITE,
    ) -> None:
        self.site, self.reference, self.outage_assumed_h = site, reference, outage_assumed_h
        steps_per_day = round(timedelta(days=1) / site.control.interval)
        self.history = MeasuredHistory(max_rows=steps_per_day * (site.forecast.load_history_days + 1))
        self.schedules: ScheduleFeed | None = schedule_source(site) if isinstance(schedules, _FromSite) else schedules
        self._pv_file: pd.DataFrame | None = None
        self.grid_seen: deque[tuple[datetime, bool]] = deque(maxlen=self.history.max_rows)
        """(cycle time, grid seen up) of the last cycles: the long outlook's grid beyond the schedule."""

    def net_change_rms_kw(self, interval: timedelta) -> float | None:
        """:meth:`MeasuredHistory.net_change_rms_kw` of the measured history."""
        return self.history.net_change_rms_kw(interval)

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
        """Remember the measured demand of connected tiers, the PV power and the grid of this cycle."""
        load = {t: kw for t, kw in est.load_kw.items() if est.tier_connected.get(t, True)}
        self.history.add(est.time, load, dict(est.pv_kw))
        if est.grid_up is not None and (not self.grid_seen or est.time > self.grid_seen[-1][0]):
            self.grid_seen.append((est.time, est.grid_up))

    def __call__(self, start: datetime, est: Estimate | None) -> Outlook:
        """The outlook for the horizon starting at ``start`` (UTC interval start)."""
        return self.forecast(start, est, round(self.site.control.horizon / self.site.control.interval))

    def forecast(
        self,
        start: datetime,
        est: Estimate | None,
        steps: int,
        *,
        beyond: str | None = None,
        step: timedelta | None = None,
    ) -> Outlook:
        """The outlook for ``steps`` steps of ``step`` (default: the control interval) from ``start``.

        ``beyond``: how the grid is assumed where the schedule says nothing (status ``unknown``):
        None keeps it up (the control horizon's rule); else :meth:`grid_beyond_schedule`'s rules
        (the long outlook's, ``control.outlook.beyond_schedule``).
        """
        site, step = self.site, step or self.site.control.interval
        index = pd.date_range(pd.Timestamp(start).tz_convert("UTC"), periods=steps, freq=pd.Timedelta(step))
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
            if beyond is not None:
                unknown = status.to_numpy() == "unknown"
                assumed = (
                    self._queue_pattern(schedule, index, step)
                    if beyond == "pattern"
                    else self.grid_beyond_schedule(index, beyond, est)
                )
                alpha[unknown] = assumed[unknown]
                alpha = pd.Series(self._overrun(alpha.to_numpy(), status.to_numpy()), index=index)
            outlook.possible_outage = late_returns(status.to_numpy(), self._late_steps(step))
            outlook.scheduled_now, outlook.voided = str(status.iloc[0]), schedule.voided
        if est is not None:
            apply_present(
                est,
                load,
                alpha,
                step,
                outage_assumed_h=self.outage_assumed_h,
                possible=outlook.possible_outage,
                published_outage_now=outlook.scheduled_now == "off",
            )
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

    def _late_steps(self, step: timedelta) -> int:
        """Steps of ``step`` a published outage may end late (``grid.schedule.late_return_h``; 0 without)."""
        schedule = self.site.grid.schedule if self.site.grid is not None else None
        if schedule is None or schedule.late_return_h is None:
            return 0
        return math.ceil(timedelta(hours=schedule.late_return_h) / step - 1e-9)

    def _overrun(self, alpha: np.ndarray, status: np.ndarray) -> np.ndarray:  # any step length: in steps
        """``alpha`` with every published outage (a run of ``off``) held ``control.outlook.overrun_fraction``
        of its published length longer (a run that began before the horizon counts from its start here)."""
        cfg = self.site.control.outlook
        out = alpha.copy()
        if cfg is None or cfg.overrun_fraction <= 0:
            return out
        off = np.concatenate(([False], status == "off", [False]))
        starts, ends = np.flatnonzero(~off[:-1] & off[1:]), np.flatnonzero(off[:-1] & ~off[1:])
        for start, end in zip(starts, ends, strict=True):
            out[end : end + math.ceil(cfg.overrun_fraction * (end - start))] = 0.0
        return out

    def _queue_pattern(self, schedule: OutageSchedule, index: pd.DatetimeIndex, step: timedelta) -> np.ndarray:
        """Grid availability (1/0) of the queue's latest published *normal* day (a local day the schedule
        covers whole, with some ``on`` in it), repeated by local time of day; all up when none."""
        tz = self.site.site.timezone
        if not schedule.slots or schedule.voided:
            return np.ones(len(index))
        last = pd.Timestamp(schedule.slots[-1].end).tz_convert(tz).normalize()
        for day in pd.date_range(last - pd.Timedelta(days=14), last, freq="D")[::-1]:
            steps = pd.date_range(day, day + pd.Timedelta(days=1), freq=pd.Timedelta(step), inclusive="left")
            status = schedule.per_step(steps, step).to_numpy()
            if (status != "unknown").all() and (status == "on").any():
                local = index.tz_convert(tz)
                minutes = local.hour * 60 + local.minute
                position = np.asarray(minutes // round(step.total_seconds() / 60)) % len(status)
                return np.asarray(status[position] != "off", dtype=float)
        return np.ones(len(index))

    def grid_beyond_schedule(self, index: pd.DatetimeIndex, rule: str, est: Estimate | None) -> np.ndarray:
        """Grid availability (1/0) assumed at the steps of ``index`` the schedule does not cover.

        ``up`` / ``down``: always; ``as-now``: as the meter sees it now (up when unknown);
        ``history``: at each local time of day, up when the grid was seen up in at least half of the
        cycles at that hour over the last ``control.outlook.history_days`` days, ``as-now`` for hours
        not seen in that time.
        """
        now = 0.0 if est is not None and est.grid_up is False else 1.0
        if rule in ("up", "down"):
            return np.full(len(index), 1.0 if rule == "up" else 0.0)
        assumed = np.full(len(index), now)
        cfg = self.site.control.outlook
        if rule != "history" or cfg is None or not self.grid_seen:
            return assumed
        tz = self.site.site.timezone
        since = index[0] - pd.Timedelta(days=cfg.history_days)
        seen = [(t, up) for t, up in self.grid_seen if t >= since]
        if not seen:
            return assumed
        hours = pd.DatetimeIndex([t for t, _ in seen]).tz_convert(tz).hour.to_numpy()
        ups = np.array([up for _, up in seen], dtype=float)
        share = {h: float(ups[hours == h].mean()) for h in np.unique(hours)}
        for i, hour in enumerate(index.tz_convert(tz).hour):
            if hour in share:
                assumed[i] = 1.0 if share[hour] >= 0.5 else 0.0
        return assumed

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
    published_outage_now: bool = False,
) -> None:
    """Let the present override a forecast, in place (module docstring).

    ``load`` (kW per tier) and ``alpha`` (grid availability) are per step of ``interval`` from
    now. Step 0's demand of a connected tier becomes the measured demand. A grid measured down
    is down for ``outage_assumed_h`` (at least one step) and, when step 0 is in a ``possible``
    window (``possible``: bool per step, or None), through the rest of that window, whose steps
    are then no longer flagged; a grid of unknown state is down in step 0; a grid measured up
    is up in step 0.

    Except in a published outage (``published_outage_now``: the schedule says ``off`` now, so
    ``alpha`` is 0 from step 0 to its published end, and ``possible`` is given): then the grid is
    down one step beyond the published end (a late return is seen at the next cycle only) and the
    rest of ``outage_assumed_h`` after the end is a ``possible`` outage, whose shadow carries the
    protected tiers (a genset may start for it) instead of energy held in the batteries for an hour
    that mostly never comes.
    """
    first = load.index[0]
    for tier, kw in est.load_kw.items():
        if est.tier_connected.get(tier, True) and tier in load.columns:
            load.loc[first, tier] = kw
    margin = max(1, math.ceil(timedelta(hours=outage_assumed_h) / interval))
    if est.grid_up is False and published_outage_now and possible is not None and alpha.iloc[0] == 0.0:
        back = np.flatnonzero(alpha.to_numpy() > 0.0)
        if len(back):  # the published end is within the horizon
            end = int(back[0])
            alpha.iloc[end] = 0.0
            possible[end + 1 : end + margin] |= alpha.to_numpy()[end + 1 : end + margin] > 0.0
    elif est.grid_up is False:
        down = margin
        if possible is not None and possible[0]:  # the possible outage happened: all of its window
            down = max(down, int(np.argmin(possible)) if not possible.all() else len(possible))
            possible[:down] = False
        alpha.iloc[:down] = 0.0
    elif est.grid_up is None:
        alpha.iloc[0] = 0.0
    else:
        alpha.iloc[0] = 1.0


def late_returns(status: np.ndarray, late_steps: int) -> np.ndarray:
    """Bool per step: a ``possible`` outage, i.e. in a ``possible`` window of the schedule or within
    ``late_steps`` steps after the published end of an outage (a run of ``off``; not ``off`` itself).

    ``status`` is the schedule's status per step (``on``/``off``/``possible``/``unknown``).
    """
    possible = np.asarray(status == "possible", dtype=bool)
    if late_steps <= 0:
        return possible
    off = np.asarray(status == "off", dtype=bool)
    ends = np.flatnonzero(off[:-1] & ~off[1:]) + 1  # the first step after each run of off
    for end in ends:
        stop = min(len(status), end + late_steps)
        possible[end:stop] |= ~off[end:stop]
    return possible


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
