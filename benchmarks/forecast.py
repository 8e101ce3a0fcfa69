"""Backtest the load and PV forecasts (``microgrid.forecast``) on a generated hospital history.

    python benchmarks/forecast.py            # load + PV backtest (about 30 s)
    python benchmarks/forecast.py --no-pv    # load only

**Load.** Nine weeks of 15-min per-tier demand for the shipped hospital (``models/sites/hospital.yaml``),
Monday 2026-02-09 to Sunday 2026-04-12, Europe/Kyiv, seeded. Each tier is the shape of the shipped
winter reference day (``data/make_hospital_profiles.py``: a base, a daytime bump, meals) with

* weekends: the daytime part of comfort ×0.5 on Saturdays (the outpatient clinic works the
  morning) and ×0.25 on Sundays, of essential ×0.8 / ×0.7, of critical ×0.92 / ×0.88;
* slow drift: heating falls off into spring, −14 % over the nine weeks, plus a small daily
  random walk;
* weather: a day-level factor, AR(1) over days (σ 4 %, ρ 0.6), and intraday AR(1) noise at
  15 min (σ 4 %, ρ 0.85), so today's deviation persists for a few hours;
* the spring clock change (Sunday 2026-03-29, a 23 h day) inside the held-out weeks.

Held out: the last three weeks (2026-03-23 to 2026-04-12). Forecasts are made every 3 h
(origins in UTC), 24 h ahead, from the history before the origin only; MAE is over every
(origin, step) pair, per tier, in kW and as % of the tier's mean demand. ``0-2h`` is the MAE of
the sum of the tiers over the first 2 h of each horizon.

**PV.** The same site with ``location`` (Kharkiv 49.99 N 36.23 E, 150 m): 150 kWp south, 30°.
Measured PV = clear-sky × a cloud index: day regimes (overcast / broken / clear) following a
Markov chain, with AR(1) intraday noise, 2026-01-05 to 2026-02-22; held out the last 3 weeks,
forecasts every 6 h from the 7 days before the origin.
The measured PV is made with the same clear-sky model the forecast uses, so this checks the
persistence logic, not pvlib's clear-sky model.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from microgrid.forecast.load import load_forecast  # noqa: E402
from microgrid.forecast.pv import clear_sky_kw, pv_forecast  # noqa: E402
from microgrid.profiles import Profiles, read_profiles  # noqa: E402
from microgrid.site import Site, site_from_dict  # noqa: E402
from microgrid.yamlio import load_yaml  # noqa: E402

TZ = "Europe/Kyiv"
STEP = pd.Timedelta(minutes=15)
TIERS = ("critical", "essential", "comfort")
SEED = 20260329


def hospital(with_location: bool = False) -> Site:
    raw = load_yaml(ROOT / "models" / "sites" / "hospital.yaml")
    if with_location:
        raw["location"] = {"latitude": 49.99, "longitude": 36.23, "altitude_m": 150.0}
    return site_from_dict(raw, "hospital.yaml")


def _bump(hour: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.asarray(np.exp(-0.5 * ((hour - centre) / width) ** 2))


def _ar1(rng: np.random.Generator, n: int, sigma: float, rho: float) -> np.ndarray:
    noise = rng.normal(0.0, sigma * math.sqrt(1 - rho**2), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sigma)
    for i in range(1, n):
        out[i] = rho * out[i - 1] + noise[i]
    return out


def make_load_history(start: str = "2026-02-09", end: str = "2026-04-13", seed: int = SEED) -> pd.DataFrame:
    """Per-tier demand [kW], 15-min step averages, UTC index (see the module docstring)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(pd.Timestamp(start, tz=TZ), pd.Timestamp(end, tz=TZ), freq=STEP, inclusive="left")
    local = (index + STEP / 2).tz_convert(TZ)
    hour = (local.hour + local.minute / 60).to_numpy(dtype=float)
    day = (local.normalize().tz_localize(None) - pd.Timestamp(start)).days.to_numpy()
    dow = np.asarray(local.day_of_week)
    saturday, sunday = dow == 5, dow == 6
    n_days = int(day.max()) + 1
    drift = 1.07 - 0.14 * np.arange(n_days) / n_days + np.cumsum(rng.normal(0.0, 0.004, n_days))
    weather = 1 + _ar1(rng, n_days, 0.04, 0.6)
    level = (drift * weather)[day]
    wiggle = 1 + 0.03 * np.sin(hour * 2.7) + 0.02 * np.cos(hour * 5.1)
    daytime = _bump(hour, 13.0, 3.5)
    meals = _bump(hour, 8.0, 0.7) + _bump(hour, 13.0, 0.7) + _bump(hour, 18.5, 0.8)
    shapes = {
        "critical": 88 + 26 * daytime * np.select([saturday, sunday], [0.92, 0.88], 1.0),
        "essential": 72 + 55 * daytime * np.select([saturday, sunday], [0.8, 0.7], 1.0) + 30 * meals,
        "comfort": 22 + 70 * daytime * np.select([saturday, sunday], [0.5, 0.25], 1.0),
    }
    frame = {
        tier: np.clip(shape * wiggle * level * (1 + _ar1(rng, len(index), 0.04, 0.85)), 0.0, None)
        for tier, shape in shapes.items()
    }
    return pd.DataFrame(frame, index=index.tz_convert("UTC"))


Method = Callable[[pd.DataFrame, pd.DatetimeIndex], pd.DataFrame]


def load_methods(reference: Profiles) -> dict[str, Method]:
    def with_(**kw: Any) -> Method:
        return lambda hist, idx: load_forecast(hist, reference, idx, TZ, **kw)

    flat = {"day_type_weight": 1.0, "other_type_weight": 1.0, "level_halflife_h": 0.0, "min_history_days": 0.0}
    return {
        "reference day": with_(history_days=0, min_history_days=1.0, level_halflife_h=0.0),
        "yesterday (persistence)": with_(halflife_days=1e-3, **flat),
        "time-of-day mean, 28 d": with_(halflife_days=math.inf, **flat),
        "same weekday, halflife 7 d": with_(day_type_weight=0.0, other_type_weight=0.0, level_halflife_h=0.0),
        "workday/weekend, halflife 7 d": with_(day_type_weight=1.0, other_type_weight=0.0, level_halflife_h=0.0),
        "ours without level correction": with_(level_halflife_h=0.0),
        "ours (load_forecast defaults)": with_(),
    }


def origins(test_start: pd.Timestamp, test_end: pd.Timestamp, every_h: float = 3.0) -> pd.DatetimeIndex:
    last = test_end - pd.Timedelta(hours=24)
    return pd.date_range(test_start.tz_convert("UTC"), last.tz_convert("UTC"), freq=pd.Timedelta(hours=every_h))


def backtest(truth: pd.DataFrame, starts: pd.DatetimeIndex, method: Method) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Absolute errors [kW] of every (origin, step) and the lead time of each row [h]."""
    errors, leads = [], []
    for origin in starts:
        idx = pd.date_range(origin, periods=96, freq=STEP)
        forecast = method(truth[truth.index < origin], idx)
        errors.append((forecast - truth.reindex(idx)).abs())
        leads.append(pd.Series((idx - origin) / pd.Timedelta(hours=1), index=idx))
    return pd.concat(errors, ignore_index=True), pd.concat(leads, ignore_index=True).to_frame("lead_h")


def load_table(quick: bool) -> str:
    site = hospital()
    reference = read_profiles(ROOT / "data" / "hospital-winter-day.csv", site)
    truth = make_load_history()
    test_start, test_end = pd.Timestamp("2026-03-23", tz=TZ), pd.Timestamp("2026-04-13", tz=TZ)
    starts = origins(test_start, test_end, every_h=6.0 if quick else 3.0)
    held = truth[truth.index >= test_start]
    means = held.mean()
    head = f"{'method':32s}" + "".join(f"{t:>20s}" for t in TIERS) + f"{'all, 0-2h':>12s}"
    lines = [head, f"{'':32s}" + "".join(f"{'kW':>12s}{'%':>8s}" for _ in TIERS) + f"{'kW':>12s}", "-" * len(head)]
    for name, method in load_methods(reference).items():
        errors, leads = backtest(truth, starts, method)
        mae = errors.mean()
        early = errors.sum(axis=1)[leads["lead_h"].to_numpy() < 2.0].mean()
        cells = "".join(f"{mae[t]:12.2f}{100 * mae[t] / means[t]:8.1f}" for t in TIERS)
        lines.append(f"{name:32s}{cells}{early:12.2f}")
    mean_cells = "".join(f"{means[t]:12.1f}{'':8s}" for t in TIERS)
    lines.append(f"{'(mean demand, held-out weeks)':32s}{mean_cells}")
    return "\n".join(lines)


def make_pv_history(site: Site, start: str, end: str, seed: int = SEED) -> pd.DataFrame:
    """Measured PV [kW]: clear-sky × a cloud index (day regimes in a Markov chain, AR(1) intraday noise)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(pd.Timestamp(start, tz=TZ), pd.Timestamp(end, tz=TZ), freq=STEP, inclusive="left")
    clear = clear_sky_kw(site, index.tz_convert("UTC"))
    days = (index.tz_convert(TZ).normalize().tz_localize(None) - pd.Timestamp(start)).days.to_numpy()
    regimes, means = [0], (0.25, 0.6, 0.92)  # overcast, broken, clear
    stay = 0.65
    for _ in range(int(days.max())):
        regimes.append(regimes[-1] if rng.random() < stay else int(rng.integers(0, 3)))
    day_k = np.array([means[r] for r in regimes]) + rng.normal(0.0, 0.06, len(regimes))
    k = np.clip(day_k[days] + _ar1(rng, len(index), 0.12, 0.9), 0.02, 1.1)
    return clear.mul(k, axis=0)


def pv_table(quick: bool) -> str:
    site = hospital(with_location=True)
    reference = read_profiles(ROOT / "data" / "hospital-winter-day.csv", site)
    truth = make_pv_history(site, "2026-01-05", "2026-02-23")
    test_start, test_end = pd.Timestamp("2026-02-02", tz=TZ), pd.Timestamp("2026-02-23", tz=TZ)
    starts = origins(test_start, test_end, every_h=12.0 if quick else 6.0)
    ref_site = site.model_copy(update={"forecast": site.forecast.model_copy(update={"pv": "reference"})})

    def ours(**kw: Any) -> Method:
        return lambda hist, idx: pv_forecast(
            site, idx, measured_kw=hist[hist.index >= idx[0] - pd.Timedelta(days=7)], **kw
        )

    methods: dict[str, Method] = {
        "reference day": lambda hist, idx: pv_forecast(ref_site, idx, reference=reference),
        "clear-sky × 1": lambda hist, idx: pv_forecast(site, idx),
        "clear-sky × k_long (7 d)": ours(relax_halflife_h=1e-6),
        "clear-sky × k_now → k_long": ours(),
    }
    held = truth[truth.index >= test_start]["roof"]
    lines = [f"{'method':32s}{'MAE kW':>10s}{'% of mean':>11s}{'0-2h kW':>10s}", "-" * 63]
    for name, method in methods.items():
        errors, leads = backtest(truth, starts, method)
        early = errors["roof"][leads["lead_h"].to_numpy() < 2.0].mean()
        mae = errors["roof"].mean()
        lines.append(f"{name:32s}{mae:10.2f}{100 * mae / held.mean():11.1f}{early:10.2f}")
    lines.append(f"{'(mean PV, held-out weeks)':32s}{held.mean():10.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--no-pv", action="store_true", help="skip the PV backtest")
    parser.add_argument("--quick", action="store_true", help="half as many forecast origins")
    args = parser.parse_args()
    began = time.perf_counter()
    print("Load forecast backtest: MAE per tier on 3 held-out weeks (24 h horizons, origins every 3 h)\n")
    print(load_table(args.quick))
    if not args.no_pv:
        print("\nPV forecast backtest: MAE on 3 held-out weeks (Kharkiv, Feb, 150 kWp; origins every 6 h)\n")
        print(pv_table(args.quick))
    print(f"\n({time.perf_counter() - began:.1f} s)")


if __name__ == "__main__":
    main()
