"""The measured history's frames, kept between cycles, are those pandas builds from its rows afresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from microgrid.control.history import MeasuredHistory

T0 = datetime(2026, 1, 5, tzinfo=UTC)
TIERS = ("critical", "essential", "comfort")


def _afresh(history: MeasuredHistory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The frames as built before they were kept (a DataFrame of the rows' dicts)."""
    rows = history.rows
    index = pd.DatetimeIndex([r[0] for r in rows], tz="UTC") if rows else pd.DatetimeIndex([], tz="UTC")
    return (
        pd.DataFrame([r[1] for r in rows], index=index, dtype=float),
        pd.DataFrame([r[2] for r in rows], index=index, dtype=float),
    )


def _same(history: MeasuredHistory) -> None:
    for got, want in zip(history.frames(), _afresh(history), strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert list(got.columns) == list(want.columns)


KW = st.floats(0.0, 500.0, allow_nan=False)
ROW = st.tuples(
    st.integers(0, 2),  # minutes of the cycle's read after the interval start (0: exactly on it)
    st.sampled_from([TIERS, TIERS, TIERS, TIERS[:2], ("essential", "critical", "comfort"), ()]),
    st.sampled_from([("roof",), ("roof",), ()]),
    st.lists(KW, min_size=4, max_size=4),
)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(ROW, min_size=0, max_size=30), max_rows=st.integers(1, 12), every=st.integers(1, 4))
def test_kept_frames_are_the_frames_of_the_rows(rows: list, max_rows: int, every: int) -> None:
    """Rows added one by one (a tier missing now and then, the order of the tiers changing, the oldest
    dropped past ``max_rows``), the frames asked for every ``every`` rows and twice in a row."""
    history = MeasuredHistory(max_rows=max_rows)
    _same(history)
    for i, (late_min, tiers, arrays, kw) in enumerate(rows):
        when = T0 + timedelta(minutes=15 * i + late_min)
        history.add(when, dict(zip(tiers, kw, strict=False)), dict(zip(arrays, kw[3:], strict=False)))
        if i % every == 0:
            _same(history)
            _same(history)
    _same(history)


def test_a_caller_changing_its_frame_does_not_change_the_next_callers() -> None:
    history = MeasuredHistory()
    history.add(T0, {"critical": 10.0}, {"roof": 1.0})
    load, _ = history.frames()
    load.iloc[0, 0] = 99.0
    assert history.frames()[0].iloc[0, 0] == 10.0


def test_rows_changed_other_than_by_add_are_read_afresh() -> None:
    history = MeasuredHistory()
    for i in range(3):
        history.add(T0 + timedelta(minutes=15 * i), {"critical": float(i)}, {})
    history.frames()
    history.rows.clear()
    history.rows.append((T0, {"critical": 7.0}, {}))
    _same(history)
    assert history.frames()[0]["critical"].tolist() == [7.0]
