"""The day's outage schedule of a queue, from the Situation Centre to its islands (``<city>/schedules/<queue>``,
models/centre/schedule.schema.json): the message, and what an island does with it. No MQTT here.

The centre sends a schedule file (docs/outage-schedules.md, CSV or JSON) as text, retained, on its queue's
topic. An island whose outage queue it is takes it through the controller's own path for a published schedule:
the site's ``grid.schedule.source``, which the controller re-reads every cycle
(:class:`~microgrid.forecast.schedule.ScheduleSource`), so the next cycle plans with it.

* The file is checked first exactly as the controller will read it (the site's queue and time zone); an invalid
  one is refused, and the schedule already stored stays as it is.
* ``source`` a folder (or a path without ``.csv``/``.json`` that does not exist yet, created as a folder): the
  file is added as ``centre-<queue>-<id>.<format>``; the folder's rules merge it (newer publications replace
  older ones where they overlap, the rest stays).
* ``source`` a file: replaced whole (written beside it, then renamed over it: a reader never sees half a
  file); a file of the other format is refused (the file's suffix decides how it is read).
* The same schedule again (a retained message at every reconnect): nothing written, nothing recorded.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from microgrid.forecast.schedule import OutageSchedule, ScheduleError, read_schedule
from microgrid.site import Site
from microgrid.uplink.commands import parsed

__all__ = ["SCHEDULES", "Taken", "schedule_payload", "schedule_topic", "span", "take_schedule", "validated"]

SCHEDULES = "schedules"
"""The topics' second level: ``<city>/schedules/<queue>``."""


def schedule_topic(city: str, queue: str) -> str:
    """``<city>/schedules/<queue>``."""
    return f"{city}/{SCHEDULES}/{queue}"


def schedule_payload(
    queue: str, path: Path, by: str, *, schedule_id: str | None = None, ts: datetime | None = None
) -> dict[str, Any]:
    """The message for the schedule file ``path`` (its format from its suffix); ``schedule_id`` by default the
    first 16 hex digits of the text's SHA-256, so the same file sent twice has the same id."""
    text = path.read_text(encoding="utf-8-sig")
    stamp = (ts or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "schema": 1,
        "id": schedule_id or hashlib.sha256(text.encode()).hexdigest()[:16],
        "ts": stamp,
        "queue": queue,
        "by": by,
        "format": path.suffix.lower().lstrip("."),
        "text": text,
    }


def validated(text: str, fmt: str, queue: str, tz: str) -> OutageSchedule:
    """``text`` read as a ``fmt`` schedule file of ``queue`` (local times in ``tz`` unless it names a zone), as the
    controller reads it; raises :class:`~microgrid.forecast.schedule.ScheduleError` naming the line or key."""
    with tempfile.TemporaryDirectory(prefix="microgrid-schedule-") as folder:
        path = Path(folder) / f"sent.{fmt}"
        path.write_text(text, encoding="utf-8")
        try:
            return read_schedule(path, queue, tz)
        except ScheduleError as exc:  # name what was sent, not the temporary file
            raise ScheduleError(f"the {fmt.upper()} sent", exc.problems, exc.total) from None


@dataclass(frozen=True)
class Taken:
    """What an island did with a schedule message: ``stored`` (the file written; None when nothing was), and
    ``note`` for its records (None: nothing worth recording, e.g. the same schedule again); ``refused`` when the
    message or its file was invalid or cannot be kept."""

    stored: Path | None
    note: str | None
    refused: bool = False


def take_schedule(raw: bytes, site: Site, queue: str | None) -> Taken:
    """What the island on ``site`` (outage ``queue``) does with the message ``raw`` (module docstring)."""
    message, why = parsed(raw, "schedule.schema.json")
    if message is None:
        return Taken(None, f"ignored an outage schedule: {why}", True)
    if message["queue"] != queue:
        return Taken(None, None)  # another queue's: not for this island
    what = f"outage schedule {message['id']} for queue {queue} from {message['by']} (sent {message['ts']})"
    config = site.grid.schedule if site.grid is not None else None
    if config is None:
        return Taken(None, f"ignored the {what}: the site file has no grid.schedule to keep it in", True)
    try:
        schedule = validated(message["text"], message["format"], config.queue, site.site.timezone)
        target = _target(site.resolve(config.source), message)
        if target.is_file() and target.read_bytes() == message["text"].encode():
            return Taken(None, None)  # already here
        _write(target, message["text"])
    except (ScheduleError, ValueError, OSError) as exc:
        return Taken(None, f"ignored the {what}: {exc}", True)
    return Taken(target, f"took the {what}: {span(schedule)}, stored as {target}")


def span(schedule: OutageSchedule) -> str:
    """What ``schedule`` covers, for people: ``"7 slot(s), 2026-01-14 22:00 to 2026-01-15 22:00 UTC"``."""
    if not schedule.slots:
        return "no slots" + (" (voided)" if schedule.voided else "")
    start, end = min(s.start for s in schedule.slots), max(s.end for s in schedule.slots)
    voided = " (voided)" if schedule.voided else ""
    return f"{len(schedule.slots)} slot(s), {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC{voided}"


def _target(source: Path, message: dict[str, Any]) -> Path:
    """Where the schedule goes: a file in the folder ``source``, or ``source`` itself (module docstring)."""
    fmt = message["format"]
    if source.is_dir() or (not source.exists() and source.suffix.lower() not in (".csv", ".json")):
        return source / f"centre-{message['queue']}-{message['id']}.{fmt}"
    if source.suffix.lower() != f".{fmt}":
        raise ValueError(f"the site's schedule file {source} is not {fmt.upper()}: it cannot be replaced by a {fmt}")
    return source


def _write(target: Path, text: str) -> None:
    """``text`` into ``target`` at once: written beside it (a name starting with ``.``, which the folder's reader
    skips), flushed, then renamed over it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".centre-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
