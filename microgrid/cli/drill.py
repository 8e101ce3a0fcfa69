"""``microgrid drill``: scripted fault scenarios against the real controller and the simulated plant."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from microgrid.cli.common import EXIT_BAD_INPUT, EXIT_INTERNAL, app, err, fail, out
from microgrid.errors import InputError

if TYPE_CHECKING:  # the drills import the controller, the simulator and HiGHS: only when a drill runs
    from microgrid.planning.drills import DrillResult, LoadedDrill

_STYLE = {"PASS": "green", "XFAIL": "yellow", "FAIL": "bold red", "XPASS": "bold red"}


@app.command()
def drill(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Drill files (YAML), e.g. models/drills/*.yaml.", show_default=False)
    ] = None,
    shipped: Annotated[bool, typer.Option("--library", help="Run the shipped library (models/drills).")] = False,
    short: Annotated[bool, typer.Option("--short", help="Each drill's short (CI-sized) duration.")] = False,
    hours: Annotated[
        float | None, typer.Option("--hours", min=0.25, max=24 * 14, help="Run each drill this long instead (hours).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per drill instead of the table.")] = False,
    truth_dir: Annotated[
        Path | None, typer.Option("--truth", help="Write each drill's truth log (every 30 s) as DRILL.truth.csv here.")
    ] = None,
) -> None:
    """Run drills: a site served over loopback Modbus, faults injected at their times, every write the real
    controller makes held against the plant's true state; a verdict per drill.

    Exit 0 when every drill passes (or fails as its ``expect: fail`` says), 1 when one does not,
    2 on a bad drill file (naming the key).
    """
    from microgrid.planning.drills import library

    paths = list(files or []) + (library() if shipped else [])
    if not paths:
        raise fail(EXIT_BAD_INPUT, "name drill files or give --library")
    loaded = _load(paths)
    results = _run(loaded, short=short, hours=hours, as_json=as_json)
    if truth_dir is not None:
        _write_truth(results, truth_dir)
    if not as_json:
        wide = Console(highlight=False, emoji=False, width=max(out.width, 132))  # one line per drill, also in a log
        wide.print(_table(results))
        _details(results)
    if not all(r.as_expected for r in results):
        raise typer.Exit(EXIT_INTERNAL)


def _load(paths: list[Path]) -> list[LoadedDrill]:
    """Every drill read and checked before any runs; exit 2 listing every bad file."""
    from microgrid.planning.drills import read_drill

    loaded, problems = [], []
    for path in paths:
        try:
            loaded.append(read_drill(path))
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        raise fail(EXIT_BAD_INPUT, "\n".join(problems))
    return loaded


def _run(loaded: list[LoadedDrill], *, short: bool, hours: float | None, as_json: bool) -> list[DrillResult]:
    from microgrid.planning.drills import run_drill

    duration = None if hours is None else timedelta(hours=hours)
    quiet = logging.getLogger("microgrid")
    level, began, results = quiet.level, time.perf_counter(), []
    quiet.setLevel(logging.CRITICAL)  # the controller's warnings are the drill's subject: the verdict reports them
    try:
        for item in loaded:
            if not as_json:
                err.print(f"drill {item.drill.name} …", markup=False)
            result = run_drill(item, short=short, duration=duration)
            results.append(result)
            if as_json:
                out.print(json.dumps(result.as_dict()), markup=False)
    finally:
        quiet.setLevel(level)
    if not as_json:
        err.print(f"{len(results)} drill(s) in {time.perf_counter() - began:.0f} s", markup=False)
    return results


def _write_truth(results: list[DrillResult], folder: Path) -> None:
    """The plant's truth log of each drill (one row per 30 s step: SOCs, gensets, fuel, grid, tiers)."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    for r in results:
        pd.DataFrame([row.as_dict() for row in r.truth]).to_csv(folder / f"{r.drill.name}.truth.csv", index=False)


def _table(results: list[DrillResult]) -> Table:
    table = Table(title="drills", title_justify="left")
    table.add_column("drill", no_wrap=True)
    for column in ("h", "verdict", "faults", "unsafe", "crit kWh", "ess kWh", "<floor min", "lost", "missed"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("fallback", justify="right", no_wrap=True)
    table.add_column("wall s", justify="right", no_wrap=True)
    for r in results:
        m = r.measures
        fallback = "—" if m.time_to_fallback is None else f"{m.time_to_fallback / timedelta(minutes=1):g} min"
        table.add_row(
            r.drill.name,
            f"{r.duration / timedelta(hours=1):g}",
            f"[{_STYLE[r.verdict]}]{r.verdict}[/]",
            str(m.faults_injected),
            str(len(m.unsafe)),
            f"{m.critical_unserved_kwh:.1f}",
            f"{m.essential_unserved_kwh:.1f}",
            f"{m.below_floor_min:g}",
            str(m.records_lost),
            str(m.cycles_missed),
            fallback,
            f"{r.wall_s:.0f}",
        )
    return table


def _details(results: list[DrillResult]) -> None:
    """Why each drill that did not pass failed (and the first unsafe writes)."""
    for r in results:
        if r.passed:
            continue
        failed = "; ".join(f"{c.name} {c.measured} (limit {c.limit})" for c in r.criteria if not c.ok)
        out.print(f"{r.drill.name} {r.verdict}: {failed}", markup=False)
        if r.drill.expect == "fail":
            out.print(f"  expected to fail: {r.drill.expect_reason.strip()}", markup=False)
        for write, why in r.measures.unsafe[:5]:
            out.print(f"  {write.time:%H:%M:%S} {write.device}.{write.point} = {write.value:g}: {why}", markup=False)
    for r in results:
        if r.verdict == "XPASS":
            out.print(f"{r.drill.name} passed but is marked expect: fail: remove the mark", markup=False)
