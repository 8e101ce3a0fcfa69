"""Clear-sky PV computed ahead of a rolling horizon: the values a fresh computation gives, bit for bit."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest

from microgrid.forecast import pv
from microgrid.forecast.pv import clear_sky_kw
from tests.forecast.test_pv import ROOF, make_site

SITE = make_site(ROOF, {"id": "wall", "peak_kw": 40.0, "tilt_deg": 90.0, "azimuth_deg": 240.0})
STEP = pd.Timedelta(minutes=15)
# Two and a half days from a winter midnight, whole days of night and daylight (step starts, UTC).
DAYS = pd.date_range("2026-01-14 22:00", periods=240, freq=STEP, tz="UTC")


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=float).view(np.int64)


def test_a_step_does_not_depend_on_the_steps_computed_with_it() -> None:
    """What computing ahead relies on: one batch, or the same steps in batches of 1, 7 and 96."""
    whole = pv._clear_sky(SITE, DAYS, STEP)
    assert whole[:, 0].max() > 10.0  # daylight in it
    cuts = [0, 1, 8, 104, 105, 240]
    parts = [pv._clear_sky(SITE, DAYS[a:b], STEP) for a, b in itertools.pairwise(cuts)]
    assert np.array_equal(_bits(np.concatenate(parts)), _bits(whole))


@pytest.fixture
def memo(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """An empty memo; the sizes of the batches pvlib is asked for."""
    monkeypatch.setattr(pv, "_MEMO", {})
    batches: list[int] = []
    compute = pv._clear_sky

    def counted(site: Any, index: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
        batches.append(len(index))
        return compute(site, index, step)

    monkeypatch.setattr(pv, "_clear_sky", counted)
    return batches


def test_a_rolling_horizon_gets_the_fresh_values_from_one_batch_in_two_days(memo: list[int]) -> None:
    """A 24 h horizon moved by a step 96 times: each answer is what a fresh computation of its steps gives;
    pvlib ran once for the first horizon and the two days after it (without computing ahead: 97 times)."""
    horizon = 96
    answers = [clear_sky_kw(SITE, DAYS[i : i + horizon], step=STEP) for i in range(97)]
    assert memo == [horizon + 192]
    for i in (0, 1, 50, 96):
        fresh = pv._clear_sky(SITE, DAYS[i : i + horizon], STEP)
        assert np.array_equal(_bits(answers[i].to_numpy()), _bits(fresh))
        assert list(answers[i].index) == list(DAYS[i : i + horizon])


def test_only_steps_not_known_are_computed(memo: list[int]) -> None:
    hourly = pd.date_range("2026-01-15 06:00", periods=6, freq="1h", tz="UTC")
    clear_sky_kw(SITE, hourly)
    clear_sky_kw(SITE, hourly[2:].append(pd.date_range(hourly[-1] + pd.Timedelta(hours=1), periods=3, freq="1h")))
    assert memo == [6 + 48]  # the second horizon was computed ahead with the first
