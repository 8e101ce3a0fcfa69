"""The outbox in the island's SQLite file: order, bound, persistence, and the migration of a version-1 history."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microgrid.store import APPLICATION_ID, SCHEMA_VERSION, Store
from microgrid.store.outbox import Outbox, Outgoing
from microgrid.store.schema import _MIGRATIONS

T0 = datetime(2026, 12, 5, 2, 15, tzinfo=UTC)


def message(topic: str) -> Outgoing:
    return Outgoing(topic, lambda seq: f"{topic}#{seq}".encode(), 1, True)


def test_messages_carry_their_seq_and_leave_only_when_acknowledged(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "history.sqlite")
    assert box.put([message("a"), message("b")], T0) == [1, 2]
    assert [(m.seq, m.payload, m.retain) for m in box.peek(5)] == [(1, b"a#1", True), (2, b"b#2", True)]
    box.ack(1)
    assert [m.seq for m in box.peek(5)] == [2] and len(box) == 1
    box.close()
    again = Outbox(tmp_path / "history.sqlite")  # a restart: the row is still there, seq goes on, never reused
    assert [m.seq for m in again.peek(5)] == [2]
    again.ack(2)
    assert again.put([message("c")], T0) == [3]
    again.close()


def test_the_bound_drops_the_oldest(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "h.sqlite", max_rows=4)
    for n in range(6):
        box.put([message(str(n))], T0)
    assert [m.seq for m in box.peek(10)] == [3, 4, 5, 6] and box.dropped == 2
    box.close()
    with pytest.raises(ValueError, match="max_rows"):
        Outbox(tmp_path / "h.sqlite", max_rows=0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=12), st.integers(1, 10))
def test_seq_increases_and_the_newest_are_kept(batches: list[int], max_rows: int) -> None:
    """Whatever the batches and the bound: seq is 1, 2, 3… and the outbox holds the newest min(n, bound)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        box = Outbox(Path(folder) / "h.sqlite", max_rows=max_rows)
        seqs = [s for size in batches for s in box.put([message("t")] * size, T0)]
        total = sum(batches)
        assert seqs == list(range(1, total + 1))
        assert [m.seq for m in box.peek(100)] == seqs[-min(total, max_rows) :]
        assert box.dropped == max(0, total - max_rows)
        box.close()


def test_a_version_1_history_gains_the_outbox_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        for statement in _MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO events(ts, kind, message, detail) VALUES ('2026-01-01T00:00:00.000000Z','start','x','{}')"
        )
    conn.close()
    with Store(path, retention_days=None) as store:
        assert store.path == path
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    conn.close()
