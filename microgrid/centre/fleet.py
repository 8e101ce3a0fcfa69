"""The centre's fleet store: every island's latest state and its history, in one SQLite file or PostgreSQL.

Tables: ``islands`` (one row per island: the latest status, alarms and online flag as received)
and ``messages`` (every accepted sequenced message: island, kind, seq, ts, payload) for the
per-island history. Messages are first passed through :class:`~microgrid.centre.ingest.SeqFilter`,
seeded from the file at opening, so a replay after a restart of either side is not stored twice.
Thread-safe (the MQTT listener writes from its thread while the web server reads): one connection, one lock.
The store is a SQLite file (a path) or a PostgreSQL database (a ``postgresql://`` URL); the SQL is written
once, what differs between the two is in :mod:`~microgrid.centre.dialects`.

Speed (``benchmarks/centre.py``): :meth:`FleetStore.ingest_many` keeps a batch of messages in one
transaction (the listener hands over whatever arrived while the previous batch was committing);
the islands' rows are also kept in memory, so the screen (:meth:`FleetStore.islands`,
:meth:`FleetStore.islands_json`) never reads the file; the JSON of the screen is cached per
:attr:`FleetStore.version` and each row's JSON is re-made only when that island changed.
Retention: :meth:`FleetStore.prune` deletes history older than a cut-off, never the newest message
of an island and kind (the seq filter is seeded from them) nor the ``islands`` rows.

:func:`risk_key` is the screen's order, most at risk first: offline islands, then by hours of
critical autonomy (unknown first), then by number of alarms (more first), then by id.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from microgrid.centre.dialects import dialect_of, is_url
from microgrid.centre.ingest import Arrival, SeqFilter
from microgrid.uplink.topics import SEQUENCED

__all__ = ["FleetStore", "risk_key"]

_PRUNE = (
    "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE island=? AND ts < ? AND kind=? AND seq < ?"
    " LIMIT ?)"
)


def risk_key(row: dict[str, Any]) -> tuple[int, float, int, str]:
    """Sort key of an :meth:`FleetStore.islands` row, most at risk first (module docstring)."""
    status = row.get("status") or {}
    autonomy = (status.get("autonomy") or {}).get("critical_h")
    offline = row.get("online") is False
    return (
        0 if offline else 1,
        -1.0 if autonomy is None else float(autonomy),
        -len(status.get("alarms") or []),
        row["island"],
    )


def _utc(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


class FleetStore:
    """The fleet's state at the centre (module docstring) in ``path``: a SQLite file (created if missing) or a
    PostgreSQL URL (its tables created if missing; :class:`~microgrid.centre.dialects.StoreError` when
    psycopg is not installed or the server cannot be reached). One centre per store (its seq filter is in memory)."""

    def __init__(self, path: str | Path) -> None:
        self.url = str(path) if is_url(path) else None
        """The PostgreSQL URL (None for SQLite)."""
        self.path = Path(path)
        """The SQLite file (meaningless with a URL)."""
        self._where = self.url or self.path
        self._dialect = dialect_of(path)
        self._lock = threading.Lock()
        self._conn = self._dialect.connect(self._where)
        for statement in self._dialect.schema:
            self._conn.execute(statement)
        self.version = 0
        """Incremented on every change (the screen's live updates watch it)."""
        self.seen = SeqFilter()
        for island, kind, seq in self._conn.execute(
            "SELECT island, kind, max(seq) FROM messages GROUP BY island, kind"
        ):
            self.seen.last[(island, kind)] = seq
        self._rows: dict[str, dict[str, Any]] = {}
        for island, city, online, seen_ts, status, alarms in self._conn.execute(
            "SELECT island, city, online, seen_ts, status, alarms FROM islands"
        ):
            self._rows[island] = {
                "island": island,
                "city": city,
                "online": None if online is None else bool(online),
                "seen_ts": seen_ts,
                "status": json.loads(status) if status else None,
                "alarms": json.loads(alarms)["alarms"] if alarms else [],
            }
        self._pieces: dict[str, tuple[tuple[int, float, int, str], str]] = {}
        """Per island: its risk key and its row's JSON (dropped when the island changes)."""
        self._screen: tuple[int, str] = (-1, "[]")

    def ingest(self, arrival: Arrival, now: datetime | None = None) -> bool:
        """Keep ``arrival`` if it is new (:class:`SeqFilter`); True when it changed the fleet."""
        return self.ingest_many([arrival], now)[0]

    def ingest_many(self, arrivals: Sequence[Arrival], now: datetime | None = None) -> list[bool]:
        """Keep the new ones of ``arrivals`` (in order) in one transaction; for each, whether it was new.

        All or nothing: when the transaction fails (the exception is raised) nothing is kept, in the
        file, in memory or in the seq filter, so the same messages can be given again."""
        seen_ts = _utc(now)
        with self._lock:
            pending: dict[tuple[str, str], int] = {}
            kept = [self.seen.fresh(arrival, pending) for arrival in arrivals]
            new = [arrival for arrival, fresh in zip(arrivals, kept, strict=True) if fresh]
            if not new:
                return kept
            bodies = [json.dumps(arrival.payload, separators=(",", ":")) for arrival in new]
            self._write(new, bodies, seen_ts)
            self.seen.last.update(pending)
            for arrival in new:
                self._remember(arrival, seen_ts)
            self.version += 1
        return kept

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        """The connection inside BEGIN ... COMMIT, rolled back on any error (the error raised); the caller holds
        the lock. A lost PostgreSQL connection is made anew first (the server restarted: the next try works)."""
        if self._dialect.broken(self._conn):
            self._conn = self._dialect.connect(self._where)
        conn = self._conn
        conn.execute(self._dialect.begin)
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):  # a lost connection cannot roll back: the error that matters is raised
                conn.execute("ROLLBACK")
            raise

    def _write(self, new: list[Arrival], bodies: list[str], seen_ts: str) -> None:
        """One transaction: the islands' rows and the messages' history (rolled back on any error)."""
        sql = self._dialect.sql
        with self._transaction() as conn:
            conn.cursor().executemany(self._dialect.upsert, {(a.island, a.city, seen_ts) for a in new})
            history = []
            for arrival, body in zip(new, bodies, strict=True):
                if arrival.kind == "online":
                    online = int(bool(arrival.payload.get("online")))
                    conn.execute(sql("UPDATE islands SET online=? WHERE island=?"), (online, arrival.island))
                    continue
                if arrival.kind in ("status", "alarms"):
                    conn.execute(sql(f"UPDATE islands SET {arrival.kind}=? WHERE island=?"), (body, arrival.island))
                ts = arrival.payload.get("ts")
                history.append((arrival.island, arrival.kind, arrival.payload["seq"], ts, body))
            conn.cursor().executemany(self._dialect.insert, history)

    def _remember(self, arrival: Arrival, seen_ts: str) -> None:
        """The in-memory row of ``arrival``'s island, as :meth:`_write` left it in the file."""
        row = self._rows.setdefault(
            arrival.island,
            {"island": arrival.island, "city": arrival.city, "online": None, "status": None, "alarms": []},
        )
        row["seen_ts"] = seen_ts
        if arrival.kind == "online":
            row["online"] = bool(arrival.payload.get("online"))
        elif arrival.kind == "status":
            row["status"] = arrival.payload
        elif arrival.kind == "alarms":
            row["alarms"] = arrival.payload.get("alarms", [])
        self._pieces.pop(arrival.island, None)

    def islands(self) -> list[dict[str, Any]]:
        """Every island's latest state, most at risk first (:func:`risk_key`); copies of the rows (their
        ``status`` is the store's own dict: read it, do not change it)."""
        with self._lock:
            rows = [dict(row) for row in self._rows.values()]
        return sorted(rows, key=risk_key)

    def island(self, island: str) -> dict[str, Any] | None:
        """One island's latest state (a copy of its :meth:`islands` row), None for an unknown one."""
        with self._lock:
            row = self._rows.get(island)
            return None if row is None else dict(row)

    def islands_json(self) -> str:
        """:meth:`islands` as JSON text (compact), made once per :attr:`version`."""
        with self._lock:
            if self._screen[0] != self.version:
                for island, row in self._rows.items():
                    if island not in self._pieces:
                        self._pieces[island] = (risk_key(row), json.dumps(row, separators=(",", ":")))
                pieces = sorted(self._pieces.values())
                self._screen = (self.version, "[" + ",".join(text for _, text in pieces) + "]")
            return self._screen[1]

    def history(self, island: str, since: str, kind: str = "status") -> list[dict[str, Any]]:
        """The island's ``kind`` messages whose ``ts`` is at or after ``since`` (UTC ISO text), oldest first."""
        with self._lock:
            sql = "SELECT payload FROM messages WHERE island=? AND kind=? AND ts >= ? ORDER BY seq"
            if self._dialect.broken(self._conn):
                self._conn = self._dialect.connect(self._where)
            rows = self._conn.execute(self._dialect.sql(sql), (island, kind, since)).fetchall()
        return [json.loads(payload) for (payload,) in rows]

    def prune(self, before: datetime, *, chunk: int = 2000) -> int:
        """Delete the history whose ``ts`` is before ``before``; the number of messages deleted.

        Never the newest message of an island and kind (the seq filter is seeded from them at the next
        opening, so an old message replayed is still dropped), never an ``islands`` row. One transaction
        per ``chunk`` messages of one island and kind: the listener's batches wait at most for one chunk."""
        cutoff, deleted = _utc(before), 0
        with self._lock:
            keys = [(island, kind, seq) for (island, kind), seq in self.seen.last.items() if kind in SEQUENCED]
        for island, kind, newest in keys:
            while True:
                with self._lock, self._transaction() as conn:
                    count = conn.execute(self._dialect.sql(_PRUNE), (island, cutoff, kind, newest, chunk)).rowcount
                deleted += count
                if count < chunk:
                    break
        return deleted

    def close(self) -> None:
        with self._lock:
            self._conn.close()
