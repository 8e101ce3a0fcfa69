"""A kept model refreshed with new numbers is the model compiled afresh: same arrays, same plans."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import microgrid
from microgrid.dispatch import DispatchInputs, ModelCache, optimize
from microgrid.dispatch.feeders import big_m_kw
from microgrid.dispatch.inputs import FeederInputs, ReserveInputs
from microgrid.dispatch.reuse import KeptModel, new_model, shape_of
from microgrid.state import GeneratorState, SiteState
from tests.conftest import tiny_site
from tests.dispatch.helpers import battery, diesel, genset, grid, setup, tier

ROOT = Path(__file__).resolve().parents[2]
HOSPITAL = microgrid.read_site(ROOT / "models/sites/hospital.yaml")
HOSPITAL_DAY = microgrid.read_profiles(ROOT / "data/hospital-winter-day.csv", HOSPITAL)

# A site that keeps every kind of row: grid export with direction binaries (ci < ce somewhere),
# min up/down, a genset locked at the start, a stock, two tiers.
TRADER = tiny_site(
    batteries=[battery(capacity_kwh=80.0, soc_min=0.1, soc_max=0.9, charge_efficiency=0.95, initial_soc=0.5)],
    generators=[genset(min_kw=20.0, min_up_h=2.0, min_down_h=1.0, startup_cost=50.0, initial_hours_in_state=0.5)],
    pv=[{"id": "roof", "peak_kw": 40.0}],
    fuels=diesel(price=50.0, stock=300.0),
    loads=[tier("crit", 1, 1000.0), tier("rest", 2, 20.0)],
    grid=grid(max_import_kw=80.0, max_export_kw=30.0),
)
TRADER_COLUMNS: dict[str, list[float]] = {
    "load.crit": [30.0] * 8,
    "load.rest": [20.0, 25.0, 30.0, 40.0, 40.0, 30.0, 25.0, 20.0],
    "pv.roof": [0.0, 5.0, 20.0, 35.0, 35.0, 20.0, 5.0, 0.0],
    "grid.available": [1, 1, 0, 0, 1, 1, 1, 1],
    "grid.import_price_per_kwh": [2.0, 2.0, 3.0, 6.0, 6.0, 3.0, 2.0, 2.0],
    "grid.export_price_per_kwh": [1.0, 1.0, 1.0, 8.0, 8.0, 1.0, 1.0, 1.0],
}


def _arrays(kept: KeptModel) -> dict[str, Any]:
    assert kept.compiled is not None
    lp = kept.compiled.lp
    matrix = lp.a_matrix_
    return {
        "columns": [v.name for v in kept.compiled.columns],
        "rows": [(r.constraint.name, r.bound_type) for r in kept.compiled.rows],
        "cost": np.asarray(lp.col_cost_),
        "offset": lp.offset_,
        "col_lower": np.asarray(lp.col_lower_),
        "col_upper": np.asarray(lp.col_upper_),
        "row_lower": np.asarray(lp.row_lower_),
        "row_upper": np.asarray(lp.row_upper_),
        "a_start": np.asarray(matrix.start_),
        "a_index": np.asarray(matrix.index_),
        "a_value": np.asarray(matrix.value_),
        "integrality": list(lp.integrality_),
    }


def _assert_same(refreshed: KeptModel, fresh: KeptModel) -> None:
    got, want = _arrays(refreshed), _arrays(fresh)
    for name, value in want.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_allclose(got[name], value, rtol=1e-12, atol=1e-9, err_msg=name)
        else:
            assert got[name] == pytest.approx(value) if isinstance(value, float) else got[name] == value, name


def _varied(inp: DispatchInputs, draw: Any) -> DispatchInputs:
    """``inp`` with another state, forecast, availability, prices and first-step battery limits (same shape)."""
    site, profiles, steps = inp.site, inp.profiles, inp.steps
    soc = {b.id: draw(st.floats(0.0, 1.0)) for b in site.batteries}
    hours = st.sampled_from([0.0, 0.2, 0.5, 1.0, 3.0, 24.0])
    gens = {g.id: GeneratorState(on=draw(st.booleans()), hours_in_state=draw(hours)) for g in site.generators}
    stock = {f: draw(st.floats(0.0, 5000.0)) for f, fuel in site.fuels.items() if fuel.stock is not None}
    scale = np.array(draw(st.lists(st.floats(0.0, 2.0), min_size=steps, max_size=steps)))
    up = np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=steps, max_size=steps)))
    price = draw(st.floats(0.0, 20.0))
    new = dataclasses.replace(
        profiles,
        load_kw=profiles.load_kw.mul(scale, axis=0),
        pv_kw=profiles.pv_kw.mul(scale[::-1], axis=0),
        grid_available=pd.Series(up, index=profiles.index),
        import_price_per_kwh=profiles.import_price_per_kwh * 0.5 + price,
        export_price_per_kwh=profiles.export_price_per_kwh * (price / 10.0),
    )
    state = SiteState(soc=soc, generators=gens, fuel_stock=stock)
    now = {
        b.id: (draw(st.floats(0.0, b.max_charge_kw)), draw(st.floats(0.0, b.max_discharge_kw))) for b in site.batteries
    }
    out = frozenset(g.id for g in site.generators if draw(st.booleans()))
    changes = {"power_now_kw": draw(st.sampled_from([None, now])), "generators_out": out}
    return dataclasses.replace(inp, profiles=new, state=state, **changes)


def _hospital() -> DispatchInputs:
    return DispatchInputs(HOSPITAL, HOSPITAL_DAY, SiteState.initial(HOSPITAL), mip_gap=0.01, time_limit_s=10)


def _trader() -> DispatchInputs:
    site, profiles, state = setup(TRADER, TRADER_COLUMNS)
    return DispatchInputs(site, profiles, state, mip_gap=0.0, time_limit_s=10)


def _operational() -> DispatchInputs:
    """The hospital with the reserve (both genset rows) and whole-tier shedding on."""
    reserve = dataclasses.replace(ReserveInputs.of(HOSPITAL, kw=30.0), ride_through=True, genset_trip=True)  # type: ignore[arg-type]
    feeders = FeederInputs.of(HOSPITAL, HOSPITAL_DAY.step_h, HOSPITAL_DAY.steps)
    return dataclasses.replace(_hospital(), reserve=reserve, feeders=feeders)


def _varied_operation(inp: DispatchInputs, draw: Any) -> DispatchInputs:
    """``inp`` varied by :func:`_varied`, with another reserve and other relay states; the switched tiers'
    demand over the discrete steps drawn within their big-M bucket (another bucket is another shape)."""
    other = _varied(inp, draw)
    assert inp.reserve is not None and inp.feeders is not None
    load = other.profiles.load_kw.copy()
    n = inp.feeders.discrete_steps
    for switched, big in big_m_kw(inp).items():
        column = load.columns.get_loc(switched)
        load.iloc[:n, column] = draw(st.lists(st.floats(0.51 * big, big), min_size=n, max_size=n))
    other = dataclasses.replace(other, profiles=dataclasses.replace(other.profiles, load_kw=load))
    closed = {t: draw(st.booleans()) for t in inp.feeders.tiers}
    hours = {t: draw(st.sampled_from([0.0, 0.2, 1.0, 24.0])) for t in inp.feeders.tiers}
    return dataclasses.replace(
        other,
        reserve=dataclasses.replace(inp.reserve, kw=draw(st.floats(0.0, 150.0))),
        feeders=dataclasses.replace(inp.feeders, closed=closed, hours_in_state=hours),
    )


@pytest.mark.parametrize("mode_binaries", [False, True], ids=["relaxed", "modes"])
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_a_refreshed_operational_model_compiles_to_the_arrays_of_a_fresh_one(mode_binaries: bool, data: Any) -> None:
    """The extensions' numbers (R, islanded steps, relays now, demand) are parameters too; their
    coefficients (big-M bounds, hold time, prices) are in the shape, so a kept model never mixes them."""
    base = _operational()
    other = _varied_operation(base, data.draw)
    flags = {"battery_mode_binaries": mode_binaries, "grid_direction_binaries": False}
    assume(shape_of(other, **flags) == shape_of(base, **flags))  # same big-M bounds of the demand
    kept = new_model(base, **flags)
    assert kept.reusable
    kept.refresh(other)
    _assert_same(kept, new_model(other, **flags))


@pytest.mark.parametrize("make", [_hospital, _trader], ids=["hospital", "trader"])
@pytest.mark.parametrize("mode_binaries", [False, True], ids=["relaxed", "modes"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_refreshed_model_compiles_to_the_arrays_of_a_fresh_one(make: Any, mode_binaries: bool, data: Any) -> None:
    base = make()
    other = _varied(base, data.draw)
    flags = {"battery_mode_binaries": mode_binaries, "grid_direction_binaries": not other.grid_arbitrage_impossible()}
    kept = new_model(base, **flags)
    assert kept.reusable
    kept.refresh(other)
    _assert_same(kept, new_model(other, **flags))


def test_the_trader_keeps_its_binaries_and_locks_as_bounds() -> None:
    """The kept model holds the genset's initial lock as bounds, not as a fixed variable (else it could
    not be refreshed): on for the 1.5 h its 2 h minimum up time has left (2 steps), free after."""
    inp = _trader()
    on = dataclasses.replace(inp, state=SiteState(soc={}, generators={"dg": GeneratorState(True, 0.5)}, fuel_stock={}))
    kept = new_model(on, battery_mode_binaries=True, grid_direction_binaries=True)
    assert [kept.model.gen_on["dg", t].bounds for t in range(3)] == [(1, 1), (1, 1), (0, 1)]
    assert not any(v.fixed for v in kept.model.component_data_objects(pyo.Var))
    kept.refresh(inp)  # off for 0.5 h of its 1 h minimum down time: one step held off
    assert [kept.model.gen_on["dg", t].bounds for t in range(3)] == [(0, 0), (0, 1), (0, 1)]


def test_a_rolling_horizon_on_a_cache_plans_what_fresh_models_plan() -> None:
    """Eight intervals of the trader, each from a different state: the same optimum with and without the
    cache (the cache hits from the second solve on)."""
    cache = ModelCache()
    inp = _trader()
    for k in range(8):
        gens = {"dg": GeneratorState(k % 3 == 0, 0.25 * k)}
        state = SiteState(soc={"bat": 0.1 + 0.1 * k}, generators=gens, fuel_stock={"diesel": 100.0 + 40.0 * k})
        now = dataclasses.replace(inp, state=state)
        cached, fresh = optimize(now, cache=cache), optimize(now)
        assert cached.objective == pytest.approx(fresh.objective, rel=1e-9, abs=1e-6)
        assert cached.status is fresh.status
    assert cache.misses <= 2  # the relaxed model, and the full one if a step needed it
    assert cache.hits >= 7


def test_other_shapes_build_their_own_model() -> None:
    cache = ModelCache()
    inp = _trader()
    optimize(inp, cache=cache)
    shorter = dataclasses.replace(
        inp, profiles=microgrid.profiles_from_frame(_frame(TRADER_COLUMNS, 6), inp.site), state=inp.state
    )
    optimize(shorter, cache=cache)
    assert (cache.hits, cache.misses) == (0, 2)
    possible = dataclasses.replace(inp, possible_outage=np.array([0, 0, 0, 0, 1, 1, 0, 0], dtype=bool))
    taken = cache.take(possible, battery_mode_binaries=False, grid_direction_binaries=True)
    assert not taken.reusable  # the contingency's rows depend on the window: never kept
    other_site = dataclasses.replace(inp, site=microgrid.site_from_dict(TRADER))
    assert cache.take(other_site, battery_mode_binaries=False, grid_direction_binaries=True).site is not inp.site


def test_a_model_in_use_is_not_handed_out_twice() -> None:
    cache = ModelCache()
    inp = _trader()
    flags = {"battery_mode_binaries": False, "grid_direction_binaries": True}
    first = cache.take(inp, **flags)
    cache.give_back(first)
    again = cache.take(inp, **flags)
    assert again is first and cache.hits == 1
    second = cache.take(inp, **flags)  # ``again`` is still out: a solve in another thread builds its own
    assert second is not again


def _frame(columns: dict[str, list[float]], steps: int) -> pd.DataFrame:
    from tests.dispatch.helpers import profiles_frame

    return profiles_frame({k: v[:steps] for k, v in columns.items()})
