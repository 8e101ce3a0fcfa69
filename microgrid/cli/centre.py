"""``microgrid centre ...``: the Situation Centre's commands (here: ``fuel-plan``, issue 17).

Imports stay light at the top (typer, the shared console): the logistics model, pandas and pyomo
load inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from microgrid.cli.common import EXIT_BAD_INPUT, EXIT_NO_PLAN, app, fail, out
from microgrid.cli.uplink import (
    MqttCaOpt,
    MqttCertOpt,
    MqttKeyOpt,
    MqttLogin,
    MqttPasswordFileOpt,
    MqttUsernameOpt,
    secured,
)

if TYPE_CHECKING:
    from microgrid.centre.snapshot import CentreSnapshot
    from microgrid.logistics import Fleet, FuelPlan, Truck

__all__ = ["centre_app", "fuel_plan"]

CENTRE = "centre"
OPERATOR = "operator"
"""The default identity that sends commands and schedules (``broker-config --operators``): not ``centre``,
whose one connection is ``centre serve``'s (the broker allows one connection per identity)."""
"""The centre's identity at the broker: its certificate's CN, its default user name (``broker-config``'s ACL)."""

centre_app = typer.Typer(
    name="centre", help="The Situation Centre: plans across the city's islands.", no_args_is_help=True
)
app.add_typer(centre_app, name="centre")


@centre_app.command("fuel-plan")
def fuel_plan(
    trucks: Annotated[Path, typer.Option("--trucks", help="Trucks YAML (docs/fuel-logistics.md).", show_default=False)],
    fleet: Annotated[
        Path | None, typer.Argument(help="Fleet YAML: depot and islands (docs/fuel-logistics.md).", show_default=False)
    ] = None,
    from_centre: Annotated[
        Path | None,
        typer.Option(
            "--from-centre", help="Instead of FLEET: the centre's store (centre serve --db).", show_default=False
        ),
    ] = None,
    fleet_extra: Annotated[
        Path | None,
        typer.Option("--fleet-extra", help="With --from-centre: depot, tanks, weights (YAML).", show_default=False),
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=3, help="Horizon (days).")] = 2,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write route.csv, route.json, islands.csv, summary.json (and the chart) here."),
    ] = None,
    time_limit_s: Annotated[float, typer.Option("--time-limit-s", min=0.1, help="HiGHS's time limit (s).")] = 60.0,
    mip_gap: Annotated[float, typer.Option("--mip-gap", min=0.0, max=0.999, help="Relative MIP gap.")] = 0.01,
    step_h: Annotated[float, typer.Option("--step-h", min=0.25, max=6.0, help="The MILP's time step (h).")] = 1.0,
    chart: Annotated[bool, typer.Option("--chart", help="With --out: hours-to-dry.png (before/after).")] = False,
    compare: Annotated[bool, typer.Option("--compare", help="Also print nearest-first's figures.")] = False,
) -> None:
    """Plan the diesel deliveries of the next --days: which island gets how much, from which truck,
    in what order. Exit 0 with a plan, 2 on bad input, 3 when an island's must_last_h cannot be
    kept (the constraint named)."""
    from microgrid.errors import InfeasibleError, SolveError
    from microgrid.logistics import baseline, plan_deliveries

    if chart and out_dir is None:
        raise fail(EXIT_BAD_INPUT, "--chart needs --out DIR (the chart is written there)")
    parsed, vehicles = _load(fleet, from_centre, fleet_extra, trucks)
    try:
        plan = plan_deliveries(parsed, vehicles, days, step_h=step_h, time_limit_s=time_limit_s, mip_gap=mip_gap)
    except InfeasibleError as exc:
        raise fail(EXIT_NO_PLAN, f"infeasible: {exc}") from None
    except SolveError as exc:
        raise fail(EXIT_NO_PLAN, str(exc)) from None
    near = baseline(parsed, vehicles, days) if compare or chart else None
    _print(plan, near if compare else None)
    if out_dir is not None:
        _write(plan, out_dir, near if chart else None, chart)


def _load(fleet: Path | None, store: Path | None, extra: Path | None, trucks: Path) -> tuple[Fleet, list[Truck]]:
    """The fleet (from FLEET, or from the centre's store and the extra file) and the trucks; exit 2 on bad input."""
    from microgrid.errors import InputError
    from microgrid.logistics import read_fleet, read_trucks

    if (fleet is None) == (store is None):
        raise fail(EXIT_BAD_INPUT, "give either FLEET or --from-centre CENTRE.sqlite (with --fleet-extra)")
    if (store is None) != (extra is None):
        raise fail(EXIT_BAD_INPUT, "--from-centre and --fleet-extra go together (docs/fuel-logistics.md)")
    try:
        if fleet is not None:
            return read_fleet(fleet), read_trucks(trucks)
        from microgrid.centre.snapshot import fleet_from_centre

        vehicles = read_trucks(trucks)
        snapshot = fleet_from_centre(store, extra)  # type: ignore[arg-type]
    except InputError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    _print_seen(snapshot)
    return snapshot.fleet, vehicles


def _print_seen(snapshot: CentreSnapshot) -> None:
    from rich.table import Table

    table = Table(
        "island", "state", r"status age \[h]", r"stock \[l]", r"burn \[l/h]", "", title="From the centre's store"
    )
    for s in snapshot.seen:
        age = "" if s.age_h is None else f"{s.age_h:.2f}"
        stock = "" if s.stock_l is None else f"{s.stock_l:,.0f}"
        burn = "" if s.burn_l_per_h is None else f"{s.burn_l_per_h:.1f}"
        table.add_row(s.island, s.state, age, stock, burn, s.action)
    out.print(table)
    if snapshot.unknown_extra:
        out.print(f"in --fleet-extra but not in the store: {', '.join(snapshot.unknown_extra)}", markup=False)


def _print(plan: FuelPlan, near: FuelPlan | None) -> None:
    from rich.table import Table

    table = Table("truck", "trip", "stop", "island", r"arrival \[h]", "litres", title="Route")
    for truck, trip, stop, island, arrival_h, litres in plan.route_table().itertuples(index=False):
        table.add_row(str(truck), str(trip), str(stop), str(island), f"{arrival_h:.2f}", f"{litres:,.0f}")
    out.print(table)
    s = plan.summary()
    gap = "n/a" if plan.mip_gap is None else f"{plan.mip_gap:.1%}"
    out.print(
        f"{s['method']}: {s['status']}, gap {gap}, {s['solve_s']} s; {s['trips']} trips, {s['stops']} stops, "
        f"{s['litres']:,.0f} l, {s['km']:,.0f} km",
        markup=False,
    )
    out.print(
        f"minimum weighted hours-to-dry: before {s['min_weighted_hours_to_dry_before']} h, "
        f"after {s['min_weighted_hours_to_dry_after']} h; dry hours {s['dry_hours_before']} → {s['dry_hours_after']}",
        markup=False,
    )
    if s["unreachable"]:
        out.print(f"unreachable within a trip: {', '.join(s['unreachable'])}", markup=False)  # type: ignore[arg-type]
    if near is not None:
        n = near.summary()
        out.print(
            f"nearest-first: minimum weighted hours-to-dry after {n['min_weighted_hours_to_dry_after']} h; "
            f"dry hours {n['dry_hours_after']}; {n['stops']} stops, {n['km']:,.0f} km",
            markup=False,
        )


def _write(plan: FuelPlan, out_dir: Path, near: FuelPlan | None, chart: bool) -> None:
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    route = plan.route_table()
    route.to_csv(out_dir / "route.csv", index=False)
    (out_dir / "route.json").write_text(route.to_json(orient="records", indent=1) + "\n", encoding="utf-8")
    plan.islands_table().to_csv(out_dir / "islands.csv")
    (out_dir / "summary.json").write_text(json.dumps(plan.summary(), indent=1) + "\n", encoding="utf-8")
    if chart:
        from microgrid.logistics.chart import save_chart

        save_chart(plan, out_dir / "hours-to-dry.png", near)
    out.print(f"wrote {out_dir}", markup=False)


@centre_app.command("serve")
def serve(
    broker: Annotated[str, typer.Argument(metavar="mqtt[s]://HOST:PORT/CITY", help="The city's MQTT broker.")],
    db: Annotated[
        str,
        typer.Option(
            "--db",
            metavar="FILE|URL",
            help="The fleet's store: a SQLite file (created if missing) or postgresql://USER@HOST:PORT/DATABASE.",
        ),
    ] = "centre.sqlite",
    http: Annotated[str, typer.Option("--http", metavar="HOST:PORT", help="Serve the screen here.")] = "127.0.0.1:8080",
    keep_days: Annotated[
        float, typer.Option("--keep-days", min=0.0, help="Days of history kept (0: all); latest states always.")
    ] = 30.0,
    mqtt_ca: MqttCaOpt = None,
    mqtt_cert: MqttCertOpt = None,
    mqtt_key: MqttKeyOpt = None,
    mqtt_username: MqttUsernameOpt = None,
    mqtt_password_file: MqttPasswordFileOpt = None,
) -> None:
    """Subscribe to every island of the city and serve the situation screen (docs/situation-centre.md):
    islands sorted by risk, a JSON API (/api/islands), live updates (/events); history older than
    --keep-days deleted hourly. Ctrl-C stops."""
    from microgrid.centre.dialects import StoreError
    from microgrid.centre.serve import serve as run_centre
    from microgrid.uplink import parse_url

    host, _, port = http.rpartition(":")
    try:
        parsed = parse_url(broker)
    except ValueError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc).replace("--publish: ", "")) from None
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise fail(EXIT_BAD_INPUT, f"--http: HOST:PORT, e.g. 127.0.0.1:8080, got {http!r}")
    parsed = secured(parsed, MqttLogin(mqtt_ca, mqtt_cert, mqtt_key, mqtt_username, mqtt_password_file), CENTRE)

    def opened() -> None:
        out.print(
            f"the situation screen: http://{host}:{port}/ (islands of {parsed.city}); Ctrl-C to stop", markup=False
        )

    try:
        run_centre(parsed, db, host.strip("[]"), int(port), keep_days=keep_days or None, opened=opened)
    except StoreError as exc:  # no driver, or the server cannot be reached
        raise fail(EXIT_BAD_INPUT, f"--db: {exc}") from None


def _broker(url: str, login: MqttLogin, identity: str) -> Any:
    """The broker argument (``mqtt[s]://HOST:PORT/CITY``) with the ``--mqtt-*`` login of ``identity``; exit 2
    naming what is wrong."""
    from microgrid.uplink import parse_url

    try:
        parsed = parse_url(url)
    except ValueError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc).replace("--publish: ", "")) from None
    return secured(parsed, login, identity)


@centre_app.command("emergency")
def emergency(
    state: Annotated[str, typer.Argument(metavar="on|off", help="on: plan for no grid; off: back to the schedule.")],
    broker: Annotated[str, typer.Argument(metavar="mqtt[s]://HOST:PORT/CITY", help="The city's MQTT broker.")],
    islands: Annotated[str | None, typer.Option("--islands", help="Island ids, comma-separated (or 'all').")] = None,
    districts: Annotated[str | None, typer.Option("--districts", help="Districts, comma-separated.")] = None,
    queues: Annotated[str | None, typer.Option("--queues", help="Outage queues, comma-separated (3.1,4.2).")] = None,
    all_islands: Annotated[bool, typer.Option("--all", help="Every island of the city.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (shown with the islands' emergency).")] = "",
    mqtt_ca: MqttCaOpt = None,
    mqtt_cert: MqttCertOpt = None,
    mqtt_key: MqttKeyOpt = None,
    mqtt_username: MqttUsernameOpt = None,
    mqtt_password_file: MqttPasswordFileOpt = None,
) -> None:
    """Declare or lift emergency mode on a set of islands (docs/situation-centre.md): each takes it at its
    next cycle, as `microgrid override --emergency` would queue it, and its status shows it."""
    from microgrid.centre.commands import send_emergency

    if state not in ("on", "off"):
        raise fail(EXIT_BAD_INPUT, f"on or off, got {state!r}")
    targets = _targets(islands, districts, queues, all_islands)
    parsed = _broker(broker, MqttLogin(mqtt_ca, mqtt_cert, mqtt_key, mqtt_username, mqtt_password_file), OPERATOR)
    try:
        sent = send_emergency(parsed, targets, state == "on", reason)
    except ValueError as exc:
        raise fail(EXIT_BAD_INPUT, f"not a valid command: {exc}") from None
    except OSError as exc:
        raise fail(EXIT_BAD_INPUT, f"{broker}: cannot reach the broker: {exc}") from None
    named = "; ".join(f"{k} {v if isinstance(v, str) else ','.join(v)}" for k, v in targets.items())
    out.print(f"command {sent['id']}: emergency {state} for {named}", markup=False)


def _targets(islands: str | None, districts: str | None, queues: str | None, all_islands: bool) -> dict[str, Any]:
    """The command's targets from ``--islands``, ``--districts``, ``--queues`` (comma-separated) or ``--all``
    (alone); exit 2 when none, or ``--all`` with others, is given."""
    from microgrid.uplink.commands import targets_of

    def split(text: str | None) -> list[str] | None:
        return None if text is None else [item.strip() for item in text.split(",") if item.strip()]

    if islands == "all":
        islands, all_islands = None, True  # the old spelling of --all
    if all_islands and (islands or districts or queues):
        raise fail(EXIT_BAD_INPUT, "--all stands alone (not with --islands, --districts or --queues)")
    try:
        return targets_of("all" if all_islands else split(islands), split(districts), split(queues))
    except ValueError:
        raise fail(EXIT_BAD_INPUT, "whom: give --islands, --districts, --queues (comma-separated) or --all") from None


@centre_app.command("broker-config")
def broker_config(
    out_dir: Annotated[Path, typer.Argument(help="Write mosquitto.conf, acl (and certs/, passwd) here.")],
    city: Annotated[str, typer.Option("--city", help="The city (the topics' first level).", show_default=False)],
    islands: Annotated[str | None, typer.Option("--islands", help="Island ids, comma-separated.")] = None,
    islands_file: Annotated[
        Path | None, typer.Option("--islands-file", help="Island ids, one a line (# comments).", show_default=False)
    ] = None,
    listen: Annotated[str, typer.Option("--listen", metavar="HOST:PORT", help="The TLS listener.")] = "0.0.0.0:8883",
    auth: Annotated[
        str, typer.Option("--auth", help="certificate (CN = user) or password (over TLS).")
    ] = "certificate",
    make_certs: Annotated[
        bool, typer.Option("--make-certs", help="Make a CA, the server's and every identity's certificate.")
    ] = False,
    server_name: Annotated[
        list[str] | None,
        typer.Option("--server-name", help="With --make-certs: a name or address of the broker (repeat)."),
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="With --make-certs: certificates' validity (days).")] = 825,
    operators: Annotated[
        str, typer.Option("--operators", help="Who sends commands and schedules (identities, comma-separated).")
    ] = OPERATOR,
    run_as: Annotated[
        str, typer.Option("--run-as", help="The user Mosquitto runs as (started as root, it drops to it).")
    ] = "mosquitto",
) -> None:
    """Write a Mosquitto 2 configuration for the city (docs/situation-centre.md, Security): a TLS listener,
    no anonymous clients, an ACL where each island writes only its own topics and only the centre
    sends commands. Run it with `mosquitto -c OUT_DIR/mosquitto.conf`."""
    from microgrid.centre.broker import BrokerPlan, hand_over, read_islands, write_config

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise fail(EXIT_BAD_INPUT, f"--listen: HOST:PORT, e.g. 0.0.0.0:8883, got {listen!r}")
    try:
        ids = [i.strip() for i in (islands or "").split(",") if i.strip()]
        ids += read_islands(islands_file) if islands_file is not None else []
        desks = tuple(o.strip() for o in operators.split(",") if o.strip())
        plan = BrokerPlan(city, tuple(ids), CENTRE, host.strip("[]"), int(port), auth, run_as, desks)  # type: ignore[arg-type]
        written = write_config(plan, out_dir, make_certs=make_certs, server_names=server_name, days=days)
        handed = hand_over(plan, out_dir)
    except ValueError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    except OSError as exc:
        raise fail(EXIT_BAD_INPUT, f"{out_dir}: cannot write: {exc}") from None
    for path in written:
        out.print(f"wrote {path}", markup=False)
    if handed:
        out.print(handed, markup=False)
    certs = out_dir / "certs"
    if missing := [n for n in ("ca.crt", "server.crt", "server.key") if not (certs / n).exists()]:
        out.print(f"still needed in {certs}: {', '.join(missing)} (or run again with --make-certs)", markup=False)
    who = f"{len(plan.islands)} islands, {CENTRE} (the screen), {', '.join(plan.operators)} (commands)"
    out.print(f"{who}; run: mosquitto -c {out_dir / 'mosquitto.conf'}", markup=False)


@centre_app.command("schedule")
def schedule(
    broker: Annotated[str, typer.Argument(metavar="mqtt[s]://HOST:PORT/CITY", help="The city's MQTT broker.")],
    file: Annotated[Path, typer.Argument(help="The schedule file (CSV or JSON, docs/outage-schedules.md).")],
    queue: Annotated[str, typer.Option("--queue", help="The outage queue (3.1).", show_default=False)],
    by: Annotated[str, typer.Option("--by", help="Who sends it (the islands record it).")] = CENTRE,
    timezone: Annotated[
        str, typer.Option("--timezone", help="The zone of the file's local times when it names none.")
    ] = "Europe/Kyiv",
    mqtt_ca: MqttCaOpt = None,
    mqtt_cert: MqttCertOpt = None,
    mqtt_key: MqttKeyOpt = None,
    mqtt_username: MqttUsernameOpt = None,
    mqtt_password_file: MqttPasswordFileOpt = None,
) -> None:
    """Publish the day's outage schedule of a queue (docs/situation-centre.md): checked as the islands read it
    (exit 2 naming the line), then retained on <city>/schedules/<queue>; every island of the queue keeps it where
    its controller reads its schedule, and its next cycle plans with it."""
    from microgrid.centre.commands import send_schedule
    from microgrid.errors import InputError

    parsed = _broker(broker, MqttLogin(mqtt_ca, mqtt_cert, mqtt_key, mqtt_username, mqtt_password_file), OPERATOR)
    try:
        sent, read = send_schedule(parsed, queue, file, by=by, tz=timezone)
    except InputError as exc:  # ScheduleError: the file, each problem with its line or key
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise fail(EXIT_BAD_INPUT, f"{file}: not a schedule to send: {exc}") from None
    except OSError as exc:
        what = f"{file}: cannot read" if not file.is_file() else f"{broker}: cannot reach the broker"
        raise fail(EXIT_BAD_INPUT, f"{what}: {exc}") from None
    from microgrid.uplink.schedules import span

    out.print(
        f"schedule {sent['id']} for queue {queue}: {span(read)}; retained on {parsed.city}/schedules/{queue}",
        markup=False,
    )
