"""Make the hospital's sample profiles (deterministic; rerun to regenerate the CSVs).

    python data/make_hospital_profiles.py

Writes ``hospital-winter-day.csv`` and ``hospital-summer-day.csv`` beside this script:
15-min steps, local Kyiv time with UTC offsets, the grid on a 4-hours-on / 4-hours-off
outage pattern (off 04-08, 12-16, 20-24 local) and a two-zone tariff (night 23-07 at half
the day price of 4.32 UAH/kWh). Values are step averages in kW.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
DAY_PRICE, NIGHT_PRICE = 4.32, 2.16


def _bump(hour: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((hour - centre) / width) ** 2)


def _pv(hour: np.ndarray, sunrise: float, sunset: float, peak_kw: float) -> np.ndarray:
    phase = np.clip((hour - sunrise) / (sunset - sunrise), 0.0, 1.0)
    return peak_kw * np.sin(math.pi * phase) ** 1.5


def make_day(date: str, season: str) -> pd.DataFrame:
    start = pd.Timestamp(date, tz="Europe/Kyiv")
    index = pd.date_range(start, periods=96, freq="15min")
    hour = (index.hour + index.minute / 60 + 7.5 / 60).to_numpy()  # step midpoints
    daytime = _bump(hour, 13.0, 3.5)
    meals = _bump(hour, 8.0, 0.7) + _bump(hour, 13.0, 0.7) + _bump(hour, 18.5, 0.8)
    wiggle = 1 + 0.03 * np.sin(hour * 2.7) + 0.02 * np.cos(hour * 5.1)
    if season == "winter":
        critical = (88 + 26 * daytime) * wiggle
        essential = (72 + 55 * daytime + 30 * meals) * wiggle
        comfort = (22 + 70 * daytime) * wiggle
        pv = _pv(hour, 7.7, 16.2, 52.0)
    else:
        critical = (92 + 30 * daytime) * wiggle
        essential = (65 + 50 * daytime + 26 * meals) * wiggle
        comfort = (18 + 95 * _bump(hour, 15.0, 3.5)) * wiggle
        pv = _pv(hour, 4.7, 20.6, 118.0)
    grid_up = ((index.hour // 4) % 2 == 0).astype(int)
    night = (index.hour >= 23) | (index.hour < 7)
    return pd.DataFrame(
        {
            "timestamp": [t.isoformat() for t in index],
            "load.critical": critical.round(1),
            "load.essential": essential.round(1),
            "load.comfort": comfort.round(1),
            "pv.roof": pv.round(1),
            "grid.available": grid_up,
            "grid.import_price_per_kwh": np.where(night, NIGHT_PRICE, DAY_PRICE),
        }
    )


if __name__ == "__main__":
    make_day("2026-01-15", "winter").to_csv(HERE / "hospital-winter-day.csv", index=False)
    make_day("2026-07-15", "summer").to_csv(HERE / "hospital-summer-day.csv", index=False)
