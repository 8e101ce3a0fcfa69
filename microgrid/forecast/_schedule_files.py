"""Reading outage-schedule files: CSV and JSON files, and folders of them, into local slots.

Private to :mod:`microgrid.forecast.schedule`, which turns the local slots into UTC ones. The
format is in ``docs/outage-schedules.md``; every error names the file, the line (CSV) or key
path (JSON) and the reason.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microgrid.errors import InputError
from microgrid.fileio import Problems, parse_time
from microgrid.site.grid import parse_clock

SlotStatus = Literal["on", "off", "possible"]
_COLUMNS = ("queue", "date", "start", "end", "status")
_SLOT_KEYS = ("start", "end", "status")
_TOP_KEYS = ("queues", "timezone", "voided", "published_at")
_DIRECTIVE = re.compile(r"^#\s*(voided|published_at|timezone)\s*:\s*(.*?)\s*$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
_Row = tuple[str, dict[str, Any], dict[str, str]]
"""One slot as written: where it is, its cells by field, and where each field is."""


class ScheduleError(InputError):
    """An outage-schedule file or folder that is unreadable or breaks the format."""


# -- reading one file: rows (CSV lines or JSON slot objects) -> local slots -----------------


@dataclass(frozen=True)
class LocalSlot:
    """A slot as published: a local date and wall-clock minutes ``[start, end)``."""

    where: str
    queue: str
    day: date
    start: int
    end: int
    status: SlotStatus


@dataclass(frozen=True)
class _File:
    slots: tuple[LocalSlot, ...]
    voided: bool
    published_at: datetime | None
    timezone: str | None


def _date(text: Any) -> date | None:
    with contextlib.suppress(ValueError):
        return date.fromisoformat(text.strip()) if isinstance(text, str) and _DATE.match(text.strip()) else None
    return None


def to_zone(name: Any) -> ZoneInfo | None:
    with contextlib.suppress(ZoneInfoNotFoundError, ValueError, OSError):  # 'Europe' is a folder of zones
        return ZoneInfo(name) if isinstance(name, str) else None
    return None


def _slot(row: _Row, problems: Problems) -> LocalSlot | None:
    """Check one row's fields; the slot, or None after adding its problems."""
    where, cells, at = row
    queue, day, start, end = (
        cells["queue"].strip(),
        _date(cells["date"]),
        parse_clock(cells["start"]),
        parse_clock(cells["end"]),
    )
    status, before = cells["status"].strip().lower() if isinstance(cells["status"], str) else None, len(problems.items)
    if not queue:
        problems.add(f"{at['queue']}: must name a queue (e.g. '3.1'), got {cells['queue']!r}")
    if day is None:
        problems.add(f"{at['date']}: not a local date like '2026-01-15', got {cells['date']!r}")
    for key, value in (("start", start), ("end", end)):
        if value is None:
            problems.add(f"{at[key]}: not a local time like '07:00' or '24:00', got {cells[key]!r}")
    if status not in ("on", "off", "possible"):
        problems.add(f"{at['status']}: must be one of on, off, possible, got {cells['status']!r}")
    if start is not None and end is not None and end <= start:
        problems.add(f"{at['end']}: must be after start ({cells['start']}), got {cells['end']!r}")
    if len(problems.items) > before or day is None or start is None or end is None:
        return None
    return LocalSlot(where, queue, day, start, end, cast(SlotStatus, status))


def _file(rows: list[_Row], settings: dict[str, Any], at: dict[str, str], problems: Problems) -> _File:
    """Check every row, that slots of one queue and day do not overlap, and the file-level settings."""
    slots = [slot for row in rows if (slot := _slot(row, problems))]
    latest: LocalSlot | None = None
    for slot in sorted(slots, key=lambda s: (s.queue, s.day, s.start, s.end)):
        same_day = latest is not None and (latest.queue, latest.day) == (slot.queue, slot.day)
        if latest is not None and same_day and slot.start < latest.end:
            span = f"{latest.start // 60:02d}:{latest.start % 60:02d}-{latest.end // 60:02d}:{latest.end % 60:02d}"
            problems.add(f"{slot.where}: overlaps the slot at {latest.where} ({span} on {slot.day})")
        if latest is None or not same_day or slot.end > latest.end:
            latest = slot
    voided, published, zone = (settings.get(key) for key in ("voided", "published_at", "timezone"))
    if "voided" in settings and not isinstance(voided, bool):
        problems.add(f"{at['voided']}: must be true or false, got {voided!r}")
    stamp = parse_time(published) if published is not None else None
    if published is not None and (stamp is None or stamp.utcoffset() is None):
        problems.add(f"{at['published_at']}: not an ISO 8601 time with a UTC offset, got {published!r}")
    if zone is not None and to_zone(zone) is None:
        problems.add(f"{at['timezone']}: not an IANA time zone, got {zone!r}")
    problems.raise_if_any()
    return _File(tuple(slots), voided is True, stamp and stamp.astimezone(UTC), zone)


def _read_csv(text: str, source: str) -> _File:
    problems, rows, header = Problems(source, ScheduleError), [], None
    settings: dict[str, Any] = {}
    places: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            if match := _DIRECTIVE.match(line.strip()):
                settings[match[1]] = {"true": True, "false": False}.get(match[2].lower(), match[2])
                places[match[1]] = f"line {number}, '# {match[1]}:'"
            continue
        try:
            cells = [cell.strip() for cell in next(csv.reader([line]))]
        except csv.Error as exc:
            problems.add(f"line {number}: not a readable CSV line: {exc}")
            continue
        if header is None:
            header = _check_header(cells, number, source)
        elif len(cells) != len(header):
            problems.add(f"line {number}: {len(cells)} cells, but the header has {len(header)}")
        else:
            at = {column: f"line {number}, column {column!r}" for column in header}
            rows.append((f"line {number}", dict(zip(header, cells, strict=True)), at))
    if header is None:
        problems.add(f"no header line ({','.join(_COLUMNS)})")
    return _file(rows, settings, places, problems)


def _check_header(cells: list[str], number: int, source: str) -> list[str]:
    problems = Problems(source, ScheduleError)
    for column in sorted(set(cells)):
        if column not in _COLUMNS:
            problems.add(f"line {number}: unknown column {column!r} (the columns are {', '.join(_COLUMNS)})")
        elif cells.count(column) > 1:
            problems.add(f"line {number}: column {column!r} appears more than once")
    problems.items += [f"line {number}: no {column!r} column" for column in _COLUMNS if column not in cells]
    problems.raise_if_any()
    return cells


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if twice := [key for key in keys if keys.count(key) > 1]:
        raise ValueError(f"key {twice[0]!r} appears more than once in one object")
    return dict(pairs)


def _read_json(text: str, source: str) -> _File:
    try:
        raw = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise ScheduleError(source, [f"line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"]) from None
    except ValueError as exc:
        raise ScheduleError(source, [str(exc)]) from None
    if not isinstance(raw, dict):
        raise ScheduleError(source, [f"(top level): must be an object with 'queues', got {type(raw).__name__}"])
    problems = Problems(source, ScheduleError)
    rows = list(_json_rows(raw["queues"], problems)) if _keys(raw, "", ("queues",), _TOP_KEYS, problems) else []
    return _file(rows, raw, {key: key for key in _TOP_KEYS}, problems)


def _keys(obj: dict[str, Any], at: str, required: tuple[str, ...], known: tuple[str, ...], problems: Problems) -> bool:
    """Add a problem per unknown or missing key of ``obj``; True when none is missing."""
    problems.items += [f"{at}{key}: unknown key (the keys are {', '.join(known)})" for key in obj if key not in known]
    missing = [f"{at}{key}: required key is missing" for key in required if key not in obj]
    problems.items += missing
    return not missing


def _children(value: Any, path: str, kind: type, what: str, problems: Problems) -> list[tuple[Any, str, Any]]:
    """``(key, key path, item)`` of a JSON object or array, or a problem when ``value`` is not a ``kind``."""
    if not isinstance(value, kind):
        problems.add(f"{path}: must be {what}, got {type(value).__name__}")
        return []
    pairs = value.items() if isinstance(value, dict) else enumerate(cast(list[Any], value))
    return [(key, f"{path}[{json.dumps(key, ensure_ascii=False)}]", item) for key, item in pairs]


def _json_rows(queues: Any, problems: Problems) -> Iterator[_Row]:
    """The slot objects of ``{"queues": {queue: {date: [slot, ...]}}}``, with their key paths."""
    for queue, q_path, days in _children(queues, "queues", dict, "an object of queues", problems):
        for day, d_path, slots in _children(days, q_path, dict, "an object of dates", problems):
            for _, here, entry in _children(slots, d_path, list, "a list of slots", problems):
                if not isinstance(entry, dict):
                    problems.add(f"{here}: must be an object with start, end, status, got {type(entry).__name__}")
                elif _keys(entry, f"{here}.", _SLOT_KEYS, _SLOT_KEYS, problems):
                    at = {"queue": q_path, "date": d_path} | {key: f"{here}.{key}" for key in _SLOT_KEYS}
                    yield here, {"queue": queue, "date": day, **entry}, at


def read_file(path: Path) -> tuple[_File, datetime]:
    """The file and its publication time (its ``published_at``, else its modification time)."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ScheduleError(str(path), ["not a schedule file: the name must end in .csv or .json"])
    try:
        text, mtime = path.read_text(encoding="utf-8-sig"), path.stat().st_mtime
    except (OSError, UnicodeDecodeError) as exc:
        raise ScheduleError(str(path), [f"cannot read file: {exc}"]) from None
    data = _read_csv(text, str(path)) if suffix == ".csv" else _read_json(text, str(path))
    return data, data.published_at or datetime.fromtimestamp(mtime, UTC)


def schedule_files(path: Path) -> list[Path]:
    """``path`` itself, or the ``*.csv`` and ``*.json`` files of the folder ``path``."""
    if not path.exists():
        raise ScheduleError(str(path), ["no such file or folder"])
    if not path.is_dir():
        return [path]
    try:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".json") and p.is_file())
    except OSError as exc:
        raise ScheduleError(str(path), [f"cannot list the folder: {exc}"]) from None
    if files := [p for p in files if not p.name.startswith((".", "~"))]:
        return files
    raise ScheduleError(str(path), ["no schedule files (*.csv, *.json) in the folder"])
