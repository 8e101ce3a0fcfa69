"""Forecast profiles: the CSV a plan is made for (``shared/spec/site-and-profiles.md``).

One row per step, uniform spacing. Every value is the **average over its step**
(step t covers [t0 + tΔ, t0 + (t+1)Δ)). Powers in kW, prices per kWh.

Errors name the file, the line (the header is line 1) and the column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from microgrid.errors import ProfileError
from microgrid.fileio import (
    MAX_MAGNITUDE,
    Problems,
    check_duplicates,
    check_spacing,
    numeric,
    parse_timestamps,
    read_text_frame,
)
from microgrid.site import Site
from microgrid.tariffs import site_prices

__all__ = ["MAX_MAGNITUDE", "Profiles", "profiles_from_frame", "read_profiles"]

_GRID_COLUMNS = ("grid.available", "grid.import_price_per_kwh", "grid.export_price_per_kwh")


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

    def row_at(self, when: pd.Timestamp) -> int:
        """The row whose step covers ``when``; past the last row the profiles repeat from the first (as the
        simulated plant replays them)."""
        elapsed_s = (when - self.index[0]).total_seconds()
        return int(elapsed_s // (self.step_h * 3600)) % self.steps

    def take(self, rows: npt.ArrayLike, index: pd.DatetimeIndex | None = None) -> Profiles:
        """The rows at positions ``rows``, in that order, stamped with ``index`` (default: their own times).
        The one way profiles are cut, repeated or shifted (windows, extensions, outage windows)."""
        positions = np.asarray(rows, dtype=int)
        index = self.index[positions] if index is None else index

        def frame(f: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame(f.to_numpy()[positions], index=index, columns=f.columns)

        def series(v: pd.Series) -> pd.Series:
            return pd.Series(v.to_numpy()[positions], index=index, name=v.name)

        return Profiles(
            index=index,
            step_h=self.step_h,
            load_kw=frame(self.load_kw),
            pv_kw=frame(self.pv_kw),
            grid_available=series(self.grid_available),
            import_price_per_kwh=series(self.import_price_per_kwh),
            export_price_per_kwh=series(self.export_price_per_kwh),
        )


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


def profiles_from_frame(frame: pd.DataFrame, site: Site, source: str = "<profiles>") -> Profiles:
    """Validate a frame of text cells (as read from CSV) against ``site``.

    A frame built in pandas works too: its cells are converted with ``str`` first.
    """
    return _validated(frame, site, Problems(source))


def _validated(frame: pd.DataFrame, site: Site, problems: Problems) -> Profiles:
    frame = frame.astype(str)
    frame.columns = [str(c).strip() for c in frame.columns]
    check_duplicates(list(frame.columns), problems)
    if "timestamp" not in frame.columns:
        problems.add("line 1: no 'timestamp' column")
    for column in frame.columns:
        if column != "timestamp" and (why := _classify(column, site)) is not None:
            problems.add(f"line 1, column {column!r}: {why}")
    problems.raise_if_any()
    index = parse_timestamps(frame["timestamp"], problems)
    step_h = check_spacing(index, problems) if index is not None else None
    values = {
        c: numeric(frame[c], c, problems, lower=0.0 if c.startswith(("load.", "pv.")) else None)
        for c in frame.columns
        if c != "timestamp"
    }
    if "grid.available" in values:
        bad = ~np.isin(values["grid.available"], (0.0, 1.0)) & np.isfinite(values["grid.available"])
        for row in np.flatnonzero(bad):
            problems.add(
                f"{problems.at(int(row))}, column 'grid.available': must be 1 or 0, "
                f"got {frame['grid.available'].iloc[row]!r}"
            )
    problems.raise_if_any()
    assert index is not None and step_h is not None
    _site_prices(index, values, site, problems)
    problems.raise_if_any()
    return _assemble(index, step_h, values, site)


def _site_prices(index: pd.DatetimeIndex, values: dict[str, np.ndarray], site: Site, problems: Problems) -> None:
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
            where = "line 1" if np.isnan(imp).all() else problems.at(first)
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
    problems = Problems(str(path))
    return _validated(read_text_frame(path, problems), site, problems)
