"""History: cycles, telemetry, plans, setpoints, events and operator actions in SQLite.

One control cycle is recorded in ONE transaction, so a crash keeps every cycle whose
:meth:`Store.record_cycle` returned True, complete, and none half-written. Storage errors
(disk full, locked, I/O, corrupt) never reach the controller: the rows wait in a bounded
in-memory backlog, ``healthy``/``last_error`` say why, and the next successful call writes
the backlog first, oldest first.

Choices:

- **WAL** lets the CLI read (``microgrid status``/``history``) while the controller writes,
  without either waiting for the other.
- **synchronous=NORMAL** (in WAL): a killed process loses no committed transaction, and a
  power cut keeps the file consistent but may roll back the last commits since the last
  checkpoint. It spares one fsync per cycle (10-100 ms and flash wear on an edge box's SD
  card or eMMC). ``synchronous="FULL"`` is there for sites that prefer the other trade.
- **Timestamps** are fixed-width UTC ISO 8601 text (``2026-01-31T12:00:00.000000Z``): they
  read as they are in the ``sqlite3`` shell, sort and compare as text, and keep microseconds
  exactly (a unix float does not). They come back as tz-aware UTC.
- **Plan frames** are zlib-compressed JSON (floats written with ``repr``, so exact) in one
  blob per plan: a 96-step plan is one row, not thousands.
- The schema is versioned with ``PRAGMA user_version``; ``_MIGRATIONS[v]`` takes version
  ``v`` to ``v + 1`` inside one transaction.
"""

from microgrid.store.core import PURGE_EVERY_S as PURGE_EVERY_S
from microgrid.store.core import Store
from microgrid.store.rows import OUTCOMES as OUTCOMES
from microgrid.store.rows import CycleRow, EventRow, PlanRow, SetpointRow, TelemetryRow
from microgrid.store.schema import APPLICATION_ID as APPLICATION_ID
from microgrid.store.schema import SCHEMA_VERSION as SCHEMA_VERSION
from microgrid.store.schema import StoreError

__all__ = ["CycleRow", "EventRow", "PlanRow", "SetpointRow", "Store", "StoreError", "TelemetryRow"]
