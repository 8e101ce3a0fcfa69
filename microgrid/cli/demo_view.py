"""The demo's live dashboard (rich) and its end-of-day report (Markdown + a PNG chart)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from microgrid.cli.demo import DemoDay

__all__ = ["dashboard", "write_report"]


def _bar(fraction: float, width: int = 20) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "·" * (width - filled)


def dashboard(day: DemoDay, row: dict[str, object]) -> Panel:
    """One screen: the plant now, the last cycle, the day so far."""
    site, currency = day.site, day.site.site.currency
    time = pd.Timestamp(row["time"]).tz_convert(site.site.timezone)  # type: ignore[arg-type]
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold")
    table.add_column()
    grid = "[green]up[/]" if row["grid_up"] else "[red]DOWN[/]"
    grid += f" (schedule: {row.get('schedule')})" if row.get("schedule") else ""
    grid += "  [bold red]EMERGENCY MODE[/]" if row.get("emergency") else ""
    table.add_row("time", f"{time:%a %H:%M}   grid {grid}   import {max(float(row['grid_kw']), 0):.0f} kW")  # type: ignore[arg-type]
    for bat in site.batteries:
        soc = float(row[f"soc.{bat.id}"])  # type: ignore[arg-type]
        kw = float(row[f"battery_kw.{bat.id}"])  # type: ignore[arg-type]
        table.add_row(bat.id, f"{_bar(soc)} {soc:5.1%}  {kw:+7.1f} kW (+ discharge)")
    for gen in site.generators:
        kw = float(row[f"gen_kw.{gen.id}"])  # type: ignore[arg-type]
        table.add_row(gen.id, f"{'[yellow]running[/]' if kw > 0 else 'stopped'}  {kw:6.1f} kW")
    table.add_row("pv / load", f"{float(row['pv_kw']):.0f} kW / {float(row['load_kw']):.0f} kW")  # type: ignore[arg-type]
    shed = [t.id for t in site.loads if not row.get(f"connected.{t.id}", True)]
    unserved = {t.id: float(row[f"unserved_kwh.{t.id}"]) for t in site.loads}  # type: ignore[arg-type]
    table.add_row("shed tiers", ", ".join(shed) or "none")
    table.add_row("unserved", ", ".join(f"{t} {v:.1f} kWh" for t, v in unserved.items()))
    table.add_row("cost so far", f"{float(row['cost']):,.0f} {currency}")  # type: ignore[arg-type]
    if row.get("autonomy_critical_h") is not None:
        critical, both = row["autonomy_critical_h"], row["autonomy_critical_essential_h"]
        table.add_row(
            "autonomy", f"critical {critical:.1f} h, critical + essential {both:.1f} h (if the grid goes now)"
        )
    source = str(row["source"])
    colour = "green" if source == "plan" else "yellow"
    table.add_row("last cycle", f"[{colour}]{source}[/] {row['reason']}  ({float(row['cycle_s']):.2f} s)")  # type: ignore[arg-type]
    fallbacks = sum(1 for r in day.rows if r["source"] != "plan")
    footer = f"{len(day.rows)} cycles, {fallbacks} on a fallback"
    return Panel(Group(table, footer), title=f"microgrid demo: {site.site.name}", expand=False)


def _figures(day: DemoDay, frame: pd.DataFrame) -> dict[str, str]:
    site, last = day.site, frame.iloc[-1]
    currency = site.site.currency
    hours = len(frame) * 0.25
    down_h = float((~frame["grid_up"].astype(bool)).sum()) * 0.25
    figures = {
        "simulated": f"{hours:g} h in {len(frame)} cycles of 15 min",
        "grid down": f"{down_h:g} h (queue 3.1's published schedule plus an unannounced cut 10:00-12:00)",
        "emergency mode": _emergency_figure(frame),
        "cost": f"{sum(day.cost.values()):,.0f} {currency} "
        + "("
        + ", ".join(f"{k} {v:,.0f}" for k, v in day.cost.items())
        + ")",
        "fuel burnt": ", ".join(f"{burnt:.1f} {site.fuels[f].unit} {f}" for f, burnt in day.fuel_burnt().items()),
        "unserved energy (tripped by the plant)": ", ".join(
            f"{t.id} {float(last[f'unserved_kwh.{t.id}']):.1f} kWh" for t in site.loads
        ),
        "shed by the controller (feeder opened)": ", ".join(
            f"{t.id} {float(last.get(f'disconnected_kwh.{t.id}', 0.0)):.1f} kWh" for t in site.loads
        ),
        "cycles by source": ", ".join(f"{k} {v}" for k, v in frame["source"].value_counts().items()),
        "cycle time": f"median {frame['cycle_s'].median():.2f} s, max {frame['cycle_s'].max():.2f} s",
        "autonomy (critical)": f"lowest {frame['autonomy_critical_h'].min():.1f} h, "
        f"highest {frame['autonomy_critical_h'].max():.1f} h over the day (if the grid went then)",
        "SOC at the end": ", ".join(f"{b.id} {float(last[f'soc.{b.id}']):.0%}" for b in site.batteries),
    }
    return figures


def _emergency_figure(frame: pd.DataFrame) -> str:
    if "emergency" not in frame.columns or not frame["emergency"].astype(bool).any():
        return "never entered"
    on = frame.index[frame["emergency"].astype(bool).to_numpy()]
    hours = len(on) * 0.25
    return f"{hours:g} h, first {on[0] - pd.Timedelta(minutes=15):%H:%M}-{on[-1]:%H:%M} (a cut outside the schedule)"


def _chart(day: DemoDay, frame: pd.DataFrame, path: Path) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom, third) = plt.subplots(3, 1, figsize=(11, 9), sharex=True, height_ratios=(1, 1.4, 0.8))
    x = frame.index
    for bat in day.site.batteries:
        top.plot(x, frame[f"soc.{bat.id}"] * 100, label=f"SOC {bat.id}")
    top.set_ylabel("SOC [%]")
    top.set_ylim(0, 100)
    bottom.plot(x, frame["load_kw"], color="black", label="load served")
    bottom.plot(x, frame["grid_kw"].clip(lower=0), label="grid import")
    bottom.plot(x, frame["pv_kw"], label="PV")
    gens = sum(frame[f"gen_kw.{g.id}"] for g in day.site.generators)
    bottom.plot(x, gens, label="gensets")
    batteries = sum(frame[f"battery_kw.{b.id}"] for b in day.site.batteries)
    bottom.plot(x, batteries, label="batteries (+ discharge)")
    bottom.set_ylabel("power [kW]")
    third.plot(x, frame["autonomy_critical_h"], label="critical")
    third.plot(x, frame["autonomy_critical_essential_h"], label="critical + essential")
    third.set_ylabel("autonomy [h]")
    third.set_ylim(bottom=0)
    emergency = frame["emergency"].astype(bool) if "emergency" in frame.columns else None
    for axis in (top, bottom, third):
        down = ~frame["grid_up"].astype(bool)
        axis.fill_between(
            x, 0, 1, where=down, transform=axis.get_xaxis_transform(), color="red", alpha=0.1, step="post"
        )
        if emergency is not None and emergency.any():
            axis.fill_between(
                x, 0, 0.04, where=emergency, transform=axis.get_xaxis_transform(), color="purple", step="post"
            )
        axis.legend(loc="upper left", fontsize=8, ncols=3)
        axis.grid(alpha=0.3)
    top.set_title(f"{day.site.site.name}: a simulated day (red: grid down; purple bar: emergency mode)")
    third.set_title("autonomy if the grid went at that moment", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(day: DemoDay, folder: Path) -> tuple[Path, Path, dict[str, str]]:
    """Write ``report.md`` and ``day.png`` into ``folder``; return their paths and the figures."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = day.frame()
    figures = _figures(day, frame)
    chart = folder / "day.png"
    _chart(day, frame, chart)
    lines = [f"# microgrid demo: {day.site.site.name}", "", "| figure | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in figures.items()]
    lines += ["", "![the day](day.png)", ""]
    report = folder / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    frame.to_csv(folder / "timeline.csv")
    return report, chart, figures
