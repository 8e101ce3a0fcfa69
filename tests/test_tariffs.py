"""Time-of-use tariffs and price files: zones in local time across DST, precedence, clear errors."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from microgrid import read_site
from microgrid.errors import ConfigError, ProfileError
from microgrid.profiles import profiles_from_frame
from microgrid.site import site_from_dict
from microgrid.site.grid import parse_clock
from microgrid.tariffs import read_price_file, site_prices
from tests.conftest import tiny_site

DAY_NIGHT = [
    {"start": "07:00", "end": "23:00", "import_price_per_kwh": 4.32},
    {"start": "23:00", "end": "07:00", "import_price_per_kwh": 2.16, "export_price_per_kwh": 0.5},
]


def kyiv_site(**grid: Any) -> Any:
    return site_from_dict(
        tiny_site(
            site={"name": "t", "timezone": "Europe/Kyiv"},
            loads=[{"id": "critical", "priority": 1, "value_of_lost_load_per_kwh": 100}],
            grid={"max_import_kw": 100, **grid},
        )
    )


def local_hours(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(index.tz_convert("Europe/Kyiv").hour)


@pytest.mark.parametrize(
    ("day", "hours"),
    [("2026-03-29", 23), ("2026-10-25", 25), ("2026-01-15", 24)],
)
def test_day_night_zones_follow_local_clock_across_dst(day: str, hours: int) -> None:
    site = kyiv_site(tariff=DAY_NIGHT)
    start = pd.Timestamp(day, tz="Europe/Kyiv").tz_convert("UTC")
    next_day = (pd.Timestamp(day) + pd.Timedelta(days=1)).date().isoformat()
    end = pd.Timestamp(next_day, tz="Europe/Kyiv").tz_convert("UTC")
    index = pd.date_range(start, end, freq="15min", inclusive="left")
    assert len(index) == hours * 4
    imp, exp = site_prices(site, index)
    night = (local_hours(index) >= 23) | (local_hours(index) < 7)
    assert np.all(imp[night] == 2.16) and np.all(imp[~night] == 4.32)
    assert np.all(exp[night] == 0.5) and np.all(exp[~night] == 0.0)
    # night hours are 8 on every day: the repeated/skipped hour is inside the night zone (03:00-04:00)
    assert night.sum() == (8 + hours - 24) * 4


def test_price_file_wins_over_tariff_and_falls_through_outside(tmp_path: Path) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text(
        "timestamp,import_price_per_kwh\n2026-01-15T10:00:00+02:00,9.0\n2026-01-15T11:00:00+02:00,8.0\n",
        encoding="utf-8",
    )
    site = kyiv_site(tariff=DAY_NIGHT, price_file=str(prices))
    index = pd.date_range("2026-01-15T09:00+02:00", periods=16, freq="15min").tz_convert("UTC")
    imp, _ = site_prices(site, index)
    # 09:00-10:00 tariff day, 10:00-11:00 file 9, 11:00-12:00 file 8 (last row holds one spacing), then tariff
    assert list(imp) == [4.32] * 4 + [9.0] * 4 + [8.0] * 4 + [4.32] * 4


def test_profile_column_wins_over_everything(tmp_path: Path) -> None:
    site = kyiv_site(tariff=DAY_NIGHT, import_price_per_kwh=1.0)
    index = pd.date_range("2026-01-15T00:00+02:00", periods=4, freq="6h")
    frame = pd.DataFrame({"timestamp": [t.isoformat() for t in index], "load.critical": 10})
    assert list(profiles_from_frame(frame, site).import_price_per_kwh) == [2.16, 2.16, 4.32, 4.32]
    frame["grid.import_price_per_kwh"] = 7.0
    assert list(profiles_from_frame(frame, site).import_price_per_kwh) == [7.0] * 4


def test_constant_price_when_nothing_else() -> None:
    site = kyiv_site(import_price_per_kwh=3.0)
    index = pd.date_range("2026-01-15", periods=3, freq="1h", tz="UTC")
    imp, exp = site_prices(site, index)
    assert list(imp) == [3.0] * 3 and list(exp) == [0.0] * 3


def test_tariff_alone_is_enough_without_constant_price() -> None:
    site = kyiv_site(tariff=[{"start": "00:00", "end": "24:00", "import_price_per_kwh": 1.0}])
    assert site.grid is not None
    frame = pd.DataFrame({"timestamp": ["2026-01-15T00:00:00+02:00", "2026-01-15T01:00:00+02:00"], "load.critical": 1})
    assert list(profiles_from_frame(frame, site).import_price_per_kwh) == [1.0, 1.0]


@pytest.mark.parametrize(
    ("zones", "words"),
    [
        ([{"start": "07:00", "end": "23:00", "import_price_per_kwh": 1}], "in no zone: 00:00-07:00, 23:00-24:00"),
        (
            [
                {"start": "00:00", "end": "12:00", "import_price_per_kwh": 1},
                {"start": "11:00", "end": "24:00", "import_price_per_kwh": 2},
            ],
            "overlap at 11:00",
        ),
        ([{"start": "7:5", "end": "23:00", "import_price_per_kwh": 1}], "local time of day like '07:00'"),
        ([{"start": "07:00", "end": "25:00", "import_price_per_kwh": 1}], "got '25:00'"),
    ],
)
def test_bad_tariff_names_the_key(zones: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        kyiv_site(tariff=zones)
    assert "grid.tariff" in str(caught.value) and words in str(caught.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("timestamp,import_price_per_kwh\n2026-01-15T10:00,9\n", "line 2, column 'timestamp': needs a UTC offset"),
        ("timestamp,import_price_per_kwh\n2026-01-15T10:00+02:00,abc\n", "line 2, column 'import_price_per_kwh'"),
        ("timestamp,price\n2026-01-15T10:00+02:00,1\n", "column 'price': unknown column"),
        (
            "timestamp,import_price_per_kwh\n2026-01-15T10:00+02:00,1\n2026-01-15T09:00+02:00,1\n",
            "line 3, column 'timestamp': must be later",
        ),
        ("timestamp,import_price_per_kwh\nnot a time,1\n", "line 2, column 'timestamp': not an ISO 8601 time"),
    ],
)
def test_bad_price_file_names_line_and_column(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        read_price_file(path)
    assert str(path) in str(caught.value) and words in str(caught.value)


def test_comment_lines_of_a_price_file_count_in_the_lines_named(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "# day-ahead prices, UAH/kWh\ntimestamp,import_price_per_kwh\n2026-01-15T10:00+02:00,9\n"
        "# the afternoon\n2026-01-15T11:00+02:00,abc\n",
        encoding="utf-8",
    )
    with pytest.raises(ProfileError) as info:
        read_price_file(path)
    assert any(p.startswith("line 5, column 'import_price_per_kwh': not a finite number") for p in info.value.problems)


def test_price_file_is_resolved_against_the_site_file(tmp_path: Path) -> None:
    (tmp_path / "prices.csv").write_text("timestamp,import_price_per_kwh\n2026-01-15T00:00+00:00,5\n", encoding="utf-8")
    raw = tiny_site(
        loads=[{"id": "critical", "priority": 1, "value_of_lost_load_per_kwh": 100}],
        grid={"max_import_kw": 10, "import_price_per_kwh": 1.0, "price_file": "prices.csv"},
    )
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    site = read_site(tmp_path / "site.yaml")
    imp, _ = site_prices(site, pd.date_range("2026-01-15", periods=2, freq="1h", tz="UTC"))
    assert list(imp) == [5.0, 1.0]


@given(
    cuts=st.lists(st.integers(min_value=1, max_value=23), min_size=1, max_size=5, unique=True),
    minute=st.integers(min_value=0, max_value=1439),
)
def test_any_partition_of_the_day_is_a_valid_tariff(cuts: list[int], minute: int) -> None:
    """Zones cut at any hours cover each minute exactly once (the validator accepts every partition)."""
    bounds = sorted(cuts)
    edges = [*bounds, bounds[0] + 24]
    zones = [
        {"start": f"{a % 24:02d}:00", "end": f"{b % 24:02d}:00", "import_price_per_kwh": float(i)}
        for i, (a, b) in enumerate(itertools.pairwise(edges))
    ]
    site = kyiv_site(tariff=zones)
    assert site.grid is not None
    assert sum(z.covers(minute) for z in site.grid.tariff) == 1


def test_step_no_rule_prices_is_named(tmp_path: Path) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text("timestamp,import_price_per_kwh\n2026-01-15T00:00+00:00,5\n2026-01-15T01:00+00:00,6\n")
    site = kyiv_site(price_file=str(prices))
    stamps = pd.date_range("2026-01-15", periods=3, freq="1h", tz="UTC")
    frame = pd.DataFrame({"timestamp": [t.isoformat() for t in stamps], "load.critical": 1})
    assert list(profiles_from_frame(frame.iloc[:2], site).import_price_per_kwh) == [5.0, 6.0]
    with pytest.raises(ProfileError, match=r"line 4: no 'grid.import_price_per_kwh' column and no price"):
        profiles_from_frame(frame, site)  # 02:00 is past the file's last hour


def test_clear_sky_pv_forecast_needs_a_location() -> None:
    with pytest.raises(ConfigError, match=r"forecast.pv: 'clear-sky' needs the site's 'location'"):
        site_from_dict(tiny_site(forecast={"pv": "clear-sky"}))
    site = site_from_dict(tiny_site(forecast={"pv": "clear-sky"}, location={"latitude": 49.99, "longitude": 36.23}))
    assert site.location is not None and site.location.altitude_m == 0.0


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        *[("07:00", 420), ("7:00", 420), ("00:00", 0), ("23:59", 1439), ("24:00", 1440), (" 07:30 ", 450)],
        *[("24:01", None), ("7:5", None), ("25:00", None), ("07:60", None), ("0700", None), ("", None), (7, None)],
    ],
)
def test_one_reader_of_times_of_day(text: object, minutes: int | None) -> None:
    """Site-file tariffs and outage schedules read times of day with the same rule (issue 13)."""
    assert parse_clock(text) == minutes
