"""The SQLite schema: versioned DDL, its migrations and the INSERT statements of each table."""

from __future__ import annotations

import sqlite3

from microgrid.errors import MicrogridError

SCHEMA_VERSION = 2
APPLICATION_ID = 0x4D475244  # "MGRD": marks the file as a microgrid store


class StoreError(MicrogridError):
    """The history cannot be opened or read, or an operator action cannot be stored."""


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
    (  # 1 → 2: the outbox of messages to the Situation Centre (microgrid.store.outbox); seq never reused
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, topic TEXT NOT NULL,"
        " payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL)",
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
