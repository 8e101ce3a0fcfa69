"""The fuel plan's fleet snapshot from the centre's store (issue 17, item 2; docs/fuel-logistics.md).

The store knows, from each island's latest ``status``: its id, position, fuel stock and burn at the
current rate (and whether it is online). What it does not know — the depot, each tank's capacity, the
islands' criticality weight, a hard ``must_last_h`` — comes from a small YAML file beside it (the
*fleet extra*), validated like the fleet file.

Time 0 of the snapshot is ``now``. Each island's stock is its last reported stock minus what it burns
at its reported rate since that status [l] (floored at 0): a status ``age_h`` old at ``burn_l_per_h``
counts ``burn_l_per_h · age_h`` litres fewer. An island is *offline* when its ``online`` flag is false
and *stale* when its latest status is older than ``stale_after_h``; by default (``offline: project``)
both are planned from that projected last known stock, with ``offline: exclude`` they are left out.
Every island read is listed in :attr:`CentreSnapshot.seen` with what was done with it.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from microgrid.centre.fleet import FleetStore
from microgrid.errors import ConfigError, InputError
from microgrid.logistics import Depot, Fleet, fleet_from_dict
from microgrid.logistics.fleet import DEFAULT_ROAD_FACTOR, Latitude, Longitude
from microgrid.site.model import describe_error
from microgrid.site.values import NonNegative, Positive
from microgrid.yamlio import load_yaml

__all__ = ["DEFAULT_STALE_AFTER_H", "CentreSnapshot", "FleetExtra", "Seen", "fleet_from_centre", "read_fleet_extra"]

DEFAULT_STALE_AFTER_H = 1.0
"""A status older than this [h] is stale (several missed control cycles)."""
_FLEET_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IslandExtra(_Frozen):
    """What the store does not know of one island; ``lat``/``lon`` and ``burn_l_per_h`` replace its status's."""

    capacity_l: Positive | None = None
    weight: Positive | None = None
    must_last_h: NonNegative | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    burn_l_per_h: NonNegative | None = None


class Defaults(_Frozen):
    """For every island the ``islands`` section does not cover: tank [l] (no default) and weight."""

    capacity_l: Positive | None = None
    weight: Positive = 1.0


class FleetExtra(_Frozen):
    """The fleet extra file (docs/fuel-logistics.md, "From the centre's store")."""

    depot: Depot
    road_factor: float = Field(DEFAULT_ROAD_FACTOR, ge=1, le=3, strict=True)
    fuel: str = Field("diesel", min_length=1)
    stale_after_h: Positive = DEFAULT_STALE_AFTER_H
    offline: Literal["project", "exclude"] = "project"
    defaults: Defaults = Defaults()
    islands: dict[str, IslandExtra] = Field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One island of the store: its state (``online``, ``offline``, ``stale``, ``no status``), the status's
    age [h], the stock planned from [l] (projected to now), its burn [l/h] and what was done (``planned``,
    ``planned from last known stock`` or ``excluded: why``)."""

    island: str
    state: str
    age_h: float | None
    stock_l: float | None
    burn_l_per_h: float | None
    action: str


@dataclass(frozen=True)
class CentreSnapshot:
    """The fleet to plan, every island read with what was done with it, and extra ids the store lacks."""

    fleet: Fleet
    seen: list[Seen]
    unknown_extra: list[str]


def read_fleet_extra(path: str | Path) -> FleetExtra:
    """Read and validate the fleet extra YAML; raise :class:`ConfigError` naming every problem by key path."""
    raw = load_yaml(Path(path))
    if not isinstance(raw, dict):
        raise ConfigError(str(path), [f"(top level): must be a mapping, got {type(raw).__name__}"])
    try:
        return FleetExtra.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(str(path), [describe_error(e) for e in exc.errors()]) from None


def _store_rows(path: Path) -> list[dict[str, Any]]:
    """The store's islands (never creating the file); :class:`InputError` naming it when unreadable or empty."""
    if not path.is_file():
        raise InputError(str(path), ["no such file (the centre's store: microgrid centre serve --db)"])
    try:
        probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {name for (name,) in probe.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            probe.close()
        if not {"islands", "messages"} <= tables:
            raise InputError(str(path), ["not a centre store: no islands and messages tables"])
        store = FleetStore(path)
        try:
            rows = store.islands()
        finally:
            store.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(str(path), [f"not a centre store: {exc}"]) from None
    if not rows:
        raise InputError(str(path), ["the centre's store holds no islands (no status received yet)"])
    return rows


def _age_h(ts: Any, now: datetime) -> float | None:
    try:
        when = datetime.strptime(str(ts), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0.0, (now - when).total_seconds() / 3600)


def _skip(row: dict[str, Any], state: str, age_h: float | None, why: str) -> Seen:
    return Seen(row["island"], state, age_h, None, None, f"excluded: {why}")


def _read_island(row: dict[str, Any], extra: FleetExtra, now: datetime) -> tuple[Seen, dict[str, Any] | None]:
    """One store row as a fleet island (a dict for :func:`fleet_from_dict`), or None with why it is left out."""
    status = row.get("status")
    if not status:
        return _skip(row, "no status", None, "no status received"), None
    age_h = _age_h(status.get("ts"), now)
    state = (
        "offline"
        if row.get("online") is False
        else "stale"
        if age_h is None or age_h > extra.stale_after_h
        else "online"
    )
    if state != "online" and extra.offline == "exclude":
        return _skip(row, state, age_h, f"{state} (offline: exclude)"), None
    if not _FLEET_ID.match(row["island"]):
        return _skip(row, state, age_h, "id must start with a letter to be planned"), None
    fuel = (status.get("fuel") or {}).get(extra.fuel)
    if fuel is None or fuel.get("stock") is None or fuel.get("unit") != "l":
        why = "no stock known" if fuel else "does not burn it"
        why = f"{extra.fuel} in {fuel['unit']}, not l" if fuel and fuel.get("unit") != "l" else why
        return _skip(row, state, age_h, f"{extra.fuel}: {why}"), None
    own = extra.islands.get(row["island"], IslandExtra())
    burn = own.burn_l_per_h if own.burn_l_per_h is not None else float(fuel["burn_per_h"])
    stock = max(0.0, float(fuel["stock"]) - burn * (age_h or 0.0))
    action = "planned" if state == "online" else "planned from last known stock"
    position = status.get("position") or {}
    island: dict[str, Any] = {
        "id": row["island"],
        "lat": own.lat if own.lat is not None else position.get("latitude"),
        "lon": own.lon if own.lon is not None else position.get("longitude"),
        "stock_l": round(stock, 3),
        "capacity_l": own.capacity_l if own.capacity_l is not None else extra.defaults.capacity_l,
        "weight": own.weight if own.weight is not None else extra.defaults.weight,
        "burn_l_per_h": burn,
    }
    if own.must_last_h is not None:
        island["must_last_h"] = own.must_last_h
    return Seen(row["island"], state, age_h, island["stock_l"], burn, action), island


def _missing(islands: list[dict[str, Any]]) -> list[str]:
    """What neither the store nor the extra file gives, per island (named with the key to add)."""
    problems = []
    for isl in islands:
        for key, hint in (("lat", "no position in its status"), ("capacity_l", "no defaults.capacity_l")):
            if isl[key] is None:
                problems.append(f"islands.{isl['id']}.{key}: required key is missing ({hint})")
    return problems


def fleet_from_centre(store: str | Path, extra_path: str | Path, now: datetime | None = None) -> CentreSnapshot:
    """The fleet snapshot at ``now`` (default: the wall clock, UTC) from the centre's store and the extra file.

    Raise :class:`InputError` naming the file: a store missing, unreadable or without islands; a key
    neither gives (a tank capacity, a position); no island left to plan; the fleet file's own checks.
    """
    extra = read_fleet_extra(extra_path)
    rows = _store_rows(Path(store))
    seen, islands = [], []
    for row in sorted(rows, key=lambda r: str(r["island"])):
        got, island = _read_island(row, extra, now or datetime.now(UTC))
        seen.append(got)
        islands += [island] if island is not None else []
    source = f"{store} + {extra_path}"
    if problems := _missing(islands):
        raise ConfigError(source, problems)
    if not islands:
        raise InputError(str(store), ["no island left to plan: " + "; ".join(f"{s.island} {s.action}" for s in seen)])
    raw = {"depot": extra.depot.model_dump(), "road_factor": extra.road_factor, "islands": islands}
    fleet = fleet_from_dict(raw, source)
    ids = {r["island"] for r in rows}
    return CentreSnapshot(fleet, seen, sorted(set(extra.islands) - ids))
