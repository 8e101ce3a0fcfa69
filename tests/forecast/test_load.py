"""Load forecast: hand-checkable histories, the reference fallback, DST days, invariants."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microgrid.forecast.history import load_history
from microgrid.forecast.load import load_forecast, local_calendar
from microgrid.profiles import Profiles, read_profiles
from microgrid.site import read_site, site_from_dict
from microgrid.store import CycleRow, Store, TelemetryRow
from tests.conftest import HOSPITAL, WINTER, tiny_site

TZ = "Europe/Kyiv"
STEP = pd.Timedelta(minutes=15)
NO_LEVEL: dict[str, Any] = {"level_halflife_h": 0.0}


def reference(values: dict[str, float | np.ndarray], day: str = "2026-01-15") -> Profiles:
    """A one-day reference of 96 local quarter-hours; each tier a constant or 96 values [kW]."""
    index = pd.date_range(pd.Timestamp(day, tz=TZ), periods=96, freq=STEP).tz_convert("UTC")
    zeros = pd.Series(0.0, index=index)
    return Profiles(
        index=index,
        step_h=0.25,
        load_kw=pd.DataFrame({k: np.broadcast_to(v, 96) for k, v in values.items()}, index=index),
        pv_kw=pd.DataFrame(index=index),
        grid_available=zeros + 1,
        import_price_per_kwh=zeros,
        export_price_per_kwh=zeros,
    )


REF = reference({"critical": 30.0, "comfort": 5.0})
REF_HOSPITAL = read_profiles(WINTER, read_site(HOSPITAL))


def local_range(start: str, end: str, step: pd.Timedelta = STEP) -> pd.DatetimeIndex:
    """UTC step starts from local ``start`` to local ``end`` (exclusive)."""
    index = pd.date_range(pd.Timestamp(start, tz=TZ), pd.Timestamp(end, tz=TZ), freq=step, inclusive="left")
    return index.tz_convert("UTC")


def history(index: pd.DatetimeIndex, **tiers: Callable[[pd.DatetimeIndex], np.ndarray] | float) -> pd.DataFrame:
    """A history frame: each tier a constant or a function of the (UTC) index."""
    data = {k: (v(index) if callable(v) else np.full(len(index), float(v))) for k, v in tiers.items()}
    return pd.DataFrame(data, index=index)


def by_local_clock(index: pd.DatetimeIndex) -> np.ndarray:
    """10 kW per local hour plus 1 kW per local quarter: 08:00 → 80, 08:45 → 83."""
    local = index.tz_convert(TZ)
    return np.asarray(local.hour * 10.0 + local.minute / 15.0)


def test_constant_history_gives_a_constant_forecast() -> None:
    hist = history(local_range("2026-01-01", "2026-01-15"), critical=50.0, comfort=20.0)
    forecast = load_forecast(hist, REF, local_range("2026-01-15 06:00", "2026-01-16 06:00"), TZ)
    assert list(forecast.columns) == ["critical", "comfort"]
    assert len(forecast) == 96
    np.testing.assert_allclose(forecast["critical"], 50.0)
    np.testing.assert_allclose(forecast["comfort"], 20.0)


def test_a_coarser_hourly_history_is_held_over_its_hour() -> None:
    hist = history(local_range("2026-01-01", "2026-01-15", pd.Timedelta(hours=1)), critical=50.0, comfort=20.0)
    forecast = load_forecast(hist, REF, local_range("2026-01-15", "2026-01-16"), TZ)
    np.testing.assert_allclose(forecast.to_numpy(), [[50.0, 20.0]] * 96)


def test_weekday_weekend_pattern_is_recovered() -> None:
    def level(index: pd.DatetimeIndex) -> np.ndarray:
        return np.where(local_calendar(index, TZ).weekday >= 5, 40.0, 100.0)

    hist = history(local_range("2026-01-05", "2026-02-02"), critical=level, comfort=level)  # 4 weeks from a Monday
    saturday_monday = local_range("2026-02-07", "2026-02-10")  # Sat, Sun, Mon
    exact = load_forecast(hist, REF, saturday_monday, TZ, other_type_weight=0.0, **NO_LEVEL)
    np.testing.assert_allclose(exact["critical"], level(saturday_monday))
    # with the defaults the weekdays leak in a little (other_type_weight = 0.02)
    default = load_forecast(hist, REF, saturday_monday, TZ)
    assert np.abs(default["critical"].to_numpy() - level(saturday_monday)).max() < 5.0


def test_same_weekday_is_weighted_above_other_workdays() -> None:
    # 4 weeks: Tuesdays 80 kW, other days 60 kW. Without recency: same weekday 1, other workdays 0.5,
    # weekend days 0.02 → Tuesday (4·80 + 16·0.5·60 + 8·0.02·60) / 12.16,
    # Wednesday (4·60 + 4·0.5·80 + 12·0.5·60 + 8·0.02·60) / 12.16
    def tuesdays_high(index: pd.DatetimeIndex) -> np.ndarray:
        return np.where(local_calendar(index, TZ).weekday == 1, 80.0, 60.0)

    hist = history(local_range("2026-01-06", "2026-02-03"), critical=tuesdays_high, comfort=0.0)
    flat: dict[str, Any] = {"halflife_days": math.inf, "history_days": 60, **NO_LEVEL}
    tuesday = load_forecast(hist, REF, local_range("2026-02-03", "2026-02-04"), TZ, **flat)
    wednesday = load_forecast(hist, REF, local_range("2026-02-04", "2026-02-05"), TZ, **flat)
    np.testing.assert_allclose(tuesday["critical"], (320 + 480 + 9.6) / 12.16)
    np.testing.assert_allclose(wednesday["critical"], (240 + 160 + 360 + 9.6) / 12.16)


def test_recency_weights_halve_every_halflife() -> None:
    # day D-2 at 100 kW, day D-1 at 120 kW; halflife 1 d → weights 1/4 and 1/2 → (25 + 60) / 0.75
    def two_days(index: pd.DatetimeIndex) -> np.ndarray:
        return np.where(local_calendar(index, TZ).day == local_calendar(index[-1:], TZ).day[0], 120.0, 100.0)

    hist = history(local_range("2026-01-13", "2026-01-15"), critical=two_days, comfort=0.0)
    flat: dict[str, Any] = {"day_type_weight": 1.0, "other_type_weight": 1.0, "min_history_days": 0.0, **NO_LEVEL}
    target = local_range("2026-01-15", "2026-01-16")
    forecast = load_forecast(hist, REF, target, TZ, halflife_days=1.0, **flat)
    np.testing.assert_allclose(forecast["critical"], (0.25 * 100 + 0.5 * 120) / 0.75)
    slow = load_forecast(hist, REF, target, TZ, halflife_days=100.0, **flat)
    assert 110.0 < slow["critical"].iloc[0] < forecast["critical"].iloc[0]


def test_no_history_is_the_reference_day_by_local_time() -> None:
    shape = np.arange(96, dtype=float)
    ref = reference({"critical": shape, "comfort": 5.0})
    target = local_range("2026-03-01 06:00", "2026-03-02 06:00")
    empty = pd.DataFrame({"critical": [], "comfort": []}, index=pd.DatetimeIndex([], tz="UTC"))
    forecast = load_forecast(empty, ref, target, TZ)
    np.testing.assert_allclose(forecast["critical"], np.roll(shape, -24))  # starts at 06:00 = row 24
    np.testing.assert_allclose(forecast["comfort"], 5.0)


def test_short_history_blends_with_the_reference_per_tier() -> None:
    # critical: 1 day at 60 kW against a 30 kW reference, min 3 days → 1/3·60 + 2/3·30 = 40
    # comfort: never measured → the reference's 5 kW
    hist = history(local_range("2026-01-14", "2026-01-15"), critical=60.0, comfort=np.nan)
    forecast = load_forecast(hist, REF, local_range("2026-01-15", "2026-01-16"), TZ, **NO_LEVEL)
    np.testing.assert_allclose(forecast["critical"], 40.0)
    np.testing.assert_allclose(forecast["comfort"], 5.0)
    longer = history(local_range("2026-01-10", "2026-01-15"), critical=60.0, comfort=np.nan)
    np.testing.assert_allclose(
        load_forecast(longer, REF, local_range("2026-01-15", "2026-01-16"), TZ)["critical"], 60.0
    )


def test_history_at_or_after_the_origin_is_ignored() -> None:
    past = history(local_range("2026-01-01", "2026-01-15"), critical=50.0, comfort=20.0)
    future = history(local_range("2026-01-15", "2026-01-17"), critical=500.0, comfort=200.0)
    target = local_range("2026-01-15", "2026-01-16")
    both = load_forecast(pd.concat([past, future]), REF, target, TZ)
    pd.testing.assert_frame_equal(both, load_forecast(past, REF, target, TZ))


def test_level_correction_shifts_the_first_hours_then_fades() -> None:
    # 50 kW every day, but the last hour before the origin ran at 70 kW: +20 kW fading with halflife 3 h
    index = local_range("2026-01-01", "2026-01-15")
    hist = history(index, critical=lambda i: np.where(i >= i[-1] - pd.Timedelta(minutes=45), 70.0, 50.0), comfort=0.0)
    forecast = load_forecast(hist, REF, local_range("2026-01-15", "2026-01-16"), TZ)["critical"]
    lead_h = 0.25 * np.arange(1, 93)
    # (the last hour, 23:00-24:00, also has yesterday's 70 kW in its profile)
    np.testing.assert_allclose(forecast[:92], 50.0 + 20.0 * 2 ** (-lead_h / 3.0))


@pytest.mark.parametrize(
    ("history_span", "target_span", "hours"),
    [
        (("2026-03-18", "2026-03-28"), ("2026-03-28", "2026-03-31"), 71),  # history before, targets across spring
        (("2026-03-26", "2026-04-03"), ("2026-04-03", "2026-04-04"), 24),  # history across spring
        (("2026-10-15", "2026-10-24"), ("2026-10-24", "2026-10-27"), 73),  # targets across autumn (25 h day)
        (("2026-10-20", "2026-10-29"), ("2026-10-29", "2026-10-30"), 24),  # history across autumn
    ],
)
def test_dst_days_match_local_clock_time(
    history_span: tuple[str, str], target_span: tuple[str, str], hours: int
) -> None:
    hist = history(local_range(*history_span), critical=by_local_clock, comfort=by_local_clock)
    target = local_range(*target_span)
    assert len(target) == 4 * hours  # 23 h / 25 h days really are in the spans
    forecast = load_forecast(hist, REF, target, TZ)
    np.testing.assert_allclose(forecast["critical"], by_local_clock(target), atol=1e-9)
    local = target.tz_convert(TZ)
    eight = (local.hour == 8) & (local.minute == 0)
    assert eight.sum() == 3 if hours > 24 else eight.sum() == 1
    np.testing.assert_allclose(forecast["critical"][eight], 80.0)  # 08:00 local on both sides of the change


def test_dst_fallback_to_the_reference_follows_local_time() -> None:
    ref = reference({"critical": np.arange(96, dtype=float), "comfort": 5.0})
    empty = pd.DataFrame({"critical": [], "comfort": []}, index=pd.DatetimeIndex([], tz="UTC"))
    for day, end, steps in (("2026-03-29", "2026-03-30", 92), ("2026-10-25", "2026-10-26", 100)):
        target = local_range(day, end)
        forecast = load_forecast(empty, ref, target, TZ)
        local = target.tz_convert(TZ)
        assert len(forecast) == steps
        np.testing.assert_allclose(forecast["critical"], local.hour * 4 + local.minute // 15)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.one_of(st.floats(0, 1e4), st.just(math.nan)), min_size=1, max_size=400),
    start_step=st.integers(0, 5000),
    halflife=st.floats(0.1, 100.0),
    min_days=st.floats(0.0, 10.0),
)
def test_forecast_is_never_negative_nor_nan(
    values: list[float], start_step: int, halflife: float, min_days: float
) -> None:
    index = pd.date_range("2026-03-20", periods=len(values), freq=STEP, tz="UTC") + start_step * STEP
    hist = pd.DataFrame({"critical": values, "comfort": values[::-1]}, index=index)
    target = pd.date_range(index[-1] + STEP, periods=96, freq=STEP)
    forecast = load_forecast(hist, REF, target, TZ, halflife_days=halflife, min_history_days=min_days)
    assert forecast.shape == (96, 2)
    assert np.isfinite(forecast.to_numpy()).all()
    assert (forecast.to_numpy() >= 0).all()


def test_load_history_reads_feeder_demand_from_the_store(tmp_path: Path) -> None:
    site = read_site(HOSPITAL)  # feeders: critical 1, essential 2, comfort 3 on device 'feeders'
    start = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    with Store(tmp_path / "history.db", retention_days=None) as store:  # (no purge of old test times)
        for i in range(3):
            ts = start + timedelta(minutes=15 * i, seconds=0.3)
            points = {
                "feeder_1_power_kw": (90.0 + i, "ok"),
                "feeder_1_closed": (1.0, "ok"),
                "feeder_2_power_kw": (70.0, "stale"),
                "feeder_2_closed": (1.0, "ok"),
                "feeder_3_power_kw": (0.0 if i == 1 else 20.0, "ok"),
                "feeder_3_closed": (0.0 if i == 1 else 1.0, "ok"),  # comfort shed in the 2nd cycle
            }
            if i == 2:
                points["feeder_2_power_kw"] = (None, "comms-lost")  # type: ignore[assignment]
            rows = [TelemetryRow(ts, "feeders", p, v, "kW", q) for p, (v, q) in points.items()]
            rows.append(TelemetryRow(ts, "roof-inverter", "pv_power_kw", 40.0, "kW", "ok"))
            store.record_cycle(CycleRow(ts, "auto", "plan"), telemetry=rows)
    frame = load_history(tmp_path / "history.db", site, start, start + timedelta(hours=1))
    assert list(frame.columns) == ["critical", "essential", "comfort"]
    assert len(frame) == 3 and isinstance(frame.index, pd.DatetimeIndex) and frame.index.tz is not None
    np.testing.assert_allclose(frame["critical"], [90.0, 91.0, 92.0])
    np.testing.assert_allclose(frame["essential"], [70.0, 70.0, np.nan])
    np.testing.assert_allclose(frame["comfort"], [20.0, np.nan, 20.0])
    # it feeds the forecast directly: three samples of one day → blended with the reference
    forecast = load_forecast(frame, REF_HOSPITAL, pd.date_range(start + timedelta(hours=1), periods=4, freq=STEP), TZ)
    assert np.isfinite(forecast.to_numpy()).all()


def test_load_history_of_a_site_without_feeders_is_empty(tmp_path: Path) -> None:
    site = site_from_dict(tiny_site(loads=[{"id": "all", "priority": 1, "value_of_lost_load_per_kwh": 1.0}]))
    Store(tmp_path / "h.db").close()
    frame = load_history(tmp_path / "h.db", site, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    assert frame.empty and list(frame.columns) == ["all"]
