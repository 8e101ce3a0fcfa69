"""The store's own health as a reader finds it (``microgrid status``).

A controller whose store fails (disk full, locked, read-only) records nothing, so the history cannot
say so; a reader looks for itself:

- **writable**: a no-op write transaction (``BEGIN IMMEDIATE``, a ``DELETE`` that matches nothing,
  ``ROLLBACK``) on a connection of its own, waiting at most ``timeout_s`` for the write lock:
  ``store locked`` (another connection holds it), ``read-only`` (the file, its folder or its file
  system), ``disk full``, or SQLite's own words;
- **free space** on the file's file system below :data:`FULL_BELOW_BYTES`: ``disk full``;
- **stale**: the controller is believed running (the last ``start``/``stop`` event is a ``start``)
  and the last cycle recorded is older than :data:`STALE_AFTER_INTERVALS` intervals (the interval:
  the median gap between the last cycles recorded): its store fails, or it is stuck or was killed.

The write probe needs the controller's own rights: run by another user who may not write the file, it
is left out (a note, not an alarm). Each finding is a sentence for the operator; none means the store
is healthy as far as a reader can tell (a controller's own failure that is over is an event in the history: ``store``).
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from microgrid.store.core import Store

__all__ = ["FULL_BELOW_BYTES", "STALE_AFTER_INTERVALS", "StoreHealth", "store_health", "write_probe"]

STALE_AFTER_INTERVALS = 2.0
"""A running controller's last cycle older than this many intervals is an alarm."""
FULL_BELOW_BYTES = 1 << 20
"""Free space [B] under which the store's file system counts as full (a cycle's rows take ~10-100 kB)."""
_CYCLES_FOR_INTERVAL = 6

_WHY = {
    "SQLITE_BUSY": "store locked: another connection holds its write lock",
    "SQLITE_LOCKED": "store locked: another connection holds its write lock",
    "SQLITE_FULL": "disk full",
    "SQLITE_CANTOPEN": "read-only: the file cannot be opened for writing",
    "SQLITE_PERM": "read-only: no permission to write",
    "SQLITE_AUTH": "read-only: no permission to write",
}


@dataclass(frozen=True)
class StoreHealth:
    """What a reader found of a store's health.

    Attributes
    ----------
    problems
        One sentence per finding (empty: healthy as far as a reader can tell).
    running
        The controller is believed running (last ``start``/``stop`` event), or None when unknown.
    last_cycle_age_s
        Age of the last cycle recorded [s], None before the first.
    interval_s
        The control interval [s] read from the last cycles' spacing, None with fewer than two.
    """

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What could not be checked, and why (not alarms)."""
    running: bool | None = None
    last_cycle_age_s: float | None = None
    interval_s: float | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "problems": self.problems,
            "notes": self.notes,
            "running": self.running,
            "last_cycle_age_s": self.last_cycle_age_s,
            "interval_s": self.interval_s,
        }


def write_probe(path: Path, timeout_s: float = 0.5) -> str | None:
    """Why ``path`` cannot be written now (module docstring), or None when a write transaction starts."""
    try:
        free_bytes = shutil.disk_usage(path.resolve().parent).free
    except OSError:
        free_bytes = None
    if free_bytes is not None and free_bytes < FULL_BELOW_BYTES:
        return f"disk full: {free_bytes:,} bytes free on the store's file system"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=timeout_s, isolation_level=None)
    except sqlite3.Error as exc:
        return _why(exc)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:  # a write statement that changes nothing: a read-only connection or file refuses it here
            conn.execute("DELETE FROM events WHERE 0")
        finally:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return _why(exc)
    finally:
        conn.close()
    return None


def _not_ours(path: Path) -> str | None:
    """Why this user cannot tell whether the controller can write ``path`` (an operator's account reading the
    controller's history: the file is another user's and not writable by this one), or None."""
    try:
        owner = path.stat().st_uid
    except OSError:
        return None
    me = os.geteuid()
    effective = os.access in os.supports_effective_ids  # the rights this process has (setuid, tests)
    if me in (0, owner) or os.access(path, os.W_OK, effective_ids=effective):
        return None
    return (
        f"whether the store can be written was not checked: it belongs to uid {owner}, which this user (uid {me}) "
        "is not; run status as the controller's user"
    )


def _why(exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", "") or ""
    base = next((why for code, why in _WHY.items() if name.startswith(code)), None)
    if base is None and name.startswith("SQLITE_READONLY"):
        base = "read-only: the file, its folder or its file system cannot be written"
    return f"{base or 'cannot write'} ({name or type(exc).__name__}: {exc})"


def store_health(store: Store, now: datetime, *, probe_timeout_s: float = 0.5) -> StoreHealth:
    """The store's health as a reader finds it at ``now`` (UTC): write probe, free space, stale cycles."""
    problems, notes = [], []
    if (note := _not_ours(store.path)) is not None:
        notes.append(note)
    elif (why := write_probe(store.path, probe_timeout_s)) is not None:
        problems.append(why)
    times = store.cycle_times(_CYCLES_FOR_INTERVAL)
    gaps = [(a - b).total_seconds() for a, b in itertools.pairwise(times) if a > b]
    interval_s = statistics.median(gaps) if gaps else None
    event = store.last_event("start", "stop")
    running = None if event is None else event["kind"] == "start"
    age_s = (now - times[0]).total_seconds() if times else None
    stale = running and age_s is not None and interval_s and age_s > STALE_AFTER_INTERVALS * interval_s
    if stale and event is not None and age_s is not None and interval_s is not None:
        problems.append(
            f"no cycle recorded for {_span(age_s)} (over {STALE_AFTER_INTERVALS:g} intervals of {_span(interval_s)}) "
            f"while the controller is believed running (started {event['ts']:%Y-%m-%d %H:%M} UTC, not stopped "
            "since): its store is failing, or it is stuck or was killed"
        )
    return StoreHealth(problems, notes, running, age_s, interval_s)


def _span(seconds: float) -> str:
    """A duration for people: 45 s, 12 min, 3.5 h, 2.0 d."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{timedelta(seconds=seconds) / timedelta(days=1):.1f} d"
