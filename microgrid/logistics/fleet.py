"""The fleet snapshot and the trucks: what the fuel plan is made from (docs/fuel-logistics.md).

Units: litres [l], hours [h], kilometres [km], km/h; positions in decimal degrees (WGS 84).
Time 0 is the snapshot's time; day ``d`` of the horizon starts at ``24·d`` h; a truck's shift starts
``shift_start_h`` after the start of each day.

The files are validated like the site file: unknown keys refused, every problem named by its key
path (``islands[3].capacity_l: ...``), cross-checks (an island holding more than its tank, ids given
twice) listed together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from microgrid.errors import ConfigError
from microgrid.site.model import describe_error
from microgrid.site.values import AssetId, NonNegative, Positive
from microgrid.yamlio import load_yaml

__all__ = [
    "DEFAULT_ROAD_FACTOR",
    "Depot",
    "Fleet",
    "Island",
    "Truck",
    "fleet_from_dict",
    "read_fleet",
    "read_trucks",
    "trucks_from_dict",
]

DEFAULT_ROAD_FACTOR = 1.3
"""Road distance / great-circle distance in a city (Kharkiv's radial-ring streets, detours around
closed bridges): a documented rule of thumb, override with the fleet file's ``road_factor``."""

Latitude = Annotated[float, Field(ge=-90, le=90, strict=True, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, strict=True, allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Island(_Frozen):
    """One energy island: where it is, what it holds, what it burns.

    ``burn_l_per_h`` is a constant burn [l/h]; ``burn_profile_l_per_h`` a list of hourly burns [l/h]
    from time 0, repeated when shorter than the horizon (24 values: a daily profile). Give one.
    ``weight`` is the criticality (> 0; a hospital 3, a shelter 1): weighted hours-to-dry are
    hours-to-dry / weight, so a heavier island must last longer to count as much.
    ``must_last_h`` (optional) is a hard requirement: never dry before this many hours.
    ``queue`` (optional) names the island's outage queue: it then burns only while its queue is
    off the grid (the fleet's ``outages``), its burn being the burn while islanded.
    """

    id: AssetId
    lat: Latitude
    lon: Longitude
    stock_l: NonNegative
    capacity_l: Positive
    weight: Positive = 1.0
    burn_l_per_h: NonNegative | None = None
    burn_profile_l_per_h: Annotated[list[NonNegative], Field(min_length=1, max_length=24 * 3)] | None = None
    must_last_h: NonNegative | None = None
    queue: Annotated[str, Field(min_length=1, max_length=32, strict=True)] | None = None

    def burn_at(self, hour: int) -> float:
        """Burn during hour ``hour`` (from time 0) while it runs on diesel [l/h]."""
        if self.burn_profile_l_per_h is not None:
            return self.burn_profile_l_per_h[hour % len(self.burn_profile_l_per_h)]
        return self.burn_l_per_h or 0.0


class Depot(_Frozen):
    """Where the trucks load: position and the diesel it can hand out over the horizon [l]."""

    lat: Latitude
    lon: Longitude
    stock_l: NonNegative


class Fleet(_Frozen):
    """The snapshot: a depot, the islands, the road factor (road km / great-circle km, ≥ 1) and,
    optionally, measured road distances ``road_km[a][b]`` [km] between places (``depot`` or island
    ids): each given pair replaces great-circle × road factor, both ways."""

    depot: Depot
    islands: Annotated[list[Island], Field(min_length=1)]
    road_factor: Annotated[float, Field(ge=1, le=3, strict=True)] = DEFAULT_ROAD_FACTOR
    road_km: dict[str, dict[str, Positive]] | None = None
    outages: dict[str, list[tuple[NonNegative, NonNegative]]] | None = None
    """The outage outlook: per queue, its outages as (start, end) hours from the snapshot."""

    def burn_in_hour(self, island: Island, hour: int) -> float:
        """What ``island`` burns during hour ``hour`` [l/h]: its burn, times the share of the hour its
        queue is off the grid when it has a queue (outages overlapping are counted once)."""
        burn = island.burn_at(hour)
        if island.queue is None:
            return burn
        spans = sorted((max(s, hour), min(e, hour + 1)) for s, e in (self.outages or {}).get(island.queue, ()))
        off, until = 0.0, float(hour)
        for start, end in spans:
            if end > max(start, until):
                off += end - max(start, until)
                until = end
        return burn * off


class Truck(_Frozen):
    """A tanker: capacity [l], speed on the road [km/h], a daily shift [h] starting ``shift_start_h``
    after each day's start, loading at the depot per trip [h], unloading per stop [h], at most
    ``max_stops`` stops per trip, and optionally the trips per shift (default: as many as the
    farthest island's round trip allows, at least one)."""

    id: AssetId
    capacity_l: Positive
    speed_kmh: Positive
    shift_h: Annotated[float, Field(gt=0, le=24, strict=True)]
    shift_start_h: Annotated[float, Field(ge=0, lt=24, strict=True)] = 6.0
    load_h: NonNegative = 0.5
    unload_h: NonNegative = 0.25
    max_stops: Annotated[int, Field(ge=1, le=4, strict=True)] = 3
    trips_per_shift: Annotated[int, Field(ge=1, le=24, strict=True)] | None = None


class _TruckFile(_Frozen):
    trucks: Annotated[list[Truck], Field(min_length=1)]


def _duplicates(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    return [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]


def _fleet_problems(fleet: Fleet) -> list[str]:
    problems = [f"islands: id {i!r} given twice" for i in _duplicates([x.id for x in fleet.islands])]
    for n, island in enumerate(fleet.islands):
        where = f"islands[{n}] ({island.id})"
        if island.stock_l > island.capacity_l:
            problems.append(f"{where}.stock_l: {island.stock_l:g} l is more than its tank ({island.capacity_l:g} l)")
        if (island.burn_l_per_h is None) == (island.burn_profile_l_per_h is None):
            problems.append(f"{where}: give exactly one of burn_l_per_h and burn_profile_l_per_h")
    for n, island in enumerate(fleet.islands):
        if island.queue is not None and island.queue not in (fleet.outages or {}):
            problems.append(f"islands[{n}] ({island.id}).queue: {island.queue!r} has no entry in outages")
    for queue, spans in (fleet.outages or {}).items():
        problems += [
            f"outages.{queue}[{k}]: ends ({e:g} h) before it starts ({s:g} h)"
            for k, (s, e) in enumerate(spans)
            if e < s
        ]
    return problems + _road_problems(fleet)


def _road_problems(fleet: Fleet) -> list[str]:
    """Places in ``road_km`` must be ``depot`` or an island id (and no island may be called ``depot``)."""
    if not fleet.road_km:
        return []
    ids = {i.id for i in fleet.islands}
    problems = ["islands: id 'depot' is reserved when road_km is given"] if "depot" in ids else []
    for a, row in fleet.road_km.items():
        problems += [f"road_km.{a}: unknown place (not depot nor an island id)"] if a not in ids | {"depot"} else []
        problems += [
            f"road_km.{a}.{b}: unknown place (not depot nor an island id)" for b in row if b not in ids | {"depot"}
        ]
    return problems


def _validate(kind: type[_Frozen], raw: Any, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"(top level): must be a mapping, got {type(raw).__name__}"])
    try:
        return kind.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, [describe_error(e) for e in exc.errors()]) from None


def fleet_from_dict(raw: Any, source: str = "<fleet>") -> Fleet:
    """A :class:`Fleet` from parsed YAML; raise :class:`ConfigError` listing every problem by key path."""
    fleet: Fleet = _validate(Fleet, raw, source)
    if problems := _fleet_problems(fleet):
        raise ConfigError(source, problems)
    return fleet


def trucks_from_dict(raw: Any, source: str = "<trucks>") -> list[Truck]:
    """The trucks from parsed YAML (``trucks: [...]``); raise :class:`ConfigError` naming each problem."""
    trucks: list[Truck] = _validate(_TruckFile, raw, source).trucks
    if twice := _duplicates([t.id for t in trucks]):
        raise ConfigError(source, [f"trucks: id {i!r} given twice" for i in twice])
    return trucks


def read_fleet(path: str | Path) -> Fleet:
    """Read and validate a fleet YAML file (format: docs/fuel-logistics.md)."""
    return fleet_from_dict(load_yaml(Path(path)), str(path))


def read_trucks(path: str | Path) -> list[Truck]:
    """Read and validate a trucks YAML file (format: docs/fuel-logistics.md)."""
    return trucks_from_dict(load_yaml(Path(path)), str(path))
