"""Grid prices per step: time-of-use tariff zones and price files (issue 5, item 7).

Import price of a step, first that applies:

1. the profiles' ``grid.import_price_per_kwh`` column (the spec's override);
2. the site's ``grid.price_file``: a CSV of ``timestamp`` (ISO 8601 with UTC offset) and
   ``import_price_per_kwh`` [, ``export_price_per_kwh``]; each row's price holds from its
   timestamp until the next row's (a step function, as day-ahead prices are published), and
   the last row's price holds for one more of the file's own spacing; a step outside the file
   falls through to the next rule;
3. the ``grid.tariff`` zone covering the step's **local** start time (zones in the site's
   timezone, so a two-zone day/night tariff follows the clock across DST changes);
4. the constant ``grid.import_price_per_kwh``.

Export prices follow the same order (a zone without ``export_price_per_kwh`` and a file
without that column fall through to the grid's constant ``export_price_per_kwh``).
Prices are in the site's currency per kWh.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from microgrid.fileio import Problems, numeric, parse_timestamps, read_text_frame
from microgrid.site import Site

__all__ = ["PriceSeries", "read_price_file", "site_prices"]

_COLUMNS = ("timestamp", "import_price_per_kwh", "export_price_per_kwh")


@dataclass(frozen=True)
class PriceSeries:
    """Prices from a price file: step starts (UTC) and the price holding from each [currency/kWh]."""

    starts: pd.DatetimeIndex
    ends: pd.DatetimeIndex
    import_price_per_kwh: np.ndarray
    export_price_per_kwh: np.ndarray | None

    def lookup(self, index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray | None]:
        """Prices at the times of ``index`` (NaN where the file does not cover them)."""
        at = index.as_unit("ns").asi8
        position = np.searchsorted(self.starts.as_unit("ns").asi8, at, side="right") - 1
        inside = (position >= 0) & (at < self.ends.as_unit("ns").asi8[np.clip(position, 0, None)])
        safe = np.clip(position, 0, None)
        imp = np.where(inside, self.import_price_per_kwh[safe], np.nan)
        exp = None if self.export_price_per_kwh is None else np.where(inside, self.export_price_per_kwh[safe], np.nan)
        return imp, exp


def read_price_file(path: str | Path) -> PriceSeries:
    """Read a price CSV (module docstring); raise :class:`~microgrid.errors.ProfileError` naming line and column
    (:mod:`microgrid.fileio`: the same checks and messages as a profile's)."""
    problems = Problems(str(path))
    frame = read_text_frame(Path(path), problems, comments=True)
    unknown = [c for c in frame.columns if c not in _COLUMNS]
    missing = [c for c in _COLUMNS[:2] if c not in frame.columns]
    for column in unknown:
        problems.add(f"line 1, column {column!r}: unknown column (expected {', '.join(_COLUMNS)})")
    for column in missing:
        problems.add(f"line 1: required column {column!r} is missing")
    if frame.empty:
        problems.add("no price rows")
    problems.raise_if_any()
    starts = parse_timestamps(frame["timestamp"], problems)
    imp = numeric(frame["import_price_per_kwh"], "import_price_per_kwh", problems, lower=None)
    exp = None
    if "export_price_per_kwh" in frame:
        exp = numeric(frame["export_price_per_kwh"], "export_price_per_kwh", problems, lower=None)
    if starts is not None:
        for row in np.flatnonzero(np.diff(starts.as_unit("ns").asi8) <= 0):
            problems.add(f"{problems.at(int(row) + 1)}, column 'timestamp': must be later than the row before")
    problems.raise_if_any()
    assert starts is not None
    starts = starts.as_unit("ns")
    last = pd.Timedelta(int(np.min(np.diff(starts.asi8))), "ns") if len(starts) > 1 else pd.Timedelta(hours=1)
    ends = pd.DatetimeIndex([*starts[1:], starts[-1] + last])
    return PriceSeries(starts, ends, imp, exp)


def _tariff(site: Site, index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray] | None:
    grid = site.grid
    if grid is None or not grid.tariff:
        return None
    local = index.tz_convert(site.site.timezone)
    minutes = (local.hour * 60 + local.minute).to_numpy()
    imp = np.full(len(index), np.nan)
    exp = np.full(len(index), grid.export_price_per_kwh)
    for zone in grid.tariff:
        inside = np.fromiter((zone.covers(int(m)) for m in minutes), dtype=bool, count=len(minutes))
        imp[inside] = zone.import_price_per_kwh
        if zone.export_price_per_kwh is not None:
            exp[inside] = zone.export_price_per_kwh
    return imp, exp


def site_prices(
    site: Site, index: pd.DatetimeIndex, *, prices: PriceSeries | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Import and export price per step of ``index`` from the site file (rules 2-4 of the module docstring).

    ``prices`` is the site's price file already read (read here from ``grid.price_file`` when
    None). An import price no rule gives is NaN: callers that need one report it.
    """
    n = len(index)
    grid = site.grid
    if grid is None:
        return np.zeros(n), np.zeros(n)
    imp = np.full(n, np.nan if grid.import_price_per_kwh is None else grid.import_price_per_kwh)
    exp = np.full(n, grid.export_price_per_kwh)
    if (zoned := _tariff(site, index)) is not None:
        imp, exp = zoned
    if prices is None and grid.price_file is not None:
        prices = read_price_file(site.resolve(grid.price_file))
    if prices is not None:
        file_imp, file_exp = prices.lookup(index)
        imp = np.where(np.isnan(file_imp), imp, file_imp)
        if file_exp is not None:
            exp = np.where(np.isnan(file_exp), exp, file_exp)
    return imp, exp
