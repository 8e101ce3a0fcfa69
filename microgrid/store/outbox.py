"""The outbox: messages to the Situation Centre, kept in the island's store until the broker has them.

Store-and-forward (docs/situation-centre.md): a message is written here first, in the same SQLite
file as the history (table ``outbox``, schema version 2), and numbered by ``seq`` (SQLite
``AUTOINCREMENT``: strictly increasing, never reused, also after deletions and restarts). The
sender reads the oldest first and deletes a row only after the broker acknowledged it (QoS 1
PUBACK), so a broker outage or a restart loses nothing and a message may at worst be sent twice
(the centre drops a ``seq`` it has already seen).

The outbox is bounded: beyond ``max_rows`` the oldest rows are deleted (logged, counted in
:attr:`Outbox.dropped`); the centre sees the gap in ``seq``. Thread-safe: the cycle puts from the
event loop's thread while the sender drains from its own (one connection, one lock).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from microgrid.store.rows import _ts
from microgrid.store.schema import StoreError, _migrate

__all__ = ["MAX_ROWS", "Outbox", "Outgoing", "Queued"]

log = logging.getLogger("microgrid.store.outbox")

MAX_ROWS = 20000
"""Default bound on waiting messages: 3 messages a cycle → 6666 cycles (69 days at 15 min, 4.6 days at 1 min)."""


@dataclass(frozen=True)
class Outgoing:
    """A message to queue: its topic, a payload builder given the message's ``seq``, QoS and retain flag."""

    topic: str
    build: Callable[[int], bytes]
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True)
class Queued:
    """A message waiting in the outbox."""

    seq: int
    ts: str
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    """The ``outbox`` table of the store at ``path`` (module docstring); created (migrated) if missing."""

    def __init__(self, path: str | Path, *, max_rows: int = MAX_ROWS, timeout_s: float = 2.0) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self.path, self.max_rows = Path(path), max_rows
        self.dropped = 0
        """Messages deleted unsent because the outbox was full (since this object was made)."""
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode = WAL")
            _migrate(self._conn)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the outbox: {exc}") from exc

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot {what}: {exc}") from exc

    def put(self, messages: Sequence[Outgoing], ts: datetime) -> list[int]:
        """Queue ``messages`` in one transaction, in order; return their ``seq``. ``ts``: tz-aware UTC.

        Raises
        ------
        StoreError
            The file cannot be written (nothing of ``messages`` is queued).
        """
        seqs = []
        with self._transaction("queue messages") as conn:
            for m in messages:
                sql = "INSERT INTO outbox(ts, topic, payload, qos, retain) VALUES (?,?,?,?,?)"
                seq = int(conn.execute(sql, (_ts(ts), m.topic, b"", m.qos, int(m.retain))).lastrowid or 0)
                conn.execute("UPDATE outbox SET payload=? WHERE seq=?", (m.build(seq), seq))
                seqs.append(seq)
            over = conn.execute("SELECT count(*) FROM outbox").fetchone()[0] - self.max_rows
            if over > 0:
                conn.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (over,))
        if over > 0:
            self.dropped += over
            log.warning("%s: outbox full (%d): dropped the %d oldest unsent message(s)", self.path, self.max_rows, over)
        return seqs

    def peek(self, limit: int = 1) -> list[Queued]:
        """The ``limit`` oldest waiting messages, oldest first."""
        with self._lock:
            try:
                sql = "SELECT seq, ts, topic, payload, qos, retain FROM outbox ORDER BY seq LIMIT ?"
                rows = self._conn.execute(sql, (limit,)).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot read the outbox: {exc}") from exc
        return [
            Queued(seq, ts, topic, bytes(payload), qos, bool(retain)) for seq, ts, topic, payload, qos, retain in rows
        ]

    def ack(self, seq: int) -> None:
        """Delete message ``seq`` (the broker has it)."""
        with self._transaction("delete a sent message") as conn:
            conn.execute("DELETE FROM outbox WHERE seq=?", (seq,))

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
