"""Property test: on random small sites, ``optimize`` returns a plan that keeps every constraint of
the spec and whose objective is the optimum of the spec's model with all its binaries."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import microgrid
from tests.conftest import tiny_site
from tests.dispatch.helpers import assert_invariants, battery, diesel, full_binary, genset, grid, setup, tier

EXAMPLES = int(os.environ.get("MICROGRID_PROPERTY_EXAMPLES", "15"))


def _pick(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


@st.composite
def batteries(draw: st.DrawFn, index: int) -> dict[str, Any]:
    return battery(
        f"b{index}",
        capacity_kwh=float(draw(st.integers(20, 200))),
        soc_min=draw(_pick([0.0, 0.1, 0.2])),
        soc_max=draw(_pick([0.8, 0.9, 1.0])),
        max_charge_kw=float(draw(st.integers(5, 100))),
        max_discharge_kw=float(draw(st.integers(5, 100))),
        charge_efficiency=draw(_pick([0.85, 0.9, 0.95, 1.0])),
        discharge_efficiency=draw(_pick([0.85, 0.9, 0.95, 1.0])),
        wear_cost_per_kwh=draw(_pick([0.0, 0.5, 2.0])),
        terminal_value_per_kwh=draw(_pick([0.0, 1.0, 3.0])),
        initial_soc=draw(st.integers(0, 20)) / 20,  # may lie outside [soc_min, soc_max]
    )


@st.composite
def gensets(draw: st.DrawFn, index: int) -> dict[str, Any]:
    max_kw = float(draw(st.integers(20, 150)))
    return genset(
        f"g{index}",
        max_kw=max_kw,
        min_kw=round(max_kw * draw(_pick([0.0, 0.3, 0.5])), 1),
        fuel_per_kwh=draw(_pick([0.2, 0.25, 0.3])),
        fuel_per_hour_running=draw(_pick([0.0, 2.0, 5.0])),
        startup_cost=draw(_pick([0.0, 20.0, 100.0])),
        min_up_h=draw(_pick([0.0, 0.5, 1.0, 2.0])),
        min_down_h=draw(_pick([0.0, 0.5, 1.0, 2.0])),
        initial_on=draw(st.booleans()),
        initial_hours_in_state=draw(_pick([0.0, 0.25, 1.0, 3.0])),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, list[float]], float]:
    steps = draw(st.integers(4, 8))
    step_h = draw(_pick([0.25, 0.5, 1.0]))

    def series(values: st.SearchStrategy[Any]) -> list[float]:
        return [float(v) for v in draw(st.lists(values, min_size=steps, max_size=steps))]

    sections: dict[str, Any] = {
        "batteries": [draw(batteries(i)) for i in range(draw(st.integers(1, 2)))],
        "generators": [draw(gensets(i)) for i in range(draw(st.integers(0, 2)))],
        "fuels": diesel(price=draw(_pick([5.0, 10.0, 60.0])), stock=draw(_pick([None, 0.0, 10.0, 50.0, 200.0]))),
        "loads": [tier("crit", 1, draw(_pick([500.0, 2000.0]))), tier("comfort", 3, draw(_pick([5.0, 50.0])))],
    }
    columns = {"load.crit": series(st.integers(0, 80)), "load.comfort": series(st.integers(0, 60))}
    if draw(st.booleans()):
        sections["pv"] = [{"id": "roof", "peak_kw": 120.0}]
        columns["pv.roof"] = series(st.integers(0, 120))
    if draw(st.integers(0, 3)) > 0:
        sections["grid"] = grid(
            max_import_kw=float(draw(st.integers(0, 150))), max_export_kw=draw(_pick([0.0, 20.0, 80.0]))
        )
        columns["grid.available"] = series(_pick([1, 1, 1, 0]))
        columns["grid.import_price_per_kwh"] = series(_pick([-1, 0, 1, 2, 4, 6]))
        columns["grid.export_price_per_kwh"] = series(_pick([0, 1, 3, 5]))
    return sections, columns, step_h


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_optimize_keeps_the_spec_and_matches_the_full_binary_optimum(
    case: tuple[dict[str, Any], dict[str, list[float]], float],
) -> None:
    sections, columns, step_h = case
    site, profiles, state = setup(tiny_site(**sections), columns, step_h=step_h)
    full = full_binary(site, profiles, state, mip_gap=0.0)
    try:
        plan = microgrid.plan(site, profiles, state, mip_gap=0.0, time_limit_s=60)
    except microgrid.InfeasibleError:
        event("infeasible")
        assert full.status is microgrid.SolveStatus.INFEASIBLE
        return
    assert full.status is microgrid.SolveStatus.OPTIMAL and full.objective is not None
    assert plan.status is microgrid.SolveStatus.OPTIMAL
    event("plan")
    assert_invariants(plan)
    assert abs(plan.objective - full.objective) <= 1e-6 * max(1.0, abs(full.objective))
