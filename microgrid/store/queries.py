"""Reading the history back: frames and records from queries, plan frames, exports (a mixin of :class:`Store`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from microgrid.store.rows import _decode_frame, _json, _ts
from microgrid.store.schema import StoreError

if TYPE_CHECKING:  # pandas loads with the first frame read: `microgrid status` reads records only (issue 14)
    import pandas as pd

_TIMES = ("ts", "done_ts")
_FLOATS = ("value", "objective", "mip_gap", "solve_seconds")
_JSONS = ("phases_s", "summary", "detail", "payload")


def _frame(cursor: sqlite3.Cursor) -> pd.DataFrame:
    """Rows of a query as a frame: times tz-aware UTC, floats float64, JSON columns decoded."""
    import pandas as pd  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)

    columns = [d[0] for d in cursor.description]
    frame = pd.DataFrame.from_records(cursor.fetchall(), columns=columns)
    for col in columns:
        if col in _TIMES:
            frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
        elif col in _FLOATS:
            frame[col] = frame[col].astype("float64")
        elif col in _JSONS:
            frame[col] = [json.loads(v) for v in frame[col]]
    return frame


def _records(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """Rows of a query as plain dicts: times tz-aware UTC datetimes, JSON columns decoded."""
    columns = [d[0] for d in cursor.description]
    records = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    for record in records:
        for col in columns:
            if col in _TIMES and record[col] is not None:
                record[col] = datetime.fromisoformat(record[col])
            elif col in _JSONS:
                record[col] = json.loads(record[col])
    return records


def _where(since: datetime | None, until: datetime | None, **equal: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause: ``since <= ts < until`` and column = value for each value given."""
    terms = [("ts >= ?", _ts(since)) if since is not None else None]
    terms += [("ts < ?", _ts(until)) if until is not None else None]
    terms += [(f"{col} = ?", v) for col, v in equal.items() if v is not None]
    used = [t for t in terms if t is not None]
    return (" WHERE " + " AND ".join(t[0] for t in used) if used else ""), [t[1] for t in used]


class StoreQueries:
    """The reading methods of :class:`Store`: every query, the plan frames and the export."""

    def _open(self) -> sqlite3.Connection:  # provided by Store
        raise NotImplementedError

    def _guard(self, what: str) -> AbstractContextManager[None]:  # provided by Store
        raise NotImplementedError

    def _select(self, sql: str, params: Iterable[Any] = ()) -> pd.DataFrame:
        with self._guard("read"):
            return _frame(self._open().execute(sql, list(params)))

    def last_cycle(self) -> dict[str, Any] | None:
        """The last cycle recorded as a dict, summary decoded; None before the first.

        The last *recorded*, not the latest time stamp: a cycle stamped by a clock that was ahead must
        not hide the cycles recorded after the clock was set right (in ``status`` and in resume).
        """
        with self._guard("read"):
            rows = _records(self._open().execute("SELECT * FROM cycles ORDER BY id DESC LIMIT 1"))
        return rows[0] if rows else None

    def cycle_times(self, limit: int) -> list[datetime]:
        """The times of the last ``limit`` cycles recorded, the last recorded first (UTC)."""
        with self._guard("read"):
            rows = self._open().execute("SELECT ts FROM cycles ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [datetime.fromisoformat(ts) for (ts,) in rows]

    def last_event(self, *kinds: str) -> dict[str, Any] | None:
        """The last event recorded of one of ``kinds`` ('start', 'stop'…), as a dict; None when there is none."""
        marks = ",".join("?" * len(kinds))
        with self._guard("read"):
            sql = f"SELECT * FROM events WHERE kind IN ({marks}) ORDER BY id DESC LIMIT 1"
            rows = _records(self._open().execute(sql, kinds))
        return rows[0] if rows else None

    def last_applied_action(self, *actions: str) -> dict[str, Any] | None:
        """The operator action of one of ``actions`` ('mode', 'manual'…) applied last, as a dict (``by``: who
        asked); None when there is none."""
        marks = ",".join("?" * len(actions))
        with self._guard("read"):
            sql = f"SELECT * FROM actions WHERE status = 'applied' AND action IN ({marks}) ORDER BY id DESC LIMIT 1"
            rows = _records(self._open().execute(sql, actions))
        return rows[0] if rows else None

    def cycles(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """Cycles with ``since <= ts < until``, oldest first."""
        where, params = _where(since, until)
        return self._select(f"SELECT * FROM cycles{where} ORDER BY ts, id", params)

    def telemetry(
        self, since: datetime | None = None, until: datetime | None = None, device: str | None = None
    ) -> pd.DataFrame:
        """Samples (``value`` float, ``text`` for string values), optionally of one device, oldest first."""
        where, params = _where(since, until, device=device)
        return self._select(f"SELECT * FROM telemetry{where} ORDER BY ts, id", params)

    def setpoints(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        device: str | None = None,
        outcome: str | None = None,
    ) -> pd.DataFrame:
        """Setpoints and their outcome (written, skipped, refused, mismatch, unknown, dry-run), oldest first."""
        where, params = _where(since, until, device=device, outcome=outcome)
        return self._select(f"SELECT * FROM setpoints{where} ORDER BY ts, id", params)

    def events(
        self, since: datetime | None = None, until: datetime | None = None, kind: str | None = None
    ) -> pd.DataFrame:
        """Events, optionally of one kind, oldest first."""
        where, params = _where(since, until, kind=kind)
        return self._select(f"SELECT * FROM events{where} ORDER BY ts, id", params)

    def actions(
        self, since: datetime | None = None, until: datetime | None = None, status: str | None = None
    ) -> pd.DataFrame:
        """Operator actions ('pending', 'applied', 'refused', 'expired'), oldest first."""
        where, params = _where(since, until, status=status)
        return self._select(f"SELECT * FROM actions{where} ORDER BY id", params)

    def plans(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """Plan metadata (status, objective, mip_gap, solve_seconds [s], steps), oldest first."""
        where, params = _where(since, until)
        sql = f"SELECT id, cycle_id, ts, status, objective, mip_gap, solve_seconds, steps FROM plans{where}"
        return self._select(f"{sql} ORDER BY ts, id", params)

    def plan_frame(self, ts: datetime | None = None) -> pd.DataFrame | None:
        """The plan in force at ``ts`` (the newest made at or before it; default the newest) as its frame."""
        where, params = ("", []) if ts is None else (" WHERE ts <= ?", [_ts(ts)])
        with self._guard("read a plan"):
            sql = f"SELECT frame FROM plans{where} ORDER BY ts DESC, id DESC LIMIT 1"
            row = self._open().execute(sql, params).fetchone()
        return None if row is None or row[0] is None else _decode_frame(row[0])

    def plan_steps(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """Every stored plan frame in one long frame: ``plan_id``, ``plan_ts``, ``step`` then its columns."""
        import pandas as pd  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)

        where, params = _where(since, until)
        with self._guard("read plans"):
            sql = f"SELECT id, ts, frame FROM plans{where} ORDER BY ts, id"
            rows = self._open().execute(sql, params).fetchall()
        parts = [
            _decode_frame(blob).rename_axis("step").reset_index().assign(plan_id=pid, plan_ts=ts)
            for pid, ts, blob in rows
            if blob is not None
        ]
        if not parts:
            return pd.DataFrame(columns=["plan_id", "plan_ts", "step"])
        frame = pd.concat(parts, ignore_index=True)
        frame["plan_ts"] = pd.to_datetime(frame["plan_ts"], utc=True, format="ISO8601")
        return frame[["plan_id", "plan_ts", *(c for c in frame.columns if c not in ("plan_id", "plan_ts"))]]

    def export(
        self,
        folder: str | Path,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        fmt: Literal["csv", "parquet"] = "csv",
    ) -> list[Path]:
        """Write one file per table, from one consistent snapshot, into ``folder``; return their paths.

        The files are ``cycles``, ``telemetry``, ``plans``, ``plan_steps`` (every plan frame, long),
        ``setpoints``, ``events`` and ``actions``, with JSON columns as text. Parquet needs pyarrow.
        """
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"export format {fmt!r} is not 'csv' or 'parquet'")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with self._guard("export"), self._snapshot():
            tables = self._tables(since, until)
        written = []
        for name, frame in tables.items():
            for col in set(_JSONS) & set(frame.columns):
                frame[col] = [_json(v) for v in frame[col]]
            path = folder / f"{name}.{fmt}"
            if fmt == "csv":
                frame.to_csv(path, index=False)
            else:
                try:
                    frame.to_parquet(path, index=False)
                except ImportError as exc:
                    raise StoreError(f"Parquet export needs pyarrow ({exc})") from exc
            written.append(path)
        return written

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction: in WAL mode every read inside sees the same committed state."""
        conn = self._open()
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def _tables(self, since: datetime | None, until: datetime | None) -> dict[str, pd.DataFrame]:
        return {
            "cycles": self.cycles(since, until),
            "telemetry": self.telemetry(since, until),
            "plans": self.plans(since, until),
            "plan_steps": self.plan_steps(since, until),
            "setpoints": self.setpoints(since, until),
            "events": self.events(since, until),
            "actions": self.actions(since, until),
        }
