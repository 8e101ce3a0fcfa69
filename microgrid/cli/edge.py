"""``microgrid sim``, ``read``, ``write`` and ``scan``: the device edge from the command line."""

from __future__ import annotations

import json
import math
import signal
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from microgrid.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_DEVICE,
    SiteArg,
    app,
    connect_devices,
    err,
    fail,
    load_site,
    out,
    run_async,
)
from microgrid.errors import DeviceError, InputError

if TYPE_CHECKING:  # pydantic, pymodbus, numpy, pandas load only in the commands that use them (issue 14)
    from microgrid.telemetry.devices import Measurement
    from microgrid.telemetry.wiring import SiteDevices

T = TypeVar("T")


# -- sim -------------------------------------------------------------------------------------


@app.command()
def sim(
    site: SiteArg,
    profiles: Annotated[
        Path | None,
        typer.Option("--profiles", help="Loads, PV (kW) and outages over time; default: a synthetic day for the site."),
    ] = None,
    speed: Annotated[
        float,
        typer.Option("--speed", min=0.01, max=10000, help="Simulated seconds per real second (60: a day in 24 min)."),
    ] = 1.0,
    sunspec: Annotated[
        bool,
        typer.Option(
            "--sunspec", help="Battery inverters also answer as SunSpec devices (models 1, 124, 802 at 40000)."
        ),
    ] = False,
    duration_s: Annotated[
        float | None,
        typer.Option("--duration-s", min=0.1, help="Stop after this many real seconds (default: run until Ctrl-C)."),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Serve devices whose host is not a loopback address (an unauthenticated, writable Modbus server "
            "on that network: only on a test bench).",
        ),
    ] = False,
) -> None:
    """Serve SITE's devices as a simulated plant over Modbus TCP on loopback (see `devices:` in the site file).

    A device whose host is not loopback (127.x, ::1, localhost) is refused (exit 2) unless --allow-remote.
    """
    from microgrid.profiles import read_profiles
    from microgrid.sim.default_profiles import synthetic_day
    from microgrid.sim.server import SimulatedSite

    parsed = load_site(site)
    if not parsed.devices:
        raise fail(EXIT_BAD_INPUT, f"{site}: no 'devices' section: nothing to serve")
    remote = sorted({b.host for b in parsed.devices if not _loopback(b.host)})
    if remote and not allow_remote:
        raise fail(
            EXIT_BAD_INPUT,
            f"{site}: devices bind {', '.join(remote)}, beyond loopback: a simulated plant is an unauthenticated, "
            "writable Modbus server; pass --allow-remote to serve it there anyway",
        )
    connect_devices(parsed, site)  # maps exist and fit their assets
    try:
        forecast = read_profiles(profiles, parsed) if profiles else synthetic_day(parsed)
    except InputError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    simulated = SimulatedSite(parsed, forecast, speed=speed, sunspec=sunspec)
    for binding in parsed.devices:
        out.print(
            f"{binding.id:>16}  {binding.map:<28} {binding.host}:{binding.port} unit {binding.unit}", markup=False
        )
    out.print(f"simulating {parsed.site.name} at {speed:g}x; Ctrl-C to stop", markup=False)
    try:
        run_async(_serve(simulated, duration_s))
    except OSError as exc:
        raise fail(EXIT_DEVICE, f"cannot open the simulated devices' ports: {exc}") from None


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _serve(simulated: Any, duration_s: float | None) -> None:
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with simulated:
        waiters: list[Awaitable[Any]] = [stop.wait()]
        if duration_s is not None:
            waiters.append(asyncio.sleep(duration_s))
        await asyncio.wait([asyncio.ensure_future(w) for w in waiters], return_when=asyncio.FIRST_COMPLETED)


# -- read ------------------------------------------------------------------------------------


def _format(m: Measurement) -> str:
    if m.value is None:
        return "-"
    return f"{m.value:.6g}" if isinstance(m.value, float) else str(m.value)


@app.command("read")
def read_command(
    site: SiteArg,
    device: Annotated[
        str | None, typer.Option("--device", help="Read only this device (its id in the site file).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: device → point → value, unit, quality.")
    ] = False,
) -> None:
    """Read every device of SITE once and print each measurement with its unit and quality.

    Exit 0 when every device answered, 4 when one did not (its values are then stale or missing).
    """
    parsed = load_site(site)
    devices = connect_devices(parsed, site)
    if device is not None and device not in devices.devices:
        raise fail(EXIT_BAD_INPUT, f"no device {device!r} in {site} ({', '.join(devices.devices)})")
    if device is not None:
        devices.devices = {device: devices.devices[device]}
        devices.bindings = {device: devices.bindings[device]}
    snapshot = run_async(_read(devices))
    if as_json:
        print(json.dumps({d: {n: _as_dict(m) for n, m in ms.items()} for d, ms in snapshot.items()}))
    else:
        _print_snapshot(snapshot)
    failed = [d for d, dev in devices.devices.items() if dev.last_error]
    for d in failed:
        err.print(f"{d}: {devices.devices[d].last_error}", markup=False)
    if failed:
        raise typer.Exit(EXIT_DEVICE)


async def _read(devices: SiteDevices) -> dict[str, dict[str, Measurement]]:
    try:
        return await devices.read_all()
    finally:
        devices.close()


def _as_dict(m: Measurement) -> dict[str, Any]:
    return {"value": m.value, "unit": m.unit, "quality": m.quality.value, "time": m.timestamp.isoformat()}


def _print_snapshot(snapshot: dict[str, dict[str, Measurement]]) -> None:
    from microgrid.telemetry.registers import Quality

    table = Table(title="Measurements", title_justify="left")
    for column, justify in (
        ("device", "left"),
        ("point", "left"),
        ("value", "right"),
        ("unit", "left"),
        ("quality", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for device_id, measurements in snapshot.items():
        for name, m in measurements.items():
            style = None if m.quality is Quality.OK else "yellow"
            table.add_row(device_id, name, _format(m), m.unit or "", m.quality.value, style=style)
    out.print(table)


# -- write -----------------------------------------------------------------------------------


@app.command(context_settings={"ignore_unknown_options": True})  # lets VALUE be negative: -20
def write(
    site: SiteArg,
    device: Annotated[str, typer.Argument(help="Device id in the site file, e.g. bess1-inverter.", show_default=False)],
    point: Annotated[
        str, typer.Argument(help="Writable point of its map, e.g. power_setpoint_kw.", show_default=False)
    ],
    value: Annotated[str, typer.Argument(help="Value in the point's unit (kW, %, s…), e.g. -20.", show_default=False)],
) -> None:
    """Write one point of one device (commissioning), then read it back.

    Read-only points and values outside the point's range or the site's limits (a battery's
    charge/discharge power, a genset's max_kw) are refused with exit 2; no answer or a
    read-back mismatch exits 4, and so does a write with no clear answer whose read-back fails too
    (its outcome is unknown).
    """
    from microgrid.telemetry.limits import site_limits

    parsed = load_site(site)
    devices = connect_devices(parsed, site)
    if device not in devices.devices:
        raise fail(EXIT_BAD_INPUT, f"no device {device!r} in {site} ({', '.join(devices.devices)})")
    target = devices.devices[device]
    number = _number(value, point)
    limits = site_limits(parsed, devices.bindings[device], target.map)
    why = target.check(point, number, limits)
    if why is not None:
        raise fail(EXIT_BAD_INPUT, f"{device}.{point}: {why}")
    report = run_async(_write(devices, device, point, number, limits))
    if report.refused:
        raise fail(EXIT_DEVICE, f"{device}.{point}: {report.refused[point]}")
    if report.unknown:
        raise fail(EXIT_DEVICE, f"{device}.{point}: outcome unknown: {report.unknown[point]}")
    if report.mismatches:
        wanted, back = report.mismatches[point]
        raise fail(EXIT_DEVICE, f"{device}.{point}: wrote {wanted}, read back {back}")
    how = f" ({report.notes[point]})" if point in report.notes else " (read back)"
    out.print(f"{device}.{point} = {number:g} {target.map.by_name[point].unit or ''}{how}", markup=False)


def _number(text: str, point: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise fail(EXIT_BAD_INPUT, f"{point}: not a number, got {text!r}") from None
    if not math.isfinite(number):
        raise fail(EXIT_BAD_INPUT, f"{point}: not a finite number, got {text!r}")
    return number


async def _write(
    devices: SiteDevices, device: str, point: str, value: float, limits: dict[str, tuple[float, float]]
) -> Any:
    try:
        return await devices.devices[device].write({point: value}, limits)
    finally:
        devices.close()


# -- scan ------------------------------------------------------------------------------------


@app.command()
def scan(
    address: Annotated[
        str, typer.Argument(help="HOST or HOST:PORT (default port 502), e.g. 127.0.0.1:15021.", show_default=False)
    ],
    unit: Annotated[int, typer.Option("--unit", min=0, max=247, help="Modbus unit id.")] = 1,
    timeout_s: Annotated[
        float, typer.Option("--timeout-s", min=0.05, max=30, help="Per-request timeout in seconds.")
    ] = 1.0,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print one object: {"models": [...], "points": {"802.SoC": 65.5, ...}}.')
    ] = False,
) -> None:
    """Discover a SunSpec device (SunS at 40000, 0 or 50000) and print its models and every decoded point.

    Values are in SunSpec units with scale factors applied. Exit 2 on a bad address, 4 when
    nothing answers or no SunSpec device is found there.
    """
    from microgrid.telemetry.scan import format_table, run_scan, to_json

    try:
        result = run_scan(address, unit=unit, timeout_s=timeout_s)
    except ValueError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    except DeviceError as exc:
        raise fail(EXIT_DEVICE, str(exc)) from None
    if as_json:
        print(to_json(result))
    else:
        out.print(format_table(result))
    for problem in result.all_problems:
        err.print(f"warning: {problem}", markup=False)
