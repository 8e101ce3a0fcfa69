"""``microgrid simulate`` and ``microgrid sweep``: planners' runs that end in a report folder."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from microgrid.cli.common import EXIT_BAD_INPUT, EXIT_NO_PLAN, SiteArg, app, fail, load_site, out
from microgrid.errors import InputError, SolveError

if TYPE_CHECKING:  # pydantic, numpy and pandas load only when a command runs (start-up cost, issue 14)
    from microgrid.profiles import Profiles
    from microgrid.site import Site
    from microgrid.state import SiteState

ProfilesOpt = Annotated[
    Path,
    typer.Option(
        "--profiles", help="Profiles CSV (loads, PV, grid availability, prices) to simulate.", show_default=False
    ),
]
StateOpt = Annotated[
    Path | None, typer.Option("--state", help="Starting state JSON (SOC, gensets, fuel stock); default the site's.")
]
DeterministicOpt = Annotated[
    bool,
    typer.Option(
        "--deterministic",
        help="Solve on work limits (1,000 branch-and-bound nodes per solve) instead of the time limit, so "
        "that two runs give the same result on any machine (a hard solve then takes as long as it needs).",
    ),
]


DeliveryAtOpt = Annotated[
    str | None,
    typer.Option(
        "--fuel-delivery-at",
        help="A fuel truck comes then (ISO 8601 with a UTC offset, e.g. 2026-01-21T08:00+02:00): the simulated "
        "tank is filled at the first interval starting at or after it, the controller is told it (it rations "
        "fuel only until then), and perfect foresight (--compare) plans with it.",
    ),
]
DeliveredOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--fuel-delivered",
        help="What the truck brings, FUEL=AMOUNT in the fuel's unit (repeat per fuel; a fuel not named gets "
        "nothing). Default: every fuel with a stock filled back to its level at the start.",
    ),
]


@app.command()
def simulate(
    site: SiteArg,
    profiles: ProfilesOpt,
    state: StateOpt = None,
    days: Annotated[
        float | None, typer.Option("--days", min=0.01, help="Simulate this many days (default: the whole profiles).")
    ] = None,
    controller: Annotated[
        str, typer.Option("--controller", help="mpc (the MILP every interval), rules, or perfect_foresight.")
    ] = "mpc",
    compare: Annotated[
        bool, typer.Option("--compare", help="Also run the baselines (rules, perfect foresight) and compare KPIs.")
    ] = False,
    forecast: Annotated[
        str,
        typer.Option(
            "--forecast",
            help="controller (its own forecaster, learning from the plant) or oracle (the true future, "
            "± --forecast-error).",
        ),
    ] = "controller",
    forecast_error: Annotated[
        float,
        typer.Option("--forecast-error", min=0.0, help="With --forecast oracle: its relative error (0.1 = 10 %)."),
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the forecast errors.")] = 0,
    mip_gap: Annotated[
        float | None, typer.Option("--mip-gap", min=0.0, max=0.999, help="MIP gap per solve (overrides the site's).")
    ] = None,
    time_limit_s: Annotated[
        float | None, typer.Option("--time-limit-s", min=0.01, help="Solver time limit per solve (s).")
    ] = None,
    deterministic: DeterministicOpt = False,
    fuel_delivery_at: DeliveryAtOpt = None,
    fuel_delivered: DeliveredOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("microgrid-simulation"),
    as_html: Annotated[bool, typer.Option("--html", help="Write report.html instead of report.md.")] = False,
) -> None:
    """Simulate SITE closed-loop over --profiles and write a report (KPIs, charts, intervals).

    Exit 0 with a report, 2 on bad input, 3 when the simulation cannot find a plan.
    """
    if controller not in ("mpc", "rules", "perfect_foresight"):
        raise fail(EXIT_BAD_INPUT, f"--controller: must be mpc, rules or perfect_foresight, got {controller!r}")
    if forecast not in ("controller", "oracle"):
        raise fail(EXIT_BAD_INPUT, f"--forecast: must be controller or oracle, got {forecast!r}")
    parsed = load_site(site)
    truck = _truck_options(parsed, fuel_delivery_at, fuel_delivered)
    began = time.perf_counter()
    result, table = _run_simulation(
        parsed,
        profiles,
        state,
        controller,
        compare=compare,
        days=days,
        forecast=forecast,
        forecast_error=forecast_error,
        seed=seed,
        mip_gap=mip_gap,
        time_limit_s=time_limit_s,
        deterministic=deterministic,
        **truck,
    )
    inputs = {"site": str(site), "profiles": str(profiles), "state": str(state or "the site's initial state")}
    inputs |= {"forecast": forecast, "forecast error": f"{forecast_error:g}", "seed": str(seed)}
    if deterministic:
        inputs["solves"] = "deterministic (work limits, no time limit)"
    if truck["fuel_delivery_at"] is not None:
        brings = truck["fuel_delivered"]
        what = (
            "each fuel filled back to its start level"
            if brings is None
            else ", ".join(f"{name} {units:g}" for name, units in brings.items())
        )
        inputs["fuel delivery"] = f"{truck['fuel_delivery_at'].isoformat()}: {what}"
    path = _write_report(parsed, result, out_dir, table=table, inputs=inputs, as_html=as_html)
    _print_summary(parsed, result, time.perf_counter() - began, path)


def _truck_options(site: Site, at: str | None, delivered: list[str] | None) -> dict[str, Any]:
    """``--fuel-delivery-at`` and ``--fuel-delivered`` as ``simulate``'s ``fuel_delivery_at`` and
    ``fuel_delivered``; exit 2 naming the option on a bad time, a fuel the site lacks, or a bad amount."""
    from microgrid.control.resupply import delivery_time

    try:
        when = delivery_time(at)
    except ValueError as exc:
        raise fail(EXIT_BAD_INPUT, f"--fuel-delivery-at: {exc}") from None
    if delivered and when is None:
        raise fail(EXIT_BAD_INPUT, "--fuel-delivered: needs --fuel-delivery-at (when the truck comes)")
    units: dict[str, float] | None = None
    if delivered:
        units = {}
        for item in delivered:
            name, _, amount = item.partition("=")
            name = name.strip()
            if name not in site.fuels:
                known = ", ".join(site.fuels) or "none"
                raise fail(EXIT_BAD_INPUT, f"--fuel-delivered {item!r}: the site has no fuel {name!r} (it has {known})")
            try:
                value = float(amount)
            except ValueError:
                value = math.nan
            if not (math.isfinite(value) and value >= 0):
                raise fail(EXIT_BAD_INPUT, f"--fuel-delivered {item!r}: give FUEL=AMOUNT, an amount ≥ 0")
            if site.fuels[name].stock is None:
                raise fail(EXIT_BAD_INPUT, f"--fuel-delivered {item!r}: fuel {name!r} is unlimited at this site")
            units[name] = units.get(name, 0.0) + value
    return {"fuel_delivery_at": when, "fuel_delivered": units}


def _print_summary(site: Site, result: Any, seconds: float, path: Path) -> None:
    """The one-line summary of a simulation run: intervals, controller, time taken, cost, report path."""
    kpis = result.kpis
    out.print(
        f"{site.site.name}: {int(kpis.get('intervals', len(result.intervals)))} intervals with {result.controller} "
        f"in {seconds:.1f} s; cost {float(kpis.get('cost_total', float('nan'))):,.0f} "
        f"{site.site.currency}; report {path}",
        markup=False,
    )


def _run_simulation(
    site: Site,
    profiles_path: Path,
    state_path: Path | None,
    controller: str,
    *,
    compare: bool,
    days: float | None,
    forecast: str,
    forecast_error: float,
    seed: int,
    mip_gap: float | None,
    time_limit_s: float | None,
    deterministic: bool = False,
    fuel_delivery_at: datetime | None = None,
    fuel_delivered: dict[str, float] | None = None,
) -> tuple[Any, Any]:
    """Read the profiles and state, simulate, and with ``compare`` the baselines: (result, KPI table or None).

    ``deterministic``: every solve on work limits (:func:`microgrid.dispatch.effort.deterministic`).
    ``fuel_delivery_at``, ``fuel_delivered``: a fuel truck, for the controller run and the baselines.
    Bad input exits with ``EXIT_BAD_INPUT``, a simulation without a plan with ``EXIT_NO_PLAN``.
    """
    from contextlib import nullcontext

    from microgrid.dispatch.effort import deterministic as work_limits
    from microgrid.planning.baselines import run_controller
    from microgrid.profiles import read_profiles
    from microgrid.state import read_state

    with work_limits() if deterministic else nullcontext():  # the baselines of --compare too
        try:
            loaded = read_profiles(profiles_path, site)
            start = None if state_path is None else read_state(state_path, site)
            result = run_controller(
                controller,
                site,
                loaded,
                state=start,
                days=days,
                forecast=forecast,
                forecast_error=forecast_error,
                seed=seed,
                mip_gap=mip_gap,
                time_limit_s=time_limit_s,
                progress=True,
                fuel_delivery_at=fuel_delivery_at,
                fuel_delivered=fuel_delivered,
            )
            solver = {"mip_gap": mip_gap, "time_limit_s": time_limit_s}
            table = None
            if compare:
                table = _baselines(
                    site,
                    loaded,
                    result,
                    start,
                    days=days,
                    forecast=forecast,
                    forecast_error=forecast_error,
                    seed=seed,
                    fuel_delivery_at=fuel_delivery_at,
                    fuel_delivered=fuel_delivered,
                    **solver,
                )
        except InputError as exc:
            raise fail(EXIT_BAD_INPUT, str(exc)) from None
        except SolveError as exc:
            raise fail(EXIT_NO_PLAN, str(exc)) from None
    return result, table


def _write_report(site: Site, result: Any, out_dir: Path, *, table: Any, inputs: dict[str, str], as_html: bool) -> Path:
    """Write the simulation report into ``out_dir``; exit with ``EXIT_BAD_INPUT`` if it cannot be written."""
    from microgrid.planning.report import write_simulation_report

    try:
        return write_simulation_report(
            result, out_dir, title=f"{site.site.name}: simulation", compare=table, inputs=inputs, as_html=as_html
        )
    except OSError as exc:
        raise fail(EXIT_BAD_INPUT, f"{out_dir}: cannot write the report: {exc}") from None


@app.command()
def sweep(
    site: SiteArg,
    spec: Annotated[
        Path, typer.Argument(help="Sweep file (YAML): designs, scenarios, controller.", show_default=False)
    ],
    state: StateOpt = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Dask scheduler address (tcp://host:8786); default a local cluster."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="Local cluster processes (0: run here, one task after the other).")
    ] = 2,
    out_dir: Annotated[Path, typer.Option("--out", help="Result folder.")] = Path("microgrid-sweep"),
    as_html: Annotated[bool, typer.Option("--html", help="Write report.html instead of report.md.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    deterministic: DeterministicOpt = False,
) -> None:
    """Evaluate every design × scenario of SPEC on SITE (on Dask); write results.parquet, plots, a report.

    Exit 0 with results (failed designs are listed in the report), 2 on bad input.
    """
    from microgrid.planning.report import write_sweep_report
    from microgrid.planning.sweep import check_designs, read_sweep, run_sweep
    from microgrid.state import read_state

    parsed = load_site(site)
    try:
        plan = read_sweep(spec)
        start = None if state is None else read_state(state, parsed)
        check_designs(parsed, plan)  # refuse bad designs before a cluster starts
    except InputError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    if deterministic:  # the solver options travel with every task (to the Dask workers too)
        solver = {**plan.survival.get("solver", {}), "deterministic": True}
        plan = replace(plan, survival={**plan.survival, "solver": solver})
    began = time.perf_counter()
    out.print(f"{plan.tasks} tasks ({len(plan.designs)} designs × {len(plan.scenarios)} scenarios), {plan.controller}")
    try:
        frame = run_sweep(parsed, plan, state=start, scheduler=scheduler, workers=workers, progress=progress)
        path = write_sweep_report(
            frame,
            out_dir,
            title=f"{parsed.site.name}: sweep {spec.name}",
            grid_keys=plan.grid_keys,
            metrics=plan.metrics,
            as_html=as_html,
        )
    except InputError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    except OSError as exc:
        raise fail(EXIT_BAD_INPUT, f"{out_dir}: cannot write the results: {exc}") from None
    failed = int(frame["error"].notna().sum())
    out.print(
        f"{len(frame)} rows in {time.perf_counter() - began:.1f} s, {failed} failed; "
        f"{out_dir / 'results.parquet'}; report {path}",
        markup=False,
    )


def _baselines(site: Site, profiles: Profiles, result: Any, state: SiteState | None, **mpc: Any) -> Any:
    """KPIs of mpc, rules and perfect foresight (``planning.compare``), reusing the run already made.

    ``mpc``: days, and the closed loop's forecast error, seed and solver settings (as ``compare``).
    """
    from microgrid.planning.baselines import compare

    return compare(site, profiles, state=state, done={result.controller: result}, **mpc)
