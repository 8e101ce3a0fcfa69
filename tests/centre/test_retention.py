"""Retention of the centre's history on a real SQLite file and a real PostgreSQL database (the ``store`` fixture):
old messages deleted, the newest of each island and kind and every island's latest state kept (also across a
restart: an old replay is still dropped)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microgrid.centre import Arrival
from microgrid.centre.fleet import FleetStore
from microgrid.centre.retention import Retention
from microgrid.sim.ports import free_ports
from tests.centre.conftest import Store
from tests.uplink.conftest import AmqttBroker

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def message(island: str, kind: str, seq: int, days_ago: float) -> Arrival:
    ts = (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = {"seq": seq, "island": island, "ts": ts, "autonomy": {"critical_h": 5.0}, "alarms": []}
    return Arrival("kharkiv", island, kind, payload)


def kept(store: Store) -> set[tuple[str, str, int]]:
    return set(store.query("SELECT island, kind, seq FROM messages"))


def test_prune_by_hand(store: Store) -> None:
    """hospital-7: statuses 40, 20, 5 and 1 days old, one cycle 40 days old; pumps-2: one status 50 days old.
    Keeping 30 days deletes status 1 and nothing else: the newest status and cycle of each island stay."""
    fleet = FleetStore(store.where)
    for arrival in (
        message("hospital-7", "status", 1, 40),
        message("hospital-7", "cycle", 2, 40),
        message("hospital-7", "status", 3, 20),
        message("hospital-7", "status", 4, 5),
        message("hospital-7", "status", 5, 1),
        message("pumps-2", "status", 1, 50),
    ):
        assert fleet.ingest(arrival)
    retention = Retention(fleet, 30, clock=lambda: NOW)
    assert retention.run_once() == 1 and retention.deleted == 1
    assert kept(store) == {("hospital-7", "cycle", 2), ("pumps-2", "status", 1)} | {
        ("hospital-7", "status", seq) for seq in (3, 4, 5)
    }
    assert fleet.prune(NOW - timedelta(days=2), chunk=1) == 2  # 20 and 5 days old, one per transaction
    assert {r["island"]: r["status"]["seq"] for r in fleet.islands()} == {"hospital-7": 5, "pumps-2": 1}
    fleet.close()
    again = FleetStore(store.where)  # a restart: the seq filter is seeded from what is left
    assert not again.ingest(message("pumps-2", "status", 1, 50)) and not again.ingest(
        message("hospital-7", "status", 4, 5)
    )
    assert again.ingest(message("hospital-7", "status", 6, 0)) and again.islands()[0]["status"]["seq"] == 6
    again.close()
    with pytest.raises(ValueError, match="keep_days"):
        Retention(again, 0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["status", "cycle"]), st.integers(0, 60))))
def test_prune_keeps_the_recent_and_the_newest(store: Store, messages: list[tuple[str, str, int]]) -> None:
    """Whatever the messages: after pruning at 30 days exactly those older than that and not the newest
    of their island and kind are gone; the islands' latest states are untouched. (Each example on an empty
    store: ``store.reset()``.)"""
    store.reset()
    fleet = FleetStore(store.where)
    for seq, (island, kind, days_ago) in enumerate(messages, start=1):
        fleet.ingest(message(island, kind, seq, days_ago))
    before, rows = kept(store), fleet.islands()
    newest = {(island, kind): seq for island, kind, seq in sorted(before, key=lambda m: m[2])}
    old = {(i, k, s) for s, (i, k, days) in enumerate(messages, start=1) if days > 30 and newest[(i, k)] != s}
    assert fleet.prune(NOW - timedelta(days=30)) == len(old)
    assert kept(store) == before - old and fleet.islands() == rows
    fleet.close()


def test_serve_keep_days_prunes_at_start(store: Store) -> None:
    """``microgrid centre serve --keep-days 1`` as a process (``--db`` a SQLite file, then a ``postgresql://`` URL):
    the history older than a day is gone once it serves, the islands are listed over HTTP; Ctrl-C stops it at
    once although a screen's event stream is open (the stream never ends by itself)."""
    fleet = FleetStore(store.where)
    now = datetime.now(UTC)
    for seq, days_ago in enumerate((3.0, 2.0, 0.1), start=1):
        ts = (now - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
        fleet.ingest(Arrival("kharkiv", "h", "status", {"seq": seq, "island": "h", "ts": ts}))
    fleet.close()
    broker = AmqttBroker().start()
    port = free_ports(1)[0]
    args = ["-m", "microgrid", "centre", "serve", f"mqtt://127.0.0.1:{broker.port}/kharkiv", "--db", str(store.where)]
    proc = subprocess.Popen(
        [sys.executable, *args, "--http", f"127.0.0.1:{port}", "--keep-days", "1"], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while kept(store) != {("h", "status", 3)}:
            assert time.monotonic() < deadline and proc.poll() is None, kept(store)
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/api/islands", timeout=5).json()[0]["status"]["seq"] == 3
        with httpx.stream("GET", f"http://127.0.0.1:{port}/events", timeout=10) as stream:
            assert next(stream.iter_lines()) == "event: fleet"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        broker.stop()
    bad = subprocess.run(
        [sys.executable, *args, "--keep-days", "-1"], capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2 and "--keep-days" in bad.stderr
