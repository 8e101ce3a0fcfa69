"""The simulated controller's view of the future: the true profiles with seeded forecast error,
read by timestamp (see :mod:`microgrid.planning.simulate` for the error model)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from microgrid.control import Controller, CycleReport
from microgrid.control.estimate import Estimate
from microgrid.control.forecast import apply_present
from microgrid.profiles import Profiles
from microgrid.site import Site

__all__ = ["SimController", "extend", "forecast_reference", "timestamp_forecast", "with_solver"]

ERROR_CORRELATION_H = 3.0
"""Correlation time of the forecast errors [h]."""


def extend(profiles: Profiles, steps: int) -> Profiles:
    """``profiles`` repeated from their start until they cover ``steps`` steps (as the plant repeats them)."""
    if steps <= profiles.steps:
        return profiles
    rows = np.arange(steps) % profiles.steps
    index = pd.date_range(profiles.index[0], periods=steps, freq=pd.Timedelta(hours=profiles.step_h))
    return Profiles(
        index=index,
        step_h=profiles.step_h,
        load_kw=profiles.load_kw.iloc[rows].set_axis(index),
        pv_kw=profiles.pv_kw.iloc[rows].set_axis(index),
        grid_available=profiles.grid_available.iloc[rows].set_axis(index),
        import_price_per_kwh=profiles.import_price_per_kwh.iloc[rows].set_axis(index),
        export_price_per_kwh=profiles.export_price_per_kwh.iloc[rows].set_axis(index),
    )


def _perturbed(frame: pd.DataFrame, rng: np.random.Generator, level: float, phi: float) -> pd.DataFrame:
    from microgrid.planning.scenarios import ar1  # noqa: PLC0415 - keep scenarios optional for this module

    out = frame.copy()
    for column in frame.columns:
        factor = np.maximum(1.0 + ar1(rng, len(frame), phi, level), 0.0)
        out[column] = frame[column].to_numpy() * factor
    return out


def forecast_reference(
    truth: Profiles, *, forecast_error: float = 0.0, seed: int = 0, grid_known: bool = True
) -> Profiles:
    """What the controller is told about the future: ``truth`` with seeded forecast error (module docstring)."""
    phi = math.exp(-truth.step_h / ERROR_CORRELATION_H)
    rng = np.random.default_rng(seed)
    load, pv = truth.load_kw, truth.pv_kw
    if forecast_error > 0:
        load = _perturbed(load, rng, forecast_error, phi)
        pv = _perturbed(pv, rng, forecast_error, phi)
    grid = truth.grid_available if grid_known else pd.Series(1.0, index=truth.index)
    return Profiles(truth.index, truth.step_h, load, pv, grid, truth.import_price_per_kwh, truth.export_price_per_kwh)


def timestamp_forecast(
    site: Site, reference: Profiles, start: datetime, est: Estimate | None = None, *, outage_assumed_h: float = 1.0
) -> Profiles:
    """The controller's forecast from ``start``: ``reference`` taken **by timestamp** (not time of day).

    The present overrides it as in :func:`microgrid.control.forecast.rolling_forecast`: step 0's
    demand of a connected tier is the measured demand; a grid measured down is planned down for
    ``outage_assumed_h``, then follows the reference; a grid of unknown state is not counted on in
    step 0; a grid measured up is planned up in step 0.
    """
    step = site.control.interval
    steps = round(site.control.horizon / step)
    index = pd.date_range(pd.Timestamp(start).tz_convert("UTC"), periods=steps, freq=pd.Timedelta(step))
    rows = reference.index.get_indexer(index, method="ffill")
    if rows[0] < 0 or rows[-1] >= reference.steps:
        raise ValueError(f"the reference profiles do not cover {index[0]} to {index[-1]}")
    load = reference.load_kw.iloc[rows].set_axis(index)
    alpha = reference.grid_available.iloc[rows].set_axis(index).astype(float)
    if est is not None:
        apply_present(est, load, alpha, step, outage_assumed_h=outage_assumed_h)
    return Profiles(
        index=index,
        step_h=step / timedelta(hours=1),
        load_kw=load,
        pv_kw=reference.pv_kw.iloc[rows].set_axis(index),
        grid_available=alpha,
        import_price_per_kwh=reference.import_price_per_kwh.iloc[rows].set_axis(index),
        export_price_per_kwh=reference.export_price_per_kwh.iloc[rows].set_axis(index),
    )


class SimController(Controller):
    """The real :class:`~microgrid.control.Controller`, whose forecast phase reads ``reference`` by timestamp.

    Only the forecast phase differs (:func:`timestamp_forecast` instead of the rolling reference
    day); the autonomy figure is computed from it as the controller does.
    """

    def _forecast(self, report: CycleReport, start: datetime) -> Profiles | None:
        try:
            forecast = timestamp_forecast(self.site, self.reference, start, report.estimate)
        except Exception as exc:
            report.events.append(("fallback", f"forecast failed: {exc!r}"))
            return None
        self._autonomy(report, forecast)
        return forecast


def with_solver(site: Site, mip_gap: float | None = None, time_limit_s: float | None = None) -> Site:
    """``site`` with its control section's MIP gap and time limit replaced (None: keep the site's)."""
    update: dict[str, float] = {}
    if mip_gap is not None:
        update["mip_gap"] = mip_gap
    if time_limit_s is not None:
        update["time_limit_s"] = time_limit_s
    if not update:
        return site
    return site.model_copy(update={"control": site.control.model_copy(update=update)})
