"""A simulated city fleet around Kharkiv (seeded): islands, one depot, a few trucks.

Islands are scattered within ``radius_km`` of the centre (50.00° N, 36.23° E); one in eight is a
hospital (weight 3, larger burn), one in four a shelter (weight 2), the rest weight 1. Stocks are
drawn so that some islands run dry within a day and most within the horizon.
"""

from __future__ import annotations

import math

import numpy as np

from microgrid.logistics.fleet import Depot, Fleet, Island, Truck

__all__ = ["KHARKIV", "city_fleet", "city_trucks"]

KHARKIV = (50.0, 36.23)
"""The city centre (lat, lon) [°]."""

_KM_PER_DEG_LAT = 111.2


def _position(rng: np.random.Generator, radius_km: float) -> tuple[float, float]:
    r, a = radius_km * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
    lat = KHARKIV[0] + r * math.sin(a) / _KM_PER_DEG_LAT
    lon = KHARKIV[1] + r * math.cos(a) / (_KM_PER_DEG_LAT * math.cos(math.radians(KHARKIV[0])))
    return round(lat, 5), round(lon, 5)


def _island(rng: np.random.Generator, n: int, radius_km: float) -> Island:
    kind = "hospital" if n % 8 == 0 else "shelter" if n % 4 == 1 else "island"
    weight = {"hospital": 3.0, "shelter": 2.0, "island": 1.0}[kind]
    burn = float(round(rng.uniform(20, 40) if kind == "hospital" else rng.uniform(4, 15), 1))
    capacity = float(round(burn * rng.uniform(60, 96), -1))
    stock = float(round(burn * rng.uniform(9, 40), 0))
    lat, lon = _position(rng, radius_km)
    return Island(
        id=f"{kind}-{n:03d}",
        lat=lat,
        lon=lon,
        stock_l=min(stock, capacity),
        capacity_l=capacity,
        weight=weight,
        burn_l_per_h=burn,
    )


def city_fleet(islands: int = 30, *, seed: int = 0, radius_km: float = 15.0, depot_l: float = 200_000.0) -> Fleet:
    """``islands`` islands around Kharkiv with seeded random stocks [l], tanks [l] and burns [l/h]."""
    rng = np.random.default_rng(seed)
    depot = Depot(lat=49.95, lon=36.33, stock_l=depot_l)
    return Fleet(depot=depot, islands=[_island(rng, n, radius_km) for n in range(islands)])


def city_trucks(count: int = 3, *, capacity_l: float = 6000.0) -> list[Truck]:
    """``count`` equal tankers: 6 m³, 30 km/h in the city, 10 h shifts from 07:00, 3 stops a trip."""
    return [
        Truck(
            id=f"truck-{k + 1}",
            capacity_l=capacity_l,
            speed_kmh=30.0,
            shift_h=10.0,
            shift_start_h=7.0,
            load_h=0.5,
            unload_h=0.25,
            max_stops=3,
        )
        for k in range(count)
    ]
