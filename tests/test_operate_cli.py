"""The operators' commands end to end: `run`, `status`, `history`, `override`, kill -9 and restart.

A `microgrid sim` subprocess serves the hospital on free loopback ports; `microgrid run` is a
real subprocess talking Modbus TCP to it and recording into a real SQLite file. The site is
the hospital with a 10-second interval and a 10-minute horizon, so the scheduler fires often.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from microgrid.sim.ports import free_ports
from tests.conftest import HOSPITAL, WINTER

pytestmark = pytest.mark.slow


def _cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "microgrid", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def site_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw: dict[str, Any] = yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))
    old = sorted({d["port"] for d in raw["devices"]})
    new = dict(zip(old, free_ports(len(old)), strict=True))
    for device in raw["devices"]:
        device["port"] = new[device["port"]]
    raw["control"] = {"interval": "10s", "horizon": "10min", "mip_gap": 0.05, "time_limit_s": 2}
    path = tmp_path_factory.mktemp("site") / "hospital-fast.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def simulator(site_file: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "microgrid", "sim", str(site_file), "--profiles", str(WINTER), "--speed", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _cli("read", site_file, "--device", "grid-meter", "--json", timeout=30).returncode == 0:
            break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the simulator did not come up")
    yield proc
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


def _cycles(store: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'cycles'").fetchone():
            return []  # the file exists, its schema is not committed yet (the controller is starting)
        return db.execute("SELECT id, ts, mode, source FROM cycles ORDER BY id").fetchall()


def test_run_once_status_history_override(site_file: Path, simulator: object, tmp_path: Path) -> None:
    store = tmp_path / "history.sqlite"
    first = _cli("run", site_file, "--profiles", WINTER, "--once", "--store", store)
    assert first.returncode == 0, first.stderr
    line = json.loads(first.stdout.strip().splitlines()[-1])
    assert line["source"] == "plan" and line["mode"] == "auto"

    status = _cli("status", "--store", store, "--json")
    assert status.returncode == 0, status.stderr
    last = json.loads(status.stdout)
    assert last["source"] == "plan"
    assert set(last["summary"]["health"].values()) == {"ok"}
    assert last["summary"]["state"]["grid_up"] in (True, False)

    queued = _cli("override", "--mode", "safe", "--by", "duty engineer", "--store", store)
    assert queued.returncode == 0, queued.stderr
    second = _cli("run", site_file, "--profiles", WINTER, "--once", "--store", store)
    assert second.returncode == 0, second.stderr
    line = json.loads(second.stdout.strip().splitlines()[-1])
    assert (line["mode"], line["source"]) == ("safe", "rules")

    actions = _cli("history", "--table", "actions", "--csv", "--store", store)
    assert "applied" in actions.stdout and "duty engineer" in actions.stdout
    table = _cli("history", "--table", "actions", "--store", store)
    assert table.returncode == 0 and "duty engineer" in table.stdout and "\x1b" not in table.stdout
    setpoints = _cli("history", "--table", "setpoints", "--since", "1d", "--csv", "--store", store)
    assert "power_setpoint_kw" in setpoints.stdout and "written" in setpoints.stdout

    # issue 12: refused at entry (exit 2, nothing queued), checked against the limits the controller recorded
    for bad, why in (
        (["--battery", "bess1=nan"], "plain number"),
        (["--battery", "bess1=inf"], "plain number"),
        (["--battery", "bess1=1_000"], "plain number"),
        (["--battery", "bess1=1e12"], "plain number"),
        (["--battery", "bess1=1000"], "outside its limits (-125 … 125 kW)"),
        (["--generator", "dg1=30"], "outside its limits (0 (stop) or 60 … 200 kW)"),
        (["--battery", "bess9=10"], "no such asset 'bess9'"),
        (["--tier", "critical=off"], "the most important tier is never switched off"),
        (["--tier", "comfort=maybe"], "TIER=on or TIER=off"),
        (["--mode", "safe", "--by", "\x1b[2J\x1b[31mroot"], "--by: a name of printable characters"),
    ):
        refused = _cli("override", *bad, "--store", store)
        assert refused.returncode == 2, (bad, refused.stdout, refused.stderr)
        assert why in refused.stderr, (bad, refused.stderr)
    assert "pending" not in _cli("history", "--table", "actions", "--csv", "--store", store).stdout

    # a partial override is recorded with the cycle and resumed after a restart (issue 12)
    assert _cli("override", "--battery", "bess1=-20", "--store", store).returncode == 0
    third = _cli("run", site_file, "--profiles", WINTER, "--once", "--store", store)
    assert json.loads(third.stdout.strip().splitlines()[-1])["source"] == "manual", third.stdout
    resumed = _cli("run", site_file, "--profiles", WINTER, "--once", "--store", store)
    assert "with the operator's setpoints" in resumed.stdout
    line = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert (line["mode"], line["source"]) == ("manual", "manual")
    last = json.loads(_cli("status", "--store", store, "--json").stdout)
    assert last["summary"]["manual"] == {"battery_kw": {"bess1": -20.0}}
    assert last["summary"]["setpoints"]["battery_kw"]["bess1"] == pytest.approx(-20.0)


def test_a_fuel_delivery_is_told_recorded_and_resumed(site_file: Path, simulator: object, tmp_path: Path) -> None:
    """Issue 11: ``override --fuel-delivery-at`` reaches the controller (its long outlook rations until then),
    is recorded with each cycle, shown by ``status`` and kept across a restart; a time without an offset or
    not a time is refused at entry (exit 2)."""
    store = tmp_path / "history.sqlite"
    assert _cli("run", site_file, "--profiles", WINTER, "--once", "--store", store).returncode == 0
    for bad, why in (("2026-01-21T08:00", "needs a UTC offset"), ("tomorrow", "not an ISO 8601 time")):
        refused = _cli("override", "--fuel-delivery-at", bad, "--store", store)
        assert refused.returncode == 2 and f"--fuel-delivery-at: {why}" in refused.stderr, refused.stderr
    queued = _cli("override", "--fuel-delivery-at", "2026-01-21T08:00+02:00", "--by", "logistics", "--store", store)
    assert queued.returncode == 0, queued.stderr
    told = _cli("run", site_file, "--profiles", WINTER, "--once", "--store", store)
    assert told.returncode == 0, told.stderr
    actions = _cli("history", "--table", "actions", "--csv", "--store", store).stdout
    assert "next fuel delivery: 2026-01-21 06:00 UTC" in actions and "logistics" in actions
    resumed = _cli("run", site_file, "--profiles", WINTER, "--once", "--store", store)
    assert resumed.returncode == 0, resumed.stderr
    last = json.loads(_cli("status", "--store", store, "--json").stdout)
    assert last["summary"]["fuel_delivery_at"] == "2026-01-21T06:00:00+00:00"
    assert "next at 2026-01-21T06:00:00+00:00" in _cli("status", "--store", store).stdout


def test_a_store_path_that_is_a_folder_or_not_a_history_exits_2(tmp_path: Path) -> None:
    """Issue 12: these exited 1 (a traceback's code), or ran on with a store that could never be written."""
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    (tmp_path / "notes.txt").write_text("not a database\n", encoding="utf-8")
    for path, why in (
        (tmp_path, "a folder"),
        (tmp_path / "notes.txt", "not an SQLite file"),
        (other, "microgrid"),
    ):
        for args in (["status"], ["history"], ["override", "--mode", "safe"]):
            proc = _cli(*args, "--store", path)
            assert proc.returncode == 2, (args, path, proc.stderr)
            assert why in proc.stderr, (args, proc.stderr)


def test_bad_override_and_missing_store_exit_2(tmp_path: Path) -> None:
    assert _cli("status", "--store", tmp_path / "none.sqlite").returncode == 2
    assert _cli("override", "--mode", "turbo", "--store", tmp_path / "none.sqlite").returncode == 2
    assert _cli("override", "--battery", "bess1=lots", "--store", tmp_path / "none.sqlite").returncode == 2


def test_kill_9_then_restart_loses_nothing_and_resumes(site_file: Path, simulator: object, tmp_path: Path) -> None:
    store = tmp_path / "history.sqlite"
    env = {**os.environ, "MICROGRID_STORE": str(store)}
    args = [sys.executable, "-m", "microgrid", "run", str(site_file), "--profiles", str(WINTER), "--mode", "safe"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (not store.exists() or len(_cycles(store)) < 3):
            time.sleep(0.5)
        assert store.exists() and len(_cycles(store)) >= 3, proc.stderr.read() if proc.poll() is not None else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    before = _cycles(store)
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        orphans = db.execute("SELECT COUNT(*) FROM setpoints WHERE cycle_id NOT IN (SELECT id FROM cycles)").fetchone()
    assert orphans == (0,)
    again = _cli("run", site_file, "--profiles", WINTER, "--once", "--store", store)
    assert again.returncode == 0, again.stderr
    assert "resumed" in again.stdout
    after = _cycles(store)
    if after[-1][1] == before[-1][1]:  # restarted within the last cycle's interval: its row is replaced
        assert after[:-1] == before[:-1] and len(after) == len(before) and after[-1][0] == before[-1][0]
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'restart'").fetchone() == (1,)
    else:
        assert after[: len(before)] == before  # nothing lost
        assert len(after) == len(before) + 1
    assert after[-1][2] == "safe"  # the mode in force before the crash is kept


def test_sigterm_hands_devices_back(site_file: Path, simulator: object, tmp_path: Path) -> None:
    store = tmp_path / "history.sqlite"
    args = [sys.executable, "-m", "microgrid", "run", str(site_file), "--profiles", str(WINTER), "--store", str(store)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not store.exists() or not _cycles(store)):
        time.sleep(0.5)
    read = json.loads(_cli("read", site_file, "--device", "bess1-inverter", "--json").stdout)
    assert read["bess1-inverter"]["control_mode"]["value"] == 1  # under our control while running
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    lines = [json.loads(line) for line in proc.stdout.read().splitlines() if line.startswith("{")]  # type: ignore[union-attr]
    assert lines and {"cycle", "mode", "source", "phases_ms"} <= set(lines[0])  # a JSON line per cycle (issue 12)
    read = json.loads(_cli("read", site_file, "--device", "bess1-inverter", "--json").stdout)
    assert read["bess1-inverter"]["control_mode"]["value"] == 0  # handed back
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        kinds = [k for (k,) in db.execute("SELECT kind FROM events ORDER BY id")]
    assert kinds[0] == "start" and kinds[-1] == "stop"


def test_history_shows_control_characters_as_escapes() -> None:
    """Issue 12: terminal escape codes in a record (e.g. an older --by) were printed raw by `history`."""
    from microgrid.cli.store_args import printable

    assert printable("\x1b[2J\x1b[31mroot\x07") == "\\x1b[2J\\x1b[31mroot\\x07"
    assert printable("черговий інженер") == "черговий інженер"
    assert printable(3.5) == 3.5
