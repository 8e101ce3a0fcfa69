"""The operational extensions, on tiny sites whose optimum is worked out by hand: the grid-forming
battery's reserve while islanded, and whole-tier shedding by feeder relays (``docs/dispatch-extensions.md``).

Unless a test says otherwise: steps of 1 h, no grid (islanded), a lossless 100 kWh / 50 kW battery with
its floor at 20 %, a 100 kW genset burning 0.25 l/kWh + 2 l/h of diesel at 10 per litre (45 for 10 kWh
in an hour, 70 for 20), and a critical tier worth 1000 per kWh.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

import microgrid
from microgrid.dispatch import DispatchInputs, optimize, optimize_emergency
from microgrid.dispatch.inputs import FeederInputs, ReserveInputs
from microgrid.plans import Plan
from tests.conftest import HOSPITAL, tiny_site
from tests.dispatch.helpers import CRITICAL, battery, col, diesel, genset, grid, setup, tier

BATTERY = battery(soc_min=0.2, initial_soc=0.5)
SECTIONS: dict[str, Any] = {
    "batteries": [BATTERY],
    "generators": [genset()],
    "fuels": diesel(),
    "loads": [CRITICAL],
}


def _inputs(columns: dict[str, list[float]], **sections: Any) -> DispatchInputs:
    site, profiles, state = setup(tiny_site(**(SECTIONS | sections)), columns)
    return DispatchInputs(site, profiles, state, mip_gap=0.0, time_limit_s=60)


def _reserve(kw: float, **over: Any) -> ReserveInputs:
    """R = ``kw`` for 1 h; a kWh missing for an hour costs 100 (over the 2-hour plans here, at most 200:
    below the critical tier's 1000, as the site's default keeps it)."""
    return ReserveInputs(**({"battery": "bat", "kw": kw, "hold_h": 1.0, "shortfall_cost_per_kwh": 100.0} | over))


def _solve(inp: DispatchInputs, **extensions: Any) -> Plan:
    return optimize(dataclasses.replace(inp, **extensions))


# -- reserve --------------------------------------------------------------------------------------


def test_the_battery_keeps_the_reserve_energy_above_its_floor() -> None:
    """20 kW for 2 h from 50 kWh, floor 20 kWh. Spec: the battery gives 20 then 10 (down to its floor),
    the genset 10 in the second hour (45). With 10 kW held for 1 h the battery must end each hour at
    30 kWh or more: it gives 20, then nothing, and the genset gives 20 (70)."""
    inp = _inputs({"load.crit": [20.0, 20.0]})
    spec, kept = _solve(inp), _solve(inp, reserve=_reserve(10.0))
    assert col(spec, "battery.bat.discharge_kw") == pytest.approx([20.0, 10.0])
    assert spec.objective == pytest.approx(45.0)
    assert col(kept, "battery.bat.discharge_kw") == pytest.approx([20.0, 0.0], abs=1e-6)
    assert col(kept, "battery.bat.soc") == pytest.approx([0.3, 0.3])
    assert kept.objective == pytest.approx(70.0)
    assert kept.reserve is not None and kept.reserve.penalty == pytest.approx(0.0, abs=1e-6)
    assert kept.reserve.held_kw == pytest.approx([10.0, 10.0])


def test_a_battery_below_its_floor_is_brought_back_up_first() -> None:
    """At 10 kWh against a 20 kWh floor (wear 1 per kWh), 10 kW of critical load for 2 h, a genset at
    2.5 per kWh and no running cost. The spec's widened bound lets the battery sit at 10 kWh: the genset
    gives 10 kW each hour (50). With the reserve (none for forecast error) each kWh missing costs 100 an
    hour: the genset gives 20 kW in the first hour to refill the battery to its floor, then 10 (75)."""
    inp = _inputs(
        {"load.crit": [10.0, 10.0]},
        batteries=[battery(soc_min=0.2, initial_soc=0.1, wear_cost_per_kwh=1.0)],
        generators=[genset(fuel_per_hour_running=0.0)],
    )
    spec, kept = _solve(inp), _solve(inp, reserve=_reserve(0.0))
    assert col(spec, "battery.bat.soc") == pytest.approx([0.1, 0.1])
    assert spec.objective == pytest.approx(50.0)
    assert col(kept, "battery.bat.soc") == pytest.approx([0.2, 0.2])
    assert col(kept, "generator.dg.kw") == pytest.approx([20.0, 10.0])
    assert kept.objective == pytest.approx(75.0)


def test_the_reserve_of_the_step_executed_now_is_priced_apart() -> None:
    """At 30 kWh (floor 20 kWh, 10 kW held for 1 h: 30 kWh wanted at each hour's end), 10 kW of critical
    load for 2 h, 20 kW of sun in the second hour. Priced 1 per kWh short in every step, the battery
    carries the first hour and the sun refills it (10 short now: 10; the genset would cost 45): the next
    deviation would take it below its floor. Priced 100 in the first step, the genset carries it (45) and
    the battery keeps its reserve; the second step's price alone changes nothing."""
    inp = _inputs(
        {"load.crit": [10.0, 10.0], "pv.roof": [0.0, 20.0]},
        batteries=[battery(soc_min=0.2, initial_soc=0.3)],
        pv=[{"id": "roof", "peak_kw": 20}],
    )
    cheap = _solve(inp, reserve=_reserve(10.0, shortfall_cost_per_kwh=1.0))
    now = _solve(inp, reserve=_reserve(10.0, shortfall_cost_per_kwh=1.0, now_cost_per_kwh=100.0))
    assert col(cheap, "generator.dg.kw") == pytest.approx([0.0, 0.0], abs=1e-6)
    assert col(cheap, "battery.bat.soc") == pytest.approx([0.2, 0.3])
    assert cheap.reserve is not None and cheap.reserve.penalty == pytest.approx(10.0)
    assert col(now, "generator.dg.kw") == pytest.approx([10.0, 0.0], abs=1e-6)
    assert col(now, "battery.bat.soc")[0] == pytest.approx(0.3)
    assert now.objective == pytest.approx(45.0)
    assert now.reserve is not None and now.reserve.penalty == pytest.approx(0.0, abs=1e-6)


def test_the_battery_keeps_power_headroom_for_the_reserve() -> None:
    """40 kW for 2 h from a full battery (50 kW): spec, the battery alone (0). Holding 20 kW of its 50 kW
    leaves it 30 kW: the genset gives 10 each hour (2 × 45)."""
    inp = _inputs({"load.crit": [40.0, 40.0]}, batteries=[battery(soc_min=0.2, initial_soc=1.0)])
    assert col(_solve(inp), "battery.bat.discharge_kw") == pytest.approx([40.0, 40.0])
    kept = _solve(inp, reserve=_reserve(20.0))
    assert col(kept, "battery.bat.discharge_kw") == pytest.approx([30.0, 30.0])
    assert col(kept, "generator.dg.kw") == pytest.approx([10.0, 10.0])
    assert kept.objective == pytest.approx(90.0)


def test_no_reserve_while_the_grid_is_up() -> None:
    """The same hours with the grid up (import at 5 per kWh, dearer than the battery): nothing is held,
    the plan is the spec's."""
    sections = {"batteries": [battery(soc_min=0.2, initial_soc=1.0)], "grid": grid(import_price_per_kwh=5.0)}
    inp = _inputs({"load.crit": [40.0, 40.0], "grid.available": [1, 1]}, **sections)
    spec, kept = _solve(inp), _solve(inp, reserve=_reserve(20.0))
    assert kept.objective == pytest.approx(spec.objective)
    assert col(kept, "battery.bat.discharge_kw") == pytest.approx([40.0, 40.0])
    assert kept.reserve is not None and kept.reserve.held_kw == pytest.approx([0.0, 0.0])


def test_with_the_grid_up_a_battery_below_its_floor_is_charged_back_at_once_and_early() -> None:
    """At 10 kWh against its 20 kWh floor, 10 kW of critical load, the grid up for 3 h at 1 per kWh, then an
    hour without it (the genset at 45 for 10 kWh). The spec's widened bound lets the battery carry the
    hour down to 10 kWh again: 10 kWh bought in any of the three hours (40). With the reserve the battery
    ends the islanded hour at its floor, so holds 30 kWh when the grid goes: 20 kWh bought (50), and back
    at its floor after the first hour; with the early-charge spread it takes all 20 kWh then (the grid
    may go early), at the same cost."""
    inp = _inputs(
        {"load.crit": [10.0] * 4, "grid.available": [1, 1, 1, 0]},
        batteries=[battery(soc_min=0.2, initial_soc=0.1)],
        grid=grid(import_price_per_kwh=1.0),
    )
    spec = _solve(inp)
    floor = _solve(inp, reserve=_reserve(0.0))
    early = _solve(inp, reserve=_reserve(0.0, early_charge_per_kwh=0.01))
    assert spec.objective == pytest.approx(40.0)  # 30 kWh of load from the grid and 10 into the battery
    assert floor.objective == pytest.approx(50.0) and early.objective == pytest.approx(50.0)
    assert col(floor, "battery.bat.soc")[0] >= 0.2 - 1e-9
    assert floor.reserve is not None and floor.reserve.penalty == pytest.approx(0.0, abs=1e-6)
    assert col(early, "battery.bat.charge_kw") == pytest.approx([20.0, 0.0, 0.0, 0.0], abs=1e-6)
    assert col(early, "battery.bat.soc") == pytest.approx([0.3, 0.3, 0.3, 0.2])
    assert col(early, "load.crit.shed_kw") == pytest.approx([0.0] * 4, abs=1e-6)


def test_with_the_grid_up_the_first_steps_shortfall_costs_the_later_price() -> None:
    """Empty against a 20 kWh floor, charging at 5 kW at most, the grid up: 15 kWh short after the first
    hour and 10 after the second, each priced π = 100 per kWh-hour (the grid is there now: not π₀ = 1000,
    which is for an islanded step executed now, when the next deviation takes the battery down)."""
    inp = _inputs(
        {"load.crit": [0.0, 0.0], "grid.available": [1, 1]},
        batteries=[battery(soc_min=0.2, initial_soc=0.0, max_charge_kw=5.0)],
        grid=grid(import_price_per_kwh=1.0),
    )
    plan = _solve(inp, reserve=_reserve(0.0, now_cost_per_kwh=1000.0))
    assert col(plan, "battery.bat.charge_kw") == pytest.approx([5.0, 5.0])
    assert plan.reserve is not None
    assert plan.reserve.short_kwh == pytest.approx([15.0, 10.0])
    assert plan.reserve.penalty == pytest.approx(100.0 * (15.0 + 10.0))


def test_genset_trip_holds_the_running_gensets_output() -> None:
    """N-1: 40 kW for 2 h from 30 kWh (floor 20 kWh). If the running genset tripped, the battery would
    carry its output: with ``genset_trip`` (R = 0) the reserve held is at least the genset's output in every
    step, the energy for it is counted (short where the battery has less), and no critical load is shed
    to hold it (its cost stays below the load's value)."""
    inp = _inputs({"load.crit": [40.0, 40.0]}, batteries=[battery(soc_min=0.2, initial_soc=0.3)])
    kept = _solve(inp, reserve=_reserve(0.0, genset_trip=True))
    assert kept.reserve is not None
    assert col(kept, "load.crit.shed_kw") == pytest.approx([0.0, 0.0], abs=1e-6)
    assert np.all(kept.reserve.held_kw >= col(kept, "generator.dg.kw") - 1e-6)
    energy = col(kept, "battery.bat.soc") * 100.0
    short = np.maximum(20.0 + kept.reserve.held_kw - energy, 0.0)  # floor + 1 h of the reserve, lossless
    assert kept.reserve.short_kwh == pytest.approx(short, abs=1e-6)
    assert kept.reserve.penalty == pytest.approx(100.0 * short.sum())
    assert short.sum() > 0  # the battery cannot hold a genset's output here: the plan knows it is short


def test_emergency_protects_the_reserve_right_after_the_critical_tier() -> None:
    inp = _inputs({"load.crit": [20.0, 20.0]}, loads=[CRITICAL, tier("rest", 2, 10.0)])
    plan = optimize_emergency(dataclasses.replace(inp, reserve=_reserve(10.0)))
    assert [s.name for s in plan.stages] == [
        "shed priority 1",
        "reserve",
        "shed priority 2",
        "cost",
    ]  # no stock: no fuel stage


def test_the_sites_reserve_section_sizes_the_inputs() -> None:
    site = microgrid.read_site(HOSPITAL)
    reserve = ReserveInputs.of(site, kw=5.0)
    assert reserve is not None
    assert (reserve.battery, reserve.kw, reserve.hold_h) == ("bess2", 20.0, 0.25)  # the largest; min_kw wins
    # the critical tier's 2000 per kWh: 0.6 of it in the step executed now, 0.3 × 0.25 h / 24 h later, so
    # that missing for the whole day costs 0.9 of the critical load (never shed to hold the reserve)
    assert reserve.now_cost_per_kwh == pytest.approx(0.6 * 2000.0)
    assert reserve.shortfall_cost_per_kwh == pytest.approx(0.3 * 2000.0 * 0.25 / 24)
    whole_day = reserve.now_cost_per_kwh + (96 - 1) * reserve.shortfall_cost_per_kwh
    assert whole_day < 2000.0
    assert ReserveInputs.of(site, kw=60.0).kw == 60.0  # type: ignore[union-attr]
    assert reserve.early_charge_per_kwh == pytest.approx(1e-4 * 2000.0)  # far below the tariff's zones


# -- feeders --------------------------------------------------------------------------------------

SHORT = {
    "batteries": [],
    "generators": [genset(max_kw=100.0)],
    "loads": [CRITICAL, tier("comfort", 3, 10.0)],
}
"""A 100 kW genset (2.5 per kWh + 20 an hour running) and a comfort tier worth 10 per kWh: worth serving."""


def _feeders(steps: int, **over: Any) -> FeederInputs:
    base = {
        "tiers": ("comfort",),
        "discrete_steps": steps,
        "closed": {"comfort": True},
        "hours_in_state": {"comfort": 24.0},
    }
    return FeederInputs(**(base | over))


def test_a_tier_is_shed_whole_by_its_relay() -> None:
    """60 + 60 kW against a 100 kW genset: the spec sheds 20 kW of comfort; a relay sheds all 60 of it."""
    inp = _inputs({"load.crit": [60.0, 60.0], "load.comfort": [60.0, 60.0]}, **SHORT)
    assert col(_solve(inp), "load.comfort.shed_kw") == pytest.approx([20.0, 20.0])
    whole = _solve(inp, feeders=_feeders(2))
    assert col(whole, "load.comfort.shed_kw") == pytest.approx([60.0, 60.0])
    assert col(whole, "generator.dg.kw") == pytest.approx([60.0, 60.0])


def test_after_the_discrete_steps_the_plan_may_shed_a_fraction() -> None:
    inp = _inputs({"load.crit": [60.0, 60.0], "load.comfort": [60.0, 60.0]}, **SHORT)
    assert col(_solve(inp, feeders=_feeders(1)), "load.comfort.shed_kw") == pytest.approx([60.0, 20.0])


def test_a_relay_opened_stays_open_its_minimum_time() -> None:
    """Short of power in the first hour only: the spec sheds 20 kW then nothing; the relay opens for its
    2 h minimum and the comfort tier is off for both hours."""
    inp = _inputs({"load.crit": [60.0, 60.0], "load.comfort": [60.0, 30.0]}, **SHORT)
    assert col(_solve(inp), "load.comfort.shed_kw") == pytest.approx([20.0, 0.0])
    held = _solve(inp, feeders=_feeders(2, min_off_steps=2))
    assert col(held, "load.comfort.shed_kw") == pytest.approx([60.0, 30.0])
    free = _solve(inp, feeders=_feeders(2))
    assert col(free, "load.comfort.shed_kw") == pytest.approx([60.0, 0.0])


def test_a_relay_opened_a_moment_ago_stays_open() -> None:
    """Plenty of power, but the relay opened 0.5 h ago with a 1 h minimum: open in the first hour, closed after."""
    inp = _inputs({"load.crit": [20.0, 20.0], "load.comfort": [20.0, 20.0]}, **SHORT)
    plan = _solve(inp, feeders=_feeders(2, min_off_steps=1, closed={"comfort": False}, hours_in_state={"comfort": 0.5}))
    assert col(plan, "load.comfort.shed_kw") == pytest.approx([20.0, 0.0])


def test_a_reconnected_tier_draws_its_cold_load_pickup() -> None:
    """The comfort relay is open now and may close: it closes at once and draws 20 · 1.5 = 30 kW in its
    first hour back, 20 after; the genset supplies it (and the critical 20)."""
    inp = _inputs({"load.crit": [20.0, 20.0], "load.comfort": [20.0, 20.0]}, **SHORT)
    feeders = _feeders(2, pickup_fraction=0.5, closed={"comfort": False}, hours_in_state={"comfort": 24.0})
    plan = _solve(inp, feeders=feeders)
    assert col(plan, "load.comfort.shed_kw") == pytest.approx([0.0, 0.0])
    assert col(plan, "load.comfort.served_kw") == pytest.approx([30.0, 20.0])
    assert col(plan, "generator.dg.kw") == pytest.approx([50.0, 40.0])


def test_with_the_grid_up_and_enough_supply_the_extensions_change_nothing() -> None:
    """The grid up all day and cheap, the relays closed: the plan with both extensions is the spec's."""
    sections = {"loads": [CRITICAL, tier("comfort", 3, 10.0)], "grid": grid(max_import_kw=500.0)}
    inp = _inputs({"load.crit": [60.0] * 4, "load.comfort": [60.0] * 4, "grid.available": [1] * 4}, **sections)
    spec = _solve(inp)
    both = _solve(inp, feeders=_feeders(4), reserve=_reserve(10.0))
    assert both.objective == pytest.approx(spec.objective)
    # what is served and shed is the spec's; the battery (and the grid feeding it) may sit on another
    # vertex of equal cost (HiGHS 1.11 charges 50 kW at step 1 where 1.16 does not: the same objective)
    same = [c for c in spec.frame.columns if c.startswith("load.")]
    assert np.allclose(both.frame[same].to_numpy(), spec.frame[same].to_numpy())
