"""``microgrid centre fuel-plan`` in a subprocess: the route and the figures on stdout, the files of
``--out``, exit 2 naming the bad key, exit 3 naming the constraint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from microgrid.logistics import ROUTE_COLUMNS
from tests.logistics.helpers import island
from tests.logistics.test_files import FLEET, TRUCKS


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MICROGRID_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "microgrid", "centre", "fuel-plan", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )


def test_plans_the_sample_city_and_writes_the_route(tmp_path: Path) -> None:
    proc = run(FLEET, "--trucks", TRUCKS, "--days", "2", "--time-limit-s", "4", "--out", tmp_path, "--chart")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "minimum weighted hours-to-dry: before 6.1 h, after" in proc.stdout
    assert "hospital-000" in proc.stdout and "Running HiGHS" not in proc.stdout
    route = pd.read_csv(tmp_path / "route.csv")
    assert list(route.columns) == ROUTE_COLUMNS and len(route) >= 8
    assert json.loads((tmp_path / "route.json").read_text(encoding="utf-8"))[0].keys() == set(ROUTE_COLUMNS)
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["min_weighted_hours_to_dry_after"] > summary["min_weighted_hours_to_dry_before"]
    assert (tmp_path / "hours-to-dry.png").stat().st_size > 10_000
    assert set(pd.read_csv(tmp_path / "islands.csv")["island"]) >= set(route["island"])


def test_bad_fleet_exits_2_naming_the_key(tmp_path: Path) -> None:
    raw = yaml.safe_load(FLEET.read_text(encoding="utf-8"))
    raw["islands"][2]["capacity_l"] = -1
    bad = tmp_path / "fleet.yaml"
    bad.write_text(yaml.safe_dump(raw), encoding="utf-8")
    proc = run(bad, "--trucks", TRUCKS)
    assert proc.returncode == 2
    assert "islands[2].capacity_l: Input should be greater than 0" in proc.stderr
    assert str(bad) in proc.stderr.replace("\n", "")


def test_chart_without_out_exits_2(tmp_path: Path) -> None:
    proc = run(FLEET, "--trucks", TRUCKS, "--time-limit-s", "1", "--chart")
    assert proc.returncode == 2, proc.stdout
    assert "--chart needs --out" in proc.stderr.replace("\n", "")


def test_infeasible_exits_3_naming_the_constraint(tmp_path: Path) -> None:
    raw = yaml.safe_load(FLEET.read_text(encoding="utf-8"))
    raw["islands"].append(island("hospital-far", 90, 0, stock_l=10.0, must_last_h=24.0) | {"lat": 49.95})
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    proc = run(path, "--trucks", TRUCKS, "--days", "1")
    assert proc.returncode == 3, proc.stderr
    assert "infeasible: shift time:" in proc.stderr and "hospital-far" in proc.stderr
