"""The centre's fleet store on both of its databases: a SQLite file, and a real PostgreSQL server (Debian's
package) started by the tests: one throwaway cluster for the session (initdb + pg_ctl on a free loopback port,
in a temporary folder; as the ``postgres`` user when we are root, since PostgreSQL refuses to run as root),
a fresh database for each test. Where PostgreSQL or psycopg is missing its runs are skipped, naming why."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from microgrid.sim.ports import free_ports


def _bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding initdb and pg_ctl, else the PATH's (None: none)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


class PostgresCluster:
    """A PostgreSQL cluster of our own on 127.0.0.1:``port``, trust authentication for user ``centre``."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin, self.port = bin_dir, free_ports(1)[0]
        self.folder = Path(tempfile.mkdtemp(prefix="microgrid-pg-"))
        self.data = self.folder / "data"
        self._as: list[str] = []
        self._databases = 0
        if os.geteuid() == 0:  # PostgreSQL refuses root: its programs run as the postgres user, in its folder
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{args[0]}: {done.stdout}{done.stderr}"

    def start(self) -> PostgresCluster:
        initdb = ["-D", str(self.data), "-U", "centre", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]
        self._run(str(self.bin / "initdb"), *initdb)
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off -c full_page_writes=off"
        ctl = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "-t", "30"]
        self._run(*ctl, "-o", options, "start")
        return self

    def stop(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://centre@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        import psycopg

        self._databases += 1
        name = f"centre_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """The session's PostgreSQL cluster (skipped, with the reason, where it cannot run here)."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[dev]' brings it)")
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL's initdb/pg_ctl are not installed (.ci/run installs Debian's postgresql)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
    cluster = PostgresCluster(bin_dir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


REFUSE = {
    "sqlite": ("CREATE TRIGGER refuse BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'the disk is full'); END",),
    "postgresql": (
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE 'the disk is full'; END$$",
        "CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse()",
    ),
}
"""Per database: a trigger that makes every insert into ``messages`` fail (a full disk, as the store sees it)."""
ALLOW = {"sqlite": ("DROP TRIGGER refuse",), "postgresql": ("DROP TRIGGER refuse ON messages", "DROP FUNCTION refuse")}


class Store:
    """Where a test's fleet store is (``where``: a SQLite path or a PostgreSQL URL) and SQL on it from outside."""

    def __init__(self, kind: str, where: Path | str) -> None:
        self.kind, self.where = kind, where
        self._resets = 0

    @property
    def error(self) -> type[Exception]:
        """What the database driver raises for a refused statement."""
        if self.kind == "sqlite":
            return sqlite3.IntegrityError
        import psycopg

        return psycopg.Error

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` (a new connection, closed after)."""
        if self.kind == "sqlite":
            with contextlib.closing(sqlite3.connect(self.where)) as conn:
                return list(conn.execute(sql))
        import psycopg

        with psycopg.connect(str(self.where), autocommit=True) as pg:
            return list(pg.execute(sql))

    def execute(self, *statements: str) -> None:
        if self.kind == "sqlite":
            with contextlib.closing(sqlite3.connect(self.where)) as conn, conn:
                for statement in statements:
                    conn.execute(statement)
            return
        import psycopg

        with psycopg.connect(str(self.where), autocommit=True) as pg:
            for statement in statements:
                pg.execute(statement)

    def refuse(self) -> None:
        """Every insert into ``messages`` fails from now on (:data:`REFUSE`)."""
        self.execute(*REFUSE[self.kind])

    def allow(self) -> None:
        self.execute(*ALLOW[self.kind])

    @contextlib.contextmanager
    def writing_elsewhere(self) -> Iterator[None]:
        """Another writer holds the store meanwhile: the fleet's inserts wait until it is done."""
        if self.kind == "sqlite":
            with contextlib.closing(sqlite3.connect(self.where, isolation_level=None)) as conn:
                conn.execute("BEGIN IMMEDIATE")
                yield
                conn.execute("COMMIT")
            return
        import psycopg

        with psycopg.connect(str(self.where), autocommit=True) as pg:
            pg.execute("BEGIN")
            pg.execute("LOCK TABLE messages IN EXCLUSIVE MODE")
            yield
            pg.execute("COMMIT")

    def trace(self, fleet: Any) -> list[str]:
        """The statements ``fleet`` sends from now on (its ``executemany`` left out with PostgreSQL)."""
        statements: list[str] = []
        if self.kind == "sqlite":
            fleet._conn.set_trace_callback(statements.append)
        else:
            fleet._conn = _Spy(fleet._conn, statements)
        return statements

    def reset(self) -> None:
        """An empty store again (for hypothesis' examples): a new file, or the tables dropped."""
        self._resets += 1
        if self.kind == "sqlite":
            self.where = Path(self.where).with_name(f"centre-{self._resets}.sqlite")
        else:
            self.execute("DROP TABLE IF EXISTS islands, messages")


class _Spy:
    """A psycopg connection that notes each ``execute``'s SQL (psycopg has no trace callback)."""

    def __init__(self, conn: Any, seen: list[str]) -> None:
        self._conn, self._seen = conn, seen

    def execute(self, sql: str, *args: Any) -> Any:
        self._seen.append(str(sql))
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """Each test that takes it runs on a SQLite file, then on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return Store("sqlite", tmp_path / "centre.sqlite")
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return Store("postgresql", cluster.new_database())
