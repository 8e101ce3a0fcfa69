"""PV forecast: pvlib clear-sky at Kharkiv, the clear-sky index, modes, external files, DST days."""

from __future__ import annotations

import math
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microgrid.errors import ConfigError, ProfileError
from microgrid.forecast.history import pv_history
from microgrid.forecast.pv import clear_sky_index, clear_sky_kw, pv_forecast, pv_mode, read_pv_forecast
from microgrid.profiles import Profiles
from microgrid.site import Site, read_site, site_from_dict
from microgrid.store import CycleRow, Store, TelemetryRow
from tests.conftest import HOSPITAL, tiny_site

TZ = "Europe/Kyiv"
STEP = pd.Timedelta(minutes=15)
KHARKIV = {"latitude": 49.99, "longitude": 36.23, "altitude_m": 150.0}
ROOF = {"id": "roof", "peak_kw": 150.0}


def make_site(*arrays: dict[str, Any], location: bool = True, mode: str = "auto") -> Site:
    sections: dict[str, Any] = {
        "site": {"name": "kharkiv", "timezone": TZ},
        "pv": list(arrays) or [ROOF],
        "forecast": {"pv": mode},
    }
    if location:
        sections["location"] = KHARKIV
    return site_from_dict(tiny_site(**sections))


def local_day(day: str, days: int = 1) -> pd.DatetimeIndex:
    """UTC step starts of ``days`` whole local days from local midnight of ``day`` (23 h / 25 h days too)."""
    start = pd.Timestamp(day, tz=TZ)
    return pd.date_range(start, start + pd.DateOffset(days=days), freq=STEP, inclusive="left").tz_convert("UTC")


def reference_pv(values: np.ndarray, day: str = "2026-01-15") -> Profiles:
    index = pd.date_range(pd.Timestamp(day, tz=TZ), periods=96, freq=STEP).tz_convert("UTC")
    zeros = pd.Series(0.0, index=index)
    return Profiles(index, 0.25, pd.DataFrame(index=index), pd.DataFrame({"roof": values}, index=index),
                    zeros + 1, zeros, zeros)  # fmt: skip


SITE = make_site()
JAN15 = local_day("2026-01-15")


def test_clear_sky_is_zero_at_night_and_peaks_near_solar_noon() -> None:
    clear = clear_sky_kw(SITE, JAN15)["roof"]
    local = JAN15.tz_convert(TZ)
    night = (local.hour >= 17) | (local.hour < 7)
    assert (clear[night] == 0.0).all()
    # solar noon at 36.23° E on 15 January: 12:00 − 24.9 min (longitude) + 9.2 min (equation of time) ≈ 11:44 EET
    peak = local[int(np.argmax(clear.to_numpy()))] + STEP / 2
    assert abs((peak - pd.Timestamp("2026-01-15 11:44", tz=TZ)) / pd.Timedelta(minutes=1)) <= 15


def test_clear_sky_daily_energy_is_plausible_for_150_kwp_in_january() -> None:
    # 30° south at 50° N on a clear mid-January day: ~3-4 kWh/m² in the plane (vs ~1.8 kWh/m² GHI),
    # × 150 kWp / 1 kW/m² × 0.86 → some 390-520 kWh; allow 300-650. The peak stays well below 150 kW
    # (the sun is at most 19° high: the plane gets ~700 W/m²).
    clear = clear_sky_kw(SITE, JAN15)["roof"]
    energy_kwh = clear.sum() * 0.25
    assert 300.0 < energy_kwh < 650.0
    assert 60.0 < clear.max() < 120.0


def test_south_beats_north_in_winter_and_loss_scales() -> None:
    site = make_site(
        {"id": "south", "peak_kw": 100.0, "tilt_deg": 30.0, "azimuth_deg": 180.0, "loss_fraction": 0.0},
        {"id": "north", "peak_kw": 100.0, "tilt_deg": 30.0, "azimuth_deg": 0.0, "loss_fraction": 0.0},
        {"id": "lossy", "peak_kw": 100.0, "tilt_deg": 30.0, "azimuth_deg": 180.0, "loss_fraction": 0.5},
    )
    energy = clear_sky_kw(site, JAN15).sum() * 0.25
    assert energy["south"] > 3 * energy["north"]  # a north roof gets diffuse light only
    assert energy["lossy"] == pytest.approx(0.5 * energy["south"])


def test_clear_sky_is_a_step_average() -> None:
    hourly = pd.date_range("2026-01-15 06:00", periods=6, freq="1h", tz="UTC")
    fine = pd.date_range("2026-01-15 06:00", periods=72, freq="5min", tz="UTC")
    coarse = clear_sky_kw(SITE, hourly)["roof"].to_numpy()
    means = clear_sky_kw(SITE, fine)["roof"].to_numpy().reshape(6, 12).mean(axis=1)
    np.testing.assert_allclose(coarse, means, rtol=0.02)


@pytest.mark.parametrize(("day", "steps"), [("2026-03-29", 92), ("2026-10-25", 100)])
def test_clear_sky_on_dst_days_follows_the_sun_not_the_clock(day: str, steps: int) -> None:
    before, change, after = (local_day(str((pd.Timestamp(day) + pd.Timedelta(days=d)).date())) for d in (-1, 0, 1))
    assert len(change) == steps
    noons = [t[int(np.argmax(clear_sky_kw(SITE, t)["roof"].to_numpy()))] for t in (before, change, after)]
    minutes_utc = [(n - n.normalize()) / pd.Timedelta(minutes=1) for n in noons]
    assert max(minutes_utc) - min(minutes_utc) <= 15  # the same UTC time (≈ 09:30-09:45)...
    shift = (noons[2].tz_convert(TZ).hour - noons[0].tz_convert(TZ).hour) % 24
    assert shift == (1 if steps == 92 else 23)  # ...an hour later (spring) or earlier (autumn) on the clock


def test_clear_sky_works_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the clear-sky forecast tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert clear_sky_kw(make_site(), local_day("2026-06-21"))["roof"].max() > 100.0


def test_clear_sky_needs_a_location() -> None:
    with pytest.raises(ConfigError, match="location"):
        clear_sky_kw(make_site(location=False), JAN15)


def test_clear_sky_index_over_the_last_daylight_hours() -> None:
    clear = clear_sky_kw(SITE, JAN15)
    measured = clear * 0.5
    measured.iloc[:44] = clear.iloc[:44] * 0.9  # until 11:00 local; the last 2 h of daylight are at 0.5
    until_sunset = measured[measured.index < pd.Timestamp("2026-01-15 17:00", tz=TZ)]
    assert clear_sky_index(until_sunset, clear)["roof"] == pytest.approx(0.5)
    assert 0.5 < clear_sky_index(until_sunset, clear, window_h=math.inf)["roof"] < 0.9  # type: ignore[operator]
    night = measured[measured.index < pd.Timestamp("2026-01-15 06:00", tz=TZ)]
    assert clear_sky_index(night, clear) == {"roof": None}
    assert clear_sky_index(clear * 3, clear)["roof"] == 1.2  # clipped


def test_persisted_index_scales_the_forecast() -> None:
    past = local_day("2026-01-12", days=3)
    measured = clear_sky_kw(SITE, past) * 0.5
    index = pd.date_range(pd.Timestamp("2026-01-15", tz=TZ), periods=96, freq=STEP).tz_convert("UTC")
    forecast = pv_forecast(SITE, index, measured_kw=measured)
    np.testing.assert_allclose(forecast["roof"], 0.5 * clear_sky_kw(SITE, index)["roof"], atol=1e-9)
    assert pv_forecast(SITE, index)["roof"].sum() == pytest.approx(clear_sky_kw(SITE, index)["roof"].sum())


def test_index_relaxes_from_now_to_the_recent_days() -> None:
    past = local_day("2026-01-12", days=3)
    clear = clear_sky_kw(SITE, past)
    measured = clear * 0.4
    measured[measured.index >= pd.Timestamp("2026-01-14 12:00", tz=TZ)] *= 2.5  # clear sky since noon
    origin = pd.Timestamp("2026-01-14 14:00", tz=TZ).tz_convert("UTC")
    index = pd.date_range(origin, periods=96, freq=STEP)
    ratio = (pv_forecast(SITE, index, measured_kw=measured)["roof"] / clear_sky_kw(SITE, index)["roof"]).dropna()
    assert ratio.iloc[0] > 0.85  # k_now = 1.0, 15 min after the last measured step
    assert 0.4 < ratio.iloc[-1] < 0.6  # the next day: close to the 3-day mean (≈ 0.45)
    assert ratio.is_monotonic_decreasing


def test_reference_mode_and_auto_without_location_follow_local_time() -> None:
    values = np.arange(96, dtype=float)
    reference = reference_pv(values)
    site = make_site(location=False)
    assert pv_mode(site) == "reference" and pv_mode(SITE) == "clear-sky"
    assert pv_mode(make_site(mode="reference")) == "reference"
    for day, steps in (("2026-03-29", 92), ("2026-10-25", 100)):
        index = local_day(day)
        forecast = pv_forecast(site, index, reference=reference)
        local = index.tz_convert(TZ)
        assert len(forecast) == steps
        np.testing.assert_allclose(forecast["roof"], local.hour * 4 + local.minute // 15)
    with pytest.raises(ValueError, match="reference"):
        pv_forecast(site, JAN15)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pv-forecast.csv"
    path.write_text(text)
    return path


def test_external_file_wins_where_it_covers(tmp_path: Path) -> None:
    # hourly rows 10:00-13:00 local (4 h) → the 15-min steps 10:00-13:45 are covered
    rows = "".join(f"2026-01-15T{h:02d}:00:00+02:00,{h}.5\n" for h in range(10, 14))
    file_kw = read_pv_forecast(write(tmp_path, "timestamp,pv.roof\n" + rows), SITE)
    assert list(file_kw.columns) == ["roof"]
    forecast = pv_forecast(SITE, JAN15, file_kw=file_kw)["roof"]
    clear = clear_sky_kw(SITE, JAN15)["roof"]
    local = JAN15.tz_convert(TZ)
    covered = (local.hour >= 10) & (local.hour < 14)
    np.testing.assert_allclose(forecast[covered], local.hour[covered] + 0.5)
    np.testing.assert_allclose(forecast[~covered], clear[~covered])


def test_a_step_only_partly_covered_by_the_file_is_not_taken(tmp_path: Path) -> None:
    text = "timestamp,pv.roof\n2026-01-15T10:00:00+02:00,5\n2026-01-15T10:10:00+02:00,5\n"  # 10:00-10:20
    file_kw = read_pv_forecast(write(tmp_path, text), SITE)
    forecast = pv_forecast(SITE, JAN15, file_kw=file_kw)["roof"]
    local = JAN15.tz_convert(TZ)
    at = int(np.flatnonzero((local.hour == 10) & (local.minute == 0))[0])
    assert forecast.iloc[at] == 5.0
    assert forecast.iloc[at + 1] == clear_sky_kw(SITE, JAN15)["roof"].iloc[at + 1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("timestamp,pv.roof\n2026-01-15T10:00:00+02:00,1\n2026-01-15T11:00:00+02:00,abc\n", "line 3, column 'pv.roof'"),
        ("timestamp,pv.roof\n2026-01-15T10:00:00,1\n2026-01-15T11:00:00+02:00,1\n", "line 2, column 'timestamp'"),
        ("timestamp,pv.roof\n2026-01-15T10:00:00+02:00,-1\n2026-01-15T11:00:00+02:00,1\n", "line 2, column 'pv.roof'"),
        ("timestamp,pv.roof\n2026-01-15T10:00:00+02:00,1\n2026-01-15T11:00:00+02:00,150000\n", "peak_kw"),
        ("timestamp,pv.roof,pv.attic\n2026-01-15T10:00:00+02:00,1,1\n", "column 'pv.attic'"),
        ("timestamp,load.critical\n2026-01-15T10:00:00+02:00,1\n", "no PV column"),
        ("timestamp,pv.roof\n2026-01-15T10:00:00+02:00,1\n2026-01-15T10:30:00+02:00,1\n"
         "2026-01-15T11:30:00+02:00,1\n", "line 4, column 'timestamp': steps must be uniform"),
    ],
)  # fmt: skip
def test_a_bad_file_names_file_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        read_pv_forecast(path, SITE)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ratios=st.lists(st.one_of(st.floats(0, 3.0), st.just(math.nan)), min_size=1, max_size=200),
    start_h=st.integers(0, 24 * 365),
    file_kw=st.one_of(st.none(), st.floats(0, 150.0)),
)
def test_forecast_is_never_negative_nan_or_above_peak(ratios: list[float], start_h: int, file_kw: float | None) -> None:
    origin = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(hours=start_h)
    past = pd.date_range(origin - STEP * len(ratios), periods=len(ratios), freq=STEP)
    measured = pd.DataFrame({"roof": 150.0 * np.array(ratios)}, index=past)
    index = pd.date_range(origin, periods=96, freq=STEP)
    file = None if file_kw is None else pd.DataFrame({"roof": [file_kw] * 4}, index=index[10:50:10])
    forecast = pv_forecast(SITE, index, measured_kw=measured, file_kw=file).to_numpy()
    assert np.isfinite(forecast).all()
    assert (forecast >= 0).all()
    assert (forecast <= 150.0).all()


def test_pv_history_prefers_available_power_and_drops_curtailed_output(tmp_path: Path) -> None:
    site = read_site(HOSPITAL)  # array 'roof' on device 'roof-inverter'
    start = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    cycles: list[dict[str, tuple[float | None, str]]] = [
        {"pv_power_kw": (40.0, "ok"), "available_power_kw": (55.0, "ok"), "operating_state": (3.0, "ok")},
        {"pv_power_kw": (42.0, "ok"), "available_power_kw": (None, "not-implemented"), "operating_state": (2.0, "ok")},
        {"pv_power_kw": (30.0, "ok"), "available_power_kw": (None, "not-implemented"), "operating_state": (3.0, "ok")},
    ]
    with Store(tmp_path / "history.db", retention_days=None) as store:
        for i, points in enumerate(cycles):
            ts = start + timedelta(minutes=15 * i)
            rows = [TelemetryRow(ts, "roof-inverter", p, v, "kW", q) for p, (v, q) in points.items()]
            store.record_cycle(CycleRow(ts, "auto", "plan"), telemetry=rows)
        frame = pv_history(store, site, start, start + timedelta(hours=1))
    assert list(frame.columns) == ["roof"]
    np.testing.assert_allclose(frame["roof"], [55.0, 42.0, np.nan])  # curtailed, no MPP estimate: unknown
