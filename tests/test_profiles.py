"""Profiles CSV: the shipped forecasts read; bad files give a ProfileError naming the line
(the header is line 1, the first data row line 2) and the column."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import yaml

from microgrid.errors import ProfileError
from microgrid.profiles import profiles_from_frame, read_profiles
from microgrid.site import Site, read_site, site_from_dict
from tests.conftest import HOSPITAL, SUMMER, WINTER, tiny_site

SITE = read_site(HOSPITAL)
HEADER, *ROWS = [line.split(",") for line in WINTER.read_text(encoding="utf-8").splitlines()]
Table = tuple[list[str], list[list[str]]]


def winter() -> Table:
    """Header and rows of the winter profiles, as mutable lists of cells."""
    return list(HEADER), copy.deepcopy(ROWS)


def hospital_with(**changes: Any) -> Site:
    raw = yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))
    raw.pop("devices", None)  # its grid meter would need the grid these tests remove
    for key, value in changes.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    return site_from_dict(raw)


def write_csv(tmp_path: Path, header: list[str], rows: list[list[str]], name: str = "profiles.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def refused(path: Path, site: Site = SITE) -> ProfileError:
    with pytest.raises(ProfileError) as info:
        read_profiles(path, site)
    exc = info.value
    assert exc.source == str(path) and str(path) in str(exc)
    return exc


def assert_problem(exc: ProfileError, *fragments: str) -> None:
    assert any(all(f in p for f in fragments) for p in exc.problems), f"{fragments} not in {exc.problems}"


def col(name: str) -> int:
    return HEADER.index(name)


# -- the shipped profiles -----------------------------------------------------------------------


@pytest.mark.parametrize("path", [WINTER, SUMMER], ids=["winter", "summer"])
def test_shipped_profiles_read(path: Path) -> None:
    prof = read_profiles(path, SITE)
    assert prof.steps == 96 and prof.step_h == 0.25
    assert str(prof.index.tz) == "UTC"
    assert (np.diff(prof.index.as_unit("ns").asi8) == 15 * 60 * 10**9).all()
    assert list(prof.load_kw.columns) == ["critical", "essential", "comfort"]
    assert list(prof.pv_kw.columns) == ["roof"]
    assert set(np.unique(prof.grid_available)) <= {0.0, 1.0}
    assert (prof.load_kw.to_numpy() >= 0).all()


def test_winter_values_and_timestamps() -> None:
    prof = read_profiles(WINTER, SITE)
    assert prof.index[0] == pd.Timestamp("2026-01-14T22:00:00Z")  # 00:00 in Kyiv (+02:00)
    assert prof.load_kw["critical"].iloc[0] == pytest.approx(float(ROWS[0][col("load.critical")]))
    assert prof.import_price_per_kwh.iloc[0] == pytest.approx(float(ROWS[0][col("grid.import_price_per_kwh")]))
    assert (prof.export_price_per_kwh == 0).all()  # the site's constant


def test_absent_columns_fall_back(tmp_path: Path) -> None:
    keep = ["timestamp", "load.critical"]
    header, rows = winter()
    idx = [header.index(c) for c in keep]
    path = write_csv(tmp_path, keep, [[r[i] for i in idx] for r in rows])
    prof = read_profiles(path, SITE)
    assert (prof.load_kw["essential"] == 0).all() and (prof.load_kw["comfort"] == 0).all()
    assert (prof.pv_kw["roof"] == 0).all()
    assert (prof.grid_available == 1).all()
    assert (prof.import_price_per_kwh == 4.32).all()  # the site's constant


def test_site_without_grid_gets_zero_grid_series(tmp_path: Path) -> None:
    site = hospital_with(grid=None)
    header, rows = winter()
    keep = [i for i, c in enumerate(header) if not c.startswith("grid.")]
    prof = read_profiles(write_csv(tmp_path, [header[i] for i in keep], [[r[i] for i in keep] for r in rows]), site)
    assert (prof.grid_available == 0).all() and (prof.import_price_per_kwh == 0).all()


def test_spaces_bom_and_blank_trailing_lines_are_tolerated(tmp_path: Path) -> None:
    text = WINTER.read_text(encoding="utf-8").replace(",", ", ")
    path = tmp_path / "p.csv"
    path.write_text("\ufeff" + text + "\n\n", encoding="utf-8")
    prof = read_profiles(path, SITE)
    assert prof.steps == 96
    pd.testing.assert_frame_equal(prof.load_kw, read_profiles(WINTER, SITE).load_kw)


def test_a_blank_line_inside_does_not_shift_the_lines_named(tmp_path: Path) -> None:
    """A blank line after the 10th row is skipped; a bad value on file line 20 is reported as line 20
    (counting the blank line), not line 19 (the 18th data row + 2)."""
    header, rows = winter()
    rows[17][col("load.critical")] = "lots"
    path = tmp_path / "p.csv"
    lines = [",".join(header), *(",".join(r) for r in rows[:10]), "", *(",".join(r) for r in rows[10:])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    exc = refused(path)
    assert_problem(exc, "line 20,", "'load.critical'", "not a finite number")
    assert not any("line 19," in p for p in exc.problems)


def test_frame_from_pandas_matches_the_file() -> None:
    frame = pd.read_csv(WINTER)
    from_frame = profiles_from_frame(frame, SITE)
    from_file = read_profiles(WINTER, SITE)
    assert (from_frame.index == from_file.index).all()
    pd.testing.assert_frame_equal(from_frame.load_kw, from_file.load_kw)
    pd.testing.assert_series_equal(from_frame.grid_available, from_file.grid_available)


def test_dst_change_with_uniform_utc_spacing_is_accepted(tmp_path: Path) -> None:
    """Kyiv goes from +02:00 to +03:00 at 01:00 UTC on 2026-03-29: the local clock jumps, UTC does not."""
    site = site_from_dict(
        tiny_site(
            site={"name": "kyiv", "timezone": "Europe/Kyiv"},
            loads=[{"id": "base", "priority": 1, "value_of_lost_load_per_kwh": 100}],
        )
    )
    kyiv = ZoneInfo("Europe/Kyiv")
    start = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
    stamps = [(start + timedelta(minutes=30 * k)).astimezone(kyiv) for k in range(12)]
    offsets = {s.isoformat()[-6:] for s in stamps}
    assert offsets == {"+02:00", "+03:00"}  # the file really spans the change
    path = write_csv(tmp_path, ["timestamp", "load.base"], [[s.isoformat(), "10"] for s in stamps])
    prof = read_profiles(path, site)
    assert prof.steps == 12 and prof.step_h == 0.5
    assert prof.index[0] == pd.Timestamp(start) and prof.index[-1] == pd.Timestamp(start + timedelta(hours=5.5))


def test_local_wall_clock_without_the_dst_jump_is_refused(tmp_path: Path) -> None:
    """Uniform *local* times across the change are not uniform in UTC: refused, naming the row."""
    header = ["timestamp", "load.critical"]
    rows = [["2026-03-29T02:00:00+02:00", "1"], ["2026-03-29T02:30:00+02:00", "1"], ["2026-03-29T03:00:00+03:00", "1"]]
    exc = refused(write_csv(tmp_path, header, rows))
    assert_problem(exc, "line 4, column 'timestamp'", "uniform")


# -- bad files: one class of problem at a time -------------------------------------------------

Mutation = Callable[[list[str], list[list[str]]], object]


def set_cell(row: int, column: str, value: str) -> Mutation:
    def mutate(header: list[str], rows: list[list[str]]) -> None:
        rows[row][header.index(column)] = value

    return mutate


def drop_column(column: str) -> Mutation:
    def mutate(header: list[str], rows: list[list[str]]) -> None:
        i = header.index(column)
        del header[i]
        for r in rows:
            del r[i]

    return mutate


def rename(old: str, new: str) -> Mutation:
    return lambda header, rows: header.__setitem__(header.index(old), new)


CASES: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("no-timestamp", drop_column("timestamp"), ("line 1", "no 'timestamp' column")),
    ("renamed-timestamp", rename("timestamp", "time"), ("line 1", "'timestamp'")),
    ("no-offset", set_cell(3, "timestamp", "2026-01-15T00:45:00"), ("line 5, column 'timestamp'", "UTC offset")),
    ("date-only", set_cell(0, "timestamp", "2026-01-15"), ("line 2, column 'timestamp'", "UTC offset")),
    ("unparsable", set_cell(7, "timestamp", "yesterday noon"), ("line 9, column 'timestamp'", "'yesterday noon'")),
    ("bad-month", set_cell(1, "timestamp", "2026-13-15T00:15:00+02:00"), ("line 3, column 'timestamp'", "ISO 8601")),
    ("bad-offset", set_cell(2, "timestamp", "2026-01-15T00:30:00+25:00"), ("line 4, column 'timestamp'",)),
    ("year-3000", set_cell(95, "timestamp", "3000-01-15T23:45:00+02:00"), ("line 97, column 'timestamp'", "years")),
    ("repeated", set_cell(1, "timestamp", ROWS[0][0]), ("line 3, column 'timestamp'", "must increase")),
    ("backwards", set_cell(1, "timestamp", "2026-01-14T23:45:00+02:00"), ("line 3, column 'timestamp'", "increase")),
    (
        "non-uniform",
        set_cell(10, "timestamp", "2026-01-15T02:35:00+02:00"),
        ("line 12, column 'timestamp'", "uniform", "0:20:00"),
    ),
    ("gap", lambda h, rows: rows.pop(40), ("line 42, column 'timestamp'", "uniform", "0:30:00")),
    ("single-row", lambda h, rows: rows.__delitem__(slice(1, None)), ("at least 2 rows", "got 1")),
    ("header-only", lambda h, rows: rows.clear(), ("at least 2 rows", "got 0")),
    ("negative-load", set_cell(4, "load.critical", "-3.5"), ("line 6, column 'load.critical'", "≥ 0", "'-3.5'")),
    ("negative-pv", set_cell(50, "pv.roof", "-0.1"), ("line 52, column 'pv.roof'", "≥ 0")),
    ("1e308-load", set_cell(1, "load.critical", "1e308"), ("line 3, column 'load.critical'", "±1e+09", "'1e308'")),
    ("huge-price", set_cell(9, "grid.import_price_per_kwh", "-2e9"), ("line 11", "±1e+09", "'-2e9'")),
    ("text-load", set_cell(4, "load.essential", "abc"), ("line 6, column 'load.essential'", "'abc'")),
    ("unit-in-cell", set_cell(0, "load.comfort", "22kW"), ("line 2, column 'load.comfort'", "'22kW'")),
    ("decimal-comma", set_cell(0, "load.comfort", '"22,7"'), ("line 2, column 'load.comfort'", "'22,7'")),
    ("nan", set_cell(9, "load.comfort", "nan"), ("line 11, column 'load.comfort'", "finite")),
    ("NaN", set_cell(9, "pv.roof", "NaN"), ("line 11, column 'pv.roof'", "finite")),
    ("empty-cell", set_cell(95, "load.critical", ""), ("line 97, column 'load.critical'", "got ''")),
    ("inf", set_cell(3, "grid.import_price_per_kwh", "inf"), ("line 5, column 'grid.import_price_per_kwh'", "finite")),
    ("overflow", set_cell(3, "load.critical", "1e400"), ("line 5, column 'load.critical'", "finite")),
    ("load-nope", rename("load.comfort", "load.nope"), ("line 1, column 'load.nope'", "no load tier")),
    ("pv-nope", rename("pv.roof", "pv.nope"), ("line 1, column 'pv.nope'", "no PV array")),
    ("foo", rename("pv.roof", "foo"), ("line 1, column 'foo'", "not a profile column")),
    ("battery-column", rename("pv.roof", "battery.bess1"), ("line 1, column 'battery.bess1'",)),
    ("grid-nope", rename("grid.available", "grid.up"), ("line 1, column 'grid.up'",)),
    ("available-2", set_cell(5, "grid.available", "2"), ("line 7, column 'grid.available'", "1 or 0", "'2'")),
    ("available-half", set_cell(5, "grid.available", "0.5"), ("line 7, column 'grid.available'", "1 or 0")),
    ("available-yes", set_cell(5, "grid.available", "yes"), ("line 7, column 'grid.available'",)),
    ("duplicate-column", rename("load.comfort", "load.critical"), ("line 1", "'load.critical'", "more than once")),
    ("duplicate-spaced", rename("load.comfort", " load.critical "), ("line 1", "'load.critical'", "more than once")),
    ("extra-cell", lambda h, rows: rows[0].append("5"), ("line 2", "8 cells", "header has 7")),
    ("missing-cell", lambda h, rows: rows[30].pop(), ("line 32", "6 cells", "header has 7")),
]


@pytest.mark.parametrize(("mutate", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_profiles_name_line_and_column(tmp_path: Path, mutate: Mutation, fragments: tuple[str, ...]) -> None:
    header, rows = winter()
    mutate(header, rows)
    assert_problem(refused(write_csv(tmp_path, header, rows)), *fragments)


def test_grid_columns_without_a_grid(tmp_path: Path) -> None:
    exc = refused(WINTER, hospital_with(grid=None))
    for column in ("grid.available", "grid.import_price_per_kwh"):
        assert_problem(exc, f"line 1, column '{column}'", "no grid")


def test_no_import_price_anywhere(tmp_path: Path) -> None:
    grid = dict(yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))["grid"])
    del grid["import_price_per_kwh"]
    site = hospital_with(grid=grid)
    assert read_profiles(WINTER, site).import_price_per_kwh.iloc[0] == pytest.approx(2.16)  # the column is enough
    header, rows = winter()
    drop_column("grid.import_price_per_kwh")(header, rows)
    assert_problem(refused(write_csv(tmp_path, header, rows), site), "line 1", "import_price_per_kwh")


def test_every_bad_cell_is_listed(tmp_path: Path) -> None:
    header, rows = winter()
    set_cell(0, "load.critical", "-1")(header, rows)
    set_cell(1, "pv.roof", "x")(header, rows)
    set_cell(2, "grid.available", "3")(header, rows)
    exc = refused(write_csv(tmp_path, header, rows))
    assert len(exc.problems) == 3
    assert_problem(exc, "line 2, column 'load.critical'")
    assert_problem(exc, "line 3, column 'pv.roof'")
    assert_problem(exc, "line 4, column 'grid.available'")


def test_long_lists_are_cut(tmp_path: Path) -> None:
    header, rows = winter()
    for r in rows:
        r[header.index("load.critical")] = "-1"
    exc = refused(write_csv(tmp_path, header, rows))
    assert len(exc.problems) == 26 and exc.problems[-1] == "... and 71 more"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "line 1"),
        ("\n" + WINTER.read_text(encoding="utf-8"), "line 1"),
        ('timestamp,"load.critical\n2026-01-15T00:00:00+02:00,1\n', "not a readable CSV"),
    ],
    ids=["empty", "header-on-line-2", "open-quote"],
)
def test_unreadable_files(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(text, encoding="utf-8")
    assert_problem(refused(path), fragment)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    assert_problem(refused(tmp_path / "nope.csv"), "cannot read file")
    path = tmp_path / "bin.csv"
    path.write_bytes(b"timestamp\n\xff\xfe\n")
    assert_problem(refused(path), "cannot read file")


def test_frame_problems_use_the_same_lines() -> None:
    frame = pd.read_csv(WINTER)
    frame.loc[3, "load.critical"] = -2.0
    frame.loc[5, "pv.roof"] = float("nan")
    with pytest.raises(ProfileError) as info:
        profiles_from_frame(frame, SITE, "frame")
    assert info.value.source == "frame"
    assert_problem(info.value, "line 5, column 'load.critical'")
    assert_problem(info.value, "line 7, column 'pv.roof'")


def test_frame_with_duplicate_columns_is_refused() -> None:
    frame = pd.read_csv(WINTER)
    frame.columns = [*frame.columns[:-1], "load.critical"]
    with pytest.raises(ProfileError, match="more than once"):
        profiles_from_frame(frame, SITE)


def test_rows_are_taken_and_found_one_way() -> None:
    """``take`` cuts, repeats and restamps; ``row_at`` finds the row covering a time, repeating past the end."""
    prof = read_profiles(WINTER, SITE)
    assert prof.row_at(prof.index[0]) == 0
    assert prof.row_at(prof.index[5] + pd.Timedelta(minutes=14, seconds=59)) == 5
    assert prof.row_at(prof.index[0] + pd.Timedelta(days=1, minutes=15)) == 1  # 96 steps: the day repeats
    later = pd.date_range(prof.index[-1] + pd.Timedelta(minutes=15), periods=3, freq="15min")
    taken = prof.take([95, 0, 1], later)
    assert list(taken.index) == list(later) and taken.step_h == prof.step_h
    assert taken.load_kw.to_numpy().tolist() == prof.load_kw.to_numpy()[[95, 0, 1]].tolist()
    assert taken.grid_available.tolist() == prof.grid_available.to_numpy()[[95, 0, 1]].tolist()
    assert list(prof.take([3, 4]).index) == list(prof.index[3:5])
