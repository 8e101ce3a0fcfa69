"""Forecast profiles: the CSV a plan is made for (``shared/spec/site-and-profiles.md``).

One row per step, uniform spacing. Every value is the **average over its step**
(step t covers [t0 + tΔ, t0 + (t+1)Δ)). Powers in kW, prices per kWh.

Errors name the file, the line (the header is line 1) and the column.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from microgrid.errors import ProfileError
from microgrid.site import Site
from microgrid.tariffs import site_prices

__all__ = ["Profiles", "profiles_from_frame", "read_profiles"]

_MAX_LISTED = 25
_GRID_COLUMNS = ("grid.available", "grid.import_price_per_kwh", "grid.export_price_per_kwh")
_EARLIEST, _LATEST = datetime(1678, 1, 1, tzinfo=UTC), datetime(2262, 1, 1, tzinfo=UTC)  # pandas' ns range


@dataclass(frozen=True)
class Profiles:
    """Validated forecast for T steps of ``step_h`` hours.

    Attributes
    ----------
    index
        Step start times, tz-aware UTC.
    step_h
        Step length Δ [h].
    load_kw
        Demand per load tier [kW], one column per tier of the site (0 where absent).
    pv_kw
        Available PV power per array [kW], one column per array (0 where absent).
    grid_available
        1 when the grid is up during the step, 0 during an outage.
    import_price_per_kwh, export_price_per_kwh
        Grid prices per step [currency/kWh]; zeros for a site without grid.
    """

    index: pd.DatetimeIndex
    step_h: float
    load_kw: pd.DataFrame
    pv_kw: pd.DataFrame
    grid_available: pd.Series
    import_price_per_kwh: pd.Series
    export_price_per_kwh: pd.Series

    @property
    def steps(self) -> int:
        """Number of steps T."""
        return len(self.index)


class _Problems:
    """Collects problems; raises them all at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def fail(self, message: str) -> NoReturn:
        self.items.append(message)
        self.raise_if_any()
        raise AssertionError("unreachable")  # pragma: no cover

    def raise_if_any(self) -> None:
        if self.items:
            shown = self.items[:_MAX_LISTED]
            if len(self.items) > _MAX_LISTED:
                shown.append(f"... and {len(self.items) - _MAX_LISTED} more")
            raise ProfileError(self.source, shown, total=len(self.items))


def _line(row: int) -> str:
    return f"line {row + 2}"  # row 0 is on line 2, after the header


def _parse_timestamps(raw: pd.Series, problems: _Problems) -> pd.DatetimeIndex | None:
    stamps: list[datetime] = []
    for row, text in enumerate(raw):
        try:
            stamp = datetime.fromisoformat(text.strip())
        except ValueError:
            problems.add(f"{_line(row)}, column 'timestamp': not an ISO 8601 time, got {text!r}")
            continue
        if stamp.tzinfo is None or stamp.utcoffset() is None:
            problems.add(f"{_line(row)}, column 'timestamp': needs a UTC offset (e.g. +02:00), got {text!r}")
            continue
        if not _EARLIEST <= stamp <= _LATEST:
            problems.add(f"{_line(row)}, column 'timestamp': must lie in the years 1678-2261, got {text!r}")
            continue
        stamps.append(stamp)
    if len(stamps) != len(raw):
        return None
    return pd.DatetimeIndex(pd.to_datetime(stamps, utc=True))


def _check_spacing(index: pd.DatetimeIndex, problems: _Problems) -> float | None:
    if len(index) < 2:
        problems.add(f"needs at least 2 rows to define the step length, got {len(index)}")
        return None
    deltas = np.diff(index.as_unit("ns").asi8)
    step_ns = int(deltas[0])
    if step_ns <= 0:
        problems.add(f"{_line(1)}, column 'timestamp': times must increase, got {index[1]} after {index[0]}")
        return None
    for row in np.flatnonzero(deltas != step_ns):
        got = timedelta(microseconds=int(deltas[row]) / 1000)
        problems.add(
            f"{_line(int(row) + 1)}, column 'timestamp': steps must be uniform "
            f"({timedelta(microseconds=step_ns / 1000)}), got {got} after the previous row"
        )
    return step_ns / 3.6e12


MAX_MAGNITUDE = 1e9
"""No power [kW] or price [currency/kWh] in a profile is beyond this (1 TW): a 1e308 kW load reached
HiGHS, whose numerics then failed ("HiGHS failed", exit 3) instead of the cell being named."""


def _numeric(raw: pd.Series, column: str, problems: _Problems, *, lower: float | None) -> np.ndarray:
    values = pd.to_numeric(raw.str.strip(), errors="coerce").to_numpy(dtype=float)
    for row in np.flatnonzero(~np.isfinite(values)):
        problems.add(f"{_line(int(row))}, column {column!r}: not a finite number, got {raw.iloc[row]!r}")
    if lower is not None:
        for row in np.flatnonzero(values < lower):
            problems.add(f"{_line(int(row))}, column {column!r}: must be ≥ {lower:g}, got {raw.iloc[row]!r}")
    for row in np.flatnonzero(np.isfinite(values) & (np.abs(values) > MAX_MAGNITUDE)):
        problems.add(
            f"{_line(int(row))}, column {column!r}: beyond ±{MAX_MAGNITUDE:g}, not a plausible kW or price, "
            f"got {raw.iloc[row]!r}"
        )
    return values


def _classify(column: str, site: Site) -> str | None:
    """Return the problem with a column name, or None when it names an asset of the site."""
    kind, _, asset = column.partition(".")
    if column in _GRID_COLUMNS:
        return None if site.grid is not None else "names the grid, but the site has no grid section"
    if kind == "load":
        ok = asset in {t.id for t in site.loads}
        return None if ok else f"names no load tier of the site ({', '.join(t.id for t in site.loads)})"
    if kind == "pv":
        ok = asset in {a.id for a in site.pv}
        return None if ok else f"names no PV array of the site ({', '.join(a.id for a in site.pv) or 'none'})"
    return "is not a profile column (timestamp, load.<tier>, pv.<array>, grid.*)"


def _read_text_frame(path: Path, problems: _Problems) -> pd.DataFrame:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.fail(f"cannot read file: {exc}")
    try:
        rows = csv.reader(io.StringIO(text), skipinitialspace=True)  # as pandas reads it below
        header = [c.strip() for c in next(rows, [])]
        if not header:
            problems.fail("line 1: empty; the header (column names) must be on line 1")
        _check_duplicates(header, problems)
        for cells in rows:  # a row with an extra cell would make pandas shift the row into an index
            if cells and len(cells) != len(header):
                problems.add(f"line {rows.line_num}: {len(cells)} cells, but the header has {len(header)}")
    except csv.Error as exc:
        problems.fail(f"not a readable CSV: {exc}")
    problems.raise_if_any()
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        problems.fail(f"not a readable CSV: {exc}")


def _check_duplicates(columns: list[str], problems: _Problems) -> None:
    for column in sorted({c for c in columns if columns.count(c) > 1}):
        problems.add(f"line 1: column {column!r} appears more than once")


def profiles_from_frame(frame: pd.DataFrame, site: Site, source: str = "<profiles>") -> Profiles:
    """Validate a frame of text cells (as read from CSV) against ``site``.

    A frame built in pandas works too: its cells are converted with ``str`` first.
    """
    problems = _Problems(source)
    frame = frame.astype(str)
    frame.columns = [str(c).strip() for c in frame.columns]
    _check_duplicates(list(frame.columns), problems)
    if "timestamp" not in frame.columns:
        problems.add("line 1: no 'timestamp' column")
    for column in frame.columns:
        if column != "timestamp" and (why := _classify(column, site)) is not None:
            problems.add(f"line 1, column {column!r}: {why}")
    problems.raise_if_any()
    index = _parse_timestamps(frame["timestamp"], problems)
    step_h = _check_spacing(index, problems) if index is not None else None
    values = {
        c: _numeric(frame[c], c, problems, lower=0.0 if c.startswith(("load.", "pv.")) else None)
        for c in frame.columns
        if c != "timestamp"
    }
    if "grid.available" in values:
        bad = ~np.isin(values["grid.available"], (0.0, 1.0)) & np.isfinite(values["grid.available"])
        for row in np.flatnonzero(bad):
            problems.add(
                f"{_line(int(row))}, column 'grid.available': must be 1 or 0, got {frame['grid.available'].iloc[row]!r}"
            )
    problems.raise_if_any()
    assert index is not None and step_h is not None
    _site_prices(index, values, site, problems)
    problems.raise_if_any()
    return _assemble(index, step_h, values, site)


def _site_prices(index: pd.DatetimeIndex, values: dict[str, np.ndarray], site: Site, problems: _Problems) -> None:
    """Fill the price columns the profiles lack from the site's price file, tariff or constants."""
    if site.grid is None or ("grid.import_price_per_kwh" in values and "grid.export_price_per_kwh" in values):
        return
    try:
        imp, exp = site_prices(site, index)
    except ProfileError as exc:
        problems.add(f"the site's price file {exc.source}: " + "; ".join(exc.problems))
        return
    values.setdefault("grid.export_price_per_kwh", exp)
    if "grid.import_price_per_kwh" not in values:
        if np.isnan(imp).any():
            first = int(np.flatnonzero(np.isnan(imp))[0])
            where = "line 1" if np.isnan(imp).all() else _line(first)
            problems.add(
                f"{where}: no 'grid.import_price_per_kwh' column and no price from the site "
                "(import_price_per_kwh, tariff or price_file)"
            )
        values["grid.import_price_per_kwh"] = imp


def _assemble(index: pd.DatetimeIndex, step_h: float, values: dict[str, np.ndarray], site: Site) -> Profiles:
    zeros = np.zeros(len(index))

    def column(name: str, default: float) -> np.ndarray:
        return values.get(name, np.full(len(index), default))

    grid = site.grid
    return Profiles(
        index=index,
        step_h=step_h,
        load_kw=pd.DataFrame({t.id: column(f"load.{t.id}", 0.0) for t in site.loads}, index=index),
        pv_kw=pd.DataFrame({a.id: column(f"pv.{a.id}", 0.0) for a in site.pv}, index=index),
        grid_available=pd.Series(column("grid.available", 1.0) if grid else zeros, index=index),
        import_price_per_kwh=pd.Series(
            column("grid.import_price_per_kwh", grid.import_price_per_kwh or 0.0) if grid else zeros, index=index
        ),
        export_price_per_kwh=pd.Series(
            column("grid.export_price_per_kwh", grid.export_price_per_kwh) if grid else zeros, index=index
        ),
    )


def read_profiles(path: str | Path, site: Site) -> Profiles:
    """Read and validate a profiles CSV for ``site``.

    Raises
    ------
    ProfileError
        Naming the file and, for each problem, the line and column.
    """
    path = Path(path)
    problems = _Problems(str(path))
    frame = _read_text_frame(path, problems)
    return profiles_from_frame(frame, site, str(path))
