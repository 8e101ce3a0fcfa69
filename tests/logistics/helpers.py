"""Tiny fleets for the logistics tests: positions given as km east/north of the depot."""

from __future__ import annotations

import math
from typing import Any

from microgrid.logistics import Fleet, Truck, fleet_from_dict

DEPOT = (50.0, 36.2)


def at_km(east_km: float, north_km: float) -> dict[str, float]:
    """The lat/lon ``east_km`` east and ``north_km`` north of the depot (great circle; road factor 1)."""
    lat = DEPOT[0] + north_km / 111.195
    lon = DEPOT[1] + east_km / (111.195 * math.cos(math.radians(DEPOT[0])))
    return {"lat": lat, "lon": lon}


def island(name: str, east_km: float, north_km: float, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": name, **at_km(east_km, north_km), "capacity_l": 500.0, "burn_l_per_h": 5.0}
    return base | fields


def fleet(*islands: dict[str, Any], depot_l: float = 10_000.0, **more: Any) -> Fleet:
    depot = {"lat": DEPOT[0], "lon": DEPOT[1], "stock_l": depot_l}
    return fleet_from_dict({"depot": depot, "road_factor": 1.0, "islands": list(islands), **more})


def truck(**fields: Any) -> Truck:
    base: dict[str, Any] = {
        "id": "t1",
        "capacity_l": 1000.0,
        "speed_kmh": 30.0,
        "shift_h": 4.0,
        "shift_start_h": 0.0,
        "load_h": 0.5,
        "unload_h": 0.25,
        "max_stops": 1,
        "trips_per_shift": 2,
    }
    return Truck.model_validate(base | fields)
