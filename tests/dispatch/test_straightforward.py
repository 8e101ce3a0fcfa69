"""``microgrid.plan`` and the spec built the obvious way in raw highspy agree (issue 14, item 5).

The short version of ``benchmarks/plan.py --suite``: two of its generated cases (islanded with a
genset locked on; exporting, with the grid direction binaries), cut to 8 hours, solved both ways to
a proven optimum. The two formulations share nothing but the validated inputs, so equal optima
(and each plan within the other's proven bound) check the package's model against the spec.
"""

from __future__ import annotations

import pytest

import microgrid
from benchmarks._straight import solve_straight
from benchmarks._suite import BY_KEY, case_inputs

GAP = 1e-6


@pytest.mark.parametrize("key", ["s02", "s03"], ids=lambda k: BY_KEY[k].title)
def test_the_package_and_the_straightforward_model_reach_the_same_optimum(key: str) -> None:
    raw, frame = case_inputs(BY_KEY[key])
    site = microgrid.site_from_dict(raw, key)
    profiles = microgrid.profiles_from_frame(frame.iloc[:32], site, key)
    state = microgrid.SiteState.initial(site)

    ours = microgrid.plan(site, profiles, state, mip_gap=GAP, time_limit_s=60)
    straight = solve_straight(site, profiles, state, mip_gap=GAP, time_limit_s=60)

    assert ours.status is microgrid.SolveStatus.OPTIMAL
    assert straight.status == "Optimal"
    scale = max(1.0, abs(straight.objective))
    assert ours.objective == pytest.approx(straight.objective, rel=1e-5, abs=1e-6)
    assert ours.objective >= straight.bound - 1e-7 * scale
    assert straight.objective >= ours.objective * (1 - ours.mip_gap) - 1e-7 * scale


def test_the_straightforward_model_reads_back_a_plan_that_balances() -> None:
    """Its own read-back is sane (so an agreement above is not two empty models agreeing)."""
    raw, frame = case_inputs(BY_KEY["s02"])
    site = microgrid.site_from_dict(raw, "s02")
    profiles = microgrid.profiles_from_frame(frame.iloc[:16], site, "s02")
    result = solve_straight(site, profiles, microgrid.SiteState.initial(site), mip_gap=GAP, time_limit_s=60)
    cols = result.columns
    supply = sum(cols[f"{b.id}.d"] - cols[f"{b.id}.c"] for b in site.batteries)
    supply = supply + sum(cols[f"{g.id}.p"] for g in site.generators) + sum(cols[f"{k.id}.pv"] for k in site.pv)
    served = sum(profiles.load_kw[i.id].to_numpy() - cols[f"{i.id}.x"] for i in site.loads)
    assert abs(supply - served).max() < 1e-6
    assert cols["dg1.p"][:1].min() >= site.generators[0].min_kw - 1e-6  # dg1 is locked on for its minimum up time
