"""``microgrid validate`` and ``microgrid plan``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from microgrid.cli.common import EXIT_BAD_INPUT, EXIT_NO_PLAN, SiteArg, app, fail, out
from microgrid.errors import ConfigError, InfeasibleError, InputError, SolveError

if TYPE_CHECKING:  # what a command needs loads when it runs: pydantic for a site, pandas for profiles (issue 14)
    import numpy as np

    from microgrid.plans import Plan
    from microgrid.profiles import Profiles
    from microgrid.site import Site


@app.command()
def validate(
    site: SiteArg,
    profiles: Annotated[
        Path | None, typer.Option("--profiles", help="Also check this profiles CSV against the site.")
    ] = None,
    state: Annotated[Path | None, typer.Option("--state", help="Also check this state JSON against the site.")] = None,
) -> None:
    """Check a site file (its device maps and the outage schedule it names too; optionally profiles and
    state): exit 0, or 2 listing every problem."""
    from microgrid.site import read_site
    from microgrid.state import read_state
    from microgrid.telemetry.wiring import check_wiring

    try:
        parsed = read_site(site)
        check_wiring(parsed, str(site))
        _check_schedule(parsed, site)
        if profiles is not None:
            from microgrid.profiles import read_profiles

            read_profiles(profiles, parsed)
        if state is not None:
            read_state(state, parsed)
    except InputError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    what = ", ".join(str(p) for p in (site, profiles, state) if p is not None)
    out.print(f"ok: {what}", markup=False)


def _check_schedule(parsed: Site, path: Path) -> None:
    """The outage schedule the site names must be readable (the controller would run without it)."""
    from microgrid.forecast.schedule import ScheduleError, read_schedule, schedule_source

    if (schedule := schedule_source(parsed)) is None:
        return
    try:
        read_schedule(schedule.path, schedule.queue, schedule.tz)
    except ScheduleError as exc:
        raise ConfigError(str(path), [f"grid.schedule.source ({schedule.path}): {p}" for p in exc.problems]) from None


@app.command("plan")
def plan_command(
    site: SiteArg,
    profiles: Annotated[
        Path,
        typer.Option(
            "--profiles",
            help="Forecast CSV: one row per step (the spacing sets the step length), loads and PV in kW.",
            show_default=False,
        ),
    ],
    state: Annotated[
        Path | None,
        typer.Option("--state", help="Current state JSON (SOC fraction, genset on/hours, fuel stock in fuel units)."),
    ] = None,
    out_csv: Annotated[
        Path | None, typer.Option("--out", help="Write the plan CSV here (powers in kW, SOC as a fraction).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (status, objective, mip_gap, ...).")
    ] = False,
    mip_gap: Annotated[
        float | None,
        typer.Option("--mip-gap", min=0.0, max=0.999, help="Relative MIP gap (overrides control.mip_gap)."),
    ] = None,
    time_limit_s: Annotated[
        float | None,
        typer.Option("--time-limit-s", min=0.01, help="Solver time limit in seconds (overrides control.time_limit_s)."),
    ] = None,
    possible_outages: Annotated[
        bool,
        typer.Option(
            "--possible-outages",
            help="Plan the site schedule's 'possible' windows so the protected tiers survive them "
            "(docs/dispatch-extensions.md; off by default: the spec's model).",
        ),
    ] = False,
    emergency: Annotated[
        bool, typer.Option("--emergency", help="Emergency mode: no grid at any step, maximum autonomy first.")
    ] = False,
    operational: Annotated[
        bool,
        typer.Option(
            "--operational",
            help="Plan as 'run' does: the site's control.reserve while islanded and control.feeders "
            "(whole tiers shed, relay times) (docs/dispatch-extensions.md; off by default: the spec's model).",
        ),
    ] = False,
) -> None:
    """Plan the dispatch of SITE for the forecast in --profiles.

    Exit 0 with a plan, 2 on bad input (message on stderr), 3 when no feasible plan exists.
    """
    from microgrid.dispatch import plan as make_plan  # pyomo loads only for the commands that solve
    from microgrid.profiles import read_profiles
    from microgrid.site import read_site
    from microgrid.state import read_state

    try:
        parsed = read_site(site)
        forecast = read_profiles(profiles, parsed)
        result = make_plan(
            parsed,
            forecast,
            None if state is None else read_state(state, parsed),
            mip_gap=mip_gap,
            time_limit_s=time_limit_s,
            possible_outage=_possible_mask(parsed, forecast) if possible_outages else None,
            emergency=emergency,
            operational=operational,
        )
        if out_csv is not None:
            result.to_csv(out_csv)
    except InputError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    except (InfeasibleError, SolveError) as exc:
        if as_json:
            status = "infeasible" if isinstance(exc, InfeasibleError) else "error"
            print(json.dumps({"status": status, "objective": None, "mip_gap": None, "message": str(exc)}))
        raise fail(EXIT_NO_PLAN, str(exc)) from None
    except OSError as exc:
        raise fail(EXIT_BAD_INPUT, f"{out_csv}: cannot write the plan: {exc}") from None
    if as_json:
        print(result.to_json())
    else:
        _print_summary(result, out_csv)


def _possible_mask(site: Site, profiles: Profiles) -> np.ndarray:
    """The steps of ``profiles`` in a ``possible`` window of the site's outage schedule."""
    import numpy as np

    from microgrid.forecast.schedule import read_schedule

    config = site.grid.schedule if site.grid is not None else None
    if config is None:
        raise fail(EXIT_BAD_INPUT, "--possible-outages: the site has no grid.schedule")
    schedule = read_schedule(site.resolve(config.source), config.queue, site.site.timezone)
    status = schedule.per_step(profiles.index, timedelta(hours=profiles.step_h))
    return np.asarray(status.to_numpy() == "possible", dtype=bool)


def _print_summary(result: Plan, out_csv: Path | None) -> None:
    currency = escape(result.site.site.currency)
    head = (
        f"[bold]{escape(result.site.site.name)}[/]: {result.steps} steps of {result.step_hours:g} h, "
        f"status [bold]{result.status.value}[/], gap {result.mip_gap:.2%}, solved in {result.solve_seconds:.2f} s"
    )
    out.print(head)
    cost = Table(title=f"Cost ({currency})", title_justify="left")
    cost.add_column("part")
    cost.add_column(currency, justify="right")
    for part, value in result.cost().as_dict().items():
        cost.add_row(part, f"{value:,.2f}", style="bold" if part == "total" else None)
    out.print(cost)
    figures = Table(title="Energy and fuel", title_justify="left")
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    for tier, kwh in result.energy_shed_kwh().items():
        figures.add_row(f"shed {tier}", f"{kwh:,.1f} kWh")
    for fuel, amount in result.fuel_burnt().items():
        figures.add_row(f"fuel burnt: {fuel}", f"{amount:,.1f} {escape(result.site.fuels[fuel].unit)}")
    for gen, starts in result.generator_starts().items():
        figures.add_row(f"starts {gen}", str(starts))
    out.print(figures)
    if out_csv is not None:
        out.print(f"plan written to {out_csv}", markup=False)
