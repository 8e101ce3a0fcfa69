"""A history already one row per step is placed on the forecast's steps as pandas' resampling would place it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from microgrid.forecast import load
from microgrid.forecast.load import on_grid

ORIGIN = pd.Timestamp("2026-01-20 10:00", tz="UTC")
COLUMNS = ["critical", "essential", "comfort"]
KW = st.floats(-5.0, 500.0, allow_nan=False) | st.sampled_from([0.0, -0.0, np.nan])


def _by_pandas(frame: pd.DataFrame, step: pd.Timedelta, origin: pd.Timestamp, since: Any = None) -> pd.DataFrame:
    """:func:`on_grid` with its pandas resampling only (the code before the row placement)."""
    original = load._on_step_starts
    load._on_step_starts = lambda *_: None  # type: ignore[assignment]
    try:
        return on_grid(frame, COLUMNS, step, origin, since)
    finally:
        load._on_step_starts = original


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    step_min=st.sampled_from([15, 60]),
    rows=st.integers(1, 40),
    late_s=st.sampled_from([0, 0, 0, 1, 450]),
)
def test_the_rows_are_placed_as_pandas_resamples_them(data: Any, step_min: int, rows: int, late_s: int) -> None:
    """Rows of a 15-min history (some cycles missing, some tiers unmeasured, a column absent, −0 and NaN
    values, now and then a read late by ``late_s``) on 15-min and 1-h steps: the same frame, index and
    freq included, whichever way it is built (1-h steps and late reads take pandas' way)."""
    step = pd.Timedelta(minutes=step_min)
    kept = data.draw(st.lists(st.booleans(), min_size=rows, max_size=rows).filter(any))
    times = [ORIGIN - pd.Timedelta(minutes=15 * (rows - i)) for i, keep in enumerate(kept) if keep]
    times = [t + pd.Timedelta(seconds=late_s if i % 5 == 4 else 0) for i, t in enumerate(times)]
    values = data.draw(st.lists(st.lists(KW, min_size=2, max_size=2), min_size=len(times), max_size=len(times)))
    frame = pd.DataFrame(values, index=pd.DatetimeIndex(times), columns=["essential", "critical"])
    since = data.draw(st.sampled_from([None, ORIGIN - pd.Timedelta(hours=3)]))
    got, want = on_grid(frame, COLUMNS, step, ORIGIN, since), _by_pandas(frame, step, ORIGIN, since)
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_freq=True)
    assert np.array_equal(np.signbit(got.to_numpy()), np.signbit(want.to_numpy()))


def test_a_history_on_the_steps_is_placed_without_pandas_resampling() -> None:
    times = pd.date_range(ORIGIN - pd.Timedelta(hours=2), periods=8, freq="15min").delete(3)
    frame = pd.DataFrame({"critical": np.arange(7.0)}, index=times)
    placed = load._on_step_starts(frame.reindex(columns=COLUMNS), pd.Timedelta(minutes=15), ORIGIN)
    assert placed is not None and len(placed) == 8 and np.isnan(placed["critical"].iloc[3])
    assert load._on_step_starts(frame, pd.Timedelta(hours=1), ORIGIN) is None  # four rows a step: pandas
