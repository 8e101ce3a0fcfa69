"""Outage weeks: the closed loop against perfect foresight and the rules, on the project's own weeks.

    python benchmarks/outage_weeks.py                          # every site x pattern, seed 0 (about an hour)
    python benchmarks/outage_weeks.py --site hospital --pattern repair --seeds 0 1
    python benchmarks/outage_weeks.py --days 2 --pf-time-limit 120   # a quick look

Each week (:mod:`microgrid.planning.outage_weeks`: 15-min steps, the controller told only the
schedule as published day ahead, its own forecaster learning from the plant, diesel for 86 % of full
service) is run three ways, every result priced by the same cost function
(:mod:`microgrid.planning.kpis`): the closed loop (``mpc``: the real controller, gap ``--mip-gap``,
``--time-limit`` per solve), the rules, and perfect foresight of the whole period in one MILP
(``--pf-gap``, ``--pf-time-limit``). Prints per week: cost over perfect foresight, critical and
essential kWh lost by each, fuel left, and the intervals the grid-forming battery ended below its
floor while fuel and a genset were there. Targets (issue 11): critical lost 0 wherever perfect
foresight loses 0; cost ≤ 1.10 x perfect foresight; no interval below the floor.

Perfect foresight knows that nothing counts after the week: it may end with an empty tank. The
closed loop cannot know that; its outlook keeps fuel for the days after (the published pattern
repeating, no delivery assumed). So each week is also planned by perfect foresight **ending with
the fuel the closed loop left** (its stock lowered by that much: ``cost_pf_same_end``,
``mpc_over_pf_same_end``), which compares the two at the same end state; ``--no-same-end`` skips
that second MILP.

``--delivery-at-end`` tells the closed loop that the next fuel delivery comes when the week ends
(``simulate(..., fuel_delivery_at=)``, what ``microgrid override --fuel-delivery-at`` does on a site):
its long outlook then rations the fuel over the week only, the end perfect foresight plans for.

``--max-nodes N`` stops the closed loop's solves at N branch-and-bound nodes instead of
``--time-limit`` (:func:`microgrid.dispatch.effort.deterministic`): two runs then give the same week
on any machine, however loaded (README's work-limit figures use 300). A single closed-loop week is
chaotic (a change of 0.05 UAH/kWh in one cost moved one by 8 %): compare changes on several
``--seeds``; ``--mpc-only`` skips the rules and perfect foresight for that (perfect foresight does
not change with the controller) and, with more than one seed, the mean and range per site and pattern
are printed at the end::

    python benchmarks/outage_weeks.py --site hospital --pattern rotating --seeds 0 1 2 3 \
        --delivery-at-end --max-nodes 300 --mpc-only
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import time
from typing import Any

import pandas as pd

from microgrid.site import Site
from microgrid.site.grid import UNANNOUNCED_CUT_H
from microgrid.state import SiteState


def main(argv: list[str] | None = None) -> int:
    from microgrid.planning.outage_weeks import PATTERNS, SITES, outage_week

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--site", nargs="*", default=list(SITES), choices=SITES)
    parser.add_argument("--pattern", nargs="*", default=list(PATTERNS), choices=PATTERNS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--fuel-fraction", type=float, default=0.86)
    parser.add_argument("--mip-gap", type=float, default=0.02)
    parser.add_argument("--time-limit", type=float, default=2.0, help="HiGHS time limit per closed-loop solve [s]")
    parser.add_argument("--pf-gap", type=float, default=0.01)
    parser.add_argument("--pf-time-limit", type=float, default=600.0)
    parser.add_argument(
        "--no-same-end",
        dest="same_end",
        action="store_false",
        help="skip perfect foresight ending with the fuel the closed loop left",
    )
    parser.add_argument(
        "--delivery-at-end",
        action="store_true",
        help="tell the closed loop the next fuel delivery comes when the week ends",
    )
    parser.add_argument(
        "--unannounced-cut-h",
        type=float,
        default=UNANNOUNCED_CUT_H,
        help="the closed loop plans a cut outside the schedule to last this long [h] (grid.schedule."
        f"unannounced_cut_h, default {UNANNOUNCED_CUT_H:g}; 0: emergency mode plans for no grid at all)",
    )
    parser.add_argument(
        "--max-nodes",
        type=int,
        default=None,
        help="stop each closed-loop solve at this many branch-and-bound nodes instead of --time-limit "
        "(deterministic: the same week on any machine)",
    )
    parser.add_argument(
        "--mpc-only", action="store_true", help="run the closed loop only (no rules, no perfect foresight)"
    )
    parser.add_argument(
        "--late-return-h",
        type=float,
        default=None,
        help="the closed loop keeps the protected tiers covered this long after each published outage end "
        "[h] (grid.schedule.late_return_h; default: none)",
    )
    args = parser.parse_args(argv)
    if args.max_nodes is not None and args.max_nodes < 1:
        parser.error(f"--max-nodes must be at least 1, got {args.max_nodes}")
    print(f"microgrid outage weeks — python benchmarks/outage_weeks.py {' '.join(sys.argv[1:])}".rstrip(), flush=True)
    rows = []
    for site_name in args.site:
        for pattern in args.pattern:
            for seed in args.seeds:
                week = outage_week(site_name, pattern, seed=seed, fuel_fraction=args.fuel_fraction, days=args.days)
                row = _run_week(week, args)
                rows.append(row)
                print(pd.Series(row).to_string(), "\n", flush=True)
    table = pd.DataFrame(rows).set_index("week")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string())
        if len(args.seeds) > 1:
            print(_over_seeds(table).to_string())
    return 0


def _run_week(week: Any, args: argparse.Namespace) -> dict[str, object]:
    """The closed loop of ``week`` (on work limits with ``--max-nodes``), then the rules and perfect
    foresight unless ``--mpc-only``: one row of the table."""
    from microgrid.dispatch.effort import WorkLimits, deterministic
    from microgrid.planning.baselines import perfect_foresight as foresight
    from microgrid.planning.closed_loop import simulate, simulated_schedule

    solver = {"mip_gap": args.mip_gap, "time_limit_s": args.time_limit}
    common = {"published": week.published, "reference": week.reference, "days": args.days}
    if args.delivery_at_end:
        common["fuel_delivery_at"] = (week.truth.index[0] + pd.Timedelta(days=args.days)).to_pydatetime()
    started = time.perf_counter()
    site = simulated_schedule(
        week.site, unannounced_cut_h=args.unannounced_cut_h or None, late_return_h=args.late_return_h
    )
    effort = deterministic(WorkLimits(max_nodes=args.max_nodes)) if args.max_nodes else contextlib.nullcontext()
    with effort:
        mpc = simulate(site, week.truth, **common, **solver)
    mpc_s = time.perf_counter() - started
    if args.mpc_only:
        row = _mpc_row(week.name, week.site, mpc.kpis)
        row["mpc_s"] = round(mpc_s)
        return row
    rules = simulate(week.site, week.truth, controller="rules", days=args.days)
    pf = {"days": args.days, "mip_gap": args.pf_gap, "time_limit_s": args.pf_time_limit, "autonomy": False}
    best = foresight(week.site, week.truth, **pf)
    row = _row(week.name, week.site, mpc.kpis, rules.kpis, best.kpis)
    if args.same_end:
        same = foresight(week.site, week.truth, state=_less_fuel(week.site, mpc.kpis), **pf)
        same_cost = round(float(same.kpis["cost_total"]))
        row["cost_pf_same_end"] = same_cost
        row["mpc_over_pf_same_end"] = round(float(mpc.kpis["cost_total"]) / same_cost, 3)
        row["critical_lost_pf_same_end"] = round(float(same.kpis["unserved_kwh.critical"]), 1)
    row["mpc_s"] = round(mpc_s)
    return row


def _over_seeds(table: pd.DataFrame) -> pd.DataFrame:
    """Per site and pattern (the week's name without its seed): the closed loop's cost, mean and range,
    and the largest critical loss and count below the floor over the seeds."""
    group = table.index.str.rsplit("-", n=1).str[0]
    by = table.groupby(group)
    out = pd.DataFrame(
        {
            "seeds": by.size(),
            "cost_mpc_mean": by["cost_mpc"].mean().round(),
            "cost_mpc_min": by["cost_mpc"].min(),
            "cost_mpc_max": by["cost_mpc"].max(),
            "critical_lost_mpc_max": by["critical_lost_mpc"].max(),
            "below_floor_mpc_max": by["below_floor_mpc"].max(),
        }
    )
    if "mpc_over_pf" in table:
        out["mpc_over_pf_mean"] = by["mpc_over_pf"].mean().round(3)
    return out


def _less_fuel(site: Site, mpc: pd.Series) -> SiteState:
    """The site's initial state with each fuel's stock lowered by what the closed loop left of it."""
    initial = SiteState.initial(site)
    stock = {
        name: None if value is None else max(0.0, value - float(mpc.get(f"fuel_left.{name}", 0.0)))
        for name, value in initial.fuel_stock.items()
    }
    return dataclasses.replace(initial, fuel_stock=stock)


def _mpc_row(name: str, site: Site, mpc: pd.Series) -> dict[str, object]:
    """The closed loop's row: its cost, critical and essential kWh lost, fuel left, intervals below the floor."""
    fuel = next(iter(site.fuels), "diesel")
    return {
        "week": name,
        "cost_mpc": round(float(mpc["cost_total"])),
        "critical_lost_mpc": round(float(mpc["unserved_kwh.critical"]), 1),
        "essential_lost_mpc": round(float(mpc["unserved_kwh.essential"]), 1),
        "fuel_left_mpc": round(float(mpc.get(f"fuel_left.{fuel}", float("nan"))), 1),
        "below_floor_mpc": int(mpc["grid_forming_below_floor"]),
    }


def _row(name: str, site: Site, mpc: pd.Series, rules: pd.Series, best: pd.Series) -> dict[str, object]:
    """:func:`_mpc_row` with the rules and perfect foresight beside it."""
    return _mpc_row(name, site, mpc) | {
        "cost_pf": round(float(best["cost_total"])),
        "mpc_over_pf": round(float(mpc["cost_total"]) / float(best["cost_total"]), 3),
        "rules_over_pf": round(float(rules["cost_total"]) / float(best["cost_total"]), 3),
        "critical_lost_rules": round(float(rules["unserved_kwh.critical"]), 1),
        "critical_lost_pf": round(float(best["unserved_kwh.critical"]), 1),
        "essential_lost_pf": round(float(best["unserved_kwh.essential"]), 1),
    }


if __name__ == "__main__":
    raise SystemExit(main())
