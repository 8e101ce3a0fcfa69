"""What only the PostgreSQL store has: a server that drops the connection (the next try connects anew, nothing
lost, nothing twice), a URL's password kept out of messages, and ``centre serve --db postgresql://…`` refused
with exit 2 naming ``--db`` when the server cannot be reached or the driver is not installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from microgrid.centre import Arrival
from microgrid.centre.dialects import StoreError, dialect_of, is_url, redacted
from microgrid.centre.fleet import FleetStore
from microgrid.sim.ports import free_ports
from tests.centre.conftest import PostgresCluster, Store


def status(island: str, seq: int) -> Arrival:
    return Arrival("kharkiv", island, "status", {"seq": seq, "island": island, "ts": "2026-12-05T02:15:00Z"})


def test_a_lost_connection_is_made_anew(postgres: PostgresCluster) -> None:
    """The server ends the centre's session (as a restart does): that batch fails, kept nowhere; the next one
    connects again and keeps it once."""
    import psycopg

    store = Store("postgresql", postgres.new_database())
    fleet = FleetStore(store.where)
    assert fleet.ingest_many([status("h", 1)]) == [True]
    pid = fleet._conn.info.backend_pid
    store.execute(f"SELECT pg_terminate_backend({pid})")
    with pytest.raises(psycopg.OperationalError):
        fleet.ingest_many([status("h", 2), status("g", 1)])
    assert fleet.seen.last == {("h", "status"): 1} and fleet.island("g") is None
    assert fleet.ingest_many([status("h", 2), status("g", 1)]) == [True, True]
    assert fleet._conn.info.backend_pid != pid
    assert sorted(store.query("SELECT island, seq FROM messages")) == [("g", 1), ("h", 1), ("h", 2)]
    fleet.close()


def test_urls_and_passwords() -> None:
    assert is_url("postgresql://centre@db:5432/city") and is_url("postgres://db/city")
    assert not is_url("centre.sqlite") and dialect_of("postgresql.sqlite").name == "sqlite"
    assert redacted("postgresql://centre:s3cret@db:5432/city") == "postgresql://centre:***@db:5432/city"
    assert redacted("postgresql://centre@db/city") == "postgresql://centre@db/city"
    port = free_ports(1)[0]  # nothing listens there
    with pytest.raises(StoreError, match=r"centre:\*\*\*@127.0.0.1.*cannot reach") as caught:
        FleetStore(f"postgresql://centre:s3cret@127.0.0.1:{port}/city")
    assert "s3cret" not in str(caught.value)


def serve(url: str, *, without_driver: bool = False) -> subprocess.CompletedProcess[str]:
    """``microgrid centre serve … --db URL`` as a process (psycopg made unimportable if ``without_driver``)."""
    block = "import sys; sys.modules['psycopg'] = None; " if without_driver else ""
    code = f"{block}from microgrid.cli import main; main()"
    args = ["centre", "serve", "mqtt://127.0.0.1:1/kharkiv", "--db", url, "--http", f"127.0.0.1:{free_ports(1)[0]}"]
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, check=False)


def test_serve_refuses_a_store_it_cannot_use() -> None:
    port = free_ports(1)[0]
    unreachable = serve(f"postgresql://centre:s3cret@127.0.0.1:{port}/city")
    assert unreachable.returncode == 2, unreachable.stderr
    assert "--db: postgresql://centre:***@127.0.0.1" in unreachable.stderr and "cannot reach" in unreachable.stderr
    assert "s3cret" not in unreachable.stderr + unreachable.stdout and "Traceback" not in unreachable.stderr
    assert "situation screen" not in unreachable.stdout  # announced only once the store is open
    no_driver = serve(f"postgresql://centre@127.0.0.1:{port}/city", without_driver=True)
    assert no_driver.returncode == 2, no_driver.stderr
    assert "--db:" in no_driver.stderr and "pip install 'microgrid[postgres]'" in no_driver.stderr
