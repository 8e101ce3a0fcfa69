"""Plots and reports on small synthetic data: the artists carry exactly the data given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from microgrid.planning import plots
from microgrid.planning.report import markdown_table, write_simulation_report, write_sweep_report
from microgrid.planning.survival import SurvivalResult


@dataclass(frozen=True)
class StandIn:
    """What plots and reports read of a SimulationResult."""

    intervals: pd.DataFrame
    kpis: pd.Series
    controller: str = "rules"


def intervals(steps: int = 8) -> pd.DataFrame:
    index = pd.date_range("2026-01-15", periods=steps, freq="15min", tz="UTC", name="timestamp")
    t = np.arange(steps, dtype=float)
    frame = pd.DataFrame(index=index)
    frame["battery.b1.charge_kw"] = np.where(t < 4, 5.0, 0.0)
    frame["battery.b1.discharge_kw"] = np.where(t >= 4, 20.0, 0.0)
    frame["battery.b1.soc"] = 0.5 + 0.01 * t
    frame["battery.b2.charge_kw"] = 0.0
    frame["battery.b2.discharge_kw"] = 10.0
    frame["battery.b2.soc"] = 0.9 - 0.02 * t
    frame["generator.g1.kw"] = np.where(t >= 6, 30.0, 0.0)
    frame["fuel.diesel.stock"] = 100 - 2 * t
    frame["pv.roof.kw"] = 10 + t
    frame["pv.roof.available_kw"] = 10 + t
    for tier, demand in (("critical", 50.0), ("comfort", 20.0)):
        frame[f"load.{tier}.demand_kw"] = demand
        frame[f"load.{tier}.shed_kw"] = np.where(t == 5, demand / 2, 0.0) if tier == "comfort" else 0.0
        frame[f"load.{tier}.served_kw"] = frame[f"load.{tier}.demand_kw"] - frame[f"load.{tier}.shed_kw"]
    frame["grid.available"] = np.where(t < 4, 1.0, 0.0)
    frame["grid.import_kw"] = np.where(t < 4, 60.0, 0.0)
    frame["grid.export_kw"] = 0.0
    frame["source"] = "rules"
    return frame


KPIS = pd.Series({"cost_total": 1234.5, "unserved_kwh.critical": 0.0, "intervals": 8.0})


# -- the Pareto front, by hand -----------------------------------------------------------------


def test_pareto_mask_by_hand() -> None:
    # (1, 5) (2, 3) (3, 3) (4, 1) (2, 3) (5, 5) (nan, 0)
    x = [1, 2, 3, 4, 2, 5, np.nan]
    y = [5, 3, 3, 1, 3, 5, 0]
    assert plots.pareto_mask(x, y).tolist() == [True, True, False, True, True, False, False]


def test_pareto_mask_single_and_all_equal() -> None:
    assert plots.pareto_mask([3.0], [4.0]).tolist() == [True]
    assert plots.pareto_mask([1, 1, 1], [2, 2, 2]).tolist() == [True, True, True]
    assert plots.pareto_mask([1, 2, 3], [3, 2, 1]).all()  # a trade-off: nobody dominated
    assert plots.pareto_mask([1, 2, 3], [1, 2, 3]).tolist() == [True, False, False]


def test_pareto_front_draws_exactly_the_front() -> None:
    frame = pd.DataFrame({"design": list("abcdef"), "cost": [1, 2, 3, 4, 2.5, 5], "risk": [5, 3, 3, 1, 4, 0.5]})
    fig = plots.pareto_front(frame, "cost", "risk")
    ax = fig.axes[0]
    (front,) = [line for line in ax.get_lines() if line.get_label() == "Pareto front"]
    assert front.get_xdata().tolist() == [1, 2, 4, 5]  # sorted by cost
    assert front.get_ydata().tolist() == [5, 3, 1, 0.5]
    dominated = ax.collections[0].get_offsets()
    assert sorted(map(tuple, np.asarray(dominated).tolist())) == [(2.5, 4.0), (3.0, 3.0)]
    assert sorted(t.get_text() for t in ax.texts) == ["a", "b", "d", "f"]


# -- interval plots --------------------------------------------------------------------------


def test_dispatch_stack_stacks_the_supply() -> None:
    frame = intervals()
    fig = plots.dispatch_stack(StandIn(frame, KPIS))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    stacks = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_label() != "_nolegend_"]
    labels = [c.get_label() for c in stacks]
    assert labels[:4] == list(plots.DISPATCH_SOURCES)
    assert labels[4:6] == ["battery charge", "grid export"]
    # the top of the supply stack is the sum of the four sources at every step
    top = stacks[3].get_paths()[0].vertices[:, 1].max()
    supply = frame["pv.roof.kw"] + frame[["battery.b1.discharge_kw", "battery.b2.discharge_kw"]].sum(axis=1)
    supply += frame["generator.g1.kw"] + frame["grid.import_kw"]
    assert top == pytest.approx(supply.max())
    bottom = stacks[4].get_paths()[0].vertices[:, 1].min()
    assert bottom == pytest.approx(-5.0)  # battery charge drawn below zero
    demand = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    assert np.allclose(demand["demand"], 70.0)
    assert np.asarray(demand["served"]).min() == pytest.approx(60.0)


def test_soc_and_fuel_lines_are_the_columns() -> None:
    frame = intervals()
    fig = plots.soc_and_fuel(frame)
    top, bottom = fig.axes[:2]
    soc = {line.get_label(): np.asarray(line.get_ydata()) for line in top.get_lines()}
    assert set(soc) == {"b1", "b2"}
    assert np.allclose(soc["b1"], frame["battery.b1.soc"] * 100)
    (fuel,) = bottom.get_lines()
    assert fuel.get_label() == "diesel"
    assert np.allclose(fuel.get_ydata(), frame["fuel.diesel.stock"])


def test_shedding_one_line_per_tier() -> None:
    frame = intervals()
    ax = plots.shedding(frame).axes[0]
    lines = {line.get_label(): np.asarray(line.get_ydata()) for line in ax.get_lines()}
    assert list(lines) == ["critical", "comfort"]
    assert lines["comfort"].tolist() == frame["load.comfort.shed_kw"].tolist()
    assert not lines["critical"].any()


def test_plots_refuse_other_inputs() -> None:
    with pytest.raises(TypeError, match="SimulationResult"):
        plots.shedding([1, 2, 3])


def survival_result(hours: list[float], durations: tuple[float, ...] = (2, 4, 8)) -> SurvivalResult:
    frame = pd.DataFrame({"hours": hours, "season": "winter"})
    probability = pd.Series(
        [float(np.mean(np.asarray(hours) >= d)) for d in durations], index=pd.Index(durations, dtype=float)
    )
    return SurvivalResult(frame, probability, max(durations), "greedy", ("critical",))


def test_survival_curves_plot_the_curves_and_marks() -> None:
    one, two = survival_result([1, 3, 5, 8]), survival_result([8, 8, 8, 8])
    ax = plots.survival_curves({"as is": one, "more fuel": two}).axes[0]
    curves = [line for line in ax.get_lines() if line.get_linestyle() != "None"]
    marks = [line for line in ax.get_lines() if line.get_linestyle() == "None"]
    assert [c.get_label() for c in curves] == ["as is", "more fuel"]
    assert np.allclose(curves[0].get_ydata(), one.curve().to_numpy() * 100)
    assert marks[0].get_xdata().tolist() == [2, 4, 8]
    assert marks[0].get_ydata().tolist() == [75, 50, 25]
    assert marks[1].get_ydata().tolist() == [100, 100, 100]


def test_sweep_heatmap_image_is_the_pivot() -> None:
    frame = pd.DataFrame(
        {
            "kwh": [400, 400, 800, 800, 800],
            "fuel": [500, 1500, 500, 1500, 1500],
            "cost": [10.0, 8.0, 6.0, 5.0, 7.0],  # the last two average to 6
        }
    )
    fig = plots.sweep_heatmap(frame, "kwh", "fuel", "cost")
    ax = fig.axes[0]
    image = ax.get_images()[0].get_array()
    assert np.asarray(image).tolist() == [[10.0, 6.0], [8.0, 6.0]]  # rows: fuel 500, 1500; columns: kwh 400, 800
    assert [t.get_text() for t in ax.get_xticklabels()] == ["400", "800"]
    assert sorted(t.get_text() for t in ax.texts) == ["10", "6", "6", "8"]


# -- reports ---------------------------------------------------------------------------------


def test_markdown_table() -> None:
    frame = pd.DataFrame({"a|b": [1.0, 12345.678]}, index=pd.Index(["x", "y"], name="k"))
    assert markdown_table(frame).splitlines() == ["| k | a\\|b |", "| --- | --- |", "| x | 1 |", "| y | 12,346 |"]


@pytest.mark.parametrize("as_html", [False, True])
def test_simulation_report_writes_everything(tmp_path: Path, as_html: bool) -> None:
    compare = pd.DataFrame({"mpc": [1.0], "rules": [2.0]}, index=pd.Index(["cost_total"], name="kpi"))
    path = write_simulation_report(
        StandIn(intervals(), KPIS), tmp_path, title="Test <site>", compare=compare, as_html=as_html
    )
    assert path.name == ("report.html" if as_html else "report.md")
    for name in (
        "dispatch.png",
        "storage.png",
        "shedding.png",
        "intervals.csv",
        "intervals.parquet",
        "kpis.csv",
        "compare.csv",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    text = path.read_text(encoding="utf-8")
    assert "dispatch.png" in text and "1,234" in text
    if as_html:
        assert "Test &lt;site&gt;" in text and "<table>" in text
    else:
        assert "| cost_total | 1,234 |" in text
    back = pd.read_parquet(tmp_path / "intervals.parquet")
    assert back["load.comfort.shed_kw"].tolist() == intervals()["load.comfort.shed_kw"].tolist()


def test_sweep_report(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "design": ["d0", "d0", "d1", "d1", "d2", "d2"],
            "scenario": ["w", "s"] * 3,
            "kwh": [400, 400, 800, 800, 1200, 1200],
            "fuel": [500] * 6,
            "error": [None, None, None, None, "ValueError: bad", "ValueError: bad"],
            "cost_total": [10.0, 12.0, 8.0, 9.0, np.nan, np.nan],
            "unserved_kwh.critical": [0.0, 0.0, 1.0, 3.0, np.nan, np.nan],
        }
    )
    path = write_sweep_report(frame, tmp_path, grid_keys=("kwh", "fuel"))
    text = path.read_text(encoding="utf-8")
    assert "6 evaluations (3 designs × 2 scenarios), 2 failed." in text
    assert "ValueError: bad" in text
    assert (tmp_path / "pareto.png").exists() and (tmp_path / "heatmap.png").exists()
    assert pd.read_parquet(tmp_path / "results.parquet").shape == frame.shape
