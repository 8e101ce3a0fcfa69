"""`microgrid status` shows active alarms and the store's own health (issue 12), on real SQLite files.

The store's failures are real: a write lock held by another connection, a file that cannot be written
(read-only for a user, immutable for root), a controller believed running whose last cycle is old.
A failure of the controller's own store that is over is an event in the history, written by the next
cycle (``recording._store_recovery``).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from microgrid.cli import app
from microgrid.control.alarms import alarms
from microgrid.control.cycle import CycleReport, Mode
from microgrid.control.recording import record
from microgrid.store import CycleRow, EventRow, Store
from microgrid.store.health import FULL_BELOW_BYTES, store_health


def now() -> datetime:
    """Now, to the second (each test takes its own: a module-level one grows old over a long run)."""
    return datetime.now(UTC).replace(microsecond=0)


def status(path: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["status", "--store", str(path), *args], env={"COLUMNS": "250"})


def history(
    path: Path, cycles: list[tuple[datetime, dict[str, Any]]], events: Sequence[tuple[datetime, str]] = ()
) -> Path:
    """A history with these cycles (time, summary) and events (time, kind), recorded as a controller does."""
    with Store(path, retention_days=None) as store:
        for ts, kind in events:
            assert store.record_events(EventRow(ts, kind, f"controller {kind}"))
        for ts, summary in cycles:
            assert store.record_cycle(CycleRow(ts, "auto", summary.get("source", "plan"), "", {}, summary))
    return path


def calm(ts: datetime) -> tuple[datetime, dict[str, Any]]:
    return ts, {"source": "plan", "health": {"bess1-inverter": "ok"}, "state": {"grid_up": True}}


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` cannot be written: mode 0444 for a user; for root (whom modes do not stop), immutable."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode != 0:
        pytest.skip("running as root without chattr +i: no way to make a file read-only here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_healthy_store_and_a_calm_cycle_have_no_alarm(tmp_path: Path) -> None:
    t0 = now()
    path = history(tmp_path / "h.sqlite", [calm(t0 - timedelta(seconds=30))], [(t0 - timedelta(hours=1), "start")])
    shown = status(path)
    assert shown.exit_code == 0, shown.output
    assert "alarms" in shown.output and "none" in shown.output and "ALARMS" not in shown.output
    as_json = json.loads(status(path, "--json").output)
    assert as_json["alarms"] == [] and as_json["store"]["problems"] == [] and as_json["store"]["running"] is True


def test_a_write_lock_held_by_another_connection_is_store_locked(tmp_path: Path) -> None:
    t0 = now()
    path = history(tmp_path / "h.sqlite", [calm(t0)])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # e.g. a sqlite3 shell left in a transaction, a stuck backup
    try:
        shown = status(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert shown.exit_code == 0, shown.output
    assert "ALARMS" in shown.output and "store: store locked: another connection holds its write lock" in shown.output
    assert "ALARMS" not in status(path).output  # released: healthy again


def test_a_file_that_cannot_be_written_is_read_only(tmp_path: Path) -> None:
    t0 = now()
    path = history(tmp_path / "h.sqlite", [calm(t0)])
    with read_only(path):
        shown = status(path, "--json")
    assert shown.exit_code == 0, shown.output
    problems = json.loads(shown.output)["store"]["problems"]
    assert len(problems) == 1 and problems[0].startswith("read-only") and "SQLITE_READONLY" in problems[0]


def test_a_file_system_without_room_is_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite only says "full" when a write needs a page: the probe also looks at the free space (here the
    file system's answer is replaced: filling a real disk is not a test's business)."""
    path = history(tmp_path / "h.sqlite", [calm(now())])
    real = shutil.disk_usage
    monkeypatch.setattr(
        "microgrid.store.health.shutil.disk_usage", lambda p: real(p)._replace(free=FULL_BELOW_BYTES - 1)
    )
    shown = status(path)
    assert shown.exit_code == 0, shown.output
    assert f"store: disk full: {FULL_BELOW_BYTES - 1:,} bytes free" in shown.output


@pytest.mark.skipif(not hasattr(os, "seteuid") or os.geteuid() != 0, reason="acting as another user needs root")
def test_status_run_by_another_user_does_not_call_the_controllers_store_read_only() -> None:
    """An operator's account may read the controller's history but not write it: no "read-only" alarm, a note."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder).chmod(0o755)
        path = Path(folder) / "h.sqlite"
        with Store(path, retention_days=None) as controller:  # running: its WAL index lets others read
            assert controller.record_cycle(CycleRow(now(), "auto", "plan", "", {}, {"source": "plan"}))
            os.seteuid(65534)  # nobody
            try:
                with Store(path, readonly=True) as reader:
                    health = store_health(reader, now())
            finally:
                os.seteuid(0)
    assert health.problems == []
    assert health.notes == [
        "whether the store can be written was not checked: it belongs to uid 0, which this user (uid 65534) is "
        "not; run status as the controller's user"
    ]


def test_a_running_controller_whose_last_cycle_is_old_is_an_alarm(tmp_path: Path) -> None:
    t0 = now()
    cycles = [calm(t0 - timedelta(minutes=50, seconds=60 * k)) for k in (2, 1, 0)]  # every minute, then none
    started = [(t0 - timedelta(hours=1), "start")]
    shown = status(history(tmp_path / "running.sqlite", cycles, started))
    assert shown.exit_code == 0, shown.output
    assert "store: no cycle recorded for 50 min (over 2 intervals of 60 s)" in shown.output
    assert "believed running" in shown.output
    stopped = [*started, (t0 - timedelta(minutes=49), "stop")]  # stopped cleanly: old cycles are no alarm
    assert "ALARMS" not in status(history(tmp_path / "stopped.sqlite", cycles, stopped)).output
    fresh = [calm(t0 - timedelta(seconds=60 * k + 30)) for k in (2, 1, 0)]
    assert "ALARMS" not in status(history(tmp_path / "fresh.sqlite", fresh, started)).output


def test_the_last_cycles_alarms_are_shown_with_why(tmp_path: Path) -> None:
    t0 = now()
    summary = {
        "source": "rules",
        "reason": "no plan: infeasible",
        "emergency": {"active": True, "since": "2026-12-04T20:00:00Z", "reason": "outage off schedule"},
        "health": {"bess1-inverter": "implausible", "dg1-controller": "ignores-writes", "grid-meter": "lost"},
        "implausible": {"bess1-inverter": "battery bess1: SOC register unchanged at 60 %"},
        "ignores_writes": {"dg1-controller": "read-backs differ from the writes for 2 cycles in a row"},
        "unknown": {"bess2-inverter": {"power_setpoint_kw": "no clear answer: [Input/Output] no response"}},
        "refused": {"feeders": {"feeder_4_command": "Modbus exception 6 (device busy)"}},
    }
    expected = [
        "emergency mode since 2026-12-04T20:00:00Z: outage off schedule",
        "fallback in force: rules (no plan: infeasible)",
        "device bess1-inverter implausible: battery bess1: SOC register unchanged at 60 %",
        "device dg1-controller ignores-writes: read-backs differ from the writes for 2 cycles in a row",
        "device grid-meter lost",
        "write bess2-inverter.power_setpoint_kw outcome unknown: no clear answer: [Input/Output] no response",
        "write feeders.feeder_4_command refused: Modbus exception 6 (device busy)",
    ]
    assert alarms(summary) == expected
    path = history(tmp_path / "h.sqlite", [(t0, summary)])
    shown = status(path)
    assert shown.exit_code == 0, shown.output
    for alarm in expected:  # "[Input/Output]" shown as it is, not taken for rich markup
        assert alarm in shown.output
    assert json.loads(status(path, "--json").output)["alarms"] == expected


def test_a_failure_of_the_controllers_store_is_an_event_once_it_records_again(tmp_path: Path) -> None:
    t0 = now()
    path = tmp_path / "h.sqlite"
    store = Store(path, retention_days=None, timeout_s=0.05)
    t = [t0 - timedelta(minutes=15 * k) for k in range(5, -1, -1)]
    assert record(store, CycleReport(start=t[0], mode=Mode.AUTO))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    assert not record(store, CycleReport(start=t[1], mode=Mode.AUTO))
    assert not record(store, CycleReport(start=t[2], mode=Mode.AUTO))
    shown = status(path)  # while it fails: the reader sees it for itself
    assert "store: store locked" in shown.output
    holder.execute("ROLLBACK")
    holder.close()
    assert record(store, CycleReport(start=t[3], mode=Mode.AUTO))  # writes the two that waited, then its own
    assert store.events(kind="store").empty
    assert record(store, CycleReport(start=t[4], mode=Mode.AUTO))
    events = store.events(kind="store")
    assert list(events["message"]) == [
        f"store failed from {t[1]:%Y-%m-%d %H:%M:%S} to {t[3]:%Y-%m-%d %H:%M:%S} UTC (write failed: "
        f"{events['detail'].iloc[0]['why'].split('write failed: ')[1]}); 2 record(s) waited in memory and were "
        "written when it recovered"
    ]
    assert "SQLITE_BUSY" in events["detail"].iloc[0]["why"] and events["detail"].iloc[0]["waited"] == 2
    assert record(store, CycleReport(start=t[5], mode=Mode.AUTO))
    assert len(store.events(kind="store")) == 1  # told once
    store.close()
