"""``microgrid demo``: the operators' view of the controller on a simulated site."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live

from microgrid.cli.common import app, out

__all__ = ["demo"]


@app.command()
def demo(
    hours: Annotated[float, typer.Option("--hours", min=0.25, max=168, help="Simulated hours to run.")] = 24.0,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.md, day.png and timeline.csv.")] = Path(
        "microgrid-demo"
    ),
    live: Annotated[bool, typer.Option("--live/--no-live", help="Show the live dashboard.")] = True,
) -> None:
    """Run the controller against the simulated hospital over Modbus TCP: a simulated day in about a minute.

    No configuration needed: the shipped hospital site is served on free loopback ports, with
    the winter sample day (4-hours-on / 4-hours-off outages) and one unannounced outage.
    """
    from microgrid.cli.demo import DemoDay, run_demo
    from microgrid.cli.demo_view import dashboard, write_report

    if live and out.is_terminal:
        with Live(refresh_per_second=8, console=out) as screen:

            def show(day: DemoDay, row: dict[str, object]) -> None:
                screen.update(dashboard(day, row))

            day = asyncio.run(run_demo(hours, show))
    else:

        def progress(day: DemoDay, row: dict[str, object]) -> None:
            if len(day.rows) % 8 == 1:
                out.print(dashboard(day, row))

        day = asyncio.run(run_demo(hours, progress))
    report, chart, figures = write_report(day, out_dir)
    for name, value in figures.items():
        out.print(f"{name:>18}: {value}", markup=False)
    out.print(f"report: {report}  chart: {chart}", markup=False)
