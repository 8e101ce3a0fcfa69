"""`microgrid demo`: the README's main job, run short, to its report."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_to_its_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "microgrid", "demo", "--hours", "2", "--no-live", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| cycles by source |" in report and "![the day](day.png)" in report
    assert (out / "day.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    timeline = (out / "timeline.csv").read_text(encoding="utf-8").splitlines()
    assert len(timeline) == 1 + 8  # header + 2 h of 15-min cycles
    status = subprocess.run(
        [sys.executable, "-m", "microgrid", "status", "--store", str(out / "history.sqlite"), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert '"source": "plan"' in status.stdout
    # the history keeps every simulated cycle, whatever the wall clock's date (its January is no
    # older than 90 days to anyone: the demo's history file keeps no retention)
    with sqlite3.connect(out / "history.sqlite") as db:
        assert db.execute("SELECT count(*) FROM cycles").fetchone()[0] == 8


@pytest.fixture(scope="module")
def demo_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """11 h of the demo recorded into a history file (as ``microgrid run`` records), run once: the day and
    the file (the day's test reads the day, the restart's test the file)."""
    import asyncio

    from microgrid.cli.demo import run_demo
    from microgrid.store import Store

    path = tmp_path_factory.mktemp("demo-day") / "history.sqlite"
    with Store(path, retention_days=None) as store:  # the simulated January is older than any retention
        day = asyncio.run(run_demo(hours=11, store=store))
    return day, path


def test_demo_day_keeps_critical_load(demo_day: tuple[Any, Path]) -> None:
    """Through the scheduled outage (04:00-08:00) and the unannounced cut at 10:00 the controller keeps
    every critical kWh served; the cut puts it in emergency mode within the interval."""
    day, _ = demo_day
    frame = day.frame()
    assert frame["unserved_kwh.critical"].iloc[-1] == 0.0
    assert (~frame["grid_up"].astype(bool)).sum() >= 16  # both outages were really simulated
    assert set(frame["source"]) <= {"plan", "previous_plan", "rules"}
    emergency = frame["emergency"].astype(bool)
    assert not emergency.iloc[:41].any()  # to 10:15: scheduled outages are no emergency, nor one cycle down
    assert emergency.iloc[41:].all()  # the second cycle that sees the cut in an 'on' hour (10:15) enters
    assert list(frame["schedule"].iloc[32:36]) == ["possible"] * 4  # 08:00-09:00 published as possible
    assert frame["autonomy_critical_h"].min() > 10.0
    # the report's fuel figure is the fuel the cost was charged for (it once read a key that never existed: 0.0 l)
    burnt = day.fuel_burnt()["diesel"]
    assert burnt > 0.0  # the gensets ran in the outages
    assert burnt * day.site.fuels["diesel"].price_per_unit == pytest.approx(day.cost["fuel"], rel=1e-9)


def test_restart_seeds_the_forecast_history_from_the_store(demo_day: tuple[Any, Path]) -> None:
    """After a restart the load forecast starts from the measured load recorded by the last run (the 11 h
    demo day's history: it used to run an hour of its own)."""
    from microgrid.cli.demo import demo_site
    from microgrid.control import Controller
    from microgrid.control.runner import Runner
    from microgrid.store import Store
    from microgrid.telemetry.wiring import connect

    day, path = demo_day
    site, reference = demo_site()
    devices = connect(site)
    try:
        with Store(path, retention_days=None) as store:
            runner = Runner(Controller(site, devices, reference), store)
            message = runner.resume(keep_mode=False)
    finally:
        devices.close()
    assert message is not None and "(44 cycles of measured load and PV" in message
    load, pv = runner.controller.forecaster.history.frames()
    assert len(load) == 44 and load["critical"].notna().all()
    assert set(pv.columns) == {"roof"}
    assert load["critical"].max() > 0 and len(day.rows) == 44
