"""The long outlook: its values are the marginal values they claim to be (finite differences of the LP),
capped where serving the most important tier must still pay, and the fine plan follows them.

Tiny sites, hourly steps: a lossless 100 kWh battery, a 100 kW genset burning 0.25 l/kWh + 2 l/h of
diesel at 10 per litre, a critical tier worth 1000 and a comfort tier worth 5 per kWh.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from microgrid.dispatch import DispatchInputs, optimize
from microgrid.dispatch.inputs import TerminalValues
from microgrid.dispatch.outlook import coarsen, fuel_reserve, serve_first_cap, solve_outlook
from tests.conftest import tiny_site
from tests.dispatch.helpers import CRITICAL, battery, diesel, genset, setup, tier

COMFORT = tier("comfort", 3, 5.0)


def _inputs(columns: dict[str, list[float]], *, stock: float | None = None, **sections: Any) -> DispatchInputs:
    base: dict[str, Any] = {
        "batteries": [battery(soc_min=0.1, initial_soc=0.5)],
        "generators": [genset()],
        "fuels": diesel(stock=stock),
        "loads": [CRITICAL, COMFORT],
    }
    site, profiles, state = setup(tiny_site(**(base | sections)), columns)
    return DispatchInputs(site, profiles, state, mip_gap=0.0, time_limit_s=60)


def _lp_objective(inp: DispatchInputs) -> float:
    return solve_outlook(inp, at_h=1.0).objective


# Four hours without a grid, 30 kW critical and 40 kW comfort, the battery's 40 kWh above its floor:
# 40 l of diesel cover the critical tier and part of the comfort tier, so comfort is rationed at the
# margin and a litre is worth what it serves there.
SHORT = {"load.crit": [30.0] * 4, "load.comfort": [40.0] * 4}


def test_the_fuel_value_is_the_marginal_value_of_the_stock() -> None:
    inp = _inputs(SHORT, stock=40.0)
    values = solve_outlook(inp, at_h=2.0)
    more = dataclasses.replace(inp, state=dataclasses.replace(inp.state, fuel_stock={"diesel": 41.0}))
    finite = _lp_objective(inp) - _lp_objective(more)
    assert values.terminal.fuel_value["diesel"] == pytest.approx(finite, rel=1e-6)
    assert 0 < values.terminal.fuel_value["diesel"] < serve_first_cap(inp).fuel_value["diesel"]  # not capped


def test_the_energy_value_is_the_marginal_value_of_a_kwh_at_the_fine_horizons_end() -> None:
    """One more kWh in the battery at the end of hour 2 is worth what one more kWh at the start is worth
    when nothing in hours 1-2 needs it: the finite difference of the initial energy, hours 3-4 short."""
    inp = _inputs({"load.crit": [0.0, 0.0, 30.0, 30.0], "load.comfort": [0.0, 0.0, 40.0, 40.0]}, stock=20.0)
    values = solve_outlook(inp, at_h=2.0)
    kwh = 1.0 / 100.0
    richer = dataclasses.replace(inp, state=dataclasses.replace(inp.state, soc={"bat": 0.5 + kwh}))
    finite = _lp_objective(inp) - _lp_objective(richer)
    assert values.terminal.energy_value["bat"] == pytest.approx(finite, rel=1e-6)
    assert values.terminal.energy_value["bat"] > 0


def test_the_values_are_capped_where_serving_the_most_important_tier_must_pay() -> None:
    """No fuel at all for hours of critical load: the LP values a litre at the critical tier's 1000 per kWh
    / 0.25 l = 4000; capped at 1000 / (2 · (0.25 + 2 / 10)) − 10 (min load 10 kW: a tenth of max)."""
    inp = _inputs({"load.crit": [60.0] * 6, "load.comfort": [0.0] * 6}, stock=0.0)
    values = solve_outlook(inp, at_h=2.0)
    cap = 1000.0 / (2 * (0.25 + 2.0 / 10.0)) - 10.0
    assert serve_first_cap(inp).fuel_value["diesel"] == pytest.approx(cap)
    assert values.terminal.fuel_value["diesel"] == pytest.approx(cap)
    assert values.terminal.energy_value["bat"] <= 500.0 + 1e-9


def test_with_the_fuel_value_capped_no_fuel_is_burnt_to_fill_the_battery_for_the_horizons_end() -> None:
    """The capped case above: λ at its cap (1101.1 per litre) and μ at v₁ / 2 = 500 would make a kWh stored
    at the end worth more than the fuel that makes it at full output ((10 + 0.85 λ) · 0.27 ≈ 255: the
    fine plan's price of fuel within its budget): a fine plan of two hours with no load would run the
    genset flat out into the battery. The stored kWh is valued below that instead: the genset stays off."""
    inp = _inputs({"load.crit": [60.0] * 6, "load.comfort": [0.0] * 6}, stock=0.0)
    values = solve_outlook(inp, at_h=2.0).terminal
    make = (10.0 + 0.85 * values.fuel_value["diesel"]) * (0.25 + 2.0 / 100.0)
    assert values.energy_value["bat"] == pytest.approx(0.95 * make)
    fine = _inputs({"load.crit": [0.0, 0.0], "load.comfort": [0.0, 0.0]}, stock=50.0)
    inconsistent = TerminalValues(values.fuel_value, {"bat": 500.0}, {"diesel": 0.0})
    burnt = optimize(dataclasses.replace(fine, terminal=inconsistent))
    assert sum(col_of(burnt.frame, "generator.dg.kw")) == pytest.approx(50.0)  # the cap alone: battery filled
    kept = optimize(dataclasses.replace(fine, terminal=values))
    assert col_of(kept.frame, "generator.dg.kw") == pytest.approx([0.0, 0.0], abs=1e-6)


def test_the_long_plan_rations_evenly() -> None:
    """Fuel for 30 of the 40 kW of comfort over four hours (the relaxed genset burns 0.25 l/kWh + 2 l/h × u,
    u ≥ kW / 100: 4 · (0.25 · 60 + 2 · 0.6) = 64.8 l): 40 kWh of comfort are shed. The LP alone is
    indifferent to when; with the premium on every quarter of a tier beyond the first, each hour sheds
    its quarter (10 kW) and no more."""
    inp = _inputs(SHORT, stock=64.8, batteries=[])
    shed = np.array(col_of(solve_outlook(inp, at_h=1.0).frame, "load.comfort.shed_kw"))
    assert shed.sum() == pytest.approx(40.0, abs=1e-6)
    assert shed == pytest.approx([10.0] * 4, abs=1e-6)


def col_of(frame: Any, name: str) -> list[float]:
    return [float(x) for x in frame[name].to_numpy()]


def test_the_fine_plan_burns_what_the_long_plan_allotted_where_it_is_indifferent() -> None:
    """Fuel valued exactly at what it serves at the margin (comfort: 5 per kWh / 0.25 l − 10 = 10 per litre,
    no running cost): the fine plan is indifferent to serving comfort from diesel; with a budget of 10 l it
    burns 10 l, with 5 l it burns 5."""
    columns = {"load.crit": [0.0] * 4, "load.comfort": [40.0] * 4}
    inp = _inputs(columns, stock=100.0, batteries=[], generators=[genset(fuel_per_hour_running=0.0)])
    for budget in (10.0, 5.0):
        terminal = TerminalValues({"diesel": 10.0}, {}, {"diesel": budget})
        plan = optimize(dataclasses.replace(inp, terminal=terminal))
        assert plan.fuel_burnt()["diesel"] == pytest.approx(budget, abs=1e-6)


def test_coarsen_averages_whole_steps() -> None:
    inp = _inputs({"load.crit": [10.0, 20.0, 30.0, 40.0, 50.0], "load.comfort": [0.0] * 5})
    hourly = dataclasses.replace(inp.profiles, step_h=0.5)
    two = coarsen(hourly, 1.0)
    assert two.step_h == 1.0 and two.steps == 2
    assert list(two.load_kw["crit"]) == [15.0, 35.0]


def test_the_fuel_reserve_carries_the_most_important_tier() -> None:
    """30 kW critical for 12 h from the 100 kW genset: 12 · (2 l/h + 0.25 · 30) = 114 l."""
    inp = _inputs(SHORT, stock=20.0)
    assert fuel_reserve(inp.site, inp.profiles, 12.0) == {"diesel": pytest.approx(114.0)}


def test_the_outlook_plans_from_the_state_now() -> None:
    """Short of fuel: the long plan burns all 40 l and drains the battery to its floor by the end."""
    inp = _inputs(SHORT, stock=40.0)
    values = solve_outlook(inp, at_h=4.0)
    assert values.fuel_burnt["diesel"] == pytest.approx(40.0)
    np.testing.assert_allclose(values.energy_kwh["bat"], 10.0, atol=1e-6)


def test_where_the_long_plan_rations_the_fine_plan_serves_now_and_sheds_last() -> None:
    """40 kWh in a lossless battery, 40 kW of comfort for 4 h, no grid, no genset; the long plan values a
    stored kWh at comfort's 5 (it rations comfort somewhere in its week). Serving any one hour, or keeping
    the 40 kWh for the horizon's end, is worth the same; the service-now premium (5 % of 5, falling to 0
    at the last step) makes the fine plan serve the first hour."""
    columns = {"load.crit": [0.0] * 4, "load.comfort": [40.0] * 4}
    inp = _inputs(columns, batteries=[battery(initial_soc=0.4)], generators=[], fuels={})
    plan = optimize(dataclasses.replace(inp, terminal=TerminalValues({}, {"bat": 5.0})))
    assert col_of(plan.frame, "load.comfort.shed_kw") == pytest.approx([0.0, 40.0, 40.0, 40.0], abs=1e-6)
    assert col_of(plan.frame, "battery.bat.discharge_kw") == pytest.approx([40.0, 0.0, 0.0, 0.0], abs=1e-6)
    spec = optimize(inp)  # the spec's model (no terminal values from a long plan): no premium
    assert spec.objective == pytest.approx(5.0 * 40.0 * 3, rel=1e-9)
