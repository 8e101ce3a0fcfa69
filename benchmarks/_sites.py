"""The benchmark cases: the shipped hospital and two scaled-up islands, generated in code.

Every case is deterministic (fixed formulas and a seeded generator), so timings can be
compared across commits. Cases return plain dicts and frames; ``benchmarks/plan.py`` turns
them into a site and profiles through the public API.

* ``a``: the shipped hospital (``models/sites/hospital.yaml`` + ``data/hospital-winter-day.csv``),
  96 × 15-min steps, 2 batteries + 2 gensets.
* ``b``: the hospital scaled ×5 with 10 batteries + 10 gensets of varied sizes, 96 × 15-min
  steps, the hospital's winter day (loads, PV, grid limits and fuel stock ×5; same outage
  pattern and tariff).
* ``c``: the hospital scaled ×2 with 4 batteries + 4 gensets over 48 h of 5-min steps
  (576 steps), profiles from the same recipe as ``data/make_hospital_profiles.py``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
HOSPITAL_SITE = ROOT / "models" / "sites" / "hospital.yaml"
HOSPITAL_WINTER = ROOT / "data" / "hospital-winter-day.csv"
DAY_PRICE, NIGHT_PRICE = 4.32, 2.16
_SEED = 20260115


@dataclass(frozen=True)
class Case:
    """One benchmark case: a site dict (site-YAML layout) and a profiles frame (CSV layout, text cells)."""

    key: str
    title: str
    site: dict[str, Any]
    profiles: pd.DataFrame

    @property
    def steps(self) -> int:
        """Number of steps T."""
        return len(self.profiles)


def hospital_site() -> dict[str, Any]:
    """The shipped hospital site, as parsed YAML."""
    raw: dict[str, Any] = yaml.safe_load(HOSPITAL_SITE.read_text(encoding="utf-8"))
    return raw


def hospital_winter() -> pd.DataFrame:
    """The shipped winter-day profiles (96 × 15 min), as text cells."""
    return pd.read_csv(HOSPITAL_WINTER, dtype=str, keep_default_na=False)


def _scaled_site(
    name: str, scale: float, batteries: int, generators: int, *, rng: np.random.Generator, days: int = 1
) -> dict[str, Any]:
    """The hospital with ``batteries`` + ``generators`` of varied sizes and everything else × ``scale``."""
    raw = copy.deepcopy(hospital_site())
    raw["site"]["name"] = name
    bess, dg = raw["batteries"], raw["generators"]
    raw["batteries"] = []
    for i in range(batteries):
        base = bess[i % len(bess)]
        size = float(rng.uniform(0.75, 1.35))
        cap = round(base["capacity_kwh"] * size / 10) * 10
        raw["batteries"].append(
            {
                **base,
                "id": f"bess{i + 1}",
                "capacity_kwh": cap,
                "max_charge_kw": round(cap * float(rng.uniform(0.4, 0.6))),
                "max_discharge_kw": round(cap * float(rng.uniform(0.45, 0.6))),
                "charge_efficiency": round(float(rng.uniform(0.93, 0.97)), 3),
                "discharge_efficiency": round(float(rng.uniform(0.93, 0.97)), 3),
                "wear_cost_per_kwh": round(float(rng.uniform(1.0, 1.8)), 2),
                "initial_soc": round(float(rng.uniform(0.3, 0.7)), 2),
            }
        )
    raw["generators"] = []
    for i in range(generators):
        base = dg[i % len(dg)]
        max_kw = round(base["max_kw"] * float(rng.uniform(0.8, 1.25)) / 10) * 10
        raw["generators"].append(
            {
                **base,
                "id": f"dg{i + 1}",
                "max_kw": max_kw,
                "min_kw": round(max_kw * float(rng.uniform(0.25, 0.35))),
                "fuel_per_kwh": round(float(rng.uniform(0.23, 0.27)), 3),
                "fuel_per_hour_running": round(max_kw / 200 * float(rng.uniform(3.0, 4.0)), 2),
                "startup_cost": round(float(rng.uniform(100, 200))),
                "min_up_h": float(rng.choice([0.5, 1.0, 1.5])),
                "min_down_h": float(rng.choice([0.5, 1.0])),
            }
        )
    raw["fuels"]["diesel"]["stock"] = raw["fuels"]["diesel"]["stock"] * scale * days
    raw["pv"][0]["peak_kw"] = raw["pv"][0]["peak_kw"] * scale
    raw["grid"]["max_import_kw"] = raw["grid"]["max_import_kw"] * scale
    return raw


def _bump(hour: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((hour - centre) / width) ** 2)


def winter_profiles(days: int, freq: str, scale: float) -> pd.DataFrame:
    """Winter days in the recipe of ``data/make_hospital_profiles.py`` (loads and PV × ``scale``).

    The 4-hours-on / 4-hours-off outage pattern and the two-zone tariff are the hospital's;
    later days are a little colder (loads up) and cloudier (PV down).
    """
    start = pd.Timestamp("2026-01-15", tz="Europe/Kyiv")
    step_h = pd.Timedelta(freq) / pd.Timedelta(hours=1)
    index = pd.date_range(start, periods=round(days * 24 / step_h), freq=freq)
    hour = (index.hour + index.minute / 60 + step_h / 2).to_numpy()
    day = ((index - start) // pd.Timedelta(days=1)).to_numpy()
    daytime = _bump(hour, 13.0, 3.5)
    meals = _bump(hour, 8.0, 0.7) + _bump(hour, 13.0, 0.7) + _bump(hour, 18.5, 0.8)
    wiggle = (1 + 0.03 * np.sin(hour * 2.7) + 0.02 * np.cos(hour * 5.1)) * (1 + 0.04 * day)
    phase = np.clip((hour - 7.7) / (16.2 - 7.7), 0.0, 1.0)
    pv = 52.0 * np.sin(math.pi * phase) ** 1.5 * (1 - 0.3 * np.minimum(day, 1))
    night = (index.hour >= 23) | (index.hour < 7)
    return pd.DataFrame(
        {
            "timestamp": [t.isoformat() for t in index],
            "load.critical": (scale * (88 + 26 * daytime) * wiggle).round(1),
            "load.essential": (scale * (72 + 55 * daytime + 30 * meals) * wiggle).round(1),
            "load.comfort": (scale * (22 + 70 * daytime) * wiggle).round(1),
            "pv.roof": (scale * pv).round(1),
            "grid.available": ((index.hour // 4) % 2 == 0).astype(int),
            "grid.import_price_per_kwh": np.where(night, NIGHT_PRICE, DAY_PRICE),
        }
    ).astype(str)


def scaled_frame(frame: pd.DataFrame, scale: float) -> pd.DataFrame:
    """``frame`` with its load and PV columns × ``scale`` (timestamps, grid and prices unchanged)."""
    out = frame.copy()
    for column in out.columns:
        if column.startswith(("load.", "pv.")):
            out[column] = (out[column].astype(float) * scale).round(1).astype(str)
    return out


def case_a() -> Case:
    """The shipped hospital: 96 steps, 2 batteries + 2 gensets."""
    return Case("a", "hospital 96×15min 2+2", hospital_site(), hospital_winter())


def case_b() -> Case:
    """The hospital ×5: 96 steps, 10 batteries + 10 gensets, the hospital's outage pattern."""
    rng = np.random.default_rng(_SEED)
    site = _scaled_site("Hospital ×5 (benchmark)", 5.0, 10, 10, rng=rng)
    return Case("b", "×5 96×15min 10+10", site, scaled_frame(hospital_winter(), 5.0))


def case_c() -> Case:
    """The hospital ×2 over 48 h of 5-min steps (576), 4 batteries + 4 gensets."""
    rng = np.random.default_rng(_SEED + 1)
    site = _scaled_site("Hospital ×2, 48 h (benchmark)", 2.0, 4, 4, rng=rng, days=2)
    site["control"] = {**site["control"], "interval": "5min", "horizon": "48h"}
    return Case("c", "×2 576×5min 4+4", site, winter_profiles(2, "5min", 2.0))


CASES = {"a": case_a, "b": case_b, "c": case_c}
