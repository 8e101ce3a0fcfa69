"""Fixtures for the planning tests: the hospital at hourly intervals, for closed loops that run in seconds.

The hospital's control interval is 15 min over a 24 h horizon; a closed-loop test at that
resolution costs ~0.3 s of solving per interval. :func:`hourly_hospital` keeps every asset and
price as shipped but plans hourly over ``horizon_h`` hours, from profiles averaged to hours.
"""

from __future__ import annotations

import pandas as pd
import pytest

from microgrid.planning.scenarios import hospital_winter
from microgrid.profiles import Profiles
from microgrid.site import Site


def hourly(profiles: Profiles) -> Profiles:
    """``profiles`` averaged to 1-hour steps (from their first step)."""
    per_hour = round(1 / profiles.step_h)
    groups = [i // per_hour for i in range(profiles.steps)]
    index = profiles.index[::per_hour]

    def mean(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
        return frame.groupby(groups).mean().set_axis(index)

    return Profiles(
        index=index,
        step_h=1.0,
        load_kw=mean(profiles.load_kw),  # type: ignore[arg-type]
        pv_kw=mean(profiles.pv_kw),  # type: ignore[arg-type]
        grid_available=(mean(profiles.grid_available) >= 0.5).astype(float),  # type: ignore[arg-type]
        import_price_per_kwh=mean(profiles.import_price_per_kwh),  # type: ignore[arg-type]
        export_price_per_kwh=mean(profiles.export_price_per_kwh),  # type: ignore[arg-type]
    )


def hourly_site(site: Site, horizon_h: int = 12, **control: object) -> Site:
    """``site`` planning hourly over ``horizon_h`` hours (gap 0.005, 10 s limit unless ``control`` says)."""
    update = {
        "interval": pd.Timedelta(hours=1).to_pytimedelta(),
        "horizon": pd.Timedelta(hours=horizon_h).to_pytimedelta(),
    }
    update |= {"mip_gap": 0.005, "time_limit_s": 10.0} | control
    return site.model_copy(update={"control": site.control.model_copy(update=update)})


@pytest.fixture(scope="session")
def winter_week() -> tuple[Site, Profiles]:
    """The hospital (hourly, 12 h horizon) and 7 winter days (15-min true profiles, seed 3)."""
    site, profiles = hospital_winter(7, seed=3)
    return hourly_site(site), profiles


@pytest.fixture(scope="session")
def winter_week_hourly(winter_week: tuple[Site, Profiles]) -> tuple[Site, Profiles]:
    """As :func:`winter_week`, with the true profiles averaged to hours."""
    site, profiles = winter_week
    return site, hourly(profiles)
