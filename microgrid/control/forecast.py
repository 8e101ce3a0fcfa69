"""Forecast phase (until the forecasting issue lands): the site's reference day, rolled forward.

For each step of the horizon the reference profiles give the value at the same local time of
day (the reference is a typical day; its date is ignored). Then the present overrides it:

* step 0's demand of a tier whose feeder is closed is the measured demand (persistence);
* a grid measured **down** now is planned down for ``outage_assumed_h`` (default 1 h) and
  then follows the reference; a grid of unknown state is not counted on in step 0;
* a grid measured **up** now is planned up in step 0.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from microgrid.control.estimate import Estimate
from microgrid.profiles import Profiles
from microgrid.site import Site

__all__ = ["rolling_forecast", "time_of_day_rows"]


def time_of_day_rows(reference: Profiles, index: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """For each time of ``index``, the row of ``reference`` at the same local time of day (``tz``)."""
    ref_local = reference.index.tz_convert(tz)
    ref_minutes = (ref_local.hour * 60 + ref_local.minute).to_numpy()
    order = np.argsort(ref_minutes, kind="stable")
    local = index.tz_convert(tz)
    minutes = (local.hour * 60 + local.minute).to_numpy()
    position = np.searchsorted(ref_minutes[order], minutes, side="right") - 1
    return order[np.mod(position, len(order))]


def rolling_forecast(
    site: Site,
    reference: Profiles,
    start: datetime,
    *,
    est: Estimate | None = None,
    outage_assumed_h: float = 1.0,
) -> Profiles:
    """Profiles for ``site.control.horizon`` from ``start`` in steps of ``site.control.interval``."""
    step = site.control.interval
    steps = round(site.control.horizon / step)
    index = pd.date_range(pd.Timestamp(start).tz_convert("UTC"), periods=steps, freq=pd.Timedelta(step))
    rows = time_of_day_rows(reference, index, site.site.timezone)
    load = reference.load_kw.iloc[rows].set_axis(index)
    alpha = reference.grid_available.iloc[rows].set_axis(index).astype(float)
    if est is not None:
        for tier, kw in est.load_kw.items():
            if est.tier_connected.get(tier, True) and tier in load.columns:
                load.loc[index[0], tier] = kw
        if est.grid_up is False:
            down_steps = max(1, math.ceil(timedelta(hours=outage_assumed_h) / step))
            alpha.iloc[:down_steps] = 0.0
        elif est.grid_up is None:
            alpha.iloc[0] = 0.0
        else:
            alpha.iloc[0] = 1.0
    return Profiles(
        index=index,
        step_h=step / timedelta(hours=1),
        load_kw=load,
        pv_kw=reference.pv_kw.iloc[rows].set_axis(index),
        grid_available=alpha,
        import_price_per_kwh=reference.import_price_per_kwh.iloc[rows].set_axis(index),
        export_price_per_kwh=reference.export_price_per_kwh.iloc[rows].set_axis(index),
    )
