"""``plan.py --suite``: generated cases, each planned by ``microgrid.plan`` and by the straightforward model.

Cases (deterministic: fixed formulas, seeded sizes): 96 to 672 steps, 2+2 to 20+20 batteries +
gensets, and four kinds of site:

* ``grid``: grid-tied, the hospital's 4 h on / 4 h off outages, no export, two-zone tariff;
* ``island``: no grid section at all (one genset already running for 15 minutes, so its
  minimum-up lock binds);
* ``export``: export allowed (half the import limit) at a flat 2.6 per kWh, above the night
  import price (so the grid direction binaries matter), PV doubled;
* ``fuel``: fuel-short, diesel for about a tenth of a day's load per day of horizon (shedding
  is part of the optimum).

Per case, in one fresh worker process: a 4-step warm-up of both; then ``microgrid.plan`` (its
timings: build, solve, HiGHS, extract) and :func:`_straight.solve_straight`, both to the same gap
and time limit. The package's plan is checked against the spec by the exactness tests' independent
checker (``tests/dispatch/helpers.assert_invariants``), and the two optima must agree: each
objective within the gap of the other and at or above the other's proven bound.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import _sites  # noqa: E402 - the benchmarks folder is put on the path just above
from _straight import solve_straight  # noqa: E402

EXPORT_PRICE = 2.6
"""Flat export price [currency/kWh] of the ``export`` cases: above the night import price (2.16)."""


@dataclass(frozen=True)
class SuiteCase:
    """One generated case: ``steps`` × ``freq``, ``n`` batteries + ``n`` gensets, of ``kind``."""

    key: str
    steps: int
    freq: str
    n: int
    kind: str

    @property
    def title(self) -> str:
        return f"{self.steps}×{self.freq} {self.n}+{self.n} {self.kind}"


SUITE = [
    SuiteCase("s01", 96, "15min", 2, "grid"),
    SuiteCase("s02", 96, "15min", 2, "island"),
    SuiteCase("s03", 96, "15min", 4, "export"),
    SuiteCase("s04", 96, "15min", 4, "fuel"),
    SuiteCase("s05", 96, "15min", 10, "grid"),
    SuiteCase("s06", 96, "15min", 20, "island"),
    SuiteCase("s07", 192, "15min", 6, "grid"),
    SuiteCase("s08", 192, "15min", 2, "export"),
    SuiteCase("s09", 288, "5min", 2, "fuel"),
    SuiteCase("s10", 288, "5min", 4, "island"),
    SuiteCase("s11", 576, "5min", 3, "export"),
    SuiteCase("s12", 672, "15min", 2, "grid"),
    SuiteCase("s13", 672, "15min", 2, "fuel"),
]
BY_KEY = {c.key: c for c in SUITE}


def case_inputs(case: SuiteCase) -> tuple[dict[str, Any], pd.DataFrame]:
    """The site dict and profiles frame of ``case`` (the hospital scaled to ``n`` / 2, reshaped by kind)."""
    scale = case.n / 2
    step_h = pd.Timedelta(case.freq) / pd.Timedelta(hours=1)
    days = max(1, round(case.steps * step_h / 24))
    rng = np.random.default_rng(int(case.key[1:]) * 7919)
    site = _sites._scaled_site(f"suite {case.key}", scale, case.n, case.n, rng=rng, days=days)
    site.pop("devices", None)
    site["grid"].pop("schedule", None)
    site["control"] = {"interval": case.freq, "horizon": f"{case.steps * step_h:g}h", "mip_gap": 0.001}
    site["control"]["outlook"] = "off"  # an operational extension (plan leaves it out); 7 days would not reach past
    frame = _sites.winter_profiles(days, case.freq, scale).iloc[: case.steps].reset_index(drop=True)
    if case.kind == "island":
        site.pop("grid")
        frame = frame.drop(columns=[c for c in frame.columns if c.startswith("grid.")])
        site["generators"][0] |= {"initial_on": True, "initial_hours_in_state": 0.25}
    elif case.kind == "export":
        site["grid"] |= {"max_export_kw": site["grid"]["max_import_kw"] / 2, "export_price_per_kwh": EXPORT_PRICE}
        frame["pv.roof"] = (frame["pv.roof"].astype(float) * 2).round(1).astype(str)
    elif case.kind == "fuel":
        site["fuels"]["diesel"]["stock"] = round(150 * scale * days)
    return copy.deepcopy(site), frame


def _agree(ours: dict[str, Any], straight: dict[str, Any], gap: float) -> str:
    """``yes``: both optima within the gap of each other and neither below the other's proven bound
    (1e-7 relative slack); ``bounds`` when a solve stopped at its time limit and only the bounds could be
    held against each other (and hold); ``NO`` otherwise (one of the two formulations is wrong)."""
    scale = max(1.0, abs(ours["objective"]), abs(straight["objective"]))
    slack = 1e-7 * scale
    if ours["objective"] < straight["bound"] - slack or straight["objective"] < ours["bound"] - slack:
        return "NO"
    if max(ours["gap"], straight["gap"]) > gap + 1e-9:
        return "bounds"
    return "yes" if abs(ours["objective"] - straight["objective"]) <= gap * scale + slack else "NO"


def _ours(site: Any, profiles: Any, state: Any, gap: float, limit: float) -> dict[str, Any]:
    import microgrid
    from tests.dispatch.helpers import assert_invariants

    began = time.perf_counter()
    plan = microgrid.plan(site, profiles, state, mip_gap=gap, time_limit_s=limit)
    wall = time.perf_counter() - began
    assert_invariants(plan)  # the exactness tests' independent check of the spec
    t = plan.timings
    return {
        "status": plan.status.value,
        "objective": plan.objective,
        "bound": plan.objective - plan.mip_gap * abs(plan.objective),
        "gap": plan.mip_gap,
        "highs": t["highs"],
        "python": t["build"] + t["solve"] - t["highs"] + t["extract"],
        "wall": wall,
    }


def _straight(site: Any, profiles: Any, state: Any, gap: float, limit: float) -> dict[str, Any]:
    began = time.perf_counter()
    r = solve_straight(site, profiles, state, mip_gap=gap, time_limit_s=limit)
    wall = time.perf_counter() - began
    return {
        "status": r.status,
        "objective": r.objective,
        "bound": r.bound,
        "gap": r.gap,
        "highs": r.highs_s,
        "python": r.build_s + r.extract_s,
        "wall": wall,
    }


def run_suite_case(key: str, *, mip_gap: float, time_limit_s: float) -> dict[str, Any]:
    """Plan suite case ``key`` both ways in this process; return the figures (JSON-ready)."""
    import microgrid

    case = BY_KEY[key]
    raw, frame = case_inputs(case)
    site = microgrid.site_from_dict(raw, f"suite {key}")
    profiles = microgrid.profiles_from_frame(frame, site, f"suite {key}")
    state = microgrid.SiteState.initial(site)
    warm = microgrid.profiles_from_frame(frame.iloc[:4], site, f"suite {key} (warm-up)")
    microgrid.plan(site, warm, state, mip_gap=0.01, time_limit_s=time_limit_s)
    solve_straight(site, warm, state, mip_gap=0.01, time_limit_s=time_limit_s)
    ours = _ours(site, profiles, state, mip_gap, time_limit_s)
    straight = _straight(site, profiles, state, mip_gap, time_limit_s)
    return {
        "key": key,
        "title": case.title,
        "ours": ours,
        "straight": straight,
        "agree": _agree(ours, straight, mip_gap),
    }


HEAD = ["case", "what", "ours highs s", "ours py s", "ours wall s", "straight highs s", "straight py s"]
HEAD += ["straight wall s", "ratio", "objective", "Δobj rel", "agree", "status ours/straight"]


def row(res: dict[str, Any]) -> list[str]:
    """One table row of a case's result (or its error)."""
    if "error" in res:
        return [res["key"], BY_KEY[res["key"]].title, *["—"] * (len(HEAD) - 3), f"ERROR: {res['error']}"]
    o, s = res["ours"], res["straight"]
    rel = abs(o["objective"] - s["objective"]) / max(1.0, abs(s["objective"]))
    return [
        res["key"],
        res["title"],
        f"{o['highs']:.2f}",
        f"{o['python']:.3f}",
        f"{o['wall']:.2f}",
        f"{s['highs']:.2f}",
        f"{s['python']:.3f}",
        f"{s['wall']:.2f}",
        f"{o['wall'] / max(s['wall'], 1e-9):.2f}",
        f"{o['objective']:,.1f}",
        f"{rel:.1e}",
        res["agree"],
        f"{o['status']}/{s['status']}",
    ]


def summary(results: list[dict[str, Any]]) -> str:
    """The median and worst wall-time ratio over the cases that ran, and how many optima agree."""
    done = [r for r in results if "error" not in r]
    if not done:
        return "no case ran"
    ratios = [r["ours"]["wall"] / max(r["straight"]["wall"], 1e-9) for r in done]
    agreed = sum(r["agree"] == "yes" for r in done)
    limited = sum(r["agree"] == "bounds" for r in done)
    return (
        f"ratio (microgrid.plan wall / straightforward wall, same process, same gap): median "
        f"{float(np.median(ratios)):.2f}, worst {max(ratios):.2f} over {len(done)} cases; "
        f"optima agree on {agreed}/{len(done)} (and the proven bounds on {limited} stopped by the time limit)"
    )
