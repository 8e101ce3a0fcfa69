"""The one problem format (fileio.Problems), the one ISO time reader and the one H:MM reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from microgrid.errors import ProfileError
from microgrid.fileio import MAX_LISTED, Problems, parse_time
from microgrid.forecast.schedule import ScheduleError
from microgrid.planning.drills.model import Event
from microgrid.site.grid import parse_clock


def test_problems_raise_the_error_class_given_listing_at_most_max_listed() -> None:
    problems = Problems("f.csv")
    problems.raise_if_any()  # nothing collected: no error
    problems.items += [f"p{i}" for i in range(MAX_LISTED + 3)]
    with pytest.raises(ProfileError) as exc:
        problems.raise_if_any()
    assert exc.value.source == "f.csv" and exc.value.total == MAX_LISTED + 3
    assert exc.value.problems == [f"p{i}" for i in range(MAX_LISTED)] + ["... and 3 more"]


def test_hidden_problems_count_in_the_total_and_the_more_line() -> None:
    problems = Problems("folder", ScheduleError)
    problems.items += [f"a.csv: p{i}" for i in range(MAX_LISTED)]
    problems.hidden = 7  # a.csv's own list was cut short
    problems.add("b.csv: p")
    with pytest.raises(ScheduleError) as exc:
        problems.raise_if_any()
    assert exc.value.total == MAX_LISTED + 8
    assert exc.value.problems[-1] == "... and 8 more" and len(exc.value.problems) == MAX_LISTED + 1


def test_hidden_problems_alone_raise_nothing() -> None:
    problems = Problems("folder", ScheduleError)
    problems.hidden = 3
    problems.raise_if_any()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-15T07:00:00+02:00", datetime(2026, 1, 15, 5, tzinfo=UTC)),
        ("  2026-01-15 07:00Z ", datetime(2026, 1, 15, 7, tzinfo=UTC)),
        ("2026-01-15T07:00", datetime(2026, 1, 15, 7)),  # naive: the caller decides
        ("15.01.2026 07:00", None),
        ("", None),
        (5, None),
        (None, None),
    ],
)
def test_parse_time(text: object, expected: datetime | None) -> None:
    got = parse_time(text)
    assert got == expected
    assert (got is None) == (expected is None) and (got is None or (got.tzinfo is None) == (expected.tzinfo is None))


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("07:00", 420), ("7:05", 425), (" 24:00 ", 1440), ("24:01", None), ("010:00", None), ("7:5", None), (7, None)],
)
def test_parse_clock_reads_times_of_day(text: object, minutes: int | None) -> None:
    assert parse_clock(text) == minutes


def test_parse_clock_reads_a_drills_times_from_its_start() -> None:
    assert parse_clock("999:59", hour_digits=3, max_minutes=None) == 999 * 60 + 59
    assert parse_clock("36:00", hour_digits=3, max_minutes=None) == 36 * 60
    assert parse_clock("1000:00", hour_digits=3, max_minutes=None) is None
    event = Event.model_validate({"at": "36:30", "grid": "down"})
    assert event.at == timedelta(hours=36, minutes=30)
