"""Plots for planners (matplotlib): each function returns a :class:`~matplotlib.figure.Figure`.

Nothing is shown: save it (``fig.savefig("day.png")``) or let Jupyter display it. The figures
are built with the object API (no pyplot state), so they work under any backend, Agg included.

Inputs are a simulation's intervals (a :class:`~microgrid.planning.results.SimulationResult`
or its ``intervals`` frame, column names as documented there), a
:class:`~microgrid.planning.survival.SurvivalResult` (or several, by name), or a sweep's result
frame. Powers in kW, SOC in %, fuel in the fuel's unit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from microgrid.plan_columns import (
    GRID_AVAILABLE,
    GRID_EXPORT_KW,
    GRID_IMPORT_KW,
    battery_charge_kw,
    battery_discharge_kw,
    battery_soc,
    fuel_stock,
    generator_kw,
    load_demand_kw,
    load_served_kw,
    load_shed_kw,
    pv_kw,
)
from microgrid.planning.survival import SurvivalResult

__all__ = [
    "dispatch_stack",
    "pareto_front",
    "pareto_mask",
    "shedding",
    "soc_and_fuel",
    "survival_curves",
    "sweep_heatmap",
]


def _intervals(result: Any) -> pd.DataFrame:
    frame = getattr(result, "intervals", result)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a SimulationResult or its intervals frame, got {type(result).__name__}")
    return frame


def _ids(frame: pd.DataFrame, column: Callable[[str], str]) -> list[str]:
    """Asset ids of the columns ``column(id)`` (a :mod:`microgrid.plan_columns` function), in column order."""
    head, tail = column("\0").split("\0")
    return [c[len(head) : -len(tail)] for c in frame.columns if c.startswith(head) and c.endswith(tail)]


def _sum(frame: pd.DataFrame, column: Callable[[str], str]) -> np.ndarray:
    columns = [column(i) for i in _ids(frame, column)]
    return frame[columns].sum(axis=1).to_numpy(dtype=float) if columns else np.zeros(len(frame))


def _shade_outages(ax: Axes, frame: pd.DataFrame) -> None:
    if GRID_AVAILABLE not in frame.columns:
        return
    down = frame[GRID_AVAILABLE].to_numpy(dtype=float) < 0.5
    if down.any():
        ax.fill_between(
            frame.index, 0, 1, where=down, step="post", transform=ax.get_xaxis_transform(), color="red", alpha=0.08
        )


def _figure(rows: int = 1, height: float = 4.0) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(11, height * rows), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, list(axes)


DISPATCH_SOURCES = ("pv", "batteries", "gensets", "grid import")
"""The stacked supply of :func:`dispatch_stack`, bottom to top."""


def dispatch_stack(result: Any, title: str = "Dispatch") -> Figure:
    """Supply stacked per interval (PV used, battery discharge, gensets, grid import) against demand.

    Battery charging and grid export are drawn below zero; the demand of all tiers and the load
    served are lines; grid outages are shaded red.
    """
    frame = _intervals(result)
    fig, (ax,) = _figure()
    supply = {
        "pv": _sum(frame, pv_kw),
        "batteries": _sum(frame, battery_discharge_kw),
        "gensets": _sum(frame, generator_kw),
        "grid import": frame.get(GRID_IMPORT_KW, pd.Series(0.0, index=frame.index)).to_numpy(dtype=float),
    }
    ax.stackplot(frame.index, *supply.values(), labels=list(supply), step="post", alpha=0.8)
    sinks = {
        "battery charge": -_sum(frame, battery_charge_kw),
        "grid export": -frame.get(GRID_EXPORT_KW, pd.Series(0.0, index=frame.index)).to_numpy(dtype=float),
    }
    ax.stackplot(frame.index, *sinks.values(), labels=list(sinks), step="post", alpha=0.5)
    ax.step(frame.index, _sum(frame, load_demand_kw), where="post", color="black", lw=1.2, label="demand")
    ax.step(frame.index, _sum(frame, load_served_kw), where="post", color="black", ls="--", lw=1, label="served")
    _shade_outages(ax, frame)
    ax.set_ylabel("power [kW]")
    ax.set_title(f"{title} (red: grid down)")
    ax.legend(loc="upper left", fontsize=8, ncols=4)
    ax.grid(alpha=0.3)
    return fig


def soc_and_fuel(result: Any, title: str = "Storage") -> Figure:
    """Battery SOC [%] (top) and fuel stock (bottom) over time."""
    frame = _intervals(result)
    fig, (top, bottom) = _figure(2, 3.0)
    for battery in _ids(frame, battery_soc):
        top.step(frame.index, frame[battery_soc(battery)] * 100, where="post", label=battery)
    top.set_ylabel("SOC [%]")
    top.set_ylim(0, 100)
    top.set_title(title)
    for fuel in _ids(frame, fuel_stock):
        bottom.step(frame.index, frame[fuel_stock(fuel)], where="post", label=fuel)
    bottom.set_ylabel("fuel stock")
    for ax in (top, bottom):
        _shade_outages(ax, frame)
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(loc="upper right", fontsize=8)
    return fig


def shedding(result: Any, title: str = "Load shed per tier") -> Figure:
    """Power shed per tier [kW] (one line per tier, in the frame's tier order)."""
    frame = _intervals(result)
    fig, (ax,) = _figure(1, 3.0)
    for tier in _ids(frame, load_shed_kw):
        ax.step(frame.index, frame[load_shed_kw(tier)], where="post", label=tier)
    _shade_outages(ax, frame)
    ax.set_ylabel("shed [kW]")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_lines():
        ax.legend(loc="upper right", fontsize=8)
    return fig


def survival_curves(results: SurvivalResult | Mapping[str, SurvivalResult], title: str = "Outage survival") -> Figure:
    """P(critical tiers carried through an outage of h hours) against h, one curve per result.

    The reported durations are marked on each curve.
    """
    named = {"survival": results} if isinstance(results, SurvivalResult) else dict(results)
    fig, (ax,) = _figure(1, 4.0)
    for name, result in named.items():
        curve = result.curve()
        (line,) = ax.step(curve.index, curve.to_numpy() * 100, where="post", label=name)
        ax.plot(result.probability.index, result.probability.to_numpy() * 100, "o", color=line.get_color())
    ax.set_xlabel("outage length [h]")
    ax.set_ylabel("carried through [%]")
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return fig


def _tick(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def sweep_heatmap(frame: pd.DataFrame, x: str, y: str, value: str, title: str | None = None) -> Figure:
    """``value`` over the grid of two design keys ``x`` and ``y`` (mean over the other dimensions)."""
    table = frame.pivot_table(index=y, columns=x, values=value, aggfunc="mean").sort_index().sort_index(axis=1)
    fig, (ax,) = _figure(1, 5.0)
    image = ax.imshow(table.to_numpy(dtype=float), origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(table.shape[1]), [_tick(v) for v in table.columns])
    ax.set_yticks(range(table.shape[0]), [_tick(v) for v in table.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    for (row, col), cell in np.ndenumerate(table.to_numpy(dtype=float)):
        if np.isfinite(cell):
            text = f"{cell:,.0f}" if abs(cell) >= 1000 else f"{cell:.3g}"
            ax.text(col, row, text, ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(image, ax=ax, label=value)
    ax.set_title(title or f"{value} by {x} and {y}")
    return fig


def pareto_mask(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """True for the points no other point dominates, both coordinates minimised.

    A point is dominated when another is ≤ in both coordinates and < in at least one; equal
    points do not dominate each other (both stay on the front). NaN points are never on it.
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    finite = np.isfinite(xs) & np.isfinite(ys)
    mask: np.ndarray = finite.copy()
    for i in np.flatnonzero(finite):
        others = finite & (xs <= xs[i]) & (ys <= ys[i]) & ((xs < xs[i]) | (ys < ys[i]))
        mask[i] = not others.any()
    return mask


def pareto_front(
    frame: pd.DataFrame, x: str = "cost_total", y: str = "unserved_kwh.critical", label: str | None = "design"
) -> Figure:
    """Every design as a point (``x`` against ``y``, both lower is better); the non-dominated ones joined.

    The front is :func:`pareto_mask` of the two columns; with ``label`` (a column) the front's
    points are annotated with it.
    """
    xs, ys = frame[x].to_numpy(dtype=float), frame[y].to_numpy(dtype=float)
    on_front = pareto_mask(xs, ys)
    fig, (ax,) = _figure(1, 5.0)
    ax.scatter(xs[~on_front], ys[~on_front], color="grey", alpha=0.6, label="dominated")
    order = np.argsort(xs[on_front], kind="stable")
    front_x, front_y = xs[on_front][order], ys[on_front][order]
    ax.plot(front_x, front_y, "o-", color="tab:red", label="Pareto front")
    if label is not None and label in frame.columns:
        names: dict[tuple[float, float], list[str]] = {}
        for text, fx, fy in zip(frame[label].to_numpy()[on_front][order], front_x, front_y, strict=True):
            names.setdefault((float(fx), float(fy)), []).append(str(text))
        for (fx, fy), texts in names.items():  # designs on the same point share one label
            ax.annotate(", ".join(texts), (fx, fy), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{y} against {x} (lower is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
