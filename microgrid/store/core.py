"""The Store: one SQLite file, its connection, the cycle writer with its backlog, and operator actions."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from microgrid.store.queries import StoreQueries, _records
from microgrid.store.rows import CycleRow, EventRow, PlanRow, SetpointRow, TelemetryRow, _Batch, _encode, _json, _ts
from microgrid.store.schema import _INSERT, SCHEMA_VERSION, StoreError, _migrate

log = logging.getLogger("microgrid.store")  # the name it had before store.py became a package

PURGE_EVERY_S = 3600.0
_TABLES = ("cycles", "telemetry", "plans", "setpoints", "events")
_KEEP_CONNECTION = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL)  # errors a reconnect cannot fix


class Store(StoreQueries):
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
        self._opened_at: tuple[datetime, float] | None = None
        """(the wall clock bounded by the newest recorded cycle, monotonic s) at opening: :meth:`trusted_now`."""
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
                if self._opened_at is None:
                    self._opened_at = self._anchor(conn)
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
        replaces: int | None = None,
    ) -> bool:
        """Record one cycle and everything it produced, in one transaction.

        Parameters
        ----------
        cycle
            The cycle: time, mode, setpoint source, reason, phase durations [s], status summary.
        telemetry, plan, setpoints, events
            What the cycle read, solved, wrote (or refused) and reported; linked to it by ``cycle_id``.
        replaces
            The id of a recorded cycle of the same interval that this one supersedes (a restart within
            the interval): that row takes this cycle's mode, source, reason, phases and summary, and the
            new rows join the old ones under its id; nothing else is deleted. A new row if it is gone.

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
        return self._submit(replace(_encode(cycle, telemetry, plan, setpoints, events), replaces=replaces))

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
            cycle_id = None if batch.cycle is None else self._cycle_id(conn, batch)
            rows = batch.rows
            if batch.gap is not None:
                n, first, last = batch.gap
                message = f"{n} record(s) from {first} to {last} were lost while the history could not be written"
                detail = _json({"dropped": n, "first": first, "last": last})
                rows = {**rows, "events": [(batch.ts or first, "store", message, detail), *rows["events"]]}
            for table, table_rows in rows.items():
                conn.executemany(_INSERT[table], [(cycle_id, *r) for r in table_rows])

    @staticmethod
    def _cycle_id(conn: sqlite3.Connection, batch: _Batch) -> int | None:
        assert batch.cycle is not None
        if batch.replaces is not None:
            sql = "UPDATE cycles SET mode=?, source=?, reason=?, phases_s=?, summary=? WHERE id=? AND ts=?"
            if conn.execute(sql, (*batch.cycle[1:], batch.replaces, batch.cycle[0])).rowcount == 1:
                return batch.replaces
        return conn.execute(_INSERT["cycles"], batch.cycle).lastrowid

    def _maybe_purge(self) -> None:
        if self.retention_days is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + PURGE_EVERY_S
        try:
            self.purge()
        except StoreError as exc:
            log.warning("%s", exc)

    def trusted_now(self) -> datetime:
        """The wall clock, but never later than the newest time the history knew when it was opened
        plus the monotonic time since: a clock that jumped ahead (a dead RTC, a wrong NTP answer) must
        not make rows look old. A controller that was off for a while purges late, never early."""
        now = datetime.now(UTC)
        if self._opened_at is None:  # never connected: nothing can be purged anyway
            return now
        anchor, mono = self._opened_at
        return min(now, anchor + timedelta(seconds=time.monotonic() - mono))

    @staticmethod
    def _anchor(conn: sqlite3.Connection) -> tuple[datetime, float]:
        """(the clock, or the newest cycle's time if that is earlier; monotonic s) when first connected."""
        now, newest = datetime.now(UTC), conn.execute("SELECT max(ts) FROM cycles").fetchone()[0]
        return (now if newest is None else min(now, datetime.fromisoformat(newest))), time.monotonic()

    def purge(self, now: datetime | None = None) -> int:
        """Delete rows older than ``retention_days`` before ``now`` (default: :meth:`trusted_now`); return how many."""
        if self.retention_days is None:
            return 0
        cutoff = _ts((now or self.trusted_now()) - timedelta(days=self.retention_days))
        with self._guard("purge"), self._transaction() as conn:
            n = sum(conn.execute(f"DELETE FROM {t} WHERE ts < ?", (cutoff,)).rowcount for t in _TABLES)
            return n + conn.execute("DELETE FROM actions WHERE ts < ? AND status != 'pending'", (cutoff,)).rowcount

    # -- operator actions -------------------------------------------------------------------------

    def add_action(self, action: str, payload: dict[str, Any], *, by: str | None = None) -> int:
        """Queue an operator action for the running controller (e.g. 'mode' ``{"mode": "safe"}``); return its id."""
        return self.add_actions([(action, payload)], by=by)[0]

    def add_actions(self, actions: list[tuple[str, dict[str, Any]]], *, by: str | None = None) -> list[int]:
        """Queue several (action, payload) in one transaction: all of them or, when the store fails, none; their ids."""
        ids = []
        with self._guard("store the actions"), self._transaction() as conn:
            sql = "INSERT INTO actions(ts, by, action, payload) VALUES (?,?,?,?)"
            for action, payload in actions:
                cursor = conn.execute(sql, (_ts(datetime.now(UTC)), by, action, _json(payload)))
                ids.append(int(cursor.lastrowid or 0))
        return ids

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
