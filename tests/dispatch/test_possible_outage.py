"""The contingency extension: possible-outage windows are planned to be survivable without the grid.

``docs/dispatch-extensions.md``. Every case is small enough to solve by hand; "the outage happens"
is simulated by re-planning from the plan's state at the window start with no grid in the window.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

import microgrid
from microgrid.dispatch import DispatchInputs, build_model, optimize, solve_model
from tests.conftest import tiny_site
from tests.dispatch.helpers import (
    CRITICAL,
    NEARLY_FULL,
    assert_invariants,
    battery,
    col,
    diesel,
    genset,
    grid,
    setup,
    tier,
)

ETA = 0.95
WINDOW = [0, 0, 1, 1, 0, 0]  # steps 2 and 3 (1 h each) may lose the grid
A = 2  # the window's first step

LOSSY_200 = battery(
    capacity_kwh=200.0,
    max_charge_kw=100.0,
    max_discharge_kw=100.0,
    charge_efficiency=ETA,
    discharge_efficiency=ETA,
    initial_soc=0.75,
)
ESSENTIAL = tier("ess", 2, 500.0)
EXPENSIVE_THEN_CHEAP = [10.0, 10.0, 1.0, 1.0, 1.0, 1.0]


def _plan(
    sections: dict[str, Any],
    columns: dict[str, list[float]],
    mask: list[int] | None,
    *,
    state: dict[str, Any] | None = None,
) -> microgrid.Plan:
    site, profiles, st = setup(tiny_site(**sections), columns, state=state)
    inputs = DispatchInputs(site, profiles, st, 0.0, 60, possible_outage=None if mask is None else np.array(mask))
    plan = optimize(inputs)
    assert_invariants(plan)  # the main plan is a valid plan of the spec's model
    return plan


def _outage_happens(
    sections: dict[str, Any], columns: dict[str, list[float]], plan: microgrid.Plan, first: int, last: int
) -> microgrid.Plan:
    """Re-plan from ``plan``'s state at the end of step ``first`` − 1, with no grid in [first, last]."""
    rest = {k: v[first:] for k, v in columns.items()}
    rest["grid.available"] = [0.0 if first + t <= last else 1.0 for t in range(len(rest["load.crit"]))]
    state: dict[str, Any] = {"batteries": {}}
    for bat in plan.site.batteries:
        state["batteries"][bat.id] = {"soc": float(col(plan, f"battery.{bat.id}.soc")[first - 1])}
    burnt = plan.frame.iloc[:first]
    state["fuels"] = {
        name: {"stock": fuel.stock - sum(burnt[f"generator.{g.id}.fuel"].sum() for g in plan.site.generators)}
        for name, fuel in plan.site.fuels.items()
        if fuel.stock is not None
    }
    return _plan(sections, rest, None, state=state)


def _shed_kwh(plan: microgrid.Plan, tier_id: str, steps: slice) -> float:
    return float(col(plan, f"load.{tier_id}.shed_kw")[steps].sum() * plan.step_hours)


# -- (a) the battery is held for the window, and the critical load survives either way ------------------


def test_battery_is_held_through_a_possible_window_and_critical_survives_both_outcomes() -> None:
    """Critical 50 kW, battery 200 kWh at 150 kWh, η 0.95, import 10 then 1, window = steps 2–3.

    Without the extension the battery serves the expensive hours 0–1 (105.26 kWh drawn, 44.74 left).
    With it, e[1] ≥ 100 / 0.95 = 105.26 kWh: only 42.5 kWh are served from it before the window,
    57.5 kWh are imported at 10 and the grid then covers 100 kWh at 1: cost 675 instead of 157.5.
    """
    sections = {"batteries": [LOSSY_200], "loads": [CRITICAL], "grid": grid(max_import_kw=200.0)}
    columns = {"load.crit": [50.0] * 6, "grid.import_price_per_kwh": EXPENSIVE_THEN_CHEAP}
    held = _plan(sections, columns, WINDOW)
    plain = _plan(sections, columns, None)

    energy_at_start = col(held, "battery.bat.soc")[A - 1] * 200.0
    assert energy_at_start >= 100.0 / ETA - 1e-6
    assert held.objective == pytest.approx(57.5 * 10 + 100.0 * 1)
    assert col(plain, "battery.bat.soc")[A - 1] * 200.0 == pytest.approx(150.0 - 100.0 / ETA)
    assert plain.objective == pytest.approx(200.0 - 42.5)

    (window,) = held.contingency
    assert (window.first_step, window.last_step, window.tiers) == (2, 3, ("crit",))
    assert window.demand_kwh == pytest.approx(100.0)
    assert window.shed_kwh == pytest.approx(0.0, abs=1e-6)
    assert not plain.contingency

    # outcome 1, the grid stays: the plan itself serves the critical load.
    assert _shed_kwh(held, "crit", slice(None)) == pytest.approx(0.0, abs=1e-6)
    # outcome 2, the grid goes at the window start: re-planning from there still serves it...
    assert _shed_kwh(_outage_happens(sections, columns, held, 2, 3), "crit", slice(0, 2)) == pytest.approx(
        0.0, abs=1e-6
    )
    # ... which the plan without the extension cannot: 100 − 0.95 · 44.74 = 57.5 kWh lost.
    assert _shed_kwh(_outage_happens(sections, columns, plain, 2, 3), "crit", slice(0, 2)) == pytest.approx(57.5)


def test_the_window_reserves_fuel_for_the_shadow_genset() -> None:
    """No battery; critical 50 kW; genset at 0.25 l/kWh and 1 per litre (0.25 per kWh) vs import 10
    then 1; 25 l of diesel, exactly the 100 kWh of the window.

    Without the extension the genset burns the 25 l in the expensive hours 0–1. With it, fuel burnt
    before the window plus the shadow's 25 l must stay within the stock: hours 0–1 import (1000),
    and the genset may still run after the window, where the outage did not happen (steps 4–5).
    """
    sections = {
        "generators": [genset(fuel_per_hour_running=0.0)],
        "fuels": diesel(price=1.0, stock=25.0),
        "loads": [CRITICAL],
        "grid": grid(),
    }
    columns = {"load.crit": [50.0] * 6, "grid.import_price_per_kwh": EXPENSIVE_THEN_CHEAP}
    held = _plan(sections, columns, WINDOW)
    plain = _plan(sections, columns, None)

    assert col(plain, "generator.dg.kw")[:2] == pytest.approx([50.0, 50.0])
    assert col(held, "generator.dg.fuel")[:A].sum() == pytest.approx(0.0, abs=1e-6)
    assert held.objective == pytest.approx(2 * 50 * 10 + 2 * 50 * 1 + 25.0)
    (window,) = held.contingency
    assert window.shed_kwh == pytest.approx(0.0, abs=1e-6)
    assert window.frame["generator.dg.kw"].to_numpy() == pytest.approx([50.0, 50.0])
    assert _shed_kwh(_outage_happens(sections, columns, held, 2, 3), "crit", slice(0, 2)) == pytest.approx(
        0.0, abs=1e-6
    )
    assert _shed_kwh(_outage_happens(sections, columns, plain, 2, 3), "crit", slice(0, 2)) == pytest.approx(100.0)


def test_only_the_protected_tiers_are_carried() -> None:
    """Critical 20 kW + essential 40 kW; the battery is held for the 40 kWh of critical only (40 / 0.95),
    or for the 120 kWh of both when both are protected (it would otherwise be down to 23.7 kWh)."""
    sections = {
        "batteries": [LOSSY_200],
        "loads": [CRITICAL, ESSENTIAL],
        "grid": grid(max_import_kw=200.0),
    }
    columns = {"load.crit": [20.0] * 6, "load.ess": [40.0] * 6, "grid.import_price_per_kwh": EXPENSIVE_THEN_CHEAP}
    held = _plan(sections, columns, WINDOW)
    assert col(held, "battery.bat.soc")[A - 1] * 200.0 == pytest.approx(40.0 / ETA)
    assert held.contingency[0].tiers == ("crit",)

    site, profiles, st = setup(tiny_site(**sections), columns)
    both = optimize(DispatchInputs(site, profiles, st, 0.0, 60, np.array(WINDOW, bool), ("crit", "ess")))
    assert col(both, "battery.bat.soc")[A - 1] * 200.0 == pytest.approx(120.0 / ETA)
    assert both.contingency[0].tiers == ("crit", "ess")


def test_the_site_option_names_the_protected_tiers() -> None:
    """``grid.schedule.possible_outage_tiers`` is the default when the inputs name none."""
    schedule = {"queue": "1.1", "source": "schedules", "possible_outage_tiers": ["crit", "ess"]}
    sections = {
        "batteries": [LOSSY_200],
        "loads": [CRITICAL, ESSENTIAL],
        "grid": grid(max_import_kw=200.0, schedule=schedule),
    }
    columns = {"load.crit": [20.0] * 6, "load.ess": [40.0] * 6, "grid.import_price_per_kwh": EXPENSIVE_THEN_CHEAP}
    held = _plan(sections, columns, WINDOW)
    assert held.contingency[0].tiers == ("crit", "ess")
    assert col(held, "battery.bat.soc")[A - 1] * 200.0 == pytest.approx(120.0 / ETA)


# -- (b) off = the spec's model, exactly ----------------------------------------------------------


@pytest.mark.parametrize("mask", [None, [0] * 6])
def test_no_possible_step_is_the_spec_model(mask: list[int] | None) -> None:
    """No True step: no shadow component is built, and the objective is the spec's optimum."""
    sections = {
        "batteries": [LOSSY_200],
        "generators": [genset(min_kw=20.0)],
        "fuels": diesel(stock=30.0),
        "loads": [CRITICAL, tier("comfort", 3, 1.0)],
        "grid": grid(max_import_kw=60.0, max_export_kw=20.0, export_price_per_kwh=0.5),
    }
    columns = {
        "load.crit": [50.0] * 6,
        "load.comfort": [40.0] * 6,
        "grid.import_price_per_kwh": EXPENSIVE_THEN_CHEAP,
        "grid.available": [1, 1, 0, 1, 1, 1],
    }
    site, profiles, st = setup(tiny_site(**sections), columns)
    inputs = DispatchInputs(site, profiles, st, 0.0, 60, possible_outage=None if mask is None else np.array(mask))
    model = build_model(inputs)
    assert model.find_component("S") is None and model.find_component("contingency_cost") is None
    reference = solve_model(build_model(DispatchInputs(site, profiles, st, 0.0, 60)), mip_gap=0.0, time_limit_s=60)
    plan = optimize(inputs)
    assert_invariants(plan)
    assert not plan.contingency
    assert reference.objective is not None
    assert plan.objective == pytest.approx(reference.objective, rel=1e-9)
    assert "contingency" not in plan.summary()


def test_a_mask_of_the_wrong_length_is_refused() -> None:
    site, profiles, st = setup(tiny_site(loads=[CRITICAL], grid=grid()), {"load.crit": [1.0, 1.0]})
    with pytest.raises(ValueError, match="3 values for 2 steps"):
        DispatchInputs(site, profiles, st, 0.0, 60, possible_outage=np.array([True, False, True]))
    with pytest.raises(ValueError, match="names no load tier"):
        DispatchInputs(site, profiles, st, 0.0, 60, protect_tiers=("icu",))


# -- (e) the site cannot carry the protected tiers: the plan stays feasible and carries what it can -------


def test_physically_impossible_window_still_plans_and_carries_as_much_as_it_can() -> None:
    """Critical 150 kW but the full 200 kWh battery gives at most 100 kW and 190 kWh over the window.

    The plan keeps the battery full before the window (e[1] = 200) so the shadow serves 100 kW,
    then 90 kW (in either order): 110 kWh of the 300 are shed, the least possible; the main plan still imports.
    """
    sections = {
        "batteries": [LOSSY_200 | {"initial_soc": 1.0}],
        "loads": [CRITICAL],
        "grid": grid(max_import_kw=200.0),
    }
    columns = {"load.crit": [150.0] * 6, "grid.import_price_per_kwh": EXPENSIVE_THEN_CHEAP}
    held = _plan(sections, columns, WINDOW)
    assert col(held, "battery.bat.soc")[A - 1] == pytest.approx(1.0)
    (window,) = held.contingency
    assert window.shed_kwh == pytest.approx(300.0 - 200.0 * ETA)
    assert window.penalty == pytest.approx(1000.0 * (300.0 - 200.0 * ETA))
    assert window.frame["battery.bat.discharge_kw"].sum() == pytest.approx(190.0)
    assert _shed_kwh(held, "crit", slice(None)) == pytest.approx(0.0, abs=1e-6)
    assert held.status is microgrid.SolveStatus.OPTIMAL and held.mip_gap == 0.0


def test_window_at_the_first_step_starts_from_the_state() -> None:
    """A window from step 0: the shadow starts from soc0 (120 kWh), so 100 kWh of critical need 105.3."""
    sections = {"batteries": [LOSSY_200 | {"initial_soc": 0.6}], "loads": [CRITICAL], "grid": grid()}
    columns = {"load.crit": [50.0] * 3, "grid.import_price_per_kwh": [1.0, 1.0, 1.0]}
    held = _plan(sections, columns, [1, 1, 0])
    (window,) = held.contingency
    assert window.first_step == 0 and window.shed_kwh == pytest.approx(0.0, abs=1e-6)
    assert window.frame["battery.bat.soc"].to_numpy()[-1] * 200 == pytest.approx(120.0 - 100.0 / ETA)


# -- the shadow genset keeps the main plan's history ---------------------------------------------------


def test_shadow_genset_keeps_the_main_plans_minimum_down_time() -> None:
    """Genset running, min 10 kW, min down 2 h, 2 per kWh (0.25 l/kWh at 8); import 10 at step 0, then
    1; no battery.

    Without the extension it runs step 0 only and stops at step 1 (350). Stopped at step 1, it could
    not restart at step 2 (within 2 h of the stop), so the shadow of the window (steps 2–3) would have
    nothing: the plan keeps it running at 10 kW through step 1 instead (10 kWh at 2 − 1 more: 360).
    """
    sections = {
        "generators": [genset(fuel_per_hour_running=0.0, min_kw=10.0, min_down_h=2.0, initial_on=True)],
        "fuels": diesel(price=8.0),
        "loads": [CRITICAL],
        "grid": grid(),
    }
    columns = {"load.crit": [50.0] * 6, "grid.import_price_per_kwh": [10.0, 1.0, 1.0, 1.0, 1.0, 1.0]}
    plain = _plan(sections, columns, None)
    assert col(plain, "generator.dg.on").tolist() == [1, 0, 0, 0, 0, 0]
    assert plain.objective == pytest.approx(350.0)
    held = _plan(sections, columns, WINDOW)
    assert col(held, "generator.dg.on").tolist()[:2] == [1, 1]
    assert held.objective == pytest.approx(360.0)
    (window,) = held.contingency
    assert window.shed_kwh == pytest.approx(0.0, abs=1e-6)
    assert window.frame["generator.dg.on"].tolist() == [1, 1]


# -- the relaxed battery modes (optimize's fast path) stay exact with shadows -----------------------------

RELAXATION_CASES = {
    # the shadow genset can only run at ≥ 50 kW for 20 kW of critical: relaxed, the shadow battery
    # burns the surplus by charging and discharging at once; netting overfills it → re-solve.
    "shadow burns a genset surplus": (
        {
            "batteries": [NEARLY_FULL],
            "generators": [genset(min_kw=50.0, fuel_per_hour_running=0.0)],
            "fuels": diesel(),
            "loads": [CRITICAL],
            "grid": grid(),
        },
        {"load.crit": [20.0] * 6},
    ),
    "case (a)": (
        {"batteries": [LOSSY_200], "loads": [CRITICAL], "grid": grid(max_import_kw=200.0)},
        {"load.crit": [50.0] * 6, "grid.import_price_per_kwh": EXPENSIVE_THEN_CHEAP},
    ),
    "other tiers absorb the surplus": (
        {
            "batteries": [NEARLY_FULL],
            "generators": [genset(min_kw=50.0, fuel_per_hour_running=0.0)],
            "fuels": diesel(stock=40.0),
            "loads": [CRITICAL, ESSENTIAL],
            "grid": grid(max_export_kw=30.0, export_price_per_kwh=0.5),
        },
        {"load.crit": [20.0] * 6, "load.ess": [40.0] * 6, "pv.roof": [0, 30, 60, 60, 30, 0]},
    ),
}


@pytest.mark.parametrize("case", list(RELAXATION_CASES))
def test_relaxed_fast_path_equals_the_full_binary_model(case: str) -> None:
    """``optimize`` (battery modes and grid direction relaxed, shadows netted) reaches the optimum of
    the extended model with every binary in it: plan cost + shadow penalty = its objective."""
    sections, columns = RELAXATION_CASES[case]
    if "pv.roof" in columns:
        sections = sections | {"pv": [{"id": "roof", "peak_kw": 60.0}]}
    site, profiles, st = setup(tiny_site(**sections), columns)
    inputs = DispatchInputs(site, profiles, st, 0.0, 60, possible_outage=np.array(WINDOW, bool))
    plan = optimize(inputs)
    assert_invariants(plan)
    full = solve_model(build_model(inputs), mip_gap=0.0, time_limit_s=60)
    assert full.objective is not None
    extended = plan.objective + sum(w.penalty for w in plan.contingency)
    assert extended == pytest.approx(full.objective, rel=1e-9, abs=1e-6)
    for window in plan.contingency:  # the shadows obey the battery physics too
        frame = window.frame
        assert np.minimum(frame["battery.bat.charge_kw"], frame["battery.bat.discharge_kw"]).max() <= 1e-6
        assert frame["battery.bat.soc"].max() <= 0.95 + 1e-9


def test_shadow_that_cannot_burn_a_surplus_sheds_instead(caplog: pytest.LogCaptureFixture) -> None:
    """The first relaxation case by hand: the 50 kW minimum cannot be absorbed (5 kWh of room, nothing
    else to serve), so the shadow genset stays off; the main plan fills the battery to 95 kWh before
    the window, so the shadow serves 5 · 0.9 = 4.5 kWh of the 40: 35.5 kWh shed. The relaxation would
    have served all 40 by burning the surplus: ``optimize`` had to re-solve with the mode binaries."""
    sections, columns = RELAXATION_CASES["shadow burns a genset surplus"]
    with caplog.at_level(logging.INFO, logger="microgrid.dispatch.optimize"):
        plan = _plan(sections, columns, WINDOW)
    assert plan.contingency[0].shed_kwh == pytest.approx(40.0 - 4.5)
    assert col(plan, "battery.bat.soc")[A - 1] == pytest.approx(0.95)
    assert "solving with mode binaries" in caplog.text


def test_steps_without_grid_are_definite_not_possible() -> None:
    """A possible flag on an α = 0 step is ignored (the main plan already has no grid there), and it
    splits a window: here only step 3 remains possible, with its own shadow."""
    sections = {"batteries": [LOSSY_200], "loads": [CRITICAL], "grid": grid(max_import_kw=200.0)}
    columns = {
        "load.crit": [50.0] * 6,
        "grid.import_price_per_kwh": EXPENSIVE_THEN_CHEAP,
        "grid.available": [1, 1, 0, 1, 1, 1],
    }
    held = _plan(sections, columns, WINDOW)
    (window,) = held.contingency
    assert (window.first_step, window.last_step) == (3, 3)
    assert col(held, "battery.bat.soc")[2] * 200.0 >= 50.0 / ETA - 1e-6
    off_only = _plan(sections, columns, [0, 0, 1, 0, 0, 0])
    assert not off_only.contingency


# -- (c) a possible outage weighs less than a certain one -------------------------------------------


def _certain_now_or_possible_later(probability: float | None) -> microgrid.Plan:
    """Critical 50 kW for 3 h; no grid at step 0 (certain), grid at 1 and 2, step 2 a possible outage;
    a genset (0.25 l/kWh, diesel at 40) with 12.5 l: enough for one hour of the critical load."""
    over = (
        {}
        if probability is None
        else {"schedule": {"queue": "1.1", "source": "s", "possible_outage_probability": probability}}
    )
    sections = {
        "generators": [genset(fuel_per_hour_running=0.0)],
        "fuels": diesel(price=40.0, stock=12.5),
        "loads": [CRITICAL],
        "grid": grid(**over),
    }
    columns = {"load.crit": [50.0] * 3, "grid.available": [0, 1, 1]}
    return _plan(sections, columns, [0, 0, 1])


def test_without_a_probability_the_shadow_counts_as_certain_and_the_plan_sheds_now() -> None:
    """ρ = 1 (no schedule, or probability 1): serving now costs 12.5 l × 40 = 500 and leaves the shadow
    50 kWh short (50,000); shedding now costs 50,000 and the shadow burns the 12.5 l for free. So the
    model sheds the certain hour for the possible one: 50,000 + 2 × 50 imported = 50,100."""
    for probability in (None, 1.0):
        plan = _certain_now_or_possible_later(probability)
        assert _shed_kwh(plan, "crit", slice(0, 1)) == pytest.approx(50.0)
        assert plan.objective == pytest.approx(50_100.0)
        assert plan.contingency[0].shed_kwh == pytest.approx(0.0, abs=1e-6)


def test_a_possible_outage_at_half_its_value_never_outweighs_a_certain_loss_now() -> None:
    """``possible_outage_probability: 0.5``: serving now 500 + 0.5 × 50,000 = 25,500 (+ 100 imported)
    against 50,100: the certain hour is served, the possible one would be short (penalty 25,000)."""
    plan = _certain_now_or_possible_later(0.5)
    assert _shed_kwh(plan, "crit", slice(None)) == pytest.approx(0.0, abs=1e-6)
    assert col(plan, "generator.dg.kw")[0] == pytest.approx(50.0)
    assert plan.objective == pytest.approx(500.0 + 100.0)
    (window,) = plan.contingency
    assert window.shed_kwh == pytest.approx(50.0)
    assert window.penalty == pytest.approx(25_000.0)


@pytest.mark.parametrize(
    ("mask", "weight"),
    [
        ([0, 0, 0, 0, 0], 0.0),
        ([1, 0, 0, 0, 0], 0.5),
        ([1, 0, 1, 0, 0], 0.5),
        ([1, 0, 1, 0, 1], 1 / 3),
        ([1, 1, 1, 1, 1], 0.5),
    ],
)
def test_windows_together_never_weigh_more_than_one_certain_outage(mask: list[int], weight: float) -> None:
    """ρ = min(p, 1/k) for k windows: a litre burnt now is short in every later window's fuel row."""
    schedule = {"queue": "1.1", "source": "s"}
    site, profiles, st = setup(tiny_site(loads=[CRITICAL], grid=grid(schedule=schedule)), {"load.crit": [1.0] * 5})
    inputs = DispatchInputs(site, profiles, st, 0.0, 60, possible_outage=np.array(mask, dtype=bool))
    assert inputs.outage_weight() == pytest.approx(weight)


def test_plan_takes_the_mask_and_is_off_by_default() -> None:
    sections = {"batteries": [LOSSY_200], "loads": [CRITICAL], "grid": grid(max_import_kw=200.0)}
    columns = {"load.crit": [50.0] * 6, "grid.import_price_per_kwh": EXPENSIVE_THEN_CHEAP}
    site, profiles, st = setup(tiny_site(**sections), columns)
    default = microgrid.plan(site, profiles, st, mip_gap=0.0)
    held = microgrid.plan(site, profiles, st, mip_gap=0.0, possible_outage=[bool(x) for x in WINDOW])
    assert not default.contingency and default.objective == pytest.approx(157.5)
    assert held.objective == pytest.approx(675.0)
    assert held.summary()["contingency"][0]["shed_kwh"] == pytest.approx(0.0, abs=1e-6)
