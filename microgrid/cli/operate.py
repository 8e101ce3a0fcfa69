"""The operators' commands: ``run``, ``status``, ``history`` and ``demo`` (``override``: :mod:`microgrid.cli.override`).

``run`` records every cycle in a SQLite store (default ``microgrid-history.sqlite`` in the
working directory, or ``$MICROGRID_STORE``, or ``--store``); ``status`` and ``history`` read
it while the controller runs; ``override`` leaves an operator action there, which the running
controller applies at its next cycle (and marks applied or refused, with why).
"""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from microgrid.cli.common import (
    EXIT_BAD_INPUT,
    SiteArg,
    app,
    connect_devices,
    fail,
    load_site,
    out,
    run_async,
)
from microgrid.cli.scada import ScadaAllowOpt, ScadaOpt, ScadaTlsOpt, ScadaWritesOpt, scada_options, scada_serving
from microgrid.cli.store_args import MODES, StoreOpt, open_store, printable, store_path
from microgrid.cli.uplink import (
    IslandIdOpt,
    IslandKindOpt,
    MqttCaOpt,
    MqttCertOpt,
    MqttKeyOpt,
    MqttLogin,
    MqttPasswordFileOpt,
    MqttUsernameOpt,
    PublishOpt,
    publish_options,
    publishing,
)
from microgrid.errors import InputError

__all__ = ["demo", "history", "run", "status"]


def _since(text: str | None) -> datetime | None:
    from microgrid.site import parse_duration

    if text is None:
        return None
    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise fail(EXIT_BAD_INPUT, f"--since: a duration like 2h or an ISO time, got {text!r}") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


# -- run -------------------------------------------------------------------------------------


@app.command()
def run(
    site: SiteArg,
    profiles: Annotated[
        Path | None,
        typer.Option("--profiles", help="Reference day (loads, PV in kW, outages, prices); default: a synthetic day."),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode", help="auto (optimizer), manual, safe (rules only) or dry-run; default: resume the last."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and plan, write nothing (= --mode dry-run).")
    ] = False,
    once: Annotated[bool, typer.Option("--once", help="Run one cycle, print it, hand devices back and exit.")] = False,
    store: StoreOpt = None,
    keepalive_s: Annotated[
        float,
        typer.Option("--keepalive-s", min=1, max=300, help="Heartbeat period in seconds (< device revert timeout)."),
    ] = 10.0,
    retention_days: Annotated[
        float,
        typer.Option("--retention-days", min=0.01, help="Keep this many days of history (older rows are purged)."),
    ] = 90.0,
    scada: ScadaOpt = None,
    scada_writes: ScadaWritesOpt = False,
    scada_allow: ScadaAllowOpt = None,
    scada_tls: ScadaTlsOpt = None,
    publish: PublishOpt = None,
    island_id: IslandIdOpt = None,
    island_kind: IslandKindOpt = None,
    mqtt_ca: MqttCaOpt = None,
    mqtt_cert: MqttCertOpt = None,
    mqtt_key: MqttKeyOpt = None,
    mqtt_username: MqttUsernameOpt = None,
    mqtt_password_file: MqttPasswordFileOpt = None,
) -> None:
    """Run the controller on SITE: a cycle every control interval, on the clock's boundaries.

    Every cycle reads the devices, estimates the state, forecasts, solves the dispatch, checks
    the setpoints against the live limits and writes them, with a documented fallback when
    anything fails; it is recorded in the store. Ctrl-C / SIGTERM hand the devices back.
    """
    from microgrid.control import Controller, Mode
    from microgrid.control.runner import Runner
    from microgrid.profiles import read_profiles
    from microgrid.sim.default_profiles import synthetic_day
    from microgrid.store import Store

    if mode is not None and mode not in MODES:
        raise fail(EXIT_BAD_INPUT, f"--mode: one of {', '.join(MODES)}, got {mode!r}")
    if once and scada is not None:
        raise fail(EXIT_BAD_INPUT, "--scada serves a running controller: leave out --once (one cycle, then exit)")
    served = scada_options(scada, scada_writes, scada_allow, scada_tls)  # checked before anything starts
    parsed = load_site(site)
    login = MqttLogin(mqtt_ca, mqtt_cert, mqtt_key, mqtt_username, mqtt_password_file)
    uplink = publish_options(publish, island_id, island_kind, parsed, login)
    devices = connect_devices(parsed, site)
    try:
        reference = read_profiles(profiles, parsed) if profiles else synthetic_day(parsed)
    except InputError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    controller = Controller(parsed, devices, reference, mode=Mode("dry-run" if dry_run else mode or "auto"))
    explicit_mode = dry_run or mode is not None
    with Store(store_path(store), retention_days=retention_days) as history:
        runner = Runner(controller, history, keepalive_s=keepalive_s)
        if resumed := runner.resume(keep_mode=explicit_mode):
            out.print(resumed, markup=False)
        if not once:
            runner.on_cycle = lambda report: print(report.log_line(), flush=True)  # one JSON line per cycle
        with publishing(runner, uplink, history.path):  # --publish: each cycle to the Situation Centre
            if once:
                report = run_async(_once(runner))
                out.print(report.log_line(), markup=False)
            else:
                out.print(f"running {parsed.site.name} in mode {controller.mode.value}; Ctrl-C to stop", markup=False)
                run_async(_forever(runner, served))


async def _once(runner: Any) -> Any:
    try:
        report = await runner.run_once()
        await runner.controller.hand_back()
        return report
    finally:
        runner.controller.devices.close()  # inside the loop: the connections belong to it


async def _forever(runner: Any, scada: Any = None) -> None:
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with scada_serving(runner, scada):  # the SCADA server (--scada), if asked for
            await runner.run_forever(stop)
    finally:
        runner.controller.devices.close()


# -- status, history, override -----------------------------------------------------------------


@app.command()
def status(
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the last cycle as one JSON object.")] = False,
) -> None:
    """The last cycle: alarms, state, plan summary, setpoint source (fallback) in force, device health.

    Alarms come first: the store's own health (a no-op write transaction: locked, read-only, disk
    full; and no cycle recorded for over 2 intervals while the controller is believed running), then
    the last cycle's (emergency mode, a fallback in force, devices not ok with why, writes refused or
    without a clear outcome).
    """
    from microgrid.control.alarms import alarms, event_alarms
    from microgrid.store.health import store_health

    with open_store(store) as history:
        last = history.last_cycle()
        pending = history.pending_actions()
        health = store_health(history, datetime.now(UTC))
        between = event_alarms(history.last_event("scada"))  # the SCADA watchdog's, until acknowledged
    if last is None:
        raise fail(EXIT_BAD_INPUT, "; ".join(["the history holds no cycle yet", *health.problems]))
    active = [f"store: {problem}" for problem in health.problems] + between + alarms(last["summary"])
    if as_json:
        record = {**last, "ts": last["ts"].isoformat(), "pending_actions": len(pending)}
        print(json.dumps({**record, "alarms": active, "store": health.as_dict()}, default=str))
        return
    out.print(_status_table(last, len(pending), active, health.notes))


def _status_table(last: dict[str, Any], pending: int, active: list[str], notes: list[str]) -> Table:
    summary = last["summary"]
    state = summary.get("state", {})
    table = Table(title=f"last cycle {last['ts']:%Y-%m-%d %H:%M} UTC", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for n, alarm in enumerate(active or ["none"]):
        label = ("ALARMS" if active else "alarms") if n == 0 else ""
        table.add_row(label, Text(str(printable(alarm))))  # Text: a device's "[...]" is not rich markup
    for note in notes:
        table.add_row("store not checked", Text(note))
    grid = {True: "up", False: "DOWN", None: "unknown"}[state.get("grid_up")]
    table.add_row("mode / source", f"{last['mode']} / {last['source']}  {last['reason']}")
    schedule = summary.get("schedule") or {}
    if schedule:
        grid += f"  (schedule now: {schedule.get('now')}{', VOIDED' if schedule.get('voided') else ''})"
    table.add_row("grid", grid)
    if (emergency := summary.get("emergency") or {}).get("active"):
        table.add_row("EMERGENCY", f"since {emergency.get('since')}: {emergency.get('reason')}")
    if summary.get("fuel_delivery_at"):
        table.add_row("fuel delivery", f"next at {summary['fuel_delivery_at']} (fuel rationed until then)")
    table.add_row("SOC", ", ".join(f"{b} {v:.0%}" for b, v in state.get("soc", {}).items()) or "unknown")
    gens = state.get("generators", {})
    table.add_row(
        "gensets", ", ".join(f"{g} {'on' if s['on'] else 'off'} {s['hours_in_state']:.1f} h" for g, s in gens.items())
    )
    table.add_row("fuel", ", ".join(f"{f} {v}" for f, v in state.get("fuel_stock", {}).items()))
    if plan := summary.get("plan"):
        table.add_row("plan", f"{plan['status']}, objective {plan['objective']:,.0f}, gap {plan['mip_gap']:.2%}")
    table.add_row("devices", ", ".join(f"{d} {h}" for d, h in summary.get("health", {}).items()))
    for device, why in summary.get("implausible", {}).items():
        table.add_row("implausible", f"{device}: {why}")
    autonomy = summary.get("autonomy")
    table.add_row(
        "autonomy if the grid goes now",
        f"critical {autonomy['critical_h']:g} h, critical + essential {autonomy['critical_essential_h']:g} h"
        if autonomy
        else "unknown (state incomplete)",
    )
    table.add_row("phases", ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in last["phases_s"].items()))
    table.add_row("operator actions pending", str(pending))
    return table


@app.command()
def history(
    since: Annotated[
        str | None, typer.Option("--since", help="A duration back from now (2h, 1d) or an ISO time.")
    ] = None,
    table: Annotated[
        str, typer.Option("--table", help="cycles, telemetry, setpoints, events, plans or actions.")
    ] = "cycles",
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV on stdout.")] = False,
    export: Annotated[Path | None, typer.Option("--export", help="Write every table to this folder.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Export format: csv or parquet.")] = "csv",
    store: StoreOpt = None,
) -> None:
    """Past cycles (or telemetry, setpoints, events, plans, operator actions) from the history store."""
    tables = ("cycles", "telemetry", "setpoints", "events", "plans", "actions")
    if table not in tables or fmt not in ("csv", "parquet"):
        raise fail(EXIT_BAD_INPUT, f"--table: one of {', '.join(tables)}; --format: csv or parquet")
    start = _since(since)
    with open_store(store) as store_:
        if export is not None:
            for path in store_.export(export, since=start, fmt=fmt):
                out.print(str(path), markup=False)
            return
        frame = getattr(store_, table)(since=start)
    if as_csv:
        print(frame.to_csv(index=False), end="")
        return
    shown = frame.drop(columns=[c for c in ("phases_s", "summary", "detail", "payload") if c in frame.columns])
    shown = shown.tail(50).apply(lambda col: col.map(printable) if col.dtype == object else col)
    out.print(shown.to_string(index=False, max_colwidth=70), markup=False)


@app.command()
def demo(
    hours: Annotated[float, typer.Option("--hours", min=0.25, max=168, help="Simulated hours to run.")] = 24.0,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.md, day.png and timeline.csv.")] = Path(
        "microgrid-demo"
    ),
    live: Annotated[bool, typer.Option("--live/--no-live", help="Show the live dashboard.")] = True,
    scada: ScadaOpt = None,
    scada_writes: ScadaWritesOpt = False,
    scada_allow: ScadaAllowOpt = None,
    scada_tls: ScadaTlsOpt = None,
) -> None:
    """Run the controller against the simulated hospital over Modbus TCP: a simulated day in about a minute.

    No configuration needed: the shipped hospital site is served on free loopback ports, with
    the winter sample day (4-hours-on / 4-hours-off outages) and one unannounced outage.
    ``--scada HOST:PORT`` serves the controller to SCADA meanwhile (docs/scada-points.md).
    """
    import asyncio

    from microgrid.cli.demo import DemoDay, run_demo
    from microgrid.cli.demo_view import dashboard, write_report
    from microgrid.store import Store

    settings = scada_options(scada, scada_writes, scada_allow, scada_tls)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "history.sqlite").unlink(missing_ok=True)
    # no retention: the simulated day's cycles are as old as its profiles, not the wall clock's today
    with Store(out_dir / "history.sqlite", retention_days=None) as store:
        if live and out.is_terminal:
            with Live(refresh_per_second=8, console=out) as screen:

                def show(day: DemoDay, row: dict[str, object]) -> None:
                    screen.update(dashboard(day, row))

                day = asyncio.run(run_demo(hours, show, store, settings))
        else:

            def progress(day: DemoDay, row: dict[str, object]) -> None:
                if len(day.rows) % 8 == 1:
                    out.print(dashboard(day, row))

            day = asyncio.run(run_demo(hours, progress, store, settings))
    report, chart, figures = write_report(day, out_dir)
    for name, value in figures.items():
        out.print(f"{name:>18}: {value}", markup=False)
    out.print(f"report: {report}  chart: {chart}  history: {out_dir / 'history.sqlite'}", markup=False)
