"""PV forecast per array: pvlib clear-sky power scaled by the persisted clear-sky index, or a file.

Every value is the **average available AC power over its step** [kW, ≥ 0], step t covering
[t, t + Δ) (UTC step starts). Works offline: pvlib's Ineichen model takes its Linke turbidity
from the table bundled with pvlib (``pvlib/data/LinkeTurbidities.h5``), nothing is downloaded.

Clear-sky power of an array (:func:`clear_sky_kw`)::

    P_clear = peak_kw × POA_clear / 1000 W/m² × (1 − loss_fraction)

with POA_clear the plane-of-array irradiance [W/m²] of the Ineichen clear sky at the site's
``location`` (solar position by pvlib, Hay-Davies sky diffuse, ground albedo 0.2) on the
array's tilt and azimuth, averaged over each step from samples every ≤ 5 min (at the
midpoints of equal sub-steps). PVWatts-like: cell temperature, incidence-angle and spectral
effects are not modelled (they lump into ``loss_fraction``; cold winter panels do a few
percent better, hot summer ones some 10 % worse).

Forecast (:func:`pv_forecast`), by ``site.forecast.pv``:

* ``clear-sky`` (``auto`` when the site has a ``location``): P_clear × k(t). The clear-sky
  index k is measured / clear-sky energy over daylight steps (:func:`clear_sky_index`): k_now
  over the last ``window_h`` hours of daylight measured, k_long over the last ``long_days``
  days (7: a local climatology of the season), ``default_index`` (1) without any. It relaxes::

      k(t) = k_long + (k_now − k_long) × 2 ** (-lead_h / relax_halflife_h)

  lead_h counted from the last daylight step measured, so a forecast made at night starts
  mostly from k_long.
* ``reference``: the reference's PV (:func:`~microgrid.forecast.reference.reference_rows`: at
  the step's own time when the reference covers the horizon, else the reference day's value
  at the same local time of day).

Where an external forecast (:func:`read_pv_forecast`) covers a step fully, it wins. The result
is clipped to [0, peak_kw].
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib

from microgrid.errors import ConfigError
from microgrid.fileio import Problems, check_spacing, numeric, parse_timestamps, read_text_frame
from microgrid.forecast.load import infer_step, on_grid
from microgrid.forecast.reference import reference_rows
from microgrid.profiles import Profiles
from microgrid.site import Site

__all__ = ["clear_sky_index", "clear_sky_kw", "pv_forecast", "pv_mode", "read_pv_forecast"]

_SAMPLE = pd.Timedelta(minutes=5)
_ALBEDO = 0.2
_MAX_INDEX = 1.2


def _substep_times(index: pd.DatetimeIndex, step: pd.Timedelta) -> tuple[pd.DatetimeIndex, int]:
    """Midpoints of ``n`` equal sub-steps of each step (n = step / 5 min, rounded up), flattened."""
    n = max(1, math.ceil(step / _SAMPLE))
    offsets = (np.arange(n) + 0.5) * (step.value / n)
    flat = index.as_unit("ns").asi8[:, None] + offsets[None, :].astype(np.int64)
    return pd.DatetimeIndex(pd.to_datetime(flat.ravel(), utc=True)), n


def clear_sky_kw(site: Site, index: pd.DatetimeIndex, *, step: pd.Timedelta | None = None) -> pd.DataFrame:
    """Clear-sky AC power of each array, averaged over each step [kW] (model: module docstring).

    Parameters
    ----------
    site
        Needs a ``location``; its ``pv`` arrays give peak_kw, tilt_deg, azimuth_deg, loss_fraction.
    index
        Step starts (tz-aware).
    step
        Step length; default inferred from ``index``.

    Returns
    -------
    pandas.DataFrame
        Index ``index`` (UTC), one column per array id [kW, ≥ 0].
    """
    if site.location is None:
        raise ConfigError("<site>", ["location: the clear-sky PV forecast needs the site's latitude and longitude"])
    index = pd.DatetimeIndex(index).tz_convert("UTC")
    ids = [a.id for a in site.pv]
    if len(index) == 0:
        return pd.DataFrame(columns=ids, index=index, dtype=float)
    step = step if step is not None else infer_step(index)
    memo = _memo(site, step)
    keys = index.as_unit("ns").asi8
    missing = np.array([k not in memo for k in keys.tolist()], dtype=bool)
    if missing.any():
        wanted = pd.DatetimeIndex(index[missing].append(_ahead(index[-1], step, memo)))
        fresh = _clear_sky(site, wanted, step)
        memo.update(zip(wanted.as_unit("ns").asi8.tolist(), fresh, strict=True))
    return pd.DataFrame(np.array([memo[k] for k in keys.tolist()]), index=index, columns=ids)


_AHEAD = pd.Timedelta(days=2)
"""How far past the last step asked for a miss also computes (the next cycles' horizons end there)."""


def _ahead(last: pd.Timestamp, step: pd.Timedelta, memo: dict[int, np.ndarray]) -> pd.DatetimeIndex:
    """The steps of ``step`` in (``last``, ``last`` + :data:`_AHEAD`] not yet in ``memo``.

    A rolling horizon moves by one step a cycle: one new step, and pvlib costs ≈ 11 ms however few the
    steps (≈ 22 ms for ten days of 15-min steps). Computed ahead, a miss comes once in two days. A
    step's value does not depend on the steps computed with it (pvlib's model is element by element:
    ``tests/forecast/test_clear_sky_ahead.py`` checks it bit for bit), so the values are the same.
    """
    steps = pd.date_range(last + step, periods=max(1, int(_AHEAD / step)), freq=step)
    keys = steps.as_unit("ns").asi8.tolist()
    return steps[np.array([k not in memo for k in keys], dtype=bool)]


_MEMO: dict[tuple[object, ...], dict[int, np.ndarray]] = {}
_MEMO_MAX_STEPS = 200_000


def _memo(site: Site, step: pd.Timedelta) -> dict[int, np.ndarray]:
    """Clear-sky values already computed for this location, these arrays and this step length (a
    controller asks for the same steps every cycle; the values never change)."""
    arrays = tuple((a.id, a.peak_kw, a.tilt_deg, a.azimuth_deg, a.loss_fraction) for a in site.pv)
    key = (site.location, arrays, step.value)
    if sum(len(m) for m in _MEMO.values()) > _MEMO_MAX_STEPS:
        _MEMO.clear()
    return _MEMO.setdefault(key, {})


def _clear_sky(site: Site, index: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    """Clear-sky kW per step (rows) and array (columns), computed with pvlib."""
    assert site.location is not None
    times, n = _substep_times(index, step)
    loc = site.location
    place = pvlib.location.Location(loc.latitude, loc.longitude, tz="UTC", altitude=loc.altitude_m)
    with warnings.catch_warnings():  # pvlib 0.13 still uses DatetimeIndex.dayofyear, deprecated in pandas 3
        warnings.filterwarnings("ignore", message=r".*dayofyear is deprecated")
        sun = place.get_solarposition(times)
        sky = place.get_clearsky(times, model="ineichen", solar_position=sun)
        dni_extra = pvlib.irradiance.get_extra_radiation(times)
    columns = []
    for array in site.pv:
        poa = pvlib.irradiance.get_total_irradiance(
            array.tilt_deg, array.azimuth_deg, sun["apparent_zenith"], sun["azimuth"],
            sky["dni"], sky["ghi"], sky["dhi"], dni_extra=dni_extra, model="haydavies", albedo=_ALBEDO,
        )["poa_global"]  # fmt: skip
        watts = np.clip(np.nan_to_num(poa.to_numpy(dtype=float)), 0.0, None)
        kw = array.peak_kw * watts / 1000.0 * (1.0 - array.loss_fraction)
        columns.append(kw.reshape(len(index), n).mean(axis=1))
    return np.column_stack(columns) if columns else np.zeros((len(index), 0))


def _daylight(measured: pd.Series, clear: pd.Series, min_clear_kw: float) -> pd.Series:
    """The steps with a measurement and a clear-sky power above ``min_clear_kw`` (True/False)."""
    clear = clear.reindex(measured.index)
    return measured.notna() & (clear > min_clear_kw)


def clear_sky_index(
    measured_kw: pd.DataFrame,
    clear_kw: pd.DataFrame,
    *,
    window_h: float = 2.0,
    min_clear_kw: float | Mapping[str, float] = 1.0,
) -> dict[str, float | None]:
    """Measured / clear-sky energy of each array over its last ``window_h`` hours of daylight.

    Parameters
    ----------
    measured_kw
        Measured (available) PV power per array [kW], step averages on a regular UTC grid; NaN = unknown.
    clear_kw
        Clear-sky power per array on the same steps [kW] (:func:`clear_sky_kw`).
    window_h
        Hours of daylight counted back from the last daylight step measured [h]; ``math.inf`` = all.
    min_clear_kw
        Steps whose clear-sky power is at most this [kW] count as night (per array id, or one value).

    Returns
    -------
    dict
        Array id → index in [0, 1.2], or None when no daylight step was measured.
    """
    result: dict[str, float | None] = {}
    for array in clear_kw.columns:
        if array not in measured_kw.columns:
            result[str(array)] = None
            continue
        limit = min_clear_kw.get(str(array), 1.0) if isinstance(min_clear_kw, Mapping) else min_clear_kw
        measured, clear = measured_kw[array], clear_kw[array].reindex(measured_kw.index)
        day = _daylight(measured, clear, limit)
        if not day.any():
            result[str(array)] = None
            continue
        last = measured.index[day.to_numpy()][-1]
        if math.isfinite(window_h):
            gaps = np.diff(pd.DatetimeIndex(measured.index).as_unit("ns").asi8)
            step = pd.Timedelta(int(np.median(gaps)) if len(gaps) else 0, unit="ns")
            day &= measured.index > last + step - pd.Timedelta(hours=window_h)
        ratio = float(measured[day].clip(lower=0).sum() / clear[day].sum())
        result[str(array)] = min(max(ratio, 0.0), _MAX_INDEX)
    return result


def pv_mode(site: Site) -> str:
    """``clear-sky`` or ``reference``: ``site.forecast.pv`` with ``auto`` resolved by ``site.location``."""
    mode = site.forecast.pv
    if mode == "auto":
        return "clear-sky" if site.location is not None else "reference"
    return mode


def _index_path(
    site: Site,
    index: pd.DatetimeIndex,
    measured_kw: pd.DataFrame | None,
    *,
    window_h: float,
    relax_halflife_h: float,
    default_index: float,
    long_days: float,
) -> np.ndarray:
    """The clear-sky index of each array for each step (steps × arrays), relaxing from k_now to k_long."""
    ids = [a.id for a in site.pv]
    path = np.full((len(index), len(ids)), default_index)
    if measured_kw is None or measured_kw.empty:
        return path
    step = infer_step(index)
    grid = on_grid(measured_kw, ids, step, index[0], index[0] - pd.Timedelta(days=long_days))
    if not grid.notna().to_numpy().any():
        return path
    clear = clear_sky_kw(site, pd.DatetimeIndex(grid.index), step=step)
    night = {a.id: 0.05 * a.peak_kw for a in site.pv}
    now = clear_sky_index(grid, clear, window_h=window_h, min_clear_kw=night)
    long = clear_sky_index(grid, clear, window_h=math.inf, min_clear_kw=night)
    for j, array in enumerate(ids):
        k_seen, k_now = long.get(array), now.get(array)
        k_long = default_index if k_seen is None else k_seen
        if k_now is None:
            path[:, j] = k_long
            continue
        day = _daylight(grid[array], clear[array], night[array])
        lead_h = ((index - grid.index[day.to_numpy()][-1]) / pd.Timedelta(hours=1)).to_numpy(dtype=float)
        path[:, j] = k_long + (k_now - k_long) * np.exp2(-lead_h / relax_halflife_h)
    return path


def _file_cover(file_kw: pd.DataFrame, index: pd.DatetimeIndex, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Step averages of the file's rows over each step of ``index`` and where they cover it fully (steps × arrays)."""
    step = infer_step(index)
    f_index = pd.DatetimeIndex(file_kw.index).tz_convert("UTC")
    f_step = infer_step(f_index) if len(f_index) > 1 else step
    starts, ends = index.as_unit("ns").asi8, (index + step).as_unit("ns").asi8
    f_starts, f_ends = f_index.as_unit("ns").asi8, (f_index + f_step).as_unit("ns").asi8
    overlap = np.clip(
        np.minimum(ends[:, None], f_ends[None, :]) - np.maximum(starts[:, None], f_starts[None, :]), 0, None
    )
    values = file_kw.reindex(columns=ids).to_numpy(dtype=float)
    known = np.isfinite(values)
    share = overlap.astype(float) / float(step.value)
    covered = share @ known.astype(float) >= 1.0 - 1e-9
    mean = share @ np.where(known, values, 0.0)
    return mean, covered


def pv_forecast(
    site: Site,
    index: pd.DatetimeIndex,
    *,
    reference: Profiles | None = None,
    measured_kw: pd.DataFrame | None = None,
    file_kw: pd.DataFrame | None = None,
    window_h: float = 2.0,
    relax_halflife_h: float = 3.0,
    default_index: float = 1.0,
    long_days: float = 7.0,
) -> pd.DataFrame:
    """Available PV power per array for the steps of ``index`` [kW] (method: module docstring).

    Parameters
    ----------
    site
        Its ``forecast.pv`` picks the mode; ``location`` and the arrays' orientation feed clear-sky.
    index
        Step starts (tz-aware, regular); ``index[0]`` is the forecast origin.
    reference
        The reference profiles (needed in ``reference`` mode).
    measured_kw
        Recent measured available PV power per array [kW], tz-aware, any regular spacing; only
        times in the ``long_days`` before the origin are used.
    file_kw
        An external forecast (:func:`read_pv_forecast`): step averages per array [kW].
    window_h, relax_halflife_h, default_index, long_days
        Hours of daylight behind k_now [h]; lead time halving k_now's excess over k_long [h]; the
        index without any measurement; days of measurements behind k_long [d].

    Returns
    -------
    pandas.DataFrame
        Index ``index`` (UTC), one column per array [kW], within [0, peak_kw].
    """
    index, ids = pd.DatetimeIndex(index).tz_convert("UTC"), [a.id for a in site.pv]
    if pv_mode(site) == "clear-sky":
        clear = clear_sky_kw(site, index).to_numpy(dtype=float)
        path = _index_path(
            site,
            index,
            measured_kw,
            window_h=window_h,
            relax_halflife_h=relax_halflife_h,
            default_index=default_index,
            long_days=long_days,
        )
        values = clear * path
    elif reference is not None:
        values = reference.pv_kw.reindex(columns=ids, fill_value=0.0).to_numpy(dtype=float)
        values = values[reference_rows(reference, index, site.site.timezone)]
    else:
        raise ValueError("the reference PV forecast needs the reference profiles")
    if file_kw is not None and not file_kw.empty and len(index):
        mean, covered = _file_cover(file_kw, index, ids)
        values = np.where(covered, mean, values)
    peaks = np.array([a.peak_kw for a in site.pv], dtype=float)
    return pd.DataFrame(np.clip(np.nan_to_num(values), 0.0, peaks[None, :]), index=index, columns=ids)


def read_pv_forecast(path: str | Path, site: Site) -> pd.DataFrame:
    """Read an external PV forecast CSV: ``timestamp`` (ISO 8601 with UTC offset), ``pv.<id>`` [kW].

    Rows are uniformly spaced step starts; each value is the average over its step, within
    [0, peak_kw] of its array. Arrays without a column are not covered.

    Raises
    ------
    ProfileError
        Naming the file and, for each problem, the line (header = line 1) and the column.
    """
    path = Path(path)
    problems = Problems(str(path))
    frame = read_text_frame(path, problems)
    peaks = {f"pv.{a.id}": a.peak_kw for a in site.pv}
    if "timestamp" not in frame.columns:
        problems.add("line 1: no 'timestamp' column")
    for column in frame.columns:
        if column != "timestamp" and column not in peaks:
            known = ", ".join(peaks) or "none"
            problems.add(f"line 1, column {column!r}: names no PV array of the site ({known})")
    if not set(frame.columns) & set(peaks):
        problems.add(f"line 1: no PV column (one of {', '.join(peaks) or 'none'})")
    problems.raise_if_any()
    index = parse_timestamps(frame["timestamp"], problems)
    if index is not None:
        check_spacing(index, problems)
    values = {c: numeric(frame[c], c, problems, lower=0.0) for c in frame.columns if c in peaks}
    for column, column_values in values.items():
        for row in np.flatnonzero(column_values > peaks[column]):
            problems.add(
                f"{problems.at(int(row))}, column {column!r}: must be ≤ the array's peak_kw ({peaks[column]:g}) "
                f"[kW, not W?], got {frame[column].iloc[row]!r}"
            )
    problems.raise_if_any()
    assert index is not None
    return pd.DataFrame({c.removeprefix("pv."): v for c, v in values.items()}, index=index)
