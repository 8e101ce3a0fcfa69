"""The fuel plan's fleet from the centre's store: real status payloads (the islands' own builder) ingested
into a real SQLite store, read back as a fleet; stale and offline islands as documented; the CLI end to end."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from microgrid.centre import Arrival
from microgrid.centre.fleet import FleetStore
from microgrid.centre.snapshot import fleet_from_centre
from microgrid.errors import InputError
from microgrid.uplink import Island
from microgrid.uplink.payloads import online_payload, status_payload
from tests.logistics.test_files import TRUCKS
from tests.uplink.test_payloads import cycle, small_site

NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
G1_17_L_PER_H = {"on": ("g1",), "gen_kw": {"g1": 50.0}}
"""g1 at 50 kW burns 0.3·50 + 2 = 17 l/h (tests/uplink/test_payloads.py)."""


def put_status(
    store: FleetStore, island: Island, *, stock: float, age_h: float, now: datetime = NOW, **how: Any
) -> None:
    """Ingest the status ``island`` publishes after a cycle ``age_h`` before ``now``, holding ``stock`` litres."""
    facts = dataclasses.replace(cycle(stock=stock, **how), start=now - timedelta(hours=age_h))
    seq = 1 + max((s for (i, _), s in store.seen.last.items() if i == island.island), default=0)
    store.ingest(Arrival("kharkiv", island.island, "status", status_payload(island, small_site(), facts, seq)))


def city_store(path: Path, now: datetime = NOW) -> None:
    """Four islands: fresh and burning, stale, offline, and on the grid (burning nothing)."""
    store = FleetStore(path)
    hospital = Island("hospital-7", "hospital", 50.00, 36.23)
    put_status(store, hospital, stock=340.0, age_h=0.5, now=now, **G1_17_L_PER_H)
    put_status(store, Island("shelter-9", "shelter", 50.02, 36.30), stock=300.0, age_h=5.0, now=now, **G1_17_L_PER_H)
    pumps = Island("pumps-2", "water-pumping", 49.98, 36.20)
    put_status(store, pumps, stock=200.0, age_h=0.25, now=now, **G1_17_L_PER_H)
    offline = online_payload(pumps, False, now)
    store.ingest(Arrival("kharkiv", "pumps-2", "online", offline))
    put_status(store, Island("boiler-1", "boiler-house", 49.99, 36.26), stock=400.0, age_h=0.1, now=now, grid_up=True)
    store.close()


def extra_file(path: Path, **more: Any) -> Path:
    raw = {
        "depot": {"lat": 49.99, "lon": 36.25, "stock_l": 20000},
        "defaults": {"capacity_l": 1000},
        "islands": {"hospital-7": {"capacity_l": 1500, "weight": 3}, "school-1": {"capacity_l": 800}},
    } | more
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_the_fleet_is_the_stores_islands_with_stocks_projected_to_now(tmp_path: Path) -> None:
    """Stock now = reported stock − burn × the status's age: 340 − 17·0.5 = 331.5; the stale shelter
    300 − 17·5 = 215; the offline pumps 200 − 17·0.25 = 195.75 (planned from last known stock); the
    boiler house on the grid burns nothing and keeps its 400 l."""
    city_store(tmp_path / "centre.sqlite")
    snap = fleet_from_centre(tmp_path / "centre.sqlite", extra_file(tmp_path / "extra.yaml"), now=NOW)
    got = {i.id: (i.stock_l, i.burn_l_per_h, i.capacity_l, i.weight) for i in snap.fleet.islands}
    assert got == {
        "boiler-1": (400.0, 0.0, 1000, 1.0),
        "hospital-7": (331.5, 17.0, 1500, 3),
        "pumps-2": (195.75, 17.0, 1000, 1.0),
        "shelter-9": (215.0, 17.0, 1000, 1.0),
    }
    hospital = next(i for i in snap.fleet.islands if i.id == "hospital-7")
    assert (hospital.lat, hospital.lon) == (50.00, 36.23)
    states = {s.island: (s.state, s.action) for s in snap.seen}
    assert states["shelter-9"] == ("stale", "planned from last known stock")
    assert states["pumps-2"] == ("offline", "planned from last known stock")
    assert states["hospital-7"] == ("online", "planned")
    assert snap.unknown_extra == ["school-1"]
    assert snap.fleet.depot.stock_l == 20000


def test_offline_exclude_leaves_stale_and_offline_islands_out(tmp_path: Path) -> None:
    city_store(tmp_path / "centre.sqlite")
    extra = extra_file(tmp_path / "extra.yaml", offline="exclude", stale_after_h=6)
    snap = fleet_from_centre(tmp_path / "centre.sqlite", extra, now=NOW)
    assert {i.id for i in snap.fleet.islands} == {"boiler-1", "hospital-7", "shelter-9"}  # 5 h < 6 h: not stale
    assert {s.island: s.action for s in snap.seen}["pumps-2"] == "excluded: offline (offline: exclude)"


def test_what_neither_gives_is_named(tmp_path: Path) -> None:
    """No default tank, and an island whose status has no position: both named with the key to add."""
    store = FleetStore(tmp_path / "centre.sqlite")
    put_status(store, Island("hospital-7", "hospital", 50.0, 36.2), stock=100.0, age_h=0.1, **G1_17_L_PER_H)
    put_status(store, Island("shelter-9", "shelter"), stock=100.0, age_h=0.1, **G1_17_L_PER_H)
    store.close()
    extra = extra_file(tmp_path / "extra.yaml", defaults={}, islands={"hospital-7": {"capacity_l": 50.0}})
    with pytest.raises(InputError) as err:
        fleet_from_centre(tmp_path / "centre.sqlite", extra, now=NOW)
    assert "islands.shelter-9.lat: required key is missing" in str(err.value)
    assert "islands.shelter-9.capacity_l: required key is missing" in str(err.value)
    given = {"hospital-7": {"capacity_l": 50.0}, "shelter-9": {"lat": 50.01, "lon": 36.21}}
    extra = extra_file(tmp_path / "extra.yaml", defaults={"capacity_l": 500}, islands=given)
    with pytest.raises(InputError) as err:
        fleet_from_centre(tmp_path / "centre.sqlite", extra, now=NOW)
    assert "islands[0] (hospital-7).stock_l: 98.3 l is more than its tank (50 l)" in str(err.value)  # 100 − 17·0.1
    extra = extra_file(tmp_path / "extra.yaml", defaults={"capacity_l": 500}, islands={"shelter-9": given["shelter-9"]})
    shelter = fleet_from_centre(tmp_path / "centre.sqlite", extra, now=NOW).fleet.islands[1]
    assert (shelter.id, shelter.lat, shelter.lon) == ("shelter-9", 50.01, 36.21)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MICROGRID_DEBUG", None)
    cmd = [sys.executable, "-m", "microgrid", "centre", "fuel-plan", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120, env=env)


def test_plan_from_the_store_end_to_end(tmp_path: Path) -> None:
    """Statuses stamped from the wall clock: the stale shelter is listed and planned; the route serves
    the store's islands."""
    city_store(tmp_path / "centre.sqlite", now=datetime.now(UTC))
    extra = extra_file(tmp_path / "extra.yaml")
    proc = run("--from-centre", tmp_path / "centre.sqlite", "--fleet-extra", extra, "--trucks", TRUCKS,
               "--days", "1", "--time-limit-s", "5", "--out", tmp_path / "plan")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "From the centre's store" in proc.stdout and "in --fleet-extra but not in the store: school-1" in proc.stdout
    shelter = next(line for line in proc.stdout.splitlines() if "shelter-9" in line and "stale" in line)
    assert "planned from last known stock" in shelter and " 215 " in shelter
    route = (tmp_path / "plan" / "route.csv").read_text(encoding="utf-8")
    served = {line.split(",")[3] for line in route.splitlines()[1:]}
    assert served and served <= {"hospital-7", "shelter-9", "pumps-2"}  # boiler-1 burns nothing: needs nothing


def test_a_store_without_islands_or_missing_exits_2_naming_it(tmp_path: Path) -> None:
    FleetStore(tmp_path / "empty.sqlite").close()
    extra = extra_file(tmp_path / "extra.yaml")
    proc = run("--from-centre", tmp_path / "empty.sqlite", "--fleet-extra", extra, "--trucks", TRUCKS)
    assert proc.returncode == 2 and "holds no islands" in proc.stderr
    assert str(tmp_path / "empty.sqlite") in proc.stderr.replace("\n", "")
    with pytest.raises(InputError, match="no such file"):
        fleet_from_centre(tmp_path / "missing.sqlite", extra)
    assert not (tmp_path / "missing.sqlite").exists()
    (tmp_path / "text.sqlite").write_text("not a database\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a centre store"):
        fleet_from_centre(tmp_path / "text.sqlite", extra)
    other = sqlite3.connect(tmp_path / "other.sqlite")
    other.execute("CREATE TABLE t (x)")
    other.close()
    with pytest.raises(InputError, match="no islands and messages tables"):
        fleet_from_centre(tmp_path / "other.sqlite", extra)
    assert [r for (r,) in sqlite3.connect(tmp_path / "other.sqlite").execute("SELECT name FROM sqlite_master")] == ["t"]
    both = run(tmp_path / "fleet.yaml", "--from-centre", tmp_path / "empty.sqlite", "--trucks", TRUCKS)
    assert both.returncode == 2 and "either FLEET or --from-centre" in both.stderr
