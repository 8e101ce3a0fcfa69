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

from __future__ import annotations

import json
import logging
import sqlite3
import time
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pandas as pd

from microgrid.errors import MicrogridError

__all__ = ["CycleRow", "EventRow", "PlanRow", "SetpointRow", "Store", "StoreError", "TelemetryRow"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
APPLICATION_ID = 0x4D475244  # "MGRD": marks the file as a microgrid store
OUTCOMES = frozenset({"written", "skipped", "refused", "mismatch", "dry-run"})
PURGE_EVERY_S = 3600.0
_TABLES = ("cycles", "telemetry", "plans", "setpoints", "events")
_TIMES = ("ts", "done_ts")
_FLOATS = ("value", "objective", "mip_gap", "solve_seconds")
_JSONS = ("phases_s", "summary", "detail", "payload")
_KEEP_CONNECTION = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL)  # errors a reconnect cannot fix


class StoreError(MicrogridError):
    """The history cannot be opened or read, or an operator action cannot be stored."""


def _ts(moment: datetime) -> str:
    """Encode a tz-aware datetime as fixed-width UTC ISO 8601 text; naive ones are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: microgrid keeps time in UTC, pass a tz-aware one")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(obj: Any) -> Any:
    """JSON fallback: times as ISO text, numpy/pandas values via ``tolist()``, anything else as ``str``."""
    if isinstance(obj, datetime):
        return _ts(obj) if obj.tzinfo is not None else obj.isoformat()
    tolist = getattr(obj, "tolist", None)
    return tolist() if callable(tolist) else str(obj)


def _json(obj: Any) -> str:
    return json.dumps(obj, default=_plain, sort_keys=True)


@dataclass(frozen=True)
class TelemetryRow:
    """One sample: ``value`` in ``unit`` (``str`` for enumerations, ``None`` when unread)."""

    ts: datetime
    device: str
    point: str
    value: float | str | None
    unit: str | None
    quality: str

    def __post_init__(self) -> None:
        _ts(self.ts)


@dataclass(frozen=True)
class SetpointRow:
    """A setpoint the cycle meant to write, and what became of it (``why`` when not written)."""

    ts: datetime
    device: str
    point: str
    value: float | None
    outcome: str
    why: str = ""

    def __post_init__(self) -> None:
        _ts(self.ts)
        if self.outcome not in OUTCOMES:
            raise ValueError(f"setpoint outcome {self.outcome!r} is not one of {sorted(OUTCOMES)}")


@dataclass(frozen=True)
class EventRow:
    """Something worth telling an operator: ``kind`` is 'fallback', 'mode', 'device', 'store', 'start'…"""

    ts: datetime
    kind: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _ts(self.ts)


@dataclass(frozen=True)
class PlanRow:
    """A solve: status, objective (currency), relative MIP gap, solve time [s] and its per-step frame.

    ``frame`` has a tz-aware DatetimeIndex of step starts (stored as UTC) and one column per quantity.
    """

    ts: datetime
    status: str
    objective: float | None
    mip_gap: float | None
    solve_seconds: float
    frame: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        _ts(self.ts)
        if self.frame is not None and not (
            isinstance(self.frame.index, pd.DatetimeIndex) and self.frame.index.tz is not None
        ):
            raise ValueError("a plan frame needs a tz-aware DatetimeIndex of step starts")


@dataclass(frozen=True)
class CycleRow:
    """One control cycle: mode, where its setpoints came from, why, phase durations [s], summary.

    ``source`` is 'plan', 'previous_plan', 'rules', 'manual' or 'autonomous'; ``summary`` holds what
    ``microgrid status`` shows (state, plan summary, device health, autonomy…), JSON-serialisable.
    """

    ts: datetime
    mode: str
    source: str
    reason: str = ""
    phases_s: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _ts(self.ts)


@dataclass(frozen=True)
class _Batch:
    """The encoded rows of one record call; ``gap`` = (batches dropped just before it, first ts, last ts)."""

    cycle: tuple[Any, ...] | None
    rows: dict[str, list[tuple[Any, ...]]]
    gap: tuple[int, str, str] | None = None

    @property
    def ts(self) -> str:
        if self.cycle is not None:
            return str(self.cycle[0])
        return next((str(rs[0][0]) for rs in self.rows.values() if rs), "")


def _encode_frame(frame: pd.DataFrame) -> bytes:
    index = pd.DatetimeIndex(frame.index)
    doc = {
        "index": [_ts(t) for t in index],
        "name": index.name,
        "columns": [str(c) for c in frame.columns],
        "data": [frame.iloc[:, i].tolist() for i in range(frame.shape[1])],
    }
    return zlib.compress(_json(doc).encode(), 6)


def _decode_frame(blob: bytes) -> pd.DataFrame:
    doc = json.loads(zlib.decompress(blob))
    index = pd.DatetimeIndex(pd.to_datetime(doc["index"], utc=True, format="ISO8601"), name=doc["name"])
    return pd.DataFrame(dict(zip(doc["columns"], doc["data"], strict=True)), index=index)


def _num(v: float | None) -> float | None:
    """Numbers as float (numpy scalars too) so that binding them cannot fail later, in the backlog."""
    return None if v is None else float(v)


def _cycle(c: CycleRow) -> tuple[Any, ...]:
    return (_ts(c.ts), str(c.mode), str(c.source), str(c.reason), _json(c.phases_s), _json(c.summary))


def _sample(r: TelemetryRow) -> tuple[Any, ...]:
    number, text = (None, r.value) if isinstance(r.value, str) else (_num(r.value), None)
    unit = None if r.unit is None else str(r.unit)
    return (_ts(r.ts), str(r.device), str(r.point), number, text, unit, str(r.quality))


def _plan(p: PlanRow) -> tuple[Any, ...]:
    steps, blob = (None, None) if p.frame is None else (len(p.frame), _encode_frame(p.frame))
    return (_ts(p.ts), str(p.status), _num(p.objective), _num(p.mip_gap), float(p.solve_seconds), steps, blob)


def _encode(
    cycle: CycleRow | None,
    telemetry: Iterable[TelemetryRow],
    plan: PlanRow | None,
    setpoints: Iterable[SetpointRow],
    events: Iterable[EventRow],
) -> _Batch:
    """Encode the rows of one record call now, so the backlog holds plain tuples SQLite always accepts.

    Raises TypeError or ValueError for rows that cannot be encoded (a bug in the caller, not storage trouble).
    """
    rows = {
        "telemetry": [_sample(r) for r in telemetry],
        "plans": [] if plan is None else [_plan(plan)],
        "setpoints": [
            (_ts(s.ts), str(s.device), str(s.point), _num(s.value), s.outcome, str(s.why)) for s in setpoints
        ],
        "events": [(_ts(e.ts), str(e.kind), str(e.message), _json(e.detail)) for e in events],
    }
    return _Batch(None if cycle is None else _cycle(cycle), rows)


_INSERT = {
    "cycles": "INSERT INTO cycles(ts, mode, source, reason, phases_s, summary) VALUES (?,?,?,?,?,?)",
    "telemetry": "INSERT INTO telemetry(cycle_id, ts, device, point, value, text, unit, quality)"
    " VALUES (?,?,?,?,?,?,?,?)",
    "plans": "INSERT INTO plans(cycle_id, ts, status, objective, mip_gap, solve_seconds, steps, frame)"
    " VALUES (?,?,?,?,?,?,?,?)",
    "setpoints": "INSERT INTO setpoints(cycle_id, ts, device, point, value, outcome, why) VALUES (?,?,?,?,?,?,?)",
    "events": "INSERT INTO events(cycle_id, ts, kind, message, detail) VALUES (?,?,?,?,?)",
}

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 0 → 1: the first schema
        "CREATE TABLE cycles (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, mode TEXT NOT NULL, source TEXT NOT NULL,"
        " reason TEXT NOT NULL, phases_s TEXT NOT NULL, summary TEXT NOT NULL)",
        "CREATE INDEX cycles_ts ON cycles(ts)",
        "CREATE TABLE telemetry (id INTEGER PRIMARY KEY, cycle_id INTEGER, ts TEXT NOT NULL, device TEXT NOT NULL,"
        " point TEXT NOT NULL, value REAL, text TEXT, unit TEXT, quality TEXT NOT NULL)",
        "CREATE INDEX telemetry_ts ON telemetry(ts)",
        "CREATE INDEX telemetry_device_ts ON telemetry(device, ts)",
        "CREATE TABLE plans (id INTEGER PRIMARY KEY, cycle_id INTEGER, ts TEXT NOT NULL, status TEXT NOT NULL,"
        " objective REAL, mip_gap REAL, solve_seconds REAL NOT NULL, steps INTEGER, frame BLOB)",
        "CREATE INDEX plans_ts ON plans(ts)",
        "CREATE TABLE setpoints (id INTEGER PRIMARY KEY, cycle_id INTEGER, ts TEXT NOT NULL, device TEXT NOT NULL,"
        " point TEXT NOT NULL, value REAL, outcome TEXT NOT NULL, why TEXT NOT NULL)",
        "CREATE INDEX setpoints_ts ON setpoints(ts)",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, cycle_id INTEGER, ts TEXT NOT NULL, kind TEXT NOT NULL,"
        " message TEXT NOT NULL, detail TEXT NOT NULL)",
        "CREATE INDEX events_ts ON events(ts)",
        "CREATE INDEX events_kind_ts ON events(kind, ts)",
        "CREATE TABLE actions (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, by TEXT, action TEXT NOT NULL,"
        " payload TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', done_ts TEXT, result TEXT)",
        "CREATE INDEX actions_status ON actions(status, id)",
    ),
)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`, one version per transaction (safe against a racing opener)."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            app, version = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("application_id", "user_version"))
            foreign = version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app not in (0, APPLICATION_ID) or (app == 0 and version != 0) or foreign:
                raise StoreError("not a microgrid history file")
            if version > SCHEMA_VERSION:
                raise StoreError(f"history schema {version} is newer than this microgrid's ({SCHEMA_VERSION})")
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _frame(cursor: sqlite3.Cursor) -> pd.DataFrame:
    """Rows of a query as a frame: times tz-aware UTC, floats float64, JSON columns decoded."""
    columns = [d[0] for d in cursor.description]
    frame = pd.DataFrame.from_records(cursor.fetchall(), columns=columns)
    for col in columns:
        if col in _TIMES:
            frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
        elif col in _FLOATS:
            frame[col] = frame[col].astype("float64")
        elif col in _JSONS:
            frame[col] = [json.loads(v) for v in frame[col]]
    return frame


def _records(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """Rows of a query as plain dicts: times tz-aware UTC datetimes, JSON columns decoded."""
    columns = [d[0] for d in cursor.description]
    records = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    for record in records:
        for col in columns:
            if col in _TIMES and record[col] is not None:
                record[col] = datetime.fromisoformat(record[col])
            elif col in _JSONS:
                record[col] = json.loads(record[col])
    return records


def _where(since: datetime | None, until: datetime | None, **equal: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause: ``since <= ts < until`` and column = value for each value given."""
    terms = [("ts >= ?", _ts(since)) if since is not None else None]
    terms += [("ts < ?", _ts(until)) if until is not None else None]
    terms += [(f"{col} = ?", v) for col, v in equal.items() if v is not None]
    used = [t for t in terms if t is not None]
    return (" WHERE " + " AND ".join(t[0] for t in used) if used else ""), [t[1] for t in used]


class Store:
    """The history of a controller, in one SQLite file.

    Parameters
    ----------
    path
        The database file (created with its schema if missing, not its folder).
    retention_days
        Rows older than this [d] are purged (at most once an hour, by :meth:`record_cycle`);
        ``None`` keeps everything. Pending operator actions are never purged.
    timeout_s
        How long [s] a statement waits for another connection's lock before failing.
    backlog_max
        Most record calls kept in memory while the file cannot be written; beyond, the oldest
        is dropped, logged, and counted in a 'store' event once writing works again.
    synchronous
        ``"NORMAL"`` (see the module docstring) or ``"FULL"`` (fsync at every commit).
    max_bytes
        Cap on the database size [B] (``None`` = SQLite's own limit); hitting it is a full disk.
    readonly
        Open for reading only (the CLI's ``status``/``history``): no schema change, no writes,
        and opening errors raise :class:`StoreError` at once.

    Notes
    -----
    Not thread-safe: use one Store from one thread at a time (the control cycle is sequential).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        retention_days: float | None = 90,
        timeout_s: float = 2.0,
        backlog_max: int = 500,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        max_bytes: int | None = None,
        readonly: bool = False,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL") or backlog_max < 1 or timeout_s < 0:
            raise ValueError("synchronous must be NORMAL or FULL, backlog_max >= 1 and timeout_s >= 0")
        self.path = Path(path)
        self.retention_days, self.timeout_s, self.backlog_max = retention_days, timeout_s, backlog_max
        self.synchronous, self.max_bytes, self.readonly = synchronous, max_bytes, readonly
        self.healthy = True
        self.last_error: str | None = None
        self._backlog: deque[_Batch] = deque()
        self._conn: sqlite3.Connection | None = None
        self._next_purge = 0.0
        try:
            self._connect()
        except StoreError as exc:  # not ours, or too new: retrying cannot help
            raise StoreError(f"{self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            if readonly:
                raise StoreError(f"{self.path}: cannot open: {exc}") from exc
            self._fail("open", exc)  # disk full, locked, I/O: the writer retries at each record

    # -- connection -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            target, uri = f"{self.path.resolve().as_uri()}?mode=ro", True
        else:
            target, uri = str(self.path), False
        conn = sqlite3.connect(target, timeout=self.timeout_s, isolation_level=None, check_same_thread=False, uri=uri)
        try:
            if self.readonly:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if not 0 < version <= SCHEMA_VERSION:
                    raise StoreError(f"history schema {version} is not one this microgrid reads (1..{SCHEMA_VERSION})")
            else:
                if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                    log.warning("%s: WAL mode refused (network file system?); readers may block the writer", self.path)
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                conn.execute("PRAGMA journal_size_limit = 67108864")  # give back WAL space after a checkpoint
                _migrate(conn)
                self._apply_max_bytes(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _apply_max_bytes(self, conn: sqlite3.Connection) -> None:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = 4294967294 if self.max_bytes is None else max(1, self.max_bytes // page)
        conn.execute(f"PRAGMA max_page_count = {pages}")

    def set_max_bytes(self, max_bytes: int | None) -> None:
        """Change the cap on the database size [B] (``None`` = no cap of ours); never below its current size."""
        self.max_bytes = max_bytes
        if self._conn is not None and not self.readonly:
            self._apply_max_bytes(self._conn)

    def _open(self) -> sqlite3.Connection:
        return self._conn if self._conn is not None else self._connect()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
        conn = self._open()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:  # the connection is beyond use: reopened next time
                    conn.close()
                    self._conn = None
            raise

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot {what}: {exc}") from exc

    def _fail(self, what: str, exc: Exception) -> None:
        message = f"{what} failed: {getattr(exc, 'sqlite_errorname', type(exc).__name__)}: {exc}"
        if message != self.last_error:
            log.error("%s: %s (%d record(s) wait in memory)", self.path, message, len(self._backlog))
        self.healthy, self.last_error = False, message
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in _KEEP_CONNECTION and self._conn is not None:
            self._conn.close()  # I/O trouble or worse: start afresh next time
            self._conn = None

    # -- writing ------------------------------------------------------------------------------------

    def record_cycle(
        self,
        cycle: CycleRow,
        *,
        telemetry: Iterable[TelemetryRow] = (),
        plan: PlanRow | None = None,
        setpoints: Iterable[SetpointRow] = (),
        events: Iterable[EventRow] = (),
    ) -> bool:
        """Record one cycle and everything it produced, in one transaction.

        Parameters
        ----------
        cycle
            The cycle: time, mode, setpoint source, reason, phase durations [s], status summary.
        telemetry, plan, setpoints, events
            What the cycle read, solved, wrote (or refused) and reported; linked to it by ``cycle_id``.

        Returns
        -------
        bool
            True when this cycle (and any backlog before it, oldest first) is committed; False when
            it waits in memory because the file cannot be written (``healthy``/``last_error`` say why).

        Notes
        -----
        Storage errors (full, locked, I/O, corrupt) are never raised. Rows are checked when built
        (naive times raise ValueError there); values that cannot be encoded raise TypeError or
        ValueError here, at once, rather than poisoning the backlog.
        """
        return self._submit(_encode(cycle, telemetry, plan, setpoints, events))

    def record_events(self, *events: EventRow) -> bool:
        """Record events outside any cycle ('start', 'stop'…), with the same guarantees as :meth:`record_cycle`."""
        return self._submit(_encode(None, (), None, (), events))

    @property
    def backlog(self) -> int:
        """How many record calls wait in memory for the file to be writable again."""
        return len(self._backlog)

    def _submit(self, batch: _Batch) -> bool:
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
        if len(self._backlog) >= self.backlog_max:
            lost = self._backlog.popleft()  # its loss is told by the batch that is now the oldest
            log.warning("%s: history backlog full, dropped the record of %s", self.path, lost.ts)
            gap = (lost.gap[0] + 1, lost.gap[1], lost.ts) if lost.gap else (1, lost.ts, lost.ts)
            if self._backlog:
                self._backlog[0] = replace(self._backlog[0], gap=gap)
            else:
                batch = replace(batch, gap=gap)
        self._backlog.append(batch)
        return self._flush()

    def _flush(self) -> bool:
        """Write the backlog, oldest first, one transaction per record call; True when it is empty."""
        try:
            while self._backlog:
                self._write(self._backlog[0])
                self._backlog.popleft()
        except (sqlite3.Error, StoreError) as exc:
            self._fail("write", exc)
            return False
        if not self.healthy:
            log.warning("%s: history writable again", self.path)
        self.healthy, self.last_error = True, None
        self._maybe_purge()
        return True

    def _write(self, batch: _Batch) -> None:
        with self._transaction() as conn:
            cycle_id = None if batch.cycle is None else conn.execute(_INSERT["cycles"], batch.cycle).lastrowid
            rows = batch.rows
            if batch.gap is not None:
                n, first, last = batch.gap
                message = f"{n} record(s) from {first} to {last} were lost while the history could not be written"
                detail = _json({"dropped": n, "first": first, "last": last})
                rows = {**rows, "events": [(batch.ts or first, "store", message, detail), *rows["events"]]}
            for table, table_rows in rows.items():
                conn.executemany(_INSERT[table], [(cycle_id, *r) for r in table_rows])

    def _maybe_purge(self) -> None:
        if self.retention_days is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + PURGE_EVERY_S
        try:
            self.purge()
        except StoreError as exc:
            log.warning("%s", exc)

    def purge(self, now: datetime | None = None) -> int:
        """Delete rows older than ``retention_days`` before ``now`` (default: the clock); return how many."""
        if self.retention_days is None:
            return 0
        cutoff = _ts((now or datetime.now(UTC)) - timedelta(days=self.retention_days))
        with self._guard("purge"), self._transaction() as conn:
            n = sum(conn.execute(f"DELETE FROM {t} WHERE ts < ?", (cutoff,)).rowcount for t in _TABLES)
            return n + conn.execute("DELETE FROM actions WHERE ts < ? AND status != 'pending'", (cutoff,)).rowcount

    # -- operator actions -------------------------------------------------------------------------

    def add_action(self, action: str, payload: dict[str, Any], *, by: str | None = None) -> int:
        """Queue an operator action for the running controller (e.g. 'mode' ``{"mode": "safe"}``); return its id."""
        with self._guard("store the action"), self._transaction() as conn:
            sql = "INSERT INTO actions(ts, by, action, payload) VALUES (?,?,?,?)"
            cursor = conn.execute(sql, (_ts(datetime.now(UTC)), by, action, _json(payload)))
        return int(cursor.lastrowid or 0)

    def pending_actions(self, *, max_age_s: float | None = None) -> list[dict[str, Any]]:
        """Actions not yet applied, oldest first; those older than ``max_age_s`` [s] are marked 'expired' instead."""
        with self._guard("read pending actions"):
            if max_age_s is not None and not self.readonly:
                cutoff = _ts(datetime.now(UTC) - timedelta(seconds=max_age_s))
                with self._transaction() as conn:
                    sql = "UPDATE actions SET status='expired', done_ts=?, result=? WHERE status='pending' AND ts < ?"
                    conn.execute(sql, (_ts(datetime.now(UTC)), f"older than {max_age_s:g} s", cutoff))
            sql = "SELECT id, ts, by, action, payload FROM actions WHERE status = 'pending' ORDER BY id"
            return _records(self._open().execute(sql))

    def mark_applied(self, action_id: int, result: str, *, ok: bool = True) -> None:
        """Close a pending action as 'applied' (or 'refused' when ``ok`` is False) with what happened."""
        with self._guard("mark the action"), self._transaction() as conn:
            sql = "UPDATE actions SET status=?, done_ts=?, result=? WHERE id=? AND status='pending'"
            args = ("applied" if ok else "refused", _ts(datetime.now(UTC)), result, action_id)
            if conn.execute(sql, args).rowcount != 1:
                raise StoreError(f"{self.path}: no pending operator action {action_id}")

    # -- reading ----------------------------------------------------------------------------------

    def _select(self, sql: str, params: Iterable[Any] = ()) -> pd.DataFrame:
        with self._guard("read"):
            return _frame(self._open().execute(sql, list(params)))

    def last_cycle(self) -> dict[str, Any] | None:
        """The newest cycle (by time) as a dict, summary decoded; None before the first."""
        with self._guard("read"):
            rows = _records(self._open().execute("SELECT * FROM cycles ORDER BY ts DESC, id DESC LIMIT 1"))
        return rows[0] if rows else None

    def cycles(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """Cycles with ``since <= ts < until``, oldest first."""
        where, params = _where(since, until)
        return self._select(f"SELECT * FROM cycles{where} ORDER BY ts, id", params)

    def telemetry(
        self, since: datetime | None = None, until: datetime | None = None, device: str | None = None
    ) -> pd.DataFrame:
        """Samples (``value`` float, ``text`` for string values), optionally of one device, oldest first."""
        where, params = _where(since, until, device=device)
        return self._select(f"SELECT * FROM telemetry{where} ORDER BY ts, id", params)

    def setpoints(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        device: str | None = None,
        outcome: str | None = None,
    ) -> pd.DataFrame:
        """Setpoints and their outcome (written, skipped, refused, mismatch, dry-run), oldest first."""
        where, params = _where(since, until, device=device, outcome=outcome)
        return self._select(f"SELECT * FROM setpoints{where} ORDER BY ts, id", params)

    def events(
        self, since: datetime | None = None, until: datetime | None = None, kind: str | None = None
    ) -> pd.DataFrame:
        """Events, optionally of one kind, oldest first."""
        where, params = _where(since, until, kind=kind)
        return self._select(f"SELECT * FROM events{where} ORDER BY ts, id", params)

    def actions(
        self, since: datetime | None = None, until: datetime | None = None, status: str | None = None
    ) -> pd.DataFrame:
        """Operator actions ('pending', 'applied', 'refused', 'expired'), oldest first."""
        where, params = _where(since, until, status=status)
        return self._select(f"SELECT * FROM actions{where} ORDER BY id", params)

    def plans(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """Plan metadata (status, objective, mip_gap, solve_seconds [s], steps), oldest first."""
        where, params = _where(since, until)
        sql = f"SELECT id, cycle_id, ts, status, objective, mip_gap, solve_seconds, steps FROM plans{where}"
        return self._select(f"{sql} ORDER BY ts, id", params)

    def plan_frame(self, ts: datetime | None = None) -> pd.DataFrame | None:
        """The plan in force at ``ts`` (the newest made at or before it; default the newest) as its frame."""
        where, params = ("", []) if ts is None else (" WHERE ts <= ?", [_ts(ts)])
        with self._guard("read a plan"):
            sql = f"SELECT frame FROM plans{where} ORDER BY ts DESC, id DESC LIMIT 1"
            row = self._open().execute(sql, params).fetchone()
        return None if row is None or row[0] is None else _decode_frame(row[0])

    def plan_steps(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """Every stored plan frame in one long frame: ``plan_id``, ``plan_ts``, ``step`` then its columns."""
        where, params = _where(since, until)
        with self._guard("read plans"):
            sql = f"SELECT id, ts, frame FROM plans{where} ORDER BY ts, id"
            rows = self._open().execute(sql, params).fetchall()
        parts = [
            _decode_frame(blob).rename_axis("step").reset_index().assign(plan_id=pid, plan_ts=ts)
            for pid, ts, blob in rows
            if blob is not None
        ]
        if not parts:
            return pd.DataFrame(columns=["plan_id", "plan_ts", "step"])
        frame = pd.concat(parts, ignore_index=True)
        frame["plan_ts"] = pd.to_datetime(frame["plan_ts"], utc=True, format="ISO8601")
        return frame[["plan_id", "plan_ts", *(c for c in frame.columns if c not in ("plan_id", "plan_ts"))]]

    def export(
        self,
        folder: str | Path,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        fmt: Literal["csv", "parquet"] = "csv",
    ) -> list[Path]:
        """Write one file per table, from one consistent snapshot, into ``folder``; return their paths.

        The files are ``cycles``, ``telemetry``, ``plans``, ``plan_steps`` (every plan frame, long),
        ``setpoints``, ``events`` and ``actions``, with JSON columns as text. Parquet needs pyarrow.
        """
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"export format {fmt!r} is not 'csv' or 'parquet'")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with self._guard("export"), self._snapshot():
            tables = self._tables(since, until)
        written = []
        for name, frame in tables.items():
            for col in set(_JSONS) & set(frame.columns):
                frame[col] = [_json(v) for v in frame[col]]
            path = folder / f"{name}.{fmt}"
            if fmt == "csv":
                frame.to_csv(path, index=False)
            else:
                try:
                    frame.to_parquet(path, index=False)
                except ImportError as exc:
                    raise StoreError(f"Parquet export needs pyarrow ({exc})") from exc
            written.append(path)
        return written

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction: in WAL mode every read inside sees the same committed state."""
        conn = self._open()
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def _tables(self, since: datetime | None, until: datetime | None) -> dict[str, pd.DataFrame]:
        return {
            "cycles": self.cycles(since, until),
            "telemetry": self.telemetry(since, until),
            "plans": self.plans(since, until),
            "plan_steps": self.plan_steps(since, until),
            "setpoints": self.setpoints(since, until),
            "events": self.events(since, until),
            "actions": self.actions(since, until),
        }

    # -- lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Try the backlog once more, then close (the last writer's close checkpoints the WAL)."""
        if self._backlog and not self._flush():
            log.error("%s: closing with %d record(s) never written", self.path, len(self._backlog))
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
