"""The simulation runs the whole controller: its own forecaster and its schedule logic, against a
schedule as published, with a grid that does not follow it.

The hospital at 15-min intervals (a 6 h horizon, loose gap) over 12 h of a winter day. Published
(at the start): the grid on all day but a `possible` hour 03:00-04:00 local. True: the grid is cut
without notice 06:00-07:30 local.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from microgrid.forecast.schedule import OutageSchedule, Slot
from microgrid.planning.closed_loop import simulate
from microgrid.planning.scenarios import hospital_winter
from tests.planning.conftest import hourly_site


@pytest.mark.slow
def test_emergency_and_possible_windows_run_in_simulation() -> None:
    site, day = hospital_winter(1, seed=2, outages=None)
    site = hourly_site(site, horizon_h=6, interval=timedelta(minutes=15), mip_gap=0.05, time_limit_s=2.0)
    local = day.index.tz_convert(site.site.timezone)
    hour = local.hour + local.minute / 60
    grid = np.where((hour >= 6.0) & (hour < 7.5), 0.0, 1.0)
    profiles = dataclasses.replace(day, grid_available=pd.Series(grid, index=day.index))
    start = profiles.index[0].to_pydatetime()
    possible_at = (local[0].normalize() + pd.Timedelta(hours=3)).tz_convert("UTC").to_pydatetime()
    slots = (
        Slot(start, possible_at, "on"),
        Slot(possible_at, possible_at + timedelta(hours=1), "possible"),
        Slot(possible_at + timedelta(hours=1), start + timedelta(days=2), "on"),
    )
    published = [(start, OutageSchedule("sim", slots, source="test"))]
    result = simulate(site, profiles, days=0.5, published=published)
    i = result.intervals
    local_i = i.index.tz_convert(site.site.timezone)
    at = local_i.hour + local_i.minute / 60
    assert (i.loc[(at >= 1.0) & (at < 3.0), "contingency_windows"] > 0).all()  # the possible hour, planned for
    assert not i.loc[at < 6.0, "emergency"].any()
    assert i.loc[(at >= 6.5) & (at < 7.5), "emergency"].all()  # entered at the cut's second cycle
    assert not i.loc[at >= 9.0, "emergency"].any()  # left an hour after the grid is back (07:30 + 1 h)
    assert i["load.critical.shed_kw"].max() == pytest.approx(0.0, abs=1e-6)
