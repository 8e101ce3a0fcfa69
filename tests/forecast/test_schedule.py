"""Outage schedules: the shipped samples, DST days both ways, the per-step rule, folders,
the voided flag, errors naming file + line / key path, and the re-reading source."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from microgrid.errors import InputError
from microgrid.forecast.schedule import (
    OutageSchedule,
    ScheduleError,
    ScheduleSource,
    Slot,
    SlotStatus,
    read_schedule,
    schedule_source,
)
from microgrid.profiles import read_profiles
from microgrid.site import read_site
from tests.conftest import HOSPITAL, ROOT, WINTER

KYIV = "Europe/Kyiv"
SAMPLES = ROOT / "data" / "schedules"
HEADER = "queue,date,start,end,status\n"
H = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def csv_file(path: Path, rows: list[str], head: str = "") -> Path:
    return write(path, head + HEADER + "".join(r + "\n" for r in rows))


def json_file(path: Path, days: dict[str, list[tuple[str, str, str]]], queue: str = "3.1", **top: Any) -> Path:
    slots = {d: [{"start": s, "end": e, "status": x} for s, e, x in v] for d, v in days.items()}
    return write(path, json.dumps({"queues": {queue: slots}, **top}))


def hourly_rows(day: str, statuses: Sequence[str], queue: str = "3.1") -> list[str]:
    return [f"{queue},{day},{h:02d}:00,{h + 1:02d}:00,{s}" for h, s in enumerate(statuses)]


def local_day(day: str, freq: str = "1h") -> pd.DatetimeIndex:
    start = pd.Timestamp(day, tz=KYIV)
    end = pd.Timestamp(start.date() + timedelta(days=1), tz=KYIV)  # the next local midnight
    return pd.date_range(start, end, freq=freq, inclusive="left")


def problems(exc: pytest.ExceptionInfo[ScheduleError]) -> str:
    return "\n".join(exc.value.problems)


# -- the shipped samples ------------------------------------------------------------------


def test_sample_matches_the_winter_day_grid() -> None:
    site = read_site(HOSPITAL)
    profiles = read_profiles(WINTER, site)
    schedule = read_schedule(SAMPLES / "kharkiv-2026-01-15.csv", "3.1", KYIV)
    status = schedule.per_step(profiles.index, timedelta(hours=profiles.step_h))
    assert list(status == "off") == list(profiles.grid_available == 0)
    assert (status == "possible").sum() == 8  # 08-09 and 16-17, four 15-minute steps each
    assert set(status) == {"on", "off", "possible"}
    assert not schedule.voided and schedule.published_at == utc(2026, 1, 14, 16)


def test_sample_csv_and_json_are_the_same_schedule() -> None:
    from_csv = read_schedule(SAMPLES / "kharkiv-2026-01-15.csv", "3.1", KYIV)
    from_json = read_schedule(SAMPLES / "kharkiv-2026-01-15.json", "3.1", KYIV)
    assert from_csv.slots == from_json.slots  # hourly rows and ranges join to the same slots
    assert from_csv.slots[0].start == utc(2026, 1, 14, 22) and from_csv.slots[-1].end == utc(2026, 1, 17, 22)
    other = read_schedule(SAMPLES / "kharkiv-2026-01-15.json", "3.2", KYIV)
    assert other.slots[0] == Slot(utc(2026, 1, 14, 22), utc(2026, 1, 15, 2), "off")


def test_sample_folder_takes_the_update() -> None:
    schedule = read_schedule(SAMPLES / "kharkiv-folder", "3.1", KYIV)
    index = local_day("2026-01-16")
    status = schedule.per_step(index, H)
    assert list(status[11:16]) == ["off", "off", "off", "possible", "possible"]  # revised 11-14 off, 14-16 possible
    assert list(status[3:7]) == ["off"] * 4  # untouched by the update
    assert schedule.published_at == utc(2026, 1, 15, 19)
    assert schedule.slots[-1].end == utc(2026, 1, 17, 22)  # the 17th comes from the update


def test_sample_voided() -> None:
    schedule = read_schedule(SAMPLES / "voided.csv", "3.1", KYIV)
    assert schedule.voided and schedule.slots == ()
    assert set(schedule.per_step(local_day("2026-01-16"), H)) == {"unknown"}


# -- DST -----------------------------------------------------------------------------------

STATUSES: list[SlotStatus] = ["on", "off", "possible"]


def test_spring_forward_day_has_23_hours(tmp_path: Path) -> None:
    """2026-03-29: 03:00 EET becomes 04:00 EEST; the row for 03:00-04:00 covers nothing."""
    statuses = [STATUSES[h % 3] for h in range(24)]
    schedule = read_schedule(csv_file(tmp_path / "s.csv", hourly_rows("2026-03-29", statuses)), "3.1", KYIV)
    assert sum((s.end - s.start for s in schedule.slots), timedelta()) == 23 * H
    assert len(schedule.slots) == 23
    assert schedule.slots[0].start == utc(2026, 3, 28, 22)  # local midnight, +02:00
    assert Slot(utc(2026, 3, 29, 0), utc(2026, 3, 29, 1), statuses[2]) in schedule.slots  # 02-03 local, +02:00
    assert Slot(utc(2026, 3, 29, 1), utc(2026, 3, 29, 2), statuses[4]) in schedule.slots  # 04-05 local, +03:00
    assert schedule.slots[-1].end == utc(2026, 3, 29, 21)  # next local midnight, +03:00
    index = local_day("2026-03-29")
    assert len(index) == 23
    assert list(schedule.per_step(index, H)) == statuses[:3] + statuses[4:]


def test_fall_back_day_has_25_hours(tmp_path: Path) -> None:
    """2026-10-25: 04:00 EEST becomes 03:00 EET; the row for 03:00-04:00 covers both of them."""
    statuses = [STATUSES[h % 3] for h in range(24)]
    schedule = read_schedule(csv_file(tmp_path / "s.csv", hourly_rows("2026-10-25", statuses)), "3.1", KYIV)
    assert sum((s.end - s.start for s in schedule.slots), timedelta()) == 25 * H
    assert len(schedule.slots) == 24
    assert Slot(utc(2026, 10, 25, 0), utc(2026, 10, 25, 2), statuses[3]) in schedule.slots  # 03-04 twice
    assert Slot(utc(2026, 10, 24, 23), utc(2026, 10, 25, 0), statuses[2]) in schedule.slots  # 02-03, +03:00
    assert Slot(utc(2026, 10, 25, 2), utc(2026, 10, 25, 3), statuses[4]) in schedule.slots  # 04-05, +02:00
    assert schedule.slots[0].start == utc(2026, 10, 24, 21) and schedule.slots[-1].end == utc(2026, 10, 25, 22)
    index = local_day("2026-10-25")
    assert len(index) == 25
    assert list(schedule.per_step(index, H)) == statuses[:4] + statuses[3:]


def test_half_hours_in_the_repeated_and_skipped_hours(tmp_path: Path) -> None:
    rows = ["3.1,2026-10-25,03:30,04:00,off", "3.1,2026-03-29,03:30,05:00,off", "3.1,2026-03-29,02:00,03:00,possible"]
    schedule = read_schedule(csv_file(tmp_path / "s.csv", rows), "3.1", KYIV)
    assert schedule.windows("off") == (
        (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)),  # 03:30-04:00 does not exist that day: only 04:00-05:00
        (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1)),  # 03:30-04:00 EEST
        (utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2)),  # 03:30-04:00 EET
    )
    assert schedule.windows("possible") == ((utc(2026, 3, 29, 0), utc(2026, 3, 29, 1)),)


def test_dst_days_in_json_too(tmp_path: Path) -> None:
    days = {"2026-03-29": [("00:00", "24:00", "on")], "2026-10-25": [("00:00", "24:00", "off")]}
    schedule = read_schedule(json_file(tmp_path / "s.json", days), "3.1", KYIV)
    assert [s.end - s.start for s in schedule.slots] == [23 * H, 25 * H]


# -- per step -------------------------------------------------------------------------------


def test_quarter_hours_on_hourly_and_half_hourly_slots(tmp_path: Path) -> None:
    rows = ["3.1,2026-01-15,10:00,11:00,off", "3.1,2026-01-15,11:00,11:30,possible", "3.1,2026-01-15,11:30,12:00,on"]
    schedule = read_schedule(csv_file(tmp_path / "s.csv", rows), "3.1", KYIV)
    index = pd.date_range("2026-01-15 09:30", periods=12, freq="15min", tz=KYIV)
    expected = ["unknown"] * 2 + ["off"] * 4 + ["possible"] * 2 + ["on"] * 2 + ["unknown"] * 2
    assert list(schedule.per_step(index, timedelta(minutes=15))) == expected
    assert list(schedule.per_step(index.tz_convert("UTC"), timedelta(minutes=15))) == expected


def test_a_step_over_several_slots_takes_the_worst(tmp_path: Path) -> None:
    rows = ["3.1,2026-01-15,10:00,10:30,on", "3.1,2026-01-15,10:30,11:00,possible", "3.1,2026-01-15,11:00,11:30,off"]
    rows += ["3.1,2026-01-15,11:30,12:00,on", "3.1,2026-01-15,13:00,14:00,on"]
    schedule = read_schedule(csv_file(tmp_path / "s.csv", rows), "3.1", KYIV)
    index = pd.date_range("2026-01-15 10:00", periods=4, freq="1h", tz=KYIV)
    # 10-11 on+possible, 11-12 off+on, 12-13 nothing, 13-14 on
    assert list(schedule.per_step(index, H)) == ["possible", "off", "unknown", "on"]
    shifted = pd.date_range("2026-01-15 12:30", periods=2, freq="1h", tz=KYIV)
    assert list(schedule.per_step(shifted, H)) == ["unknown", "unknown"]  # half covered by on, half by nothing
    assert list(schedule.per_step(pd.DatetimeIndex([], tz=UTC), H)) == []


def test_per_step_needs_a_tz_aware_index() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        OutageSchedule("3.1", ()).per_step(pd.date_range("2026-01-15", periods=2, freq="1h"), H)


def test_slots_must_be_utc_sorted_and_apart() -> None:
    a, b = Slot(utc(2026, 1, 1, 0), utc(2026, 1, 1, 2), "on"), Slot(utc(2026, 1, 1, 1), utc(2026, 1, 1, 3), "off")
    with pytest.raises(ValueError, match="overlap"):
        OutageSchedule("3.1", (a, b))
    with pytest.raises(ValueError, match="UTC"):
        OutageSchedule("3.1", (Slot(datetime(2026, 1, 1), datetime(2026, 1, 1, 1), "on"),))


@settings(max_examples=40, deadline=None)
@given(
    statuses=st.lists(st.sampled_from(["on", "off", "possible", None]), min_size=24, max_size=24),
    day=st.sampled_from(["2026-01-15", "2026-03-29", "2026-07-01", "2026-10-25"]),
)
def test_random_hourly_schedules_round_trip(
    tmp_path_factory: pytest.TempPathFactory, statuses: list[str | None], day: str
) -> None:
    """Random hours (None = not published), DST days included: a quarter hour has the status
    of its local wall hour, a two-hour step the worse of its two hours; CSV and JSON agree."""
    folder = tmp_path_factory.mktemp("random")
    rows = [f"3.1,{day},{h:02d}:00,{h + 1:02d}:00,{s}" for h, s in enumerate(statuses) if s]
    days = {day: [(f"{h:02d}:00", f"{h + 1:02d}:00", s) for h, s in enumerate(statuses) if s]}
    if not rows:  # nothing published: the file is refused (see test_queue_absent_names_the_queues_present)
        return
    from_csv = read_schedule(csv_file(folder / "s.csv", rows), "3.1", KYIV)
    assert from_csv.slots == read_schedule(json_file(folder / "s.json", days), "3.1", KYIV).slots
    hours = [s or "unknown" for s in statuses]
    quarters = local_day(day, "15min")
    assert list(from_csv.per_step(quarters, timedelta(minutes=15))) == [hours[t.hour] for t in quarters]
    rank = ["on", "unknown", "possible", "off"].index
    pairs = local_day(day, "2h")
    seconds = [t + pd.Timedelta(hours=1) for t in pairs]  # the second hour runs into the next day on 29 March
    second = [hours[t.hour] if str(t.date()) == day else "unknown" for t in seconds]
    expected = [max(hours[t.hour], other, key=rank) for t, other in zip(pairs, second, strict=True)]
    assert list(from_csv.per_step(pairs, 2 * H)) == expected


# -- folders and the voided flag ----------------------------------------------------------


def test_folder_newer_publication_wins_where_it_overlaps(tmp_path: Path) -> None:
    old = "# published_at: 2026-01-15T08:00+02:00\n"
    new = "# published_at: 2026-01-15T09:00+02:00\n"
    csv_file(tmp_path / "b-old.csv", ["3.1,2026-01-15,00:00,24:00,on"], old)
    csv_file(tmp_path / "a-new.csv", ["3.1,2026-01-15,12:00,16:00,off", "1.1,2026-01-15,00:00,24:00,off"], new)
    write(tmp_path / "notes.txt", "not a schedule")
    write(tmp_path / ".~lock.a-new.csv#", "an editor's lock file")
    schedule = read_schedule(tmp_path, "3.1", KYIV)
    assert [s.status for s in schedule.slots] == ["on", "off", "on"]
    assert schedule.slots[1] == Slot(utc(2026, 1, 15, 10), utc(2026, 1, 15, 14), "off")
    assert schedule.source == str(tmp_path) and schedule.published_at == utc(2026, 1, 15, 7)


def test_folder_without_publication_times_orders_by_modification_time(tmp_path: Path) -> None:
    first = csv_file(tmp_path / "z.csv", ["3.1,2026-01-15,00:00,24:00,off"])
    second = json_file(tmp_path / "a.json", {"2026-01-15": [("00:00", "24:00", "on")]})
    os.utime(first, (1_700_000_000, 1_700_000_000))
    os.utime(second, (1_700_000_100, 1_700_000_100))
    assert read_schedule(tmp_path, "3.1", KYIV).slots[0].status == "on"
    os.utime(first, (1_700_000_200, 1_700_000_200))
    assert read_schedule(tmp_path, "3.1", KYIV).slots[0].status == "off"


def test_folder_is_voided_when_its_newest_file_says_so(tmp_path: Path) -> None:
    csv_file(tmp_path / "1.csv", ["3.1,2026-01-15,00:00,24:00,on"], "# published_at: 2026-01-15T08:00+02:00\n")
    csv_file(tmp_path / "2.csv", [], "# voided: true\n# published_at: 2026-01-15T09:00+02:00\n")
    schedule = read_schedule(tmp_path, "3.1", KYIV)
    assert schedule.voided and len(schedule.slots) == 1 and schedule.windows("on") == ()
    csv_file(tmp_path / "3.csv", ["3.1,2026-01-16,00:00,24:00,on"], "# published_at: 2026-01-15T10:00+02:00\n")
    assert not read_schedule(tmp_path, "3.1", KYIV).voided  # a new schedule after the emergency


def test_voided_in_json_and_with_slots(tmp_path: Path) -> None:
    path = json_file(tmp_path / "s.json", {"2026-01-15": [("00:00", "24:00", "on")]}, voided=True)
    schedule = read_schedule(path, "3.1", KYIV)
    assert schedule.voided and list(schedule.per_step(local_day("2026-01-15"), H)) == ["unknown"] * 24


def test_file_timezone_overrides_the_site_zone(tmp_path: Path) -> None:
    path = csv_file(tmp_path / "s.csv", ["3.1,2026-01-15,00:00,01:00,off"], "# timezone: UTC\n")
    assert read_schedule(path, "3.1", KYIV).slots[0].start == utc(2026, 1, 15, 0)


# -- errors -----------------------------------------------------------------------------------


def test_csv_errors_name_file_line_and_column(tmp_path: Path) -> None:
    rows = [
        "3.1,2026-01-15,00:00,04:00,maybe",  # line 2
        "3.1,2026-01-15,04:00,25:00,off",  # line 3
        "3.1,2026-01-15,09:00,08:00,on",  # line 4
        "3.1,2026-02-30,00:00,01:00,on",  # line 5
        "3.1,2026-01-16,00:00,04:00,on",  # line 6
        "3.1,2026-01-16,03:00,05:00,off",  # line 7
        "3.1,2026-01-16,06:00",  # line 8
        ",2026-01-17,00:00,01:00,on",  # line 9
    ]
    path = csv_file(tmp_path / "bad.csv", rows)
    with pytest.raises(ScheduleError) as exc:
        read_schedule(path, "3.1", KYIV)
    assert isinstance(exc.value, InputError) and exc.value.source == str(path)
    text = problems(exc)
    assert "line 2, column 'status': must be one of on, off, possible, got 'maybe'" in text
    assert "line 3, column 'end': not a local time like '07:00' or '24:00', got '25:00'" in text
    assert "line 4, column 'end': must be after start (09:00), got '08:00'" in text
    assert "line 5, column 'date': not a local date like '2026-01-15', got '2026-02-30'" in text
    assert "line 7: overlaps the slot at line 6 (00:00-04:00 on 2026-01-16)" in text
    assert "line 8: 3 cells, but the header has 5" in text
    assert "line 9, column 'queue': must name a queue" in text
    assert exc.value.total == 7
    assert str(path) in str(exc.value)


def test_csv_header_and_directive_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "queue,date,from,end,status,note\n3.1,2026-01-15,00:00,01:00,on,x\n")
    with pytest.raises(ScheduleError) as exc:
        read_schedule(path, "3.1", KYIV)
    assert problems(exc) == (
        "line 1: unknown column 'from' (the columns are queue, date, start, end, status)\n"
        "line 1: unknown column 'note' (the columns are queue, date, start, end, status)\n"
        "line 1: no 'start' column"
    )
    head = "# voided: maybe\n# published_at: yesterday\n# timezone: Mars/Olympus\n"
    with pytest.raises(ScheduleError) as exc:
        read_schedule(csv_file(tmp_path / "d.csv", ["3.1,2026-01-15,00:00,01:00,on"], head), "3.1", KYIV)
    assert problems(exc) == (
        "line 1, '# voided:': must be true or false, got 'maybe'\n"
        "line 2, '# published_at:': not an ISO 8601 time with a UTC offset, got 'yesterday'\n"
        "line 3, '# timezone:': not an IANA time zone, got 'Mars/Olympus'"
    )
    with pytest.raises(ScheduleError, match="no header line"):
        read_schedule(write(tmp_path / "e.csv", "# only a comment\n"), "3.1", KYIV)
    with pytest.raises(ScheduleError, match="not an IANA time zone, got 'Europe'"):  # a folder of zones
        read_schedule(
            csv_file(tmp_path / "f.csv", ["3.1,2026-01-15,00:00,01:00,on"], "# timezone: Europe\n"), "3.1", KYIV
        )


def test_queue_absent_names_the_queues_present(tmp_path: Path) -> None:
    path = csv_file(tmp_path / "s.csv", ["1.1,2026-01-15,00:00,01:00,on", "3.2,2026-01-15,00:00,01:00,on"])
    with pytest.raises(ScheduleError) as exc:
        read_schedule(path, "3.1", KYIV)
    assert problems(exc) == "no slots for queue '3.1' (the file has queues '1.1', '3.2')"
    with pytest.raises(ScheduleError, match=r"no slots for queue '3\.1' \(the files have queues '1\.1', '3\.2'\)"):
        read_schedule(tmp_path, "3.1", KYIV)


def test_json_errors_name_the_key_path(tmp_path: Path) -> None:
    raw = {
        "queues": {
            "3.1": {
                "2026-01-15": [
                    {"start": "00:00", "end": "04:00", "status": "of"},
                    {"start": "04:00", "end": "08:00", "status": "off", "note": "x"},
                    {"start": "08:00", "status": "on"},
                    "09:00-10:00 on",
                    {"start": "10:00", "end": "11:00", "status": "on"},
                    {"start": "10:30", "end": "12:00", "status": "on"},
                ],
                "15.01.2026": [{"start": "00:00", "end": "01:00", "status": "on"}],
                "2026-01-16": "all day on",
            },
            "3.2": [],
        },
        "voided": "no",
        "source": "Kharkivoblenergo",
    }
    with pytest.raises(ScheduleError) as exc:
        read_schedule(write(tmp_path / "bad.json", json.dumps(raw)), "3.1", KYIV)
    text = problems(exc)
    day = 'queues["3.1"]["2026-01-15"]'
    assert f"{day}[0].status: must be one of on, off, possible, got 'of'" in text
    assert f"{day}[1].note: unknown key (the keys are start, end, status)" in text
    assert f"{day}[2].end: required key is missing" in text
    assert f"{day}[3]: must be an object with start, end, status, got str" in text
    assert f"{day}[5]: overlaps the slot at {day}[4] (10:00-11:00 on 2026-01-15)" in text
    assert """queues["3.1"]["15.01.2026"]: not a local date like '2026-01-15', got '15.01.2026'""" in text
    assert """queues["3.1"]["2026-01-16"]: must be a list of slots, got str""" in text
    assert """queues["3.2"]: must be an object of dates, got list""" in text
    assert "voided: must be true or false, got 'no'" in text
    assert "source: unknown key (the keys are queues, timezone, voided, published_at)" in text
    assert exc.value.total == 10


def test_malformed_json(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError) as exc:
        read_schedule(write(tmp_path / "s.json", '{"queues": {"3.1": {}},\n "voided": tru}'), "3.1", KYIV)
    assert problems(exc) == "line 2, column 12: not valid JSON: Expecting value"
    for text, message in [
        ("[1, 2]", "(top level): must be an object with 'queues', got list"),
        ("{}", "queues: required key is missing"),
        ('{"queues": {"3.1": {}, "3.1": {}}}', "key '3.1' appears more than once in one object"),
    ]:
        with pytest.raises(ScheduleError) as exc:
            read_schedule(write(tmp_path / "s.json", text), "3.1", KYIV)
        assert problems(exc) == message


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match="no such file or folder"):
        read_schedule(tmp_path / "missing.csv", "3.1", KYIV)
    with pytest.raises(ScheduleError, match=r"must end in \.csv or \.json"):
        read_schedule(write(tmp_path / "s.xlsx", "x"), "3.1", KYIV)
    with pytest.raises(ScheduleError, match="not an IANA time zone"):
        read_schedule(tmp_path, "3.1", "Kharkiv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScheduleError, match=r"no schedule files \(\*\.csv, \*\.json\)"):
        read_schedule(tmp_path / "empty", "3.1", KYIV)
    (tmp_path / "latin1.csv").write_bytes(HEADER.encode() + "3.1,2026-01-15,00:00,01:00,on # \xe9\n".encode("latin-1"))
    with pytest.raises(ScheduleError, match="cannot read file"):
        read_schedule(tmp_path / "latin1.csv", "3.1", KYIV)


def test_folder_errors_name_the_file(tmp_path: Path) -> None:
    csv_file(tmp_path / "good.csv", ["3.1,2026-01-15,00:00,01:00,on"])
    csv_file(tmp_path / "bad.csv", ["3.1,2026-01-15,00:00,01:00,of"])
    with pytest.raises(ScheduleError) as exc:
        read_schedule(tmp_path, "3.1", KYIV)
    assert exc.value.source == str(tmp_path)
    assert problems(exc) == "bad.csv: line 2, column 'status': must be one of on, off, possible, got 'of'"


# -- the source, re-read each cycle --------------------------------------------------------

GOOD = HEADER + "3.1,2026-01-15,00:00,24:00,on\n"
OTHER = HEADER + "3.1,2026-01-15,00:00,12:00,off\n3.1,2026-01-15,12:00,24:00,on\n"
BAD = HEADER + "3.1,2026-01-15,00:00,24:00,of\n"


def rewrite(path: Path, text: str) -> None:
    """Write and move the modification time on (a fast test could otherwise keep it)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    later = max(path.stat().st_mtime_ns, before + 1_000_000_000)
    os.utime(path, ns=(later, later))


def test_source_keeps_the_last_good_schedule(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    source = ScheduleSource(path, "3.1", KYIV)
    start = source.refresh()
    assert start.schedule is None and start.error is not None and "no such file" in start.error
    assert not start.changed

    rewrite(path, GOOD)
    first = source.refresh()
    assert first.error is None and first.changed and first.schedule is not None
    assert first.schedule.slots[0].status == "on"
    again = source.refresh()
    assert again == type(again)(first.schedule, None, changed=False)

    rewrite(path, BAD)
    broken = source.refresh()
    assert broken.schedule is first.schedule and not broken.changed
    assert broken.error is not None and str(path) in broken.error and "line 2, column 'status'" in broken.error
    assert source.refresh().error == broken.error  # still bad, not re-read

    path.unlink()
    gone = source.refresh()
    assert gone.schedule is first.schedule and gone.error is not None and "no such file" in gone.error

    rewrite(path, OTHER)
    fixed = source.refresh()
    assert fixed.error is None and fixed.changed and fixed.schedule is not None
    assert [s.status for s in fixed.schedule.slots] == ["off", "on"]


def test_source_unchanged_content_is_not_a_change(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    rewrite(path, GOOD)
    source = ScheduleSource(path, "3.1", KYIV)
    assert source.refresh().changed
    rewrite(path, "# republished, same slots\n" + GOOD)
    update = source.refresh()
    assert update.error is None and not update.changed


def test_source_folder_sees_new_and_removed_files(tmp_path: Path) -> None:
    rewrite(tmp_path / "1.csv", GOOD)
    source = ScheduleSource(tmp_path, "3.1", KYIV)
    assert source.refresh().changed
    rewrite(tmp_path / "2.csv", HEADER + "3.1,2026-01-16,00:00,24:00,off\n")
    update = source.refresh()
    assert update.changed and update.schedule is not None and len(update.schedule.slots) == 2
    (tmp_path / "2.csv").unlink()
    update = source.refresh()
    assert update.changed and update.schedule is not None and len(update.schedule.slots) == 1


def test_schedule_source_from_the_site_file(tmp_path: Path) -> None:
    raw = yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))
    raw.pop("devices", None)
    raw["grid"]["schedule"] = {"queue": "3.1", "source": "schedules/kharkiv.csv"}
    site_file = write(tmp_path / "site.yaml", yaml.safe_dump(raw))
    (tmp_path / "schedules").mkdir()
    rewrite(tmp_path / "schedules" / "kharkiv.csv", (SAMPLES / "kharkiv-2026-01-15.csv").read_text(encoding="utf-8"))
    source = schedule_source(read_site(site_file))
    assert source is not None and source.path == tmp_path / "schedules" / "kharkiv.csv"
    assert source.queue == "3.1" and source.tz == KYIV
    update = source.refresh()
    assert update.error is None and update.schedule is not None and update.schedule.queue == "3.1"
    del raw["grid"]["schedule"]
    assert schedule_source(read_site(write(tmp_path / "plain.yaml", yaml.safe_dump(raw)))) is None


def test_json_voided_must_be_a_boolean_and_long_lists_are_cut(tmp_path: Path) -> None:
    path = json_file(tmp_path / "s.json", {"2026-01-15": [("00:00", "24:00", "on")]}, voided=1)
    with pytest.raises(ScheduleError, match="voided: must be true or false, got 1"):
        read_schedule(path, "3.1", KYIV)
    rows = [f"3.1,2026-01-15,{h:02d}:00,{h + 1:02d}:00,of" for h in range(24)] + ["3.1,2026-01-16,00:00,01:00,of"] * 6
    with pytest.raises(ScheduleError) as exc:
        read_schedule(csv_file(tmp_path / "s.csv", rows), "3.1", KYIV)
    assert exc.value.total == 30 and len(exc.value.problems) == 26
    assert exc.value.problems[-1] == "... and 5 more"
    assert "30 problem(s)" in str(exc.value)
    (tmp_path / "s.json").unlink()
    csv_file(tmp_path / "b.csv", ["3.1,2026-01-15,00:00,01:00,of"])
    with pytest.raises(ScheduleError) as exc:
        read_schedule(tmp_path, "3.1", KYIV)
    assert exc.value.total == 31 and exc.value.problems[-1] == "... and 6 more"
    assert exc.value.problems[0] == "b.csv: line 2, column 'status': must be one of on, off, possible, got 'of'"
