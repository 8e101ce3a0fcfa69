"""Measured history for the forecasts, read from the store's telemetry (read-only).

What the controller records each cycle (``microgrid.control.recording``): every point read
from every device, as ``telemetry`` rows (``cycle_id``, ``ts`` = read time UTC, ``device``,
``point``, ``value``, ``quality``). The forecasts use:

* **load per tier**: ``feeder_<n>_power_kw`` of the device whose ``feeders`` map names the
  tier (positive = consumption). A sample taken while ``feeder_<n>_closed`` reads 0 (the tier
  is shed) is not demand and becomes NaN.
* **PV per array**: ``available_power_kw`` of the device bound to the array (what it could
  deliver: not lowered by curtailment), else ``pv_power_kw`` unless ``operating_state`` says
  ``curtailed`` (3).

Only samples of quality ``ok`` or ``stale`` count. Each sample is one instantaneous reading
per cycle, not a step average: the forecasts average them onto their steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from microgrid.point_names import AVAILABLE_POWER_KW, OPERATING_STATE, PV_POWER_KW, feeder_closed, feeder_power_kw
from microgrid.site import Site
from microgrid.store import Store

__all__ = ["load_history", "pv_history"]

_GOOD = ("ok", "stale")
_CURTAILED = 3.0


@contextmanager
def _opened(store_or_path: Store | str | Path) -> Iterator[Store]:
    if isinstance(store_or_path, Store):
        yield store_or_path
        return
    store = Store(store_or_path, readonly=True)
    try:
        yield store
    finally:
        store.close()


def _points(store: Store, device: str, since: datetime, until: datetime) -> pd.DataFrame:
    """A device's good numeric samples as one row per cycle (index: first read time, UTC), one column per point."""
    rows = store.telemetry(since, until, device=device)
    if rows.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))
    rows = rows[rows["quality"].isin(_GOOD) & rows["value"].notna()]
    key = rows["cycle_id"].astype("string").fillna(rows["ts"].astype("string"))
    rows = rows.assign(key=key)
    times = rows.groupby("key")["ts"].min()
    table = rows.pivot_table(index="key", columns="point", values="value", aggfunc="last")
    table.index = pd.DatetimeIndex(times.reindex(table.index))
    return table.sort_index()


def _frame(parts: dict[str, pd.Series], columns: list[str]) -> pd.DataFrame:
    """The series side by side (union of their read times), one column per id, sorted by time."""
    if not parts:
        return pd.DataFrame(columns=columns, index=pd.DatetimeIndex([], tz="UTC", name="ts"), dtype=float)
    frame = pd.DataFrame(parts).reindex(columns=columns).sort_index().astype(float)
    return frame.rename_axis("ts")


def _column(table: pd.DataFrame, point: str) -> pd.Series:
    return table[point] if point in table.columns else pd.Series(np.nan, index=table.index)


def load_history(store_or_path: Store | str | Path, site: Site, since: datetime, until: datetime) -> pd.DataFrame:
    """Measured demand per tier [kW] in ``since <= ts < until`` (tz-aware), one row per cycle.

    Returns
    -------
    pandas.DataFrame
        Index: read time (UTC); one column per load tier of ``site``; NaN where the tier was
        shed, not read, or of bad quality.
    """
    tiers = [t.id for t in site.loads]
    parts: dict[str, pd.Series] = {}  # a tier fed by two devices: the first one
    with _opened(store_or_path) as store:
        for binding in site.devices:
            if not binding.feeders:
                continue
            table = _points(store, binding.id, since, until)
            for tier, number in binding.feeders.items():
                power = _column(table, feeder_power_kw(number))
                shed = _column(table, feeder_closed(number)) == 0
                parts.setdefault(tier, power.where(~shed).clip(lower=0))
    return _frame(parts, tiers)


def pv_history(store_or_path: Store | str | Path, site: Site, since: datetime, until: datetime) -> pd.DataFrame:
    """Measured available PV power per array [kW] in ``since <= ts < until`` (tz-aware), one row per cycle.

    Returns
    -------
    pandas.DataFrame
        Index: read time (UTC); one column per PV array of ``site``; NaN where unknown
        (not read, bad quality, or curtailed without an available-power reading).
    """
    arrays = [a.id for a in site.pv]
    parts: dict[str, pd.Series] = {}
    with _opened(store_or_path) as store:
        for binding in site.devices:
            if binding.asset is None or binding.asset not in arrays:
                continue
            table = _points(store, binding.id, since, until)
            delivered = _column(table, PV_POWER_KW).where(_column(table, OPERATING_STATE) != _CURTAILED)
            available = _column(table, AVAILABLE_POWER_KW).fillna(delivered)
            parts.setdefault(binding.asset, available.clip(lower=0))
    return _frame(parts, arrays)
