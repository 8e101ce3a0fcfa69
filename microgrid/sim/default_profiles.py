"""A synthetic day for a site, when the simulator is given no profiles.

15-minute steps from local midnight today. Tier demand follows a day shape (night base, a
daytime plateau, meal-time peaks) sized so that the peak total is about 60 % of the power the
site can supply without the grid (batteries + gensets); more important tiers get the larger
share. PV follows a bell from 07:00 to 19:00 at 60 % of its peak; the grid (if any) follows a
4-hours-on / 4-hours-off outage pattern (off 04-08, 12-16, 20-24 local).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from microgrid.profiles import Profiles, profiles_from_frame
from microgrid.site import Site

__all__ = ["synthetic_day"]


def synthetic_day(site: Site, day: pd.Timestamp | None = None) -> Profiles:
    """Profiles for one synthetic day of ``site`` (see the module docstring)."""
    tz = site.site.timezone
    start = (day or pd.Timestamp.now(tz=tz)).tz_convert(tz).normalize()
    index = pd.date_range(start, periods=96, freq="15min")
    hour = (index.hour + index.minute / 60 + 7.5 / 60).to_numpy()
    shape = 0.55 + 0.35 * np.exp(-0.5 * ((hour - 13) / 3.5) ** 2) + 0.1 * np.exp(-0.5 * ((hour - 19) / 1.0) ** 2)
    supply_kw = sum(b.max_discharge_kw for b in site.batteries) + sum(g.max_kw for g in site.generators)
    peak_kw = 0.6 * (supply_kw or (site.grid.max_import_kw if site.grid else 10.0))
    tiers = sorted(site.loads, key=lambda t: t.priority)
    weights = np.array([1.0 / (1 + i) for i in range(len(tiers))]) if tiers else np.array([])
    frame = pd.DataFrame({"timestamp": [t.isoformat() for t in index]})
    for tier, weight in zip(tiers, weights / weights.sum() if len(weights) else weights, strict=True):
        frame[f"load.{tier.id}"] = (peak_kw * weight * shape).round(1)
    bell = np.sin(np.pi * np.clip((hour - 7) / 12, 0, 1)) ** 1.5
    for array in site.pv:
        frame[f"pv.{array.id}"] = (0.6 * array.peak_kw * bell).round(1)
    if site.grid is not None:
        frame["grid.available"] = ((index.hour // 4) % 2 == 0).astype(int)
        if site.grid.import_price_per_kwh is None:
            frame["grid.import_price_per_kwh"] = 4.32
    return profiles_from_frame(frame, site, "<synthetic day>")
