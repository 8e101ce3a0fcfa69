"""``microgrid override``: an operator's action left in the store (mode, manual setpoints, emergency mode, the
next fuel delivery), which the running controller applies at its next cycle and marks applied or refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from microgrid.cli.common import EXIT_BAD_INPUT, app, fail, out
from microgrid.cli.store_args import MODES, StoreOpt, open_store, printable, store_path

__all__ = ["override"]


@app.command()
def override(
    mode: Annotated[str | None, typer.Option("--mode", help="Set the mode: auto, manual, safe or dry-run.")] = None,
    battery: Annotated[
        list[str] | None, typer.Option("--battery", help="Manual battery setpoint ID=KW (+ discharge).")
    ] = None,
    generator: Annotated[
        list[str] | None, typer.Option("--generator", help="Manual genset setpoint ID=KW (0 = stop).")
    ] = None,
    tier: Annotated[list[str] | None, typer.Option("--tier", help="Manual feeder state TIER=on|off.")] = None,
    emergency: Annotated[
        str | None,
        typer.Option("--emergency", help="on: plan for no grid (the schedule is void); off: back to the schedule."),
    ] = None,
    fuel_delivery_at: Annotated[
        str | None,
        typer.Option(
            "--fuel-delivery-at",
            help="When the next fuel delivery comes (ISO 8601 with a UTC offset, e.g. 2026-01-21T08:00+02:00), "
            "or 'none': the long outlook rations fuel only until then, and within the 24 h plan the tank "
            "need last only until then.",
        ),
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who asks (kept in the history).")] = None,
    store: StoreOpt = None,
) -> None:
    """Change the mode of a running controller, give it manual setpoints, enter / leave emergency mode, or
    tell it when the next fuel delivery comes (applied at its next cycle).

    Manual setpoints change only the assets they name (the rest keep following the plan) and are
    checked first: plain finite numbers within each asset's limits (a genset: 0 to stop, or within
    [min_kw, max_kw]), known ids, and the most important tier never switched off; else exit 2.
    """
    from microgrid.store import Store, StoreError

    payload = _manual_payload(battery or [], generator or [], tier or [])
    _check_override_options(mode, emergency, by, bool(payload) or fuel_delivery_at is not None)
    delivery = _delivery_payload(fuel_delivery_at)
    path = store_path(store)
    if not path.exists():
        raise fail(EXIT_BAD_INPUT, f"{path}: no history: is the controller running with this store?")
    if payload:
        _check_against_site(path, payload)
    try:
        with Store(path) as writer:
            ids = []
            if payload:
                ids.append(writer.add_action("manual", payload, by=by))
            if mode is not None and not (payload and mode == "manual"):
                ids.append(writer.add_action("mode", {"mode": mode}, by=by))
            if emergency is not None:
                ids.append(writer.add_action("emergency", {"on": emergency == "on"}, by=by))
            if delivery is not None:
                ids.append(writer.add_action("fuel_delivery", delivery, by=by))
    except StoreError as exc:
        raise fail(EXIT_BAD_INPUT, f"{path}: {exc}") from None
    out.print(f"queued operator action(s) {ids}: the controller applies them at its next cycle", markup=False)


def _check_override_options(mode: str | None, emergency: str | None, by: str | None, manual: bool) -> None:
    if by is not None and (not by.strip() or printable(by) != by):
        raise fail(EXIT_BAD_INPUT, f"--by: a name of printable characters, got {printable(by)!r}")
    if mode is None and not manual and emergency is None:
        raise fail(
            EXIT_BAD_INPUT, "nothing to override: give --mode, --emergency, --fuel-delivery-at or manual setpoints"
        )
    if emergency is not None and emergency not in ("on", "off"):
        raise fail(EXIT_BAD_INPUT, f"--emergency: on or off, got {emergency!r}")
    if mode is not None and mode not in MODES:
        raise fail(EXIT_BAD_INPUT, f"--mode: one of {', '.join(MODES)}, got {mode!r}")


def _delivery_payload(text: str | None) -> dict[str, str | None] | None:
    """``--fuel-delivery-at`` as the action's payload (UTC, ISO 8601; None: not known); exit 2 when invalid."""
    if text is None:
        return None
    from microgrid.control.resupply import delivery_time

    try:
        when = delivery_time(text)
    except ValueError as exc:
        raise fail(EXIT_BAD_INPUT, f"--fuel-delivery-at: {exc}") from None
    return {"at": when.isoformat() if when else None}


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
"""A plain decimal number of kW (no 1e12, no 1_000, no nan or inf)."""


def _manual_payload(battery: list[str], generator: list[str], tier: list[str]) -> dict[str, dict[str, Any]]:
    payload: dict[str, dict[str, Any]] = {}
    problems = []
    for key, items, flag in (("battery_kw", battery, "--battery"), ("generator_kw", generator, "--generator")):
        for item in items:
            name, sep, value = item.partition("=")
            if not sep or not name or not _NUMBER.match(value.strip()):
                problems.append(f"{flag} {item!r}: expected ID=KW with a plain number of kW")
            else:
                payload.setdefault(key, {})[name] = float(value)
    for item in tier:
        name, sep, value = item.partition("=")
        if not sep or value not in ("on", "off"):
            problems.append(f"--tier {item!r}: expected TIER=on or TIER=off")
        else:
            payload.setdefault("tier_connected", {})[name] = value == "on"
    if problems:
        raise fail(EXIT_BAD_INPUT, "; ".join(problems))
    return payload


def _check_against_site(path: Path, payload: dict[str, dict[str, Any]]) -> None:
    """Refuse (exit 2) what the running controller would refuse, using the site's limits it recorded last."""
    from microgrid.control.decisions import override_problems

    reader = open_store(path)
    try:
        last = reader.last_cycle()
    finally:
        reader.close()
    limits = (last or {}).get("summary", {}).get("limits")
    if limits is None:
        out.print("note: no cycle with the site's limits recorded yet: the controller checks them", markup=False)
        return
    if problems := override_problems(payload, limits):
        raise fail(EXIT_BAD_INPUT, "; ".join(problems))


# -- demo ------------------------------------------------------------------------------------
