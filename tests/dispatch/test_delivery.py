"""Extension "delivery": a fuel delivery within the horizon bounds only the fuel burnt before it.

``docs/dispatch-extensions.md``. Hand-solved: no grid, critical 50 kW for 3 h, a genset at 0.25 l/kWh
(no idle burn, diesel at 10 per litre) and 12.5 l in the tank, one hour of the critical load.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from microgrid.dispatch import DispatchInputs, ModelCache, optimize
from microgrid.dispatch.results import check_plan
from microgrid.dispatch.reuse import shape_of
from tests.conftest import tiny_site
from tests.dispatch.helpers import CRITICAL, assert_invariants, col, diesel, genset, grid, setup

ISLANDED = {
    "generators": [genset(fuel_per_hour_running=0.0)],
    "fuels": diesel(price=10.0, stock=12.5),
    "loads": [CRITICAL],
}


def _inputs(
    delivery: int | None, *, sections: dict = ISLANDED, columns: dict | None = None, mask=None
) -> DispatchInputs:
    site, profiles, st = setup(tiny_site(**sections), columns or {"load.crit": [50.0] * 3})
    possible = None if mask is None else np.array(mask, dtype=bool)
    return DispatchInputs(site, profiles, st, 0.0, 60, possible_outage=possible, fuel_delivery_step=delivery)


@pytest.mark.parametrize(
    ("delivery", "shed_kwh", "objective"),
    [
        (None, 100.0, 12.5 * 10 + 100 * 1000),  # the spec: one hour served, two shed
        (3, 100.0, 12.5 * 10 + 100 * 1000),  # at the horizon's end: the same
        (2, 50.0, 25.0 * 10 + 50 * 1000),  # hours 0-1 share the 12.5 l, hour 2 is the delivery's
        (1, 0.0, 37.5 * 10),  # hour 0 from the tank, hours 1-2 from the delivery
        (0, 0.0, 37.5 * 10),  # come already: no row
    ],
)
def test_the_stock_bounds_the_fuel_burnt_before_the_delivery(
    delivery: int | None, shed_kwh: float, objective: float
) -> None:
    plan = optimize(_inputs(delivery))
    if delivery in (None, 3):  # the spec's plan (the checker knows no delivery)
        assert_invariants(plan)
    assert float(col(plan, "load.crit.shed_kw").sum()) == pytest.approx(shed_kwh, abs=1e-6)
    assert plan.objective == pytest.approx(objective)
    before = 3 if delivery is None else delivery
    assert float(col(plan, "generator.dg.fuel")[:before].sum()) <= 12.5 + 1e-6


def test_a_shadow_after_the_delivery_needs_no_fuel_kept() -> None:
    """Grid-tied, import 10 in hours 0-1 then 1, a possible outage in hours 2-3, 25 l (hours 0-1 from the
    genset at 0.25 per kWh of fuel cost). Without a delivery the 25 l are kept for the window's shadow
    (hours 0-1 imported at 10); with the delivery at hour 2 the shadow burns the delivery's fuel and
    the genset serves every hour (the tank's 25 l in hours 0-1, the delivery's after: 0.25 per kWh
    against imports at 1)."""
    sections = {
        "generators": [genset(fuel_per_hour_running=0.0)],
        "fuels": diesel(price=1.0, stock=25.0),
        "loads": [CRITICAL],
        "grid": grid(),
    }
    columns = {"load.crit": [50.0] * 6, "grid.import_price_per_kwh": [10.0, 10.0, 1.0, 1.0, 1.0, 1.0]}
    mask = [0, 0, 1, 1, 0, 0]
    kept = optimize(_inputs(None, sections=sections, columns=columns, mask=mask))
    delivered = optimize(_inputs(2, sections=sections, columns=columns, mask=mask))
    assert float(col(kept, "generator.dg.fuel")[:2].sum()) == pytest.approx(0.0, abs=1e-6)
    assert float(col(delivered, "generator.dg.kw").sum()) == pytest.approx(300.0)
    assert delivered.objective == pytest.approx(6 * 50 * 0.25)
    assert delivered.contingency[0].shed_kwh == pytest.approx(0.0, abs=1e-6)


def test_a_delivery_outside_the_horizon_is_refused() -> None:
    with pytest.raises(ValueError, match="fuel_delivery_step"):
        _inputs(4)


def test_the_delivery_step_is_part_of_a_kept_models_shape() -> None:
    inp = _inputs(None)
    flags = {"battery_mode_binaries": False, "grid_direction_binaries": True}
    assert shape_of(inp, **flags) != shape_of(dataclasses.replace(inp, fuel_delivery_step=1), **flags)
    cache = ModelCache()
    plans = [optimize(dataclasses.replace(inp, fuel_delivery_step=d), cache=cache) for d in (None, 1, None, 1)]
    assert [p.objective for p in plans] == pytest.approx([100_125.0, 375.0, 100_125.0, 375.0])
    assert cache.hits == 2


# -- the delivery's amount known (a planner's perfect foresight of a truck) -----------------------------
# Hand-solved on ISLANDED with the delivery at hour 1: 5 l brought, 12.5 + 5 = 17.5 l in all make 70 kWh,
# 80 kWh shed; the tank filled back to its 12.5 l: hour 0 from the tank, one hour from the delivery, 50 kWh
# shed; a full tank assumed (no amount): nothing shed.


@pytest.mark.parametrize(
    ("delivered", "shed_kwh", "burnt_l"),
    [({"diesel": 5.0}, 80.0, 17.5), ({"diesel": None}, 50.0, 25.0), (None, 0.0, 37.5), ({}, 0.0, 37.5)],
)
def test_a_known_amount_bounds_the_fuel_burnt_after_the_delivery(
    delivered: dict[str, float | None] | None, shed_kwh: float, burnt_l: float
) -> None:
    inp = dataclasses.replace(_inputs(1), fuel_delivered=delivered)
    plan = optimize(inp)
    assert float(col(plan, "load.crit.shed_kw").sum()) == pytest.approx(shed_kwh, abs=1e-6)
    assert float(col(plan, "generator.dg.fuel").sum()) == pytest.approx(burnt_l, abs=1e-6)
    assert plan.objective == pytest.approx(burnt_l * 10 + shed_kwh * 1000)


def test_the_checker_flags_fuel_beyond_what_the_delivery_brings() -> None:
    full_tank = optimize(_inputs(1))  # 37.5 l burnt: fine for a full tank, not for 5 l brought
    assert check_plan(full_tank.frame, _inputs(1)) == []
    problems = check_plan(full_tank.frame, dataclasses.replace(_inputs(1), fuel_delivered={"diesel": 5.0}))
    assert problems == ["fuel diesel: burns 37.5 l with the delivery, 17.5 to burn"]


def test_a_kept_model_refreshes_the_amount_and_keeps_its_rows_apart() -> None:
    flags = {"battery_mode_binaries": False, "grid_direction_binaries": True}
    base = _inputs(1)
    amounts = [dataclasses.replace(base, fuel_delivered={"diesel": d}) for d in (5.0, 12.5, None)]
    assert shape_of(amounts[0], **flags) == shape_of(amounts[1], **flags)  # an amount is a number
    assert shape_of(amounts[0], **flags) != shape_of(base, **flags)  # a row more
    assert shape_of(amounts[0], **flags) != shape_of(amounts[2], **flags)  # over other steps
    cache = ModelCache()
    plans = [optimize(inp, cache=cache) for inp in (*amounts, amounts[0], base)]
    assert [p.objective for p in plans] == pytest.approx([80_175.0, 50_250.0, 50_250.0, 80_175.0, 375.0])
    assert cache.hits == 2


@pytest.mark.parametrize(
    ("delivered", "step", "says"),
    [
        ({"diesel": 5.0}, None, "needs fuel_delivery_step"),
        ({"petrol": 5.0}, 1, "no fuel of the site: 'petrol'"),
        ({"diesel": -1.0}, 1, "finite amount ≥ 0"),
        ({"diesel": float("inf")}, 1, "finite amount ≥ 0"),
    ],
)
def test_a_bad_amount_is_refused(delivered: dict[str, float], step: int | None, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        dataclasses.replace(_inputs(step), fuel_delivered=delivered)
