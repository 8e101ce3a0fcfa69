"""``microgrid simulate`` and ``microgrid sweep`` on tiny settings: reports written, exit codes 0 and 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from microgrid.cli import app
from tests.conftest import HOSPITAL, STATE, WINTER

runner = CliRunner()


def microgrid(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_simulate_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    run = microgrid(
        "simulate",
        HOSPITAL,
        "--profiles",
        WINTER,
        "--state",
        STATE,
        "--days",
        "0.25",
        "--controller",
        "rules",
        "--out",
        out,
    )
    assert run.exit_code == 0, run.output
    assert "24 intervals with rules" in run.output
    text = (out / "report.md").read_text(encoding="utf-8")
    for name in ("dispatch.png", "storage.png", "shedding.png"):
        assert f"]({name})" in text and (out / name).stat().st_size > 0
    assert "| cost_total |" in text and "hospital-state.json" in text
    intervals = pd.read_parquet(out / "intervals.parquet")
    assert len(intervals) == 24 and (intervals["source"] == "rules").all()
    assert len(pd.read_csv(out / "intervals.csv")) == 24
    kpis = pd.read_csv(out / "kpis.csv", index_col=0)["value"]
    assert kpis["intervals"] == 24


def test_simulate_html(tmp_path: Path) -> None:
    run = microgrid(
        "simulate",
        HOSPITAL,
        "--profiles",
        WINTER,
        "--days",
        "0.1",
        "--controller",
        "rules",
        "--out",
        tmp_path,
        "--html",
    )
    assert run.exit_code == 0, run.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and '<img src="dispatch.png"' in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profiles", "missing.csv"], "missing.csv"),
        (["--profiles", str(WINTER), "--controller", "magic"], "--controller: must be mpc, rules or perfect_foresight"),
        (["--profiles", str(WINTER), "--state", str(HOSPITAL)], "hospital.yaml"),
    ],
)
def test_simulate_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    run = microgrid("simulate", HOSPITAL, *args, "--days", "0.1", "--out", tmp_path)
    assert run.exit_code == 2, run.output
    assert message in run.output
    assert not (tmp_path / "report.md").exists()


def sweep_file(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_sweep_writes_results_and_plots(tmp_path: Path) -> None:
    spec = sweep_file(
        tmp_path / "sizing.yaml",
        {
            "controller": "rules",
            "designs": {"battery.bess2.capacity_kwh": [400, 800], "fuel.diesel.stock": [100, 1500]},
            "scenarios": [{"name": "winter", "profiles": str(WINTER), "days": 0.1}],
        },
    )
    out = tmp_path / "out"
    run = microgrid("sweep", HOSPITAL, spec, "--workers", "0", "--out", out, "--no-progress")
    assert run.exit_code == 0, run.output
    assert "4 tasks (4 designs × 1 scenarios), rules" in run.output and "0 failed" in run.output
    frame = pd.read_parquet(out / "results.parquet")
    assert list(frame["battery.bess2.capacity_kwh"]) == [400, 400, 800, 800]
    assert frame["error"].isna().all()
    for name in ("heatmap.png", "pareto.png", "results.csv", "report.md"):
        assert (out / name).stat().st_size > 0, name


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"designs": {"battery.bess1.capacity_kwh": [1]}, "scenarios": [{"profiles": "x.csv"}], "speed": 2},
            "speed: unknown key",
        ),
        ({"designs": [{"battery.bess7.capacity_kwh": 1}], "scenarios": [{"profiles": "x.csv"}]}, "bess7"),
        ({"designs": [{}], "scenarios": [{"name": "w", "profiles": "nope.csv"}]}, "scenario 'w'"),
    ],
)
def test_sweep_bad_file_exits_2_naming_it(tmp_path: Path, raw: dict[str, Any], message: str) -> None:
    spec = sweep_file(tmp_path / "bad-sweep.yaml", raw)
    run = microgrid("sweep", HOSPITAL, spec, "--workers", "0", "--out", tmp_path / "out", "--no-progress")
    assert run.exit_code == 2, run.output
    assert "bad-sweep.yaml" in run.output and message in run.output


def test_sweep_missing_file_exits_2(tmp_path: Path) -> None:
    run = microgrid("sweep", HOSPITAL, tmp_path / "none.yaml", "--workers", "0")
    assert run.exit_code == 2 and "none.yaml" in run.output


@pytest.mark.slow
def test_simulate_compare_adds_the_baselines(tmp_path: Path) -> None:
    run = microgrid(
        "simulate", HOSPITAL, "--profiles", WINTER, "--days", "0.04", "--controller", "rules", "--compare",
        "--mip-gap", "0.05", "--time-limit-s", "1", "--out", tmp_path,
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    table = pd.read_csv(tmp_path / "compare.csv", index_col="controller")
    assert list(table.index) == ["mpc", "rules", "perfect_foresight"]  # compare()'s order, whichever ran first
    assert table.loc["perfect_foresight", "cost_above_perfect_foresight"] == 0
    assert table["intervals"].tolist() == [4, 4, 4]
    assert "| KPI | mpc | rules | perfect_foresight |" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_simulate_with_a_fuel_truck(tmp_path: Path) -> None:
    run = microgrid(
        "simulate", HOSPITAL, "--profiles", WINTER, "--state", STATE, "--days", "0.25", "--controller", "rules",
        "--fuel-delivery-at", "2026-01-15T02:00+02:00", "--fuel-delivered", "diesel=100", "--out", tmp_path,
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    intervals = pd.read_parquet(tmp_path / "intervals.parquet")
    stock = intervals["fuel.diesel.stock"]
    came = stock - stock.shift(1, fill_value=900.0) + intervals["generator.dg1.fuel"] + intervals["generator.dg2.fuel"]
    at = pd.Timestamp("2026-01-15T00:00Z")  # 02:00 at +02:00
    assert came[intervals.index == at].iloc[0] == pytest.approx(100.0)
    assert came[intervals.index != at].abs().max() < 1e-6
    assert "2026-01-15T00:00:00+00:00: diesel 100" in (tmp_path / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fuel-delivery-at", "tomorrow"], "--fuel-delivery-at: not an ISO 8601 time"),
        (["--fuel-delivery-at", "2026-01-15T02:00"], "--fuel-delivery-at: needs a UTC offset"),
        (["--fuel-delivered", "diesel=5"], "--fuel-delivered: needs --fuel-delivery-at"),
        (["--fuel-delivery-at", "2026-01-15T02:00Z", "--fuel-delivered", "petrol=5"], "the site has no fuel 'petrol'"),
        (["--fuel-delivery-at", "2026-01-15T02:00Z", "--fuel-delivered", "diesel=-5"], "an amount ≥ 0"),
        (["--fuel-delivery-at", "2026-01-15T02:00Z", "--fuel-delivered", "diesel"], "give FUEL=AMOUNT"),
    ],
)
def test_simulate_refuses_a_bad_truck(tmp_path: Path, args: list[str], message: str) -> None:
    run = microgrid("simulate", HOSPITAL, "--profiles", WINTER, "--days", "0.1", "--out", tmp_path, *args)
    assert run.exit_code == 2, run.output
    assert message in run.output
    assert not (tmp_path / "report.md").exists()
