"""Grid outage schedules per queue, as the distribution companies publish them (issue 5).

Format, DST rules, folder rules and precedence: ``docs/outage-schedules.md``. Inside, a slot is
a UTC interval ``[start, end)`` that is ``on``, ``off`` or ``possible``; time no slot covers is
``unknown``. Errors name the file, the line (CSV) or key path (JSON) and the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast
from zoneinfo import ZoneInfo

from microgrid.fileio import MAX_LISTED, Problems
from microgrid.forecast._schedule_files import (
    LocalSlot,
    ScheduleError,
    SlotStatus,
    read_file,
    schedule_files,
    to_zone,
)
from microgrid.site import Site

if TYPE_CHECKING:  # numpy and pandas load on first use: `microgrid validate` reads schedules without them
    import pandas as pd

__all__ = [
    "OutageSchedule",
    "PublishedSchedules",
    "ScheduleError",
    "ScheduleFeed",
    "ScheduleSource",
    "ScheduleUpdate",
    "Slot",
    "SlotStatus",
    "Status",
    "read_schedule",
    "schedule_from_availability",
    "schedule_source",
]

Status = Literal["on", "off", "possible", "unknown"]
_NAMES: tuple[Status, ...] = ("on", "unknown", "possible", "off")  # best to worst
_RANK = {name: rank for rank, name in enumerate(_NAMES)}
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Slot:
    """One published slot: ``start`` ≤ t < ``end`` (tz-aware UTC) has ``status``."""

    start: datetime
    end: datetime
    status: SlotStatus


@dataclass(frozen=True)
class OutageSchedule:
    """A queue's outage schedule: UTC slots, sorted and not overlapping.

    ``voided``: the company has suspended the schedule (emergency cuts); it then says nothing
    and :meth:`per_step` is ``unknown`` everywhere. ``source``: the file or folder read.
    """

    queue: str
    slots: tuple[Slot, ...]
    voided: bool = False
    source: str = ""
    published_at: datetime | None = None

    def __post_init__(self) -> None:
        for slot in self.slots:
            if slot.start.utcoffset() != timedelta(0) or slot.end.utcoffset() != timedelta(0) or slot.start >= slot.end:
                raise ValueError(f"a slot needs tz-aware UTC times with start < end, got {slot}")
        if any(after.start < before.end for before, after in zip(self.slots, self.slots[1:], strict=False)):
            raise ValueError("slots must be sorted and must not overlap")

    def per_step(self, index: pd.DatetimeIndex, step: timedelta) -> pd.Series:
        """The status of each step ``[t, t + step)`` of a tz-aware ``index``.

        A step overlapping several slots takes the worst: ``off`` > ``possible`` > ``unknown``
        > ``on``, where any part of the step no slot covers counts as ``unknown``.
        """
        import numpy as np  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)
        import pandas as pd  # noqa: PLC0415

        if index.tz is None:
            raise ValueError("the index must be tz-aware")
        starts = index.tz_convert(UTC).as_unit("ns").asi8
        step_ns = round(step / timedelta(microseconds=1)) * 1000
        ends = starts + step_ns
        worst = np.zeros(len(starts), dtype=np.int64)
        covered = np.zeros(len(starts), dtype=np.int64)
        for slot, start, end in self._slots_over(int(starts.min()), int(ends.max())) if len(starts) else ():
            overlap = np.minimum(ends, end) - np.maximum(starts, start)
            worst[overlap > 0] = np.maximum(worst[overlap > 0], _RANK[slot.status])
            covered += np.maximum(overlap, 0)
        gap = covered < step_ns
        worst[gap] = np.maximum(worst[gap], _RANK["unknown"])
        return pd.Series([_NAMES[r] for r in worst], index=index, dtype=object)

    def _slots_over(self, first_ns: int, last_ns: int) -> list[tuple[Slot, int, int]]:
        """(slot, start, end [ns]) of the slots that overlap [``first_ns``, ``last_ns``) (none when voided).

        The others add nothing to :meth:`per_step`; a controller's published month has hundreds.
        """
        import bisect  # noqa: PLC0415 - with the lazy imports of per_step

        if self.voided:
            return []
        bounds = self._bounds_ns
        lo = bisect.bisect_right(bounds[1], first_ns)  # the first slot ending after the first start
        hi = bisect.bisect_left(bounds[0], last_ns)  # past the last slot starting before the last end
        return [(self.slots[i], bounds[0][i], bounds[1][i]) for i in range(lo, hi)]

    @cached_property
    def _bounds_ns(self) -> tuple[list[int], list[int]]:
        """The slots' starts and ends [ns since the epoch, UTC], ascending (the slots are sorted, disjoint)."""
        import pandas as pd  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)

        starts = [int(pd.Timestamp(slot.start).as_unit("ns").value) for slot in self.slots]
        return starts, [int(pd.Timestamp(slot.end).as_unit("ns").value) for slot in self.slots]

    def windows(self, status: SlotStatus) -> tuple[tuple[datetime, datetime], ...]:
        """Maximal UTC runs ``(start, end)`` of slots with ``status`` (none when voided)."""
        runs: list[tuple[datetime, datetime]] = []
        for slot in () if self.voided else self.slots:
            if slot.status == status and runs and runs[-1][1] == slot.start:
                runs[-1] = (runs[-1][0], slot.end)
            elif slot.status == status:
                runs.append((slot.start, slot.end))
        return tuple(runs)


# -- local slots -> UTC slots, and a folder's files merged ----------------------------------


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    return cast(timedelta, instant.astimezone(zone).utcoffset())


@lru_cache(maxsize=1024)
def _day_pieces(day: date, zone: ZoneInfo) -> tuple[tuple[datetime, datetime, timedelta], ...]:
    """The local ``day`` as UTC pieces ``(start, end, UTC offset)`` of constant offset.

    A DST change splits the day in two (at most one change a day, true of every zone in use).
    """
    first, last = (datetime.combine(d, time(0), tzinfo=zone).astimezone(UTC) for d in (day, day + timedelta(days=1)))
    before, after = _offset(first, zone), _offset(last - _MINUTE, zone)
    if before == after:
        return ((first, last, before),)
    lo, hi = first, last - _MINUTE  # the offset is `before` at lo and `after` at hi
    while hi - lo > _MINUTE:
        mid = lo + max(_MINUTE, (hi - lo) // 2 // _MINUTE * _MINUTE)
        lo, hi = (mid, hi) if _offset(mid, zone) == before else (lo, mid)
    return ((first, hi, before), (hi, last, after))


def _to_utc(slot: LocalSlot, zone: ZoneInfo) -> Iterator[Slot]:
    """Every UTC instant whose local wall time on ``slot.day`` lies in ``[start, end)``.

    A wall time in the repeated hour (clocks back) matches both occurrences; one in the
    skipped hour (clocks forward) matches none.
    """
    wall = datetime.combine(slot.day, time(0), tzinfo=UTC)  # wall-clock time, written as if UTC
    for first, last, offset in _day_pieces(slot.day, zone):
        lo, hi = max(first, wall + slot.start * _MINUTE - offset), min(last, wall + slot.end * _MINUTE - offset)
        if lo < hi:
            yield Slot(lo, hi, slot.status)


def _joined(slots: Iterable[Slot]) -> list[Slot]:
    """Sorted, with touching slots of the same status joined (hourly rows or ranges: the same)."""
    out: list[Slot] = []
    for slot in sorted(slots, key=lambda s: s.start):
        if out and out[-1].end == slot.start and out[-1].status == slot.status:
            out[-1] = Slot(out[-1].start, slot.end, slot.status)
        else:
            out.append(slot)
    return out


def _overlay(base: list[Slot], top: list[Slot]) -> list[Slot]:
    """``base`` with ``top``'s slots replacing it wherever they overlap."""
    kept = []
    for slot in base:
        pieces = [(slot.start, slot.end)]
        for cut in top:
            pieces = [p for a, b in pieces for p in ((a, min(b, cut.start)), (max(a, cut.end), b)) if p[0] < p[1]]
        kept += [Slot(a, b, slot.status) for a, b in pieces]
    return _joined(kept + top)


def read_schedule(path: str | Path, queue: str, tz: str) -> OutageSchedule:
    """Read the schedule of ``queue`` (e.g. ``"3.1"``) from a CSV/JSON file or a folder of them.

    ``tz``: the IANA zone of local times in files that name none. A folder's files are merged,
    newer publications replacing older ones where they overlap. Raises :class:`ScheduleError`.
    """
    path, zone, read = Path(path), to_zone(tz), []
    problems = Problems(str(path), ScheduleError)
    if zone is None:
        raise ScheduleError(str(path), [f"not an IANA time zone, got {tz!r}"])
    for file in schedule_files(path):
        try:
            data, newness = read_file(file)
        except ScheduleError as exc:
            if file == path:
                raise
            listed = exc.problems[:MAX_LISTED]
            problems.items += [f"{file.name}: {problem}" for problem in listed]
            problems.hidden += exc.total - len(listed)
            continue
        read.append((newness, file.name, data))
    problems.raise_if_any()
    slots: list[Slot] = []
    for _, _, data in sorted(read, key=lambda item: item[:2]):
        here = to_zone(data.timezone) or zone
        slots = _overlay(
            slots, _joined(s for local in data.slots if local.queue == queue for s in _to_utc(local, here))
        )
    newest = max(read, key=lambda item: item[:2])[2]
    if not slots and not newest.voided:
        names = ", ".join(sorted({repr(slot.queue) for _, _, data in read for slot in data.slots}))
        has = "the files have" if path.is_dir() else "the file has"
        raise ScheduleError(
            str(path), [f"no slots for queue {queue!r} ({has} {'queues ' + names if names else 'none'})"]
        )
    return OutageSchedule(queue, tuple(slots), newest.voided, str(path), newest.published_at)


@dataclass(frozen=True)
class ScheduleUpdate:
    """The last good schedule (None until one was read), the problem with the current files
    (None when they are good), and whether ``schedule`` differs from the previous refresh's."""

    schedule: OutageSchedule | None
    error: str | None
    changed: bool


class ScheduleFeed(Protocol):
    """Where the controller's forecast gets the outage schedule from, every cycle."""

    def refresh(self) -> ScheduleUpdate:
        """The schedule in force now (the last good one), and the problem with the newest, if any."""
        ...


class ScheduleSource:
    """A schedule file or folder, re-read by :meth:`refresh` when its files change."""

    def __init__(self, path: str | Path, queue: str, tz: str) -> None:
        self.path, self.queue, self.tz = Path(path), queue, tz
        self._signature: tuple[Any, ...] | None = None
        self._schedule: OutageSchedule | None = None
        self._error: str | None = None

    def refresh(self) -> ScheduleUpdate:
        """Re-read if a file changed (name, inode, size, mtime); keep the last good schedule."""
        signature = self._stat()
        if signature is not None and signature == self._signature:
            return ScheduleUpdate(self._schedule, self._error, changed=False)
        self._signature = signature
        try:
            schedule = read_schedule(self.path, self.queue, self.tz)
        except ScheduleError as exc:
            self._error = str(exc)
            return ScheduleUpdate(self._schedule, self._error, changed=False)
        changed, self._schedule, self._error = schedule != self._schedule, schedule, None
        return ScheduleUpdate(schedule, None, changed=changed)

    def _stat(self) -> tuple[Any, ...] | None:
        try:
            if self.path.is_dir():
                with os.scandir(self.path) as entries:
                    return tuple(sorted((e.name, e.inode(), e.stat().st_mtime_ns, e.stat().st_size) for e in entries))
            stat = self.path.stat()
            return ((self.path.name, stat.st_ino, stat.st_mtime_ns, stat.st_size),)
        except OSError:
            return None


def schedule_source(site: Site) -> ScheduleSource | None:
    """The source named by the site's ``grid.schedule``, or None when the site names none."""
    config = site.grid.schedule if site.grid is not None else None
    if config is None:
        return None
    return ScheduleSource(site.resolve(config.source), config.queue, site.site.timezone)


class PublishedSchedules:
    """A schedule as it is published over time: each :meth:`refresh` gives the newest publication
    issued at or before ``clock()`` (none before the first). For simulations and replays: what the
    operator knew at each moment, which may differ from what the grid then did.

    Parameters
    ----------
    publications
        ``(issued_at, schedule)`` pairs (tz-aware); later publications replace earlier ones whole.
    clock
        Now (tz-aware UTC), e.g. a simulated plant's clock.
    """

    def __init__(self, publications: Iterable[tuple[datetime, OutageSchedule]], clock: Callable[[], datetime]) -> None:
        self.publications = sorted(publications, key=lambda p: p[0])
        self.clock = clock
        self._current: OutageSchedule | None = None

    def refresh(self) -> ScheduleUpdate:
        """The newest publication issued by now (module docstring)."""
        now = self.clock()
        issued = [schedule for at, schedule in self.publications if at <= now]
        schedule = issued[-1] if issued else None
        changed, self._current = schedule is not self._current, schedule
        return ScheduleUpdate(schedule, None, changed=changed and schedule is not None)


def schedule_from_availability(
    available: pd.Series, step: timedelta, *, queue: str = "sim", published_at: datetime | None = None
) -> OutageSchedule:
    """A schedule that says what ``available`` (1 up / 0 down per step of a tz-aware index) says: ``on``
    where it is up, ``off`` where it is down, one slot per run of equal steps."""
    slots: list[Slot] = []
    for start, up in zip(available.index, available.to_numpy() >= 0.5, strict=True):
        begin = start.to_pydatetime().astimezone(UTC)
        status: SlotStatus = "on" if up else "off"
        if slots and slots[-1].status == status and slots[-1].end == begin:
            slots[-1] = Slot(slots[-1].start, begin + step, status)
        else:
            slots.append(Slot(begin, begin + step, status))
    return OutageSchedule(queue, tuple(slots), source="simulated", published_at=published_at)
