"""Looking up the site's reference profiles for the steps of a horizon.

The reference is either a **typical day** (the sample days in ``data/``: its date is ignored
and each step takes the value at the same local time of day) or a **period** that covers the
horizon (a planner's month of profiles: each step takes the row at its own timestamp).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from microgrid.profiles import Profiles

__all__ = ["reference_rows", "time_of_day_rows"]


def time_of_day_rows(reference: Profiles, index: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """For each time of ``index``, the row of ``reference`` at the same local time of day (``tz``).

    DST-safe: matching is on local wall-clock minutes, so 08:00 maps to 08:00 on 23 h and 25 h
    days; a local time the reference lacks takes the latest earlier row (wrapping midnight).
    """
    ref_local = reference.index.tz_convert(tz)
    ref_minutes = (ref_local.hour * 60 + ref_local.minute).to_numpy()
    order = np.argsort(ref_minutes, kind="stable")
    local = index.tz_convert(tz)
    minutes = (local.hour * 60 + local.minute).to_numpy()
    position = np.searchsorted(ref_minutes[order], minutes, side="right") - 1
    return np.asarray(order[np.mod(position, len(order))])


def reference_rows(reference: Profiles, index: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """Rows of ``reference`` for ``index``: by timestamp when it covers every step, else by time of day."""
    positions = reference.index.get_indexer(index)
    if len(positions) and (positions >= 0).all():
        return np.asarray(positions)
    return time_of_day_rows(reference, index, tz)
