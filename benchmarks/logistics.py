"""Fuel logistics at city scale: 200 islands × 5 trucks × 2 days on the simulated city (seed 0).

Prints the MILP's solve time, status and gap, and the plan's dry hours next to nearest-first's
(the README's performance section quotes it). Run: ``python benchmarks/logistics.py [--islands N]
[--trucks K] [--days D] [--time-limit-s S]``.
"""

from __future__ import annotations

import argparse
import time

from microgrid.logistics import baseline, city_fleet, city_trucks, plan_deliveries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--islands", type=int, default=200)
    parser.add_argument("--trucks", type=int, default=5)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--time-limit-s", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    fleet, trucks = city_fleet(args.islands, seed=args.seed), city_trucks(args.trucks)
    started = time.perf_counter()
    plan = plan_deliveries(fleet, trucks, args.days, time_limit_s=args.time_limit_s)
    wall = time.perf_counter() - started
    near = baseline(fleet, trucks, args.days)
    gap = "n/a" if plan.mip_gap is None else f"{plan.mip_gap:.1%}"
    gap1 = "n/a" if plan.first_gap is None else f"{plan.first_gap:.1%}"
    print(f"{args.islands} islands × {args.trucks} trucks × {args.days} days (seed {args.seed})")
    print(
        f"milp: {plan.status}, gap {gap} (first stage, the minimum: {gap1}), build+HiGHS {plan.solve_s:.1f} s, "
        f"wall {wall:.1f} s "
        f"(limit {args.time_limit_s:g} s)"
    )
    for p in (plan, near):
        s = p.summary()
        print(
            f"{s['method']:>14}: {s['trips']} trips, {s['stops']} stops, {s['litres']:,.0f} l, {s['km']:,.0f} km; "
            f"min weighted hours-to-dry {s['min_weighted_hours_to_dry_before']} → "
            f"{s['min_weighted_hours_to_dry_after']} h; "
            f"dry hours {s['dry_hours_before']:,.0f} → {s['dry_hours_after']:,.0f} "
            f"(weighted {p.before.weighted_dry_h:,.0f} → {p.after.weighted_dry_h:,.0f})"
        )


if __name__ == "__main__":
    main()
