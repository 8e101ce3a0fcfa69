"""Where the centre's fleet store lives: a SQLite file (the default) or a PostgreSQL database (a URL).

:class:`~microgrid.centre.fleet.FleetStore` writes its SQL once, with ``?`` placeholders; what differs
between the two databases is here and only here (:class:`Dialect`): the placeholder (``?`` / ``%s``),
the history's key (SQLite's ``INTEGER PRIMARY KEY`` / an identity column), the insert that skips a
duplicate (``INSERT OR IGNORE`` / ``ON CONFLICT DO NOTHING``), the upsert's conflict target, how a
write transaction begins, and opening a connection. The tables and columns are the same in both
(``seq`` is a 64-bit integer in both; ``ts`` compares byte-wise in both: ``COLLATE "C"`` in PostgreSQL,
whatever the database's locale).

PostgreSQL: ``postgresql://user[:password]@host[:port]/database`` (or ``postgres://``, any libpq
URL), through psycopg 3 (``pip install 'microgrid[postgres]'``), imported only when such a URL is given.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microgrid.errors import MicrogridError

__all__ = ["POSTGRES", "SQLITE", "Dialect", "StoreError", "dialect_of", "is_url", "redacted"]

_ISLANDS = (
    "CREATE TABLE IF NOT EXISTS islands (island TEXT PRIMARY KEY, city TEXT NOT NULL, online INTEGER,"
    " seen_ts TEXT NOT NULL, status TEXT, alarms TEXT)"
)
_MESSAGES = (
    "CREATE TABLE IF NOT EXISTS messages (id {id}, island TEXT NOT NULL, kind TEXT NOT NULL,"
    " seq {int} NOT NULL, ts {ts}, payload TEXT NOT NULL, UNIQUE (island, kind, seq))"
)
_INDEX = "CREATE INDEX IF NOT EXISTS messages_island_ts ON messages(island, ts)"
_UPSERT = (
    "INSERT INTO islands(island, city, seen_ts) VALUES (?,?,?)"
    " ON CONFLICT {target}DO UPDATE SET seen_ts=excluded.seen_ts"
)
_INSERT = "INSERT {or_ignore}INTO messages(island, kind, seq, ts, payload) VALUES (?,?,?,?,?){do_nothing}"


class StoreError(MicrogridError):
    """The store cannot be opened: its driver is not installed, or its server cannot be reached."""


def is_url(where: str | Path) -> bool:
    """True for a PostgreSQL URL (``postgresql://`` or ``postgres://``), False for a SQLite file's path."""
    return isinstance(where, str) and where.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (for messages and logs)."""
    return re.sub(r"^([a-z]+://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _sqlite(where: str | Path) -> Any:
    conn = sqlite3.connect(Path(where), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    return conn


def _postgres(where: str | Path) -> Any:
    url = str(where)
    try:
        import psycopg  # noqa: PLC0415 (only for a URL: SQLite needs no driver)
    except ImportError:
        raise StoreError(
            f"{redacted(url)}: PostgreSQL needs the psycopg driver: pip install 'microgrid[postgres]'"
        ) from None
    try:  # autocommit: FleetStore says BEGIN and COMMIT itself, as with SQLite
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        detail = " ".join(str(exc).split())
        raise StoreError(f"{redacted(url)}: cannot reach the PostgreSQL server: {detail}") from None


def _never_broken(conn: Any) -> bool:
    return False


def _pg_broken(conn: Any) -> bool:
    return bool(conn.closed or conn.broken)


@dataclass(frozen=True)
class Dialect:
    """One database's SQL and connection (module docstring)."""

    name: str
    placeholder: str
    """What stands for a parameter in this database's SQL."""
    begin: str
    """The statement that starts a write transaction."""
    schema: tuple[str, ...]
    upsert: str
    """An island's row created, or its ``seen_ts`` updated: parameters island, city, seen_ts."""
    insert: str
    """A message kept unless its (island, kind, seq) is there already: island, kind, seq, ts, payload."""
    connect: Callable[[str | Path], Any]
    """A new connection in autocommit mode (transactions are begun explicitly); :class:`StoreError`."""
    broken: Callable[[Any], bool]
    """True when the connection is lost and a new one must be made (PostgreSQL: the server restarted)."""

    def sql(self, text: str) -> str:
        """``text``, written with ``?`` placeholders, in this database's placeholders."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    begin="BEGIN IMMEDIATE",
    schema=(_ISLANDS, _MESSAGES.format(id="INTEGER PRIMARY KEY", int="INTEGER", ts="TEXT"), _INDEX),
    upsert=_UPSERT.format(target=""),
    insert=_INSERT.format(or_ignore="OR IGNORE ", do_nothing=""),
    connect=_sqlite,
    broken=_never_broken,
)
POSTGRES = Dialect(
    name="postgresql",
    placeholder="%s",
    begin="BEGIN",
    schema=(
        _ISLANDS,
        _MESSAGES.format(id="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", int="BIGINT", ts='TEXT COLLATE "C"'),
        _INDEX,
    ),
    upsert=_UPSERT.format(target="(island) ").replace("?", "%s"),
    insert=_INSERT.format(or_ignore="", do_nothing=" ON CONFLICT DO NOTHING").replace("?", "%s"),
    connect=_postgres,
    broken=_pg_broken,
)


def dialect_of(where: str | Path) -> Dialect:
    """:data:`POSTGRES` for a PostgreSQL URL (:func:`is_url`), else :data:`SQLITE` (a file's path)."""
    return POSTGRES if is_url(where) else SQLITE
