"""Deterministic studies (issue 14, item 4): work limits instead of the wall clock.

Two closed-loop runs of the same 8 intervals in deterministic mode give the same setpoints, and the
time limit no longer cuts a solve: with a limit no solve can meet (1 ms), every interval still runs
on a plan (without the mode those solves end at the limit and the controller falls back).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from microgrid.cli import app
from microgrid.dispatch.effort import WorkLimits, deterministic, effort_options
from microgrid.planning.baselines import run_controller
from microgrid.planning.scenarios import hospital_winter
from tests.conftest import HOSPITAL, WINTER
from tests.planning.conftest import hourly_site

TIMING = ("solve_s", "highs_s")


def test_work_limits_replace_the_time_limit_only_inside_the_block() -> None:
    assert effort_options(7.5) == {"time_limit": 7.5}
    with deterministic(WorkLimits(max_nodes=42)):
        assert effort_options(7.5) == {"time_limit": float("inf"), "mip_max_nodes": 42}
    assert effort_options(7.5) == {"time_limit": 7.5}


def test_two_deterministic_simulations_give_identical_setpoints() -> None:
    site, profiles = hospital_winter(1, seed=0)
    site = hourly_site(site, horizon_h=6, mip_gap=0.01, time_limit_s=0.001)
    days = 8 / 24  # 8 hourly intervals
    runs = [
        run_controller("mpc", site, profiles, days=days, forecast="oracle", deterministic=True).intervals
        for _ in range(2)
    ]
    assert len(runs[0]) == 8
    assert (runs[0]["source"] == "plan").all()  # a 1 ms limit would have cut these solves
    first, second = (r.drop(columns=[c for c in r.columns if c in TIMING]) for r in runs)
    pd.testing.assert_frame_equal(first, second)
    setpoints = [c for c in first.columns if c.endswith(("_kw", ".on"))]
    assert setpoints, "the intervals carry setpoint columns"


@pytest.mark.parametrize("deterministic_flag", [False, True])
def test_run_controller_leaves_no_work_limits_behind(deterministic_flag: bool) -> None:
    site, profiles = hospital_winter(1, seed=0)
    site = hourly_site(site, horizon_h=4)
    run_controller("rules", site, profiles, days=2 / 24, deterministic=deterministic_flag)
    assert effort_options(3.0) == {"time_limit": 3.0}


def test_simulate_deterministic_from_the_command_line(tmp_path: Path) -> None:
    """``--deterministic`` reaches the solves: a 10 ms limit cuts none of them, and the report says so."""
    out = tmp_path / "report"
    args = ["simulate", HOSPITAL, "--profiles", WINTER, "--days", "0.03", "--mip-gap", "0.05"]
    args += ["--time-limit-s", "0.01", "--deterministic", "--out", out]
    run = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    assert run.exit_code == 0, run.output
    intervals = pd.read_parquet(out / "intervals.parquet")
    assert len(intervals) >= 2 and (intervals["source"] == "plan").all()
    assert "deterministic" in (out / "report.md").read_text(encoding="utf-8")


def test_the_mode_holds_where_a_notebook_runs_the_simulation() -> None:
    """Inside a running event loop (a Jupyter kernel) ``run_blocking`` runs the coroutine on a worker
    thread; the caller's deterministic block must hold there too (a fresh thread has no context)."""
    import asyncio

    from microgrid.planning.closed_loop import run_blocking

    async def options_seen() -> dict[str, object]:
        return effort_options(7.5)

    async def in_a_kernel() -> dict[str, object]:  # a loop is running, as in Jupyter
        with deterministic(WorkLimits(max_nodes=42)):
            return run_blocking(options_seen())

    assert asyncio.run(in_a_kernel()) == {"time_limit": float("inf"), "mip_max_nodes": 42}
