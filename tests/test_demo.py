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
    """Through the first outage (04:00-08:00) the controller keeps every critical kWh served."""
    import asyncio

    from microgrid.cli.demo import run_demo

    day = asyncio.run(run_demo(hours=8))
    frame = day.frame()
    assert frame["unserved_kwh.critical"].iloc[-1] == 0.0
    assert (~frame["grid_up"].astype(bool)).sum() >= 12  # the outage was really simulated
    assert set(frame["source"]) <= {"plan", "previous_plan", "rules"}
