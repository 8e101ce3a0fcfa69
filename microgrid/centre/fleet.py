"""The centre's fleet store: every island's latest state and its history, in one SQLite file.

Tables: ``islands`` (one row per island: the latest status, alarms and online flag as received)
and ``messages`` (every accepted sequenced message: island, kind, seq, ts, payload) for the
per-island history. Messages are first passed through :class:`~microgrid.centre.ingest.SeqFilter`,
seeded from the file at opening, so a replay after a restart of either side is not stored twice.
Thread-safe (the MQTT listener writes from its thread while the web server reads): one connection, one lock.

:func:`risk_key` is the screen's order, most at risk first: offline islands, then by hours of
critical autonomy (unknown first), then by number of alarms (more first), then by id.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from microgrid.centre.ingest import Arrival, SeqFilter

__all__ = ["FleetStore", "risk_key"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS islands (island TEXT PRIMARY KEY, city TEXT NOT NULL, online INTEGER,"
    " seen_ts TEXT NOT NULL, status TEXT, alarms TEXT)",
    "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, island TEXT NOT NULL, kind TEXT NOT NULL,"
    " seq INTEGER NOT NULL, ts TEXT, payload TEXT NOT NULL, UNIQUE (island, kind, seq))",
    "CREATE INDEX IF NOT EXISTS messages_island_ts ON messages(island, ts)",
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


class FleetStore:
    """The fleet's state at the centre (module docstring); ``path`` is created if missing."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        for statement in _SCHEMA:
            self._conn.execute(statement)
        self.version = 0
        """Incremented on every change (the screen's live updates watch it)."""
        self.seen = SeqFilter()
        for island, kind, seq in self._conn.execute(
            "SELECT island, kind, max(seq) FROM messages GROUP BY island, kind"
        ):
            self.seen.last[(island, kind)] = seq

    def ingest(self, arrival: Arrival, now: datetime | None = None) -> bool:
        """Keep ``arrival`` if it is new (:class:`SeqFilter`); True when it changed the fleet."""
        seen_ts = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            if not self.seen.accept(arrival):
                return False
            body = json.dumps(arrival.payload, separators=(",", ":"))
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                sql = "INSERT INTO islands(island, city, seen_ts) VALUES (?,?,?) ON CONFLICT DO UPDATE SET seen_ts=?"
                conn.execute(sql, (arrival.island, arrival.city, seen_ts, seen_ts))
                if arrival.kind == "online":
                    conn.execute(
                        "UPDATE islands SET online=? WHERE island=?",
                        (int(bool(arrival.payload.get("online"))), arrival.island),
                    )
                else:
                    if arrival.kind in ("status", "alarms"):
                        conn.execute(f"UPDATE islands SET {arrival.kind}=? WHERE island=?", (body, arrival.island))
                    sql = "INSERT OR IGNORE INTO messages(island, kind, seq, ts, payload) VALUES (?,?,?,?,?)"
                    conn.execute(
                        sql, (arrival.island, arrival.kind, arrival.payload["seq"], arrival.payload.get("ts"), body)
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self.version += 1
            return True

    def islands(self) -> list[dict[str, Any]]:
        """Every island's latest state, most at risk first (:func:`risk_key`)."""
        with self._lock:
            rows = self._conn.execute("SELECT island, city, online, seen_ts, status, alarms FROM islands").fetchall()
        out = [
            {
                "island": island,
                "city": city,
                "online": None if online is None else bool(online),
                "seen_ts": seen_ts,
                "status": json.loads(status) if status else None,
                "alarms": json.loads(alarms)["alarms"] if alarms else [],
            }
            for island, city, online, seen_ts, status, alarms in rows
        ]
        return sorted(out, key=risk_key)

    def history(self, island: str, since: str, kind: str = "status") -> list[dict[str, Any]]:
        """The island's ``kind`` messages whose ``ts`` is at or after ``since`` (UTC ISO text), oldest first."""
        with self._lock:
            sql = "SELECT payload FROM messages WHERE island=? AND kind=? AND ts >= ? ORDER BY seq"
            rows = self._conn.execute(sql, (island, kind, since)).fetchall()
        return [json.loads(payload) for (payload,) in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
