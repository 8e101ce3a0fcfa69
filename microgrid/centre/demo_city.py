"""The simulated city of ``microgrid centre demo``: island templates and the seeded islands built from them.

Templates (``models/centre/templates/<kind>.yaml``, schema ``models/centre/template.schema.json``) give
one kind of island's base sizes: load per tier [kW], PV peak [kW], battery [kWh, kW, SOC fractions],
gensets [kW, l/kWh, l/h] and its diesel tank [l]. :func:`city` places ``n`` islands where the
logistics' simulated city puts them (:func:`microgrid.logistics.city.city_fleet`: positions around
Kharkiv, one hospital in eight, one shelter in four; the others alternate water-pumping stations and
boiler houses) and draws, from one seed, each island's size factor, initial SOC and fuel stock, and
its outage queue (``1.1`` … ``3.2``, balanced). Its district is the compass sector of its position
seen from the city centre (``centre`` within 5 km): a stand-in for the real boundaries.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
import numpy as np
import yaml

from microgrid.errors import ConfigError
from microgrid.logistics.city import KHARKIV, city_fleet
from microgrid.resources import shipped

__all__ = ["QUEUES", "TEMPLATES", "GensetSpec", "IslandSpec", "city", "district_of", "load_template", "template"]

TEMPLATES = ("hospital", "water-pumping", "boiler-house", "shelter")
"""The shipped templates, one per kind of island."""
QUEUES = ("1.1", "1.2", "2.1", "2.2", "3.1", "3.2")
"""The outage queues the demo's islands are spread over (restored in this order)."""
_PREFIX = {"hospital": "hospital", "water-pumping": "pumps", "boiler-house": "boiler", "shelter": "shelter"}
_KM_PER_DEG_LAT = 111.2
CENTRE_KM = 5.0
"""Islands within this distance [km] of the city centre are in the ``centre`` district."""


@dataclass(frozen=True)
class GensetSpec:
    """One genset: output range [kW], fuel per kWh [l/kWh] and per running hour [l/h]."""

    id: str
    max_kw: float
    min_kw: float
    fuel_per_kwh: float
    fuel_per_hour_running: float


@dataclass(frozen=True)
class IslandSpec:
    """One simulated island, sizes already scaled (kW, kWh, l; SOC as fractions 0-1)."""

    island: str
    kind: str
    label: str
    latitude: float
    longitude: float
    district: str
    queue: str
    loads_kw: dict[str, float]
    pv_kwp: float
    capacity_kwh: float
    power_kw: float
    soc_min: float
    soc_max: float
    initial_soc: float
    gensets: tuple[GensetSpec, ...]
    tank_l: float
    stock_l: float


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(shipped("models", "centre", "template.schema.json").read_text("utf-8"))
    return schema


def load_template(raw: Any, source: str) -> dict[str, Any]:
    """Check one parsed template against its schema and the cross checks; raise :class:`ConfigError` naming all."""
    validator = jsonschema.Draft202012Validator(_schema())
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in validator.iter_errors(raw)
    ]
    if not problems:
        ranges = {
            "scale": raw["scale"],
            "battery/initial_soc": raw["battery"]["initial_soc"],
            "fuel/stock": raw["fuel"]["stock"],
        }
        problems += [f"{k}: low {v[0]} above high {v[1]}" for k, v in ranges.items() if v[0] > v[1]]
        if raw["battery"]["soc_min"] >= raw["battery"]["soc_max"]:
            problems.append("battery: soc_min must be below soc_max")
        problems += [
            f"gensets/{i}: min_kw above max_kw" for i, g in enumerate(raw["gensets"]) if g["min_kw"] > g["max_kw"]
        ]
        if any(v > 1 for v in (*raw["fuel"]["stock"], *raw["battery"]["initial_soc"])):
            problems.append("fuel/stock and battery/initial_soc are fractions (at most 1)")
    if problems:
        raise ConfigError(source, problems)
    return dict(raw)


@cache
def template(kind: str) -> dict[str, Any]:
    """The shipped template of ``kind`` (one of :data:`TEMPLATES`), validated."""
    path = shipped("models", "centre", "templates", f"{kind}.yaml")
    return load_template(yaml.safe_load(path.read_text("utf-8")), f"models/centre/templates/{kind}.yaml")


def district_of(latitude: float, longitude: float) -> str:
    """``centre`` within :data:`CENTRE_KM` of Kharkiv's centre, else ``north``/``east``/``south``/``west``
    by the compass sector (90° each) of the bearing from the centre."""
    north_km = (latitude - KHARKIV[0]) * _KM_PER_DEG_LAT
    east_km = (longitude - KHARKIV[1]) * _KM_PER_DEG_LAT * math.cos(math.radians(KHARKIV[0]))
    if math.hypot(north_km, east_km) < CENTRE_KM:
        return "centre"
    bearing = math.degrees(math.atan2(east_km, north_km)) % 360
    return ("north", "east", "south", "west")[int(((bearing + 45) % 360) // 90)]


def _kind(n: int, logistics_kind: str) -> str:
    if logistics_kind in ("hospital", "shelter"):
        return logistics_kind
    return "water-pumping" if n % 4 == 2 else "boiler-house"


def _island(n: int, kind: str, *, lat: float, lon: float, queue: str, rng: np.random.Generator) -> IslandSpec:
    t = template(kind)
    k = float(rng.uniform(*t["scale"]))
    bat, fuel = t["battery"], t["fuel"]
    gensets = tuple(
        GensetSpec(f"dg{i + 1}", round(g["max_kw"] * k, 1), round(g["min_kw"] * k, 1), g["fuel_per_kwh"],
                   round(g["fuel_per_hour_running"] * k, 2))
        for i, g in enumerate(t["gensets"])
    )  # fmt: skip
    tank = round(fuel["tank_l"] * k, -1)
    return IslandSpec(
        island=f"{_PREFIX[kind]}-{n:02d}",
        kind=kind,
        label=f"{t['label']} {n}",
        latitude=lat,
        longitude=lon,
        district=district_of(lat, lon),
        queue=queue,
        loads_kw={tier: round(kw * k, 1) for tier, kw in t["loads_kw"].items()},
        pv_kwp=round(t["pv_kwp"] * k, 1),
        capacity_kwh=round(bat["capacity_kwh"] * k, 1),
        power_kw=round(bat["power_kw"] * k, 1),
        soc_min=bat["soc_min"],
        soc_max=bat["soc_max"],
        initial_soc=round(float(rng.uniform(*bat["initial_soc"])), 3),
        gensets=gensets,
        tank_l=tank,
        stock_l=round(tank * float(rng.uniform(*fuel["stock"])), 0),
    )


def city(n: int = 24, *, seed: int = 0) -> list[IslandSpec]:
    """``n`` islands of the simulated city (module docstring), the same for the same ``seed``."""
    if n < 1:
        raise ValueError(f"a city needs at least one island, got {n}")
    rng = np.random.default_rng(seed)
    queues = [QUEUES[i % len(QUEUES)] for i in range(n)]
    rng.shuffle(queues)
    fleet = city_fleet(n, seed=seed)
    return [
        _island(i, _kind(i, place.id.rsplit("-", 1)[0]), lat=place.lat, lon=place.lon, queue=queues[i], rng=rng)
        for i, place in enumerate(fleet.islands)
    ]
