"""The history store on real SQLite files: round-trips, one transaction per cycle, crashes,
a full disk, a locked file, retention, operator actions, concurrent readers, exports."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microgrid.store import (
    CycleRow,
    EventRow,
    PlanRow,
    SetpointRow,
    Store,
    StoreError,
    TelemetryRow,
)

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def plan_frame(ts: datetime, steps: int = 4) -> pd.DataFrame:
    index = pd.date_range(ts, periods=steps, freq="15min", name="start")
    return pd.DataFrame(
        {
            "battery.b1.charge_kw": [0.1 * k + 1 / 3 for k in range(steps)],
            "battery.b1.soc": [0.5, math.nan, 0.7, 1e-17][:steps] + [0.0] * max(0, steps - 4),
            "generator.g1.on": [float(k % 2) for k in range(steps)],
        },
        index=index,
    )


def record(store: Store, ts: datetime, n: int = 0, *, telemetry: int = 3, setpoints: int = 2) -> bool:
    """One cycle tagged ``n``, with ``telemetry`` samples, ``setpoints`` setpoints, a plan and an event."""
    return store.record_cycle(
        CycleRow(ts, "auto", "plan", "ok", {"read": 0.01, "solve": 1.5}, {"n": n, "soc": {"b1": 0.5}}),
        telemetry=[TelemetryRow(ts, f"dev{k % 2}", f"p{k}", n * 1000.0 + k, "kW", "good") for k in range(telemetry)],
        plan=PlanRow(ts, "optimal", 123.5, 1e-4, 0.8, plan_frame(ts)),
        setpoints=[SetpointRow(ts, "bat", f"sp{k}", float(k), "written") for k in range(setpoints)],
        events=[EventRow(ts, "mode", f"cycle {n}", {"n": n})],
    )


def counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        tables = ("cycles", "telemetry", "plans", "setpoints", "events", "actions")
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def health(store: Store) -> tuple[bool, str | None]:
    """``healthy`` and ``last_error`` (through a call, so that type checkers do not narrow them)."""
    return store.healthy, store.last_error


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


# -- round-trips and queries ------------------------------------------------------------------------


def test_every_row_type_round_trips(tmp_path: Path) -> None:
    ts = T0 + timedelta(microseconds=123456)
    frame = plan_frame(ts)
    with Store(tmp_path / "h.db") as store:
        assert store.last_cycle() is None
        assert store.plan_frame() is None
        ok = store.record_cycle(
            CycleRow(ts, "auto", "rules", "solve failed", {"read": 0.25}, {"state": {"soc": 0.5}, "autonomy_h": 7.5}),
            telemetry=[
                TelemetryRow(ts, "inv1", "p_kw", 12.5, "kW", "good"),
                TelemetryRow(ts, "gen1", "state", "running", None, "good"),
                TelemetryRow(ts, "gen1", "fuel_l", None, "l", "stale"),
            ],
            plan=PlanRow(ts, "time_limit_feasible", -3.25, 0.02, 10.0, frame),
            setpoints=[
                SetpointRow(ts, "inv1", "w_set", 5.0, "written"),
                SetpointRow(ts, "inv1", "soc_min", None, "refused", "above the live limit 0.9"),
            ],
            events=[EventRow(ts, "fallback", "rules in force", {"phase": "solve", "error": "infeasible"})],
        )
        assert ok and store.healthy and store.last_error is None and store.backlog == 0

        last = store.last_cycle()
        assert last is not None
        assert last["ts"] == ts and last["ts"].tzinfo is not None
        assert (last["mode"], last["source"], last["reason"]) == ("auto", "rules", "solve failed")
        assert last["phases_s"] == {"read": 0.25}
        assert last["summary"] == {"state": {"soc": 0.5}, "autonomy_h": 7.5}

        tel = store.telemetry()
        assert list(tel["ts"]) == [pd.Timestamp(ts)] * 3 and str(tel["ts"].dt.tz) == "UTC"
        assert tel["value"].iloc[0] == 12.5 and math.isnan(tel["value"].iloc[1]) and math.isnan(tel["value"].iloc[2])
        assert tel["text"].iloc[1] == "running" and pd.isna(tel["text"].iloc[0])
        assert list(tel["quality"]) == ["good", "good", "stale"] and pd.isna(tel["unit"].iloc[1])
        assert (tel["cycle_id"] == last["id"]).all()

        sp = store.setpoints()
        assert list(sp["outcome"]) == ["written", "refused"] and sp["why"].iloc[1] == "above the live limit 0.9"
        assert sp["value"].iloc[0] == 5.0 and math.isnan(sp["value"].iloc[1])

        ev = store.events()
        assert ev["detail"].iloc[0] == {"phase": "solve", "error": "infeasible"} and ev["kind"].iloc[0] == "fallback"

        meta = store.plans()
        assert meta.iloc[0][["status", "objective", "mip_gap", "solve_seconds", "steps"]].tolist() == [
            "time_limit_feasible", -3.25, 0.02, 10.0, 4
        ]  # fmt: skip
        for got in (store.plan_frame(), store.plan_frame(ts), store.plan_frame(ts + timedelta(days=1))):
            assert got is not None
            pd.testing.assert_frame_equal(got, frame, check_freq=False)  # exact floats, NaN, index name
        assert store.plan_frame(ts - timedelta(microseconds=1)) is None

        assert store.record_events(EventRow(ts, "stop", "bye"))
        assert pd.isna(store.events(kind="stop")["cycle_id"].iloc[0])


def test_times_are_utc_whatever_the_zone_given(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    kyiv = datetime(2026, 3, 29, 4, 30, tzinfo=ZoneInfo("Europe/Kyiv"))  # the morning clocks go forward
    with Store(tmp_path / "h.db", retention_days=None) as store:
        record(store, kyiv)
        assert store.cycles()["ts"].iloc[0] == pd.Timestamp("2026-03-29T01:30:00Z")
        assert len(store.cycles(since=datetime(2026, 3, 29, 1, 30, tzinfo=UTC))) == 1
    with pytest.raises(ValueError, match="naive"):
        CycleRow(datetime(2026, 1, 1), "auto", "plan")
    with pytest.raises(ValueError, match="outcome"):
        SetpointRow(T0, "bat", "w", 1.0, "maybe")
    with pytest.raises(ValueError, match="DatetimeIndex"):
        PlanRow(T0, "optimal", 1.0, 0.0, 1.0, pd.DataFrame({"a": [1.0]}))


def test_queries_by_since_until_device_kind(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        for i in range(6):
            assert record(store, T0 + timedelta(minutes=i), i)
        since, until = T0 + timedelta(minutes=2), T0 + timedelta(minutes=4)
        assert [s["n"] for s in store.cycles(since, until)["summary"]] == [2, 3]  # since inclusive, until exclusive
        assert len(store.cycles(since=since)) == 4 and len(store.cycles(until=until)) == 4
        tel = store.telemetry(since, until, device="dev1")
        assert set(tel["device"]) == {"dev1"} and len(tel) == 2
        assert len(store.telemetry(device="nope")) == 0
        assert len(store.setpoints(since, until, device="bat", outcome="written")) == 4
        assert len(store.events(kind="mode")) == 6 and len(store.events(kind="fallback")) == 0
        assert len(store.plans(since)) == 4
        steps = store.plan_steps(since, until)
        assert len(steps) == 8 and list(steps.columns[:3]) == ["plan_id", "plan_ts", "step"]
        last = store.last_cycle()
        assert last is not None and last["summary"]["n"] == 5


def test_export_csv_and_parquet_read_back_equal(tmp_path: Path) -> None:
    store = Store(tmp_path / "h.db")
    for i in range(3):
        record(store, T0 + timedelta(minutes=i), i)
    store.record_cycle(
        CycleRow(T0 + timedelta(minutes=5), "safe", "manual"),
        telemetry=[TelemetryRow(T0 + timedelta(minutes=5), "gen1", "state", "stopped", None, "good")],
    )
    store.mark_applied(store.add_action("mode", {"mode": "safe"}, by="olena"), "mode safe")
    expected = {
        "cycles": store.cycles(),
        "telemetry": store.telemetry(),
        "plans": store.plans(),
        "plan_steps": store.plan_steps(),
        "setpoints": store.setpoints(),
        "events": store.events(),
        "actions": store.actions(),
    }
    for frame in expected.values():
        for col in {"phases_s", "summary", "detail", "payload"} & set(frame.columns):
            frame[col] = [json.dumps(v, sort_keys=True) for v in frame[col]]

    parquet = store.export(tmp_path / "pq", fmt="parquet")
    csv = store.export(tmp_path / "csv")
    assert [p.stem for p in parquet] == [p.stem for p in csv] == list(expected)
    for path in parquet:
        pd.testing.assert_frame_equal(pd.read_parquet(path), expected[path.stem], check_dtype=False)
    for path in csv:
        pd.testing.assert_frame_equal(_norm(pd.read_csv(path)), _norm(expected[path.stem]), check_dtype=False)
    assert len(pd.read_csv(tmp_path / "csv" / "telemetry.csv")) == 10
    since = store.export(tmp_path / "since", since=T0 + timedelta(minutes=2))
    assert len(pd.read_csv(since[0])) == 2
    store.close()


def _norm(frame: pd.DataFrame) -> pd.DataFrame:
    """CSV-insensitive form: times parsed as UTC, text columns as str with '' for missing."""
    out = frame.copy()
    for col in out.columns:
        if col in ("ts", "done_ts", "plan_ts", "step"):
            out[col] = pd.to_datetime(out[col], utc=True, format="ISO8601")
        elif out[col].dtype == object or pd.api.types.is_string_dtype(out[col]) or out[col].isna().all():
            out[col] = [("" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)) for v in out[col]]
    return out.astype({c: "float64" for c in out.columns if pd.api.types.is_numeric_dtype(out[c])})


# -- crashes, full disk, locks --------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    import pandas as pd
    from microgrid.store import CycleRow, EventRow, PlanRow, SetpointRow, Store, TelemetryRow

    store = Store(sys.argv[1], retention_days=None)
    t0, first = datetime.now(UTC), int(sys.argv[2])
    frame = pd.DataFrame({"x": [float(k) for k in range(96)]}, index=pd.date_range(t0, periods=96, freq="15min"))
    for n in range(first, first + 100000):
        ts = t0 + timedelta(seconds=n)
        ok = store.record_cycle(
            CycleRow(ts, "auto", "plan", summary={"n": n}),
            telemetry=[TelemetryRow(ts, f"d{k % 7}", f"p{k}", float(k), "kW", "good") for k in range(300)],
            plan=PlanRow(ts, "optimal", 1.0, 0.0, 0.1, frame),
            setpoints=[SetpointRow(ts, "bat", f"s{k}", float(k), "written") for k in range(10)],
            events=[EventRow(ts, "mode", f"cycle {n}")],
        )
        if ok:
            print(n, flush=True)
    """
)


def test_kill_9_mid_cycle_loses_nothing_committed(tmp_path: Path) -> None:
    path, script = tmp_path / "h.db", tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    acknowledged: list[int] = []
    rng = random.Random()
    for round_ in range(3):
        cmd = [sys.executable, str(script), str(path), str(round_ * 100000)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        want = rng.randint(2, 12)
        for _ in range(want):
            acknowledged.append(int(proc.stdout.readline()))
        time.sleep(rng.uniform(0.0, 0.03))  # somewhere inside a later cycle's transaction, or between two
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        acknowledged += [int(line) for line in proc.stdout.read().split()]
        proc.stdout.close()

        assert integrity(path) == "ok"
        with Store(path, readonly=True) as reader:
            stored = {s["n"]: cid for s, cid in zip(reader.cycles()["summary"], reader.cycles()["id"], strict=True)}
        assert set(acknowledged) <= set(stored)  # every acknowledged cycle survived
        with sqlite3.connect(path) as conn:
            for table, expected in (("telemetry", 300), ("setpoints", 10), ("plans", 1), ("events", 1)):
                per_cycle = dict(conn.execute(f"SELECT cycle_id, count(*) FROM {table} GROUP BY cycle_id").fetchall())
                assert all(per_cycle.get(cid) == expected for cid in stored.values()), table  # none half-written
                assert set(per_cycle) <= set(stored.values())


def test_full_disk_backlog_then_flush_in_order(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = Store(path, retention_days=None, backlog_max=3)
    for n in range(3):
        assert record(store, T0 + timedelta(minutes=n), n)
    store.set_max_bytes(1)  # no page more than it has now: SQLite answers "database or disk is full"
    for n in range(3, 9):
        assert record(store, T0 + timedelta(minutes=n), n, telemetry=400) is False
        assert store.healthy is False and store.last_error is not None and "full" in store.last_error
        assert store.backlog == min(n - 2, 3)
    with Store(path, readonly=True) as reader:  # what was stored before is intact
        assert [s["n"] for s in reader.cycles()["summary"]] == [0, 1, 2]
        assert len(reader.telemetry()) == 9 and len(reader.setpoints()) == 6
    assert integrity(path) == "ok"

    store.set_max_bytes(None)
    assert record(store, T0 + timedelta(minutes=9), 9)
    assert store.healthy and store.last_error is None and store.backlog == 0
    cycles = store.cycles()
    # the backlog holds at most 3 records, the new one included: 3..6 were dropped, the rest written oldest first
    assert [s["n"] for s in cycles.sort_values("id")["summary"]] == [0, 1, 2, 7, 8, 9]
    assert len(store.telemetry()) == 9 + 2 * 400 + 3
    lost = store.events(kind="store")
    assert lost["ts"].iloc[0] == pd.Timestamp(T0 + timedelta(minutes=7))  # told by the first record written after
    assert len(lost) == 1 and lost["detail"].iloc[0]["dropped"] == 4
    assert pd.Timestamp(lost["detail"].iloc[0]["first"]) == pd.Timestamp(T0 + timedelta(minutes=3))
    assert pd.Timestamp(lost["detail"].iloc[0]["last"]) == pd.Timestamp(T0 + timedelta(minutes=6))
    store.close()


def test_close_tries_the_backlog_once_more(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = Store(path, max_bytes=1)
    assert record(store, T0, 0, telemetry=400) is False  # a new file has no room for it
    assert store.record_events(EventRow(T0, "stop", "bye")) is False
    store.set_max_bytes(None)
    store.close()
    with Store(path, readonly=True) as reader:
        assert len(reader.cycles()) == 1 and len(reader.telemetry()) == 400 and len(reader.events(kind="stop")) == 1


def test_numpy_scalars_are_stored_as_floats(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        assert store.record_cycle(
            CycleRow(T0, "auto", "plan", phases_s={"read": np.float32(0.5)}, summary={"at": T0, "soc": np.ones(2)}),  # type: ignore[dict-item]
            setpoints=[SetpointRow(T0, "bat", "w", np.int64(3), "written")],  # type: ignore[arg-type]
            telemetry=[TelemetryRow(T0, "bat", "soc", np.float64(0.25), "", "good")],
        )
        assert store.setpoints()["value"].tolist() == [3.0] and store.telemetry()["value"].tolist() == [0.25]
        cycle = store.cycles().iloc[0]
        assert cycle["phases_s"] == {"read": 0.5}
        assert cycle["summary"] == {"at": T0.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "soc": [1.0, 1.0]}


def test_locked_database_fails_fast_then_retries(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = Store(path, timeout_s=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    started = time.monotonic()
    assert record(store, T0, 0) is False
    assert time.monotonic() - started < 1.5
    assert not store.healthy and store.last_error is not None and "locked" in store.last_error
    other.execute("ROLLBACK")
    other.close()
    assert record(store, T0 + timedelta(minutes=1), 1)
    assert health(store) == (True, None)
    assert [s["n"] for s in store.cycles()["summary"]] == [0, 1]
    store.close()


def test_unopenable_file_starts_unhealthy_and_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    store = Store(folder / "h.db")  # its folder does not exist yet: no exception, not healthy
    assert not store.healthy and store.last_error is not None
    assert record(store, T0, 0) is False and store.backlog == 1
    folder.mkdir()
    assert record(store, T0 + timedelta(minutes=1), 1) and store.backlog == 0
    assert [s["n"] for s in store.cycles()["summary"]] == [0, 1]
    store.close()
    with pytest.raises(StoreError, match="cannot open"):
        Store(tmp_path / "missing.db", readonly=True)


def test_foreign_or_newer_files_are_refused(tmp_path: Path) -> None:
    newer, foreign = tmp_path / "newer.db", tmp_path / "foreign.db"
    Store(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer"):
        Store(newer)
    with pytest.raises(StoreError, match="schema 99"):
        Store(newer, readonly=True)
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not a microgrid"):
        Store(foreign)


# -- retention, actions, readers --------------------------------------------------------------------


def test_purge_removes_only_rows_older_than_retention(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with Store(tmp_path / "h.db", retention_days=90) as store:
        assert record(store, now - timedelta(hours=1), 0) and record(store, now + timedelta(hours=1), 1)
        store.mark_applied(store.add_action("mode", {"mode": "safe"}), "done")
        pending = store.add_action("mode", {"mode": "auto"})
        before = counts(store.path)
        removed = store.purge(now + timedelta(days=90, minutes=1))  # cutoff = now + 1 min
        assert removed == 1 + 3 + 1 + 2 + 1 + 1  # old cycle, its rows, the applied action
        assert [s["n"] for s in store.cycles()["summary"]] == [1]
        assert counts(store.path) == {k: v // 2 if k != "actions" else 1 for k, v in before.items()}
        assert [a["id"] for a in store.pending_actions()] == [pending]  # a pending action is never purged
    with Store(tmp_path / "h.db", retention_days=None) as keep:
        assert keep.purge(now + timedelta(days=1000)) == 0


def test_retention_never_purges_on_a_clock_that_jumped_ahead(tmp_path: Path) -> None:
    """History whose newest cycle is 200 days behind the clock at opening: either the controller was off
    that long or the clock jumped ahead (a dead RTC). Purging on the clock would wipe the history, so the
    automatic purge counts "now" from the newest cycle plus the time since opening; an explicit ``now`` is
    taken as given."""
    now = datetime.now(UTC)
    with Store(tmp_path / "h.db", retention_days=None) as store:
        assert record(store, now - timedelta(days=200), 0) and record(store, now - timedelta(days=199), 1)
    with Store(tmp_path / "h.db", retention_days=90) as store:
        assert store.trusted_now() < now - timedelta(days=198)
        assert record(store, now, 2)  # the first record of a run purges (then hourly)
        assert [s["n"] for s in store.cycles()["summary"]] == [0, 1, 2]
        assert store.purge(now) == 2 * (1 + 3 + 1 + 2 + 1)
        assert [s["n"] for s in store.cycles()["summary"]] == [2]


def test_the_last_cycle_is_the_last_recorded_not_the_latest_stamped(tmp_path: Path) -> None:
    """A cycle stamped by a clock 100 days ahead, then the clock set right: status and resume see the cycles
    recorded after it."""
    with Store(tmp_path / "h.db") as store:
        assert record(store, T0 + timedelta(days=100), 0) and record(store, T0, 1)
        last = store.last_cycle()
        assert last is not None and last["summary"]["n"] == 1 and last["ts"] == T0


def test_a_cycle_can_replace_the_record_of_its_interval_keeping_every_row(tmp_path: Path) -> None:
    """A restart within an interval: the re-run cycle takes the earlier cycle row of that interval; the
    telemetry, setpoints, plans and events of both stay, under the one cycle id."""
    with Store(tmp_path / "h.db") as store:
        assert record(store, T0, 0)
        first = store.last_cycle()
        assert first is not None
        rerun = CycleRow(T0, "safe", "rules", "restarted", {"read": 0.02}, {"n": 1})
        assert store.record_cycle(
            rerun, setpoints=[SetpointRow(T0, "bat", "sp9", 9.0, "written")], replaces=first["id"]
        )
        cycles = store.cycles()
        assert cycles["id"].tolist() == [first["id"]] and cycles["source"].tolist() == ["rules"]
        assert cycles["summary"].tolist() == [{"n": 1}]
        setpoints = store.setpoints()
        assert setpoints["point"].tolist() == ["sp0", "sp1", "sp9"]
        assert set(setpoints["cycle_id"]) == {first["id"]}
        other = CycleRow(T0 + timedelta(minutes=15), "auto", "plan", "ok", {}, {"n": 2})
        assert store.record_cycle(other, replaces=first["id"])  # another interval: never replaces, a new row
        assert store.cycles()["summary"].tolist() == [{"n": 1}, {"n": 2}]


def test_operator_actions_pending_then_applied(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    controller = Store(path)
    cli = Store(path)  # `microgrid override` opens the same file
    first = cli.add_action("mode", {"mode": "safe"}, by="olena")
    second = cli.add_action("manual", {"setpoints": {"bat.w_set": -20.0}})
    pending = controller.pending_actions()
    assert [(a["id"], a["action"], a["payload"], a["by"]) for a in pending] == [
        (first, "mode", {"mode": "safe"}, "olena"),
        (second, "manual", {"setpoints": {"bat.w_set": -20.0}}, None),
    ]
    assert pending[0]["ts"].tzinfo is not None
    controller.mark_applied(first, "mode safe from the next cycle")
    controller.mark_applied(second, "bat.w_set above the live limit", ok=False)
    assert controller.pending_actions() == []
    done = cli.actions()
    assert list(done["status"]) == ["applied", "refused"] and done["result"].iloc[0] == "mode safe from the next cycle"
    assert done["done_ts"].notna().all()
    with pytest.raises(StoreError, match="no pending"):
        controller.mark_applied(first, "again")

    stale = cli.add_action("mode", {"mode": "auto"})
    time.sleep(0.01)
    assert controller.pending_actions(max_age_s=0.005) == []  # too old to apply blindly: expired
    assert cli.actions(status="expired")["id"].tolist() == [stale]
    controller.close()
    cli.close()
    with Store(path, readonly=True) as reader, pytest.raises(StoreError, match="read-only"):
        reader.add_action("mode", {})


def test_concurrent_readers_see_committed_cycles(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    writer = Store(path, timeout_s=0.5)
    reader = Store(path, readonly=True, timeout_s=0.5)
    for n in range(3):
        assert record(writer, T0 + timedelta(minutes=n), n)
        assert len(reader.cycles()) == n + 1
        last = reader.last_cycle()
        assert last is not None and last["summary"]["n"] == n

    other = sqlite3.connect(path, isolation_level=None)  # an uncommitted write does not block readers
    other.execute("BEGIN IMMEDIATE")
    other.execute("DELETE FROM cycles")
    started = time.monotonic()
    assert len(reader.cycles()) == 3 and time.monotonic() - started < 0.4
    other.execute("ROLLBACK")
    other.close()

    code = "import sys; from microgrid.store import Store; s = Store(sys.argv[1], readonly=True); "
    code += "print(len(s.cycles()), s.last_cycle()['summary']['n'], len(s.telemetry()))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["3", "2", "9"]  # another process, while the writer is open
    writer.close()
    assert len(reader.cycles()) == 3
    reader.close()


# -- property: counts stay consistent -----------------------------------------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("cycle"), st.integers(0, 47), st.integers(0, 4), st.integers(0, 3), st.booleans()),
        st.tuples(st.just("action")),
        st.tuples(st.just("apply")),
        st.tuples(st.just("purge"), st.integers(0, 48)),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_counts_stay_consistent(ops: list[tuple[Any, ...]]) -> None:
    t0 = datetime.now(UTC)
    model: list[tuple[datetime, dict[str, int]]] = []  # per cycle: its ts and rows per table
    actions: dict[int, tuple[datetime, str]] = {}
    purged_once = False

    def purge_model(cutoff: datetime) -> None:
        model[:] = [c for c in model if c[0] >= cutoff]
        for aid, (ts, status) in list(actions.items()):
            if ts < cutoff and status != "pending":
                del actions[aid]

    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "h.db", retention_days=1) as store:
        for op in ops:
            if op[0] == "cycle":
                _, age_h, n_tel, n_sp, with_plan = op
                ts = t0 - timedelta(hours=age_h + 0.5)  # half-hour offsets keep clear of the purge cutoff
                assert store.record_cycle(
                    CycleRow(ts, "auto", "plan"),
                    telemetry=[TelemetryRow(ts, "d", f"p{k}", 1.0, "kW", "good") for k in range(n_tel)],
                    plan=PlanRow(ts, "optimal", 1.0, 0.0, 0.1, plan_frame(ts)) if with_plan else None,
                    setpoints=[SetpointRow(ts, "d", f"s{k}", 1.0, "skipped", "unchanged") for k in range(n_sp)],
                    events=[EventRow(ts, "mode", "m")],
                )
                rows = {"cycles": 1, "telemetry": n_tel, "plans": int(with_plan), "setpoints": n_sp, "events": 1}
                model.append((ts, rows))
                if not purged_once:  # record_cycle purges at its first success, then hourly
                    purge_model(datetime.now(UTC) - timedelta(days=1))
                    purged_once = True
            elif op[0] == "action":
                actions[store.add_action("mode", {"mode": "safe"})] = (datetime.now(UTC), "pending")
            elif op[0] == "apply" and (pending := store.pending_actions()):
                store.mark_applied(pending[0]["id"], "ok")
                actions[pending[0]["id"]] = (actions[pending[0]["id"]][0], "applied")
            elif op[0] == "purge":
                now = t0 + timedelta(hours=op[1])
                store.purge(now)
                purge_model(now - timedelta(days=1))
            got = counts(store.path)
            for table in ("cycles", "telemetry", "plans", "setpoints", "events"):
                assert got[table] == sum(rows[table] for _, rows in model), (table, op)
            assert got["actions"] == len(actions)
            assert len(store.pending_actions()) == sum(s == "pending" for _, s in actions.values())
        assert integrity(store.path) == "ok"
