"""`microgrid demo`: the README's main job, run short, to its report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_demo_day_keeps_critical_load(tmp_path: Path) -> None:
    """Through the scheduled outage (04:00-08:00) and the unannounced cut at 10:00 the controller keeps
    every critical kWh served; the cut puts it in emergency mode within the interval."""
    import asyncio

    from microgrid.cli.demo import run_demo

    day = asyncio.run(run_demo(hours=11))
    frame = day.frame()
    assert frame["unserved_kwh.critical"].iloc[-1] == 0.0
    assert (~frame["grid_up"].astype(bool)).sum() >= 16  # both outages were really simulated
    assert set(frame["source"]) <= {"plan", "previous_plan", "rules"}
    emergency = frame["emergency"].astype(bool)
    assert not emergency.iloc[:40].any()  # to 10:00: scheduled outages are no emergency
    assert emergency.iloc[40:].all()  # the row ending 10:15 is the first cycle that saw the cut
    assert list(frame["schedule"].iloc[32:36]) == ["possible"] * 4  # 08:00-09:00 published as possible
    assert frame["autonomy_critical_h"].min() > 10.0
