"""Reports for planners: a folder with ``report.md`` (or ``report.html``), the PNGs and the data.

:func:`write_simulation_report` (used by ``microgrid simulate``) writes the KPI table (and the
baselines' comparison when given), the dispatch, storage and shedding charts, and the
intervals as CSV and Parquet. :func:`write_sweep_report` (``microgrid sweep``) writes the
result table as Parquet and CSV, the heatmap and the Pareto front, and a summary.

A report is a list of blocks (:class:`Report`) rendered to Markdown or to a self-contained
HTML page (images referenced by relative path, next to it).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from microgrid.planning import plots

__all__ = ["Report", "markdown_table", "write_simulation_report", "write_sweep_report"]


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    head = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    body = [
        [str(i)] + [_cell(v) for v in row] for i, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    ]
    return head, body


def markdown_table(frame: pd.DataFrame | pd.Series) -> str:
    """A Markdown table of ``frame`` (a Series becomes one column), numbers rounded for reading."""
    table = frame.to_frame() if isinstance(frame, pd.Series) else frame
    head, body = _rows(table)
    escape = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(escape, head)) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(map(escape, row)) + " |" for row in body]
    return "\n".join(lines)


def _html_table(frame: pd.DataFrame | pd.Series) -> str:
    table = frame.to_frame() if isinstance(frame, pd.Series) else frame
    head, body = _rows(table)
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{rows}</tbody></table>"


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
    "th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
)


@dataclass
class Report:
    """Blocks of a report: headings, paragraphs, tables and figures, rendered to Markdown or HTML."""

    title: str
    folder: Path
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.blocks.append(("heading", text))

    def text(self, text: str) -> None:
        self.blocks.append(("text", text))

    def table(self, frame: pd.DataFrame | pd.Series) -> None:
        self.blocks.append(("table", frame))

    def figure(self, fig: Figure, name: str, caption: str) -> Path:
        """Save ``fig`` as ``name`` (PNG) in the folder and show it in the report."""
        path = self.folder / name
        fig.savefig(path, dpi=100)
        self.blocks.append(("image", (name, caption)))
        return path

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                out += [f"## {value}", ""]
            elif kind == "text":
                out += [value, ""]
            elif kind == "table":
                out += [markdown_table(value), ""]
            else:
                out += [f"![{value[1]}]({value[0]})", ""]
        return "\n".join(out)

    def html(self) -> str:
        out = [f"<h1>{html.escape(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "heading":
                out.append(f"<h2>{html.escape(value)}</h2>")
            elif kind == "text":
                out.append(f"<p>{html.escape(value)}</p>")
            elif kind == "table":
                out.append(_html_table(value))
            else:
                name, caption = (html.escape(v, quote=True) for v in value)
                out.append(f'<figure><img src="{name}" alt="{caption}"><figcaption>{caption}</figcaption></figure>')
        body = "\n".join(out)
        return (
            f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>'
            f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
        )

    def write(self, as_html: bool = False) -> Path:
        """Write ``report.md`` (or ``report.html``) into the folder; return its path."""
        path = self.folder / ("report.html" if as_html else "report.md")
        path.write_text(self.html() if as_html else self.markdown(), encoding="utf-8")
        return path


def _kpi_frame(kpis: pd.Series) -> pd.DataFrame:
    frame = kpis.to_frame("value")
    frame.index.name = "KPI"
    return frame


def write_simulation_report(
    result: Any,
    folder: str | Path,
    *,
    title: str = "Simulation",
    compare: pd.DataFrame | None = None,
    inputs: Mapping[str, str] | None = None,
    as_html: bool = False,
) -> Path:
    """Write the report of a :class:`~microgrid.planning.results.SimulationResult` into ``folder``.

    Files: ``report.md``/``report.html``, ``dispatch.png``, ``storage.png``, ``shedding.png``,
    ``intervals.csv``, ``intervals.parquet``, ``kpis.csv`` and, with ``compare`` (the frame of
    :func:`~microgrid.planning.baselines.compare`), ``compare.csv``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame = result.intervals
    report = Report(title, folder)
    span = f"{frame.index[0]:%Y-%m-%d %H:%M} to {frame.index[-1]:%Y-%m-%d %H:%M} UTC" if len(frame) else "no intervals"
    report.text(f"Controller **{result.controller}**, {len(frame)} intervals, {span}.")
    if inputs:
        report.table(pd.Series(dict(inputs), name="value").rename_axis("input"))
    report.heading("Key figures")
    report.table(_kpi_frame(result.kpis))
    result.kpis.rename("value").to_csv(folder / "kpis.csv", index_label="kpi")
    if compare is not None:
        report.heading("Against the baselines")
        report.table(
            compare.T.rename_axis("KPI") if compare.index.name == "controller" else compare
        )  # KPIs down, controllers across
        compare.to_csv(folder / "compare.csv")
    report.heading("Charts")
    for fig, name, caption in (
        (plots.dispatch_stack(result, title), "dispatch.png", "dispatch per interval"),
        (plots.soc_and_fuel(result), "storage.png", "battery SOC and fuel stock"),
        (plots.shedding(result), "shedding.png", "load shed per tier"),
    ):
        report.figure(fig, name, caption)
    frame.to_csv(folder / "intervals.csv", index_label="timestamp")
    frame.to_parquet(folder / "intervals.parquet")
    report.text("Data: `intervals.csv` / `intervals.parquet` (one row per interval), `kpis.csv`.")
    return report.write(as_html)


def write_sweep_report(
    frame: pd.DataFrame,
    folder: str | Path,
    *,
    title: str = "Sizing sweep",
    grid_keys: tuple[str, ...] = (),
    metrics: Mapping[str, str] | None = None,
    as_html: bool = False,
) -> Path:
    """Write a sweep's ``results.parquet``, ``results.csv``, ``heatmap.png``, ``pareto.png`` and summary.

    ``metrics``: ``cost`` and ``risk`` name the KPIs of the Pareto front (and ``cost`` the
    heatmap's value); the heatmap needs two ``grid_keys`` (its axes).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chosen = {"cost": "cost_total", "risk": "unserved_kwh.critical"} | dict(metrics or {})
    frame.to_parquet(folder / "results.parquet", index=False)
    frame.to_csv(folder / "results.csv", index=False)
    report = Report(title, folder)
    failed = frame[frame["error"].notna()] if "error" in frame.columns else frame.iloc[0:0]
    designs, scenarios = frame["design"].nunique(), frame["scenario"].nunique()
    report.text(f"{len(frame)} evaluations ({designs} designs × {scenarios} scenarios), {len(failed)} failed.")
    ok = frame.drop(failed.index)
    shown = [c for c in ("design", "scenario", *grid_keys, chosen["cost"], chosen["risk"]) if c in ok.columns]
    shown = list(dict.fromkeys(shown))
    if shown:
        report.heading("Results")
        report.table(ok[shown].set_index("design"))
    cost, risk = chosen["cost"], chosen["risk"]
    if {cost, risk} <= set(ok.columns) and len(ok):
        per_design = ok.groupby("design", sort=False)[[cost, risk]].mean().reset_index()
        front = per_design[plots.pareto_mask(per_design[cost], per_design[risk])]
        report.heading("Pareto front")
        report.text(f"Designs no other beats on both {cost} and {risk} (means over the scenarios):")
        report.table(front.set_index("design"))
        report.figure(plots.pareto_front(per_design, cost, risk), "pareto.png", f"{risk} against {cost}")
    if len(grid_keys) >= 2 and cost in ok.columns and len(ok):
        report.heading("Heatmap")
        heat = plots.sweep_heatmap(ok, grid_keys[0], grid_keys[1], cost)
        report.figure(heat, "heatmap.png", f"{cost} by {grid_keys[0]} and {grid_keys[1]}")
    if len(failed):
        report.heading("Failed evaluations")
        report.table(failed[["design", "scenario", "error"]].set_index("design"))
    report.text("Data: `results.parquet` / `results.csv` (one row per design × scenario).")
    return report.write(as_html)
