"""Emergency mode: no grid anywhere, lexicographic maximum autonomy (``docs/dispatch-extensions.md``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import microgrid
from microgrid.dispatch import DispatchInputs, optimize, optimize_emergency
from microgrid.dispatch.emergency import deferral_weights, emergency_inputs
from microgrid.dispatch.inputs import TerminalValues
from tests.conftest import tiny_site
from tests.dispatch.helpers import CRITICAL, assert_invariants, battery, col, diesel, genset, grid, setup, tier

ETA = 0.9


def _inputs(sections: dict[str, object], columns: dict[str, list[float]]) -> DispatchInputs:
    site, profiles, st = setup(tiny_site(**sections), columns)
    return DispatchInputs(site, profiles, st, 0.0, 60)


def _pv_day_battery_night() -> DispatchInputs:
    """PV 100 kW at step 0 only; essential 100 kW at step 0, critical 50 kW at step 1; an empty lossy
    battery (η 0.9 each way). Values of lost load close together: critical 10, essential 9."""
    sections = {
        "batteries": [
            battery(max_charge_kw=100.0, max_discharge_kw=100.0, charge_efficiency=ETA, discharge_efficiency=ETA)
        ],
        "pv": [{"id": "roof", "peak_kw": 100.0}],
        "loads": [tier("crit", 1, 10.0), tier("ess", 2, 9.0)],
    }
    return _inputs(sections, {"load.crit": [0.0, 50.0], "load.ess": [100.0, 0.0], "pv.roof": [100.0, 0.0]})


def test_lexicographic_serves_critical_where_a_penalty_model_would_not() -> None:
    """Serving the 50 kWh of critical at night takes 50 / 0.81 = 61.7 kWh of the day's PV.

    Penalties (10 vs 9): shedding critical costs 500, shedding 61.7 kWh of essential 555.6, so the
    spec's model sheds critical. Emergency mode first minimises critical shed (0), then essential.
    """
    inp = _pv_day_battery_night()
    penalty = optimize(inp)
    assert col(penalty, "load.crit.shed_kw").sum() == pytest.approx(50.0)
    assert col(penalty, "load.ess.shed_kw").sum() == pytest.approx(0.0, abs=1e-5)

    plan = optimize_emergency(inp)
    assert_invariants(plan)
    assert col(plan, "load.crit.shed_kw").sum() == pytest.approx(0.0, abs=1e-5)
    assert col(plan, "load.ess.shed_kw").sum() == pytest.approx(50.0 / ETA**2)
    assert [s.name for s in plan.stages] == ["shed priority 1", "shed priority 2", "cost"]
    crit, ess, cost = plan.stages
    assert crit.value == pytest.approx(0.0, abs=1e-5) and crit.unit == "kWh (deferral-weighted)"
    assert ess.value == pytest.approx(50.0 / ETA**2)  # all at step 0: weight 1
    assert cost.bound is None and cost.value == pytest.approx(plan.objective)
    assert plan.objective == pytest.approx(9.0 * 50.0 / ETA**2)
    assert plan.status is microgrid.SolveStatus.OPTIMAL
    assert plan.summary()["emergency_stages"][0]["name"] == "shed priority 1"


def test_what_the_fuel_cannot_carry_is_shed_last() -> None:
    """Critical 50 kW for 4 h, no battery, no grid; a genset at 0.25 l/kWh with 25 l: two hours of it.

    100 kWh must be shed whenever it is; with equal weights the solver may shed now (a critical tier
    no relay switches: the site goes dark now). Deferral weights 1, 5/6, 2/3, 1/2: serve steps 0-1,
    shed steps 2-3, stage value 50 · (2/3 + 1/2) = 58.33 weighted kWh.
    """
    sections = {
        "generators": [genset("dg", fuel_per_hour_running=0.0)],
        "fuels": diesel(stock=25.0),
        "loads": [CRITICAL],
        "grid": grid(),
    }
    inp = _inputs(sections, {"load.crit": [50.0] * 4, "grid.available": [0.0] * 4})
    assert deferral_weights(4) == pytest.approx([1.0, 5 / 6, 2 / 3, 0.5])
    plan = optimize_emergency(inp)
    assert_invariants(plan)
    # within the caps' tolerance (1e-6 relative): the later stages may move a few Wh
    assert list(col(plan, "load.crit.shed_kw")) == pytest.approx([0.0, 0.0, 50.0, 50.0], abs=1e-3)
    assert list(col(plan, "generator.dg.kw")) == pytest.approx([50.0, 50.0, 0.0, 0.0], abs=1e-3)
    assert plan.stages[0].value == pytest.approx(50.0 * (2 / 3 + 1 / 2), rel=1e-5)


def _thirsty_or_frugal() -> DispatchInputs:
    """Critical 50 kW for 2 h, no battery; 400 l of diesel at 10.

    thirsty: 0.4 l/kWh, no startup cost → 40 l, cost 400. frugal: 0.25 l/kWh, startup 1000 → 25 l,
    cost 1250. The grid is down now (step 0) and forecast back at step 1: emergency mode assumes it
    gone from step 1 on, cheap (0.1 per kWh) as it is.
    """
    sections = {
        "generators": [
            genset("thirsty", fuel_per_kwh=0.4, fuel_per_hour_running=0.0),
            genset("frugal", fuel_per_kwh=0.25, fuel_per_hour_running=0.0, startup_cost=1000.0),
        ],
        "fuels": diesel(price=10.0, stock=400.0),
        "loads": [CRITICAL],
        "grid": grid(import_price_per_kwh=0.1),
    }
    return _inputs(sections, {"load.crit": [50.0, 50.0], "grid.available": [0.0, 1.0]})


def test_grid_up_now_is_used_now_and_only_now() -> None:
    """The meter sees the grid up at step 0: it serves step 0; from step 1 on there is none."""
    inp = _thirsty_or_frugal()
    up_now = dataclasses.replace(
        inp, profiles=dataclasses.replace(inp.profiles, grid_available=inp.profiles.grid_available * 0 + 1.0)
    )
    plan = optimize_emergency(up_now)
    assert list(plan.profiles.grid_available) == [1.0, 0.0]
    assert list(col(plan, "grid.import_kw")) == pytest.approx([50.0, 0.0], abs=1e-5)
    assert col(plan, "generator.frugal.kw")[1] == pytest.approx(50.0)


def test_fuel_stage_beats_cost_stage() -> None:
    inp = _thirsty_or_frugal()
    normal = optimize(emergency_inputs(inp))  # the spec's model without grid: the cheaper genset
    assert col(normal, "generator.thirsty.kw").sum() == pytest.approx(100.0)
    assert normal.objective == pytest.approx(400.0)

    plan = optimize_emergency(inp)
    assert_invariants(plan)
    assert col(plan, "grid.import_kw").sum() == 0.0
    assert not plan.profiles.grid_available.to_numpy().any()
    assert col(plan, "generator.frugal.kw").sum() == pytest.approx(100.0)
    assert col(plan, "generator.thirsty.kw").sum() == pytest.approx(0.0, abs=1e-5)
    assert [s.name for s in plan.stages] == ["shed priority 1", "fuel", "cost"]
    assert plan.stages[1].value == pytest.approx(25.0 / 400.0, rel=1e-5) and plan.stages[1].unit == "fraction of stock"
    assert plan.objective == pytest.approx(1250.0)
    assert plan.fuel_burnt()["diesel"] == pytest.approx(25.0)


def test_fuel_without_a_stock_is_left_to_the_cost_stage() -> None:
    """Unlimited diesel does not limit autonomy: no fuel stage, and the cost stage picks the cheap genset."""
    inp = _thirsty_or_frugal()
    unlimited = dataclasses.replace(inp, state=dataclasses.replace(inp.state, fuel_stock={"diesel": None}))
    assert unlimited.fuel_stock("diesel") is None
    plan = optimize_emergency(unlimited)
    assert [s.name for s in plan.stages] == ["shed priority 1", "cost"]
    assert col(plan, "generator.thirsty.kw").sum() == pytest.approx(100.0)


def test_shed_priorities_limits_the_shed_stages_and_plan_switches_to_emergency() -> None:
    """``shed_priorities=1``: essential is left to the cost stage, so the penalty trade comes back…
    except that critical's stage already fixed its shed at 0: the cost stage keeps that cap."""
    inp = _pv_day_battery_night()
    plan = optimize_emergency(inp, shed_priorities=1)
    assert [s.name for s in plan.stages] == ["shed priority 1", "cost"]
    assert col(plan, "load.crit.shed_kw").sum() == pytest.approx(0.0, abs=1e-5)

    via_plan = microgrid.plan(inp.site, inp.profiles, inp.state, mip_gap=0.0, emergency=True)
    assert via_plan.stages and np.allclose(via_plan.frame.to_numpy(), optimize_emergency(inp).frame.to_numpy())


def _grid_back(max_import_kw: float, *, genset_too: bool = True) -> DispatchInputs:
    """The grid is up now (step 0, 1 h) and assumed gone at step 1: critical 50 kW (value 1000) and
    essential 50 kW (value 10) at both steps; an empty lossless 100 kWh battery (50 kW); a genset at
    0.25 l/kWh with 100 l, the outlook valuing a litre at 100 (a kWh from it: 25, above essential's 10)."""
    sections: dict[str, object] = {
        "batteries": [battery()],
        "loads": [CRITICAL, tier("ess", 2, 10.0)],
        "grid": grid(max_import_kw=max_import_kw),
    }
    if genset_too:
        sections |= {"generators": [genset(fuel_per_hour_running=0.0)], "fuels": diesel(stock=100.0)}
    inp = _inputs(sections, {"load.crit": [50.0, 50.0], "load.ess": [50.0, 50.0], "grid.available": [1.0, 1.0]})
    return dataclasses.replace(inp, terminal=TerminalValues({"diesel": 100.0} if genset_too else {}, {}))


def test_the_grid_up_now_serves_every_tier_now() -> None:
    """Import cap 100 = the load now: nothing left to charge. Without the grid-now stage the essential
    stage (its shed at 10, fuel at 100 per litre) sheds essential now to charge 50 kWh for step 1's
    critical (saving 12.5 l = 1250 against 500 of essential): a site whose grid is back shedding a tier.
    With it, step 0 serves both tiers; step 1 serves critical from the genset and sheds essential (a kWh
    from fuel is worth 25 > 10 · w[1])."""
    plan = optimize_emergency(_grid_back(100.0))
    assert_invariants(plan)
    assert [s.name for s in plan.stages] == ["shed priority 1", "grid now", "shed priority 2", "fuel", "cost"]
    assert list(col(plan, "load.ess.shed_kw")) == pytest.approx([0.0, 50.0], abs=1e-4)
    assert list(col(plan, "grid.import_kw")) == pytest.approx([100.0, 0.0], abs=1e-4)
    assert list(col(plan, "generator.dg.kw")) == pytest.approx([0.0, 50.0], abs=1e-4)
    assert plan.stages[1].value == pytest.approx(0.0, abs=1e-4)


def test_what_the_grid_gives_beyond_the_load_charges_now() -> None:
    """Import cap 130: the 30 kW beyond the load charge the battery at step 0 (the essential stage: a kWh
    stored saves 0.25 l worth 25), which then carries 30 of step 1's critical; the genset the other 20."""
    plan = optimize_emergency(_grid_back(130.0))
    assert_invariants(plan)
    assert col(plan, "battery.bat.charge_kw")[0] == pytest.approx(30.0, abs=1e-4)
    assert col(plan, "load.ess.shed_kw")[0] == pytest.approx(0.0, abs=1e-4)
    assert col(plan, "generator.dg.kw")[1] == pytest.approx(20.0, abs=1e-3)


def test_the_critical_tier_may_still_shed_now_to_protect_itself() -> None:
    """No genset: step 1's critical (50 kWh) can come only from the battery, charged now. The critical
    stage comes first: it sheds essential now (50 kW) to charge 50 kWh; the grid-now stage keeps that."""
    plan = optimize_emergency(_grid_back(100.0, genset_too=False))
    assert_invariants(plan)
    assert list(col(plan, "load.crit.shed_kw")) == pytest.approx([0.0, 0.0], abs=1e-4)
    assert col(plan, "load.ess.shed_kw")[0] == pytest.approx(50.0, abs=1e-4)
    assert col(plan, "battery.bat.charge_kw")[0] == pytest.approx(50.0, abs=1e-4)


def test_no_grid_now_no_grid_now_stage() -> None:
    inp = _grid_back(100.0)
    down = dataclasses.replace(
        inp, profiles=dataclasses.replace(inp.profiles, grid_available=inp.profiles.grid_available * 0.0)
    )
    assert "grid now" not in [s.name for s in optimize_emergency(down).stages]
