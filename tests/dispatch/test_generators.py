"""Spec sections "Generators g" and "Fuels f": tiny cases solved by hand, then by HiGHS.

Unless a test says otherwise the genset is the helpers' default: 100 kW, 0.25 l/kWh + 2 l/h
running, diesel at 10 per litre, i.e. 2.5 per kWh on top of 20 per hour running.
"""

from __future__ import annotations

import pytest

import microgrid
from microgrid.dispatch import optimize
from tests.conftest import tiny_site
from tests.dispatch.helpers import COMFORT, CRITICAL, battery, col, diesel, genset, grid, setup, solve, tier


def test_initial_min_up_keeps_a_just_started_genset_on() -> None:
    """Running for 1 h of its 3 h min-up: locked on for ceil((3 − 1)/1) = 2 steps.

    Min 40 kW; critical load 50 kW for 3 h; grid import at 1 (cheaper than 2.5/kWh of fuel).
    Steps 1–2: genset at its minimum 40 kW (0.25·40 + 2 = 12 l → 120) + import 10 → 130 each.
    Step 3: free to stop: import 50 (vs 130 running) → 50. Objective = 2·130 + 50 = 310.
    """
    plan = solve(
        {
            "generators": [genset(min_kw=40.0, min_up_h=3.0, initial_on=True, initial_hours_in_state=1.0)],
            "fuels": diesel(),
            "loads": [CRITICAL],
            "grid": grid(max_import_kw=200.0),
        },
        {"load.crit": [50, 50, 50]},
    )
    assert plan.objective == pytest.approx(310.0, abs=1e-6)
    assert list(col(plan, "generator.dg.on")) == [1, 1, 0]
    assert col(plan, "generator.dg.kw") == pytest.approx([40, 40, 0], abs=1e-6)
    assert col(plan, "generator.dg.fuel") == pytest.approx([12, 12, 0], abs=1e-6)
    assert col(plan, "grid.import_kw") == pytest.approx([10, 10, 50], abs=1e-6)


def test_genset_past_its_min_up_stops_at_once() -> None:
    """Same site, but it has run 3 h already (≥ min_up_h): no lock, import all: 3·50 = 150."""
    plan = solve(
        {
            "generators": [genset(min_kw=40.0, min_up_h=3.0, initial_on=True, initial_hours_in_state=3.0)],
            "fuels": diesel(),
            "loads": [CRITICAL],
            "grid": grid(max_import_kw=200.0),
        },
        {"load.crit": [50, 50, 50]},
    )
    assert plan.objective == pytest.approx(150.0, abs=1e-6)
    assert list(col(plan, "generator.dg.on")) == [0, 0, 0]


def test_a_start_lasts_min_up_steps_although_the_load_is_gone() -> None:
    """Off-grid; critical 50 kW in step 1 only, comfort 45 kW (value 1/kWh) in all 4 steps.

    Min 40 kW, min-up 3 h (U = 3), startup cost 7. Comfort is never worth serving (1 < 2.5/kWh).
    Step 1: start, 50 kW (14.5 l → 145), comfort shed 45 → 45.
    Steps 2–3: must stay on at 40 kW (12 l → 120); 40 of comfort served, 5 shed → 125 each.
    Step 4: off (running would cost 125 > 45 of shedding): shed 45.
    Objective = 7 + 145 + 45 + 2·125 + 45 = 492; comfort shed 45 + 5 + 5 + 45 = 100 kWh.
    """
    plan = solve(
        {
            "generators": [genset(min_kw=40.0, min_up_h=3.0, startup_cost=7.0)],
            "fuels": diesel(),
            "loads": [CRITICAL, COMFORT],
        },
        {"load.crit": [50, 0, 0, 0], "load.comfort": [45, 45, 45, 45]},
    )
    assert plan.objective == pytest.approx(492.0, abs=1e-6)
    assert list(col(plan, "generator.dg.on")) == [1, 1, 1, 0]
    assert col(plan, "generator.dg.kw") == pytest.approx([50, 40, 40, 0], abs=1e-6)
    assert col(plan, "generator.dg.fuel") == pytest.approx([14.5, 12, 12, 0], abs=1e-6)
    assert plan.energy_shed_kwh() == pytest.approx({"crit": 0.0, "comfort": 100.0}, abs=1e-6)
    assert plan.generator_starts() == {"dg": 1}
    assert plan.cost().startup == pytest.approx(7.0)


def test_min_up_steps_round_up() -> None:
    """Quarter-hour steps and min-up 0.6 h: U = ceil(0.6/0.25) = ceil(2.4) = 3 steps.

    Same loads as above over 5 steps: on for steps 1–3, then off.
    """
    plan = solve(
        {"generators": [genset(min_kw=40.0, min_up_h=0.6)], "fuels": diesel(), "loads": [CRITICAL, COMFORT]},
        {"load.crit": [50, 0, 0, 0, 0], "load.comfort": [45] * 5},
        step_h=0.25,
    )
    assert list(col(plan, "generator.dg.on")) == [1, 1, 1, 0, 0]


def test_initial_lock_is_rounded_up_without_float_noise() -> None:
    """Six-minute steps (Δ = 0.1 h), min-up 1 h, running for 0.7 h: locked on for
    ceil((1 − 0.7)/0.1) = 3 steps, although (1.0 − 0.7)/0.1 = 3.0000000000000004 in floats.

    Min 40 kW, load 50 kW, import at 1 (cheaper than fuel): on, on, on, then off.
    """
    plan = solve(
        {
            "generators": [genset(min_kw=40.0, min_up_h=1.0, initial_on=True, initial_hours_in_state=0.7)],
            "fuels": diesel(),
            "loads": [CRITICAL],
            "grid": grid(),
        },
        {"load.crit": [50] * 6},
        step_h=0.1,
    )
    assert list(col(plan, "generator.dg.on")) == [1, 1, 1, 0, 0, 0]
    assert col(plan, "generator.dg.kw") == pytest.approx([40, 40, 40, 0, 0, 0], abs=1e-6)


@pytest.mark.parametrize(
    ("min_down_h", "objective", "on"),
    [
        # No min-down: stop in the cheap hour (import 50), restart for the dear ones (145 + 145).
        (0.0, 340.0, [0, 1, 1]),
        # D = 2: a stop in step 1 keeps it off in step 2 too: 50 + 500 + 145 = 695 > staying on.
        # Staying on: step 1 at min 10 kW (4.5 l → 45) + import 40 → 85; then 145 + 145 → 375.
        (2.0, 375.0, [1, 1, 1]),
        (3.0, 375.0, [1, 1, 1]),
    ],
)
def test_min_down_forbids_a_quick_restart(min_down_h: float, objective: float, on: list[int]) -> None:
    """Genset running for 10 h, min 10 kW; load 50 kW for 3 h; import price 1, then 10, 10."""
    plan = solve(
        {
            "generators": [genset(min_kw=10.0, min_down_h=min_down_h, initial_on=True, initial_hours_in_state=10.0)],
            "fuels": diesel(),
            "loads": [CRITICAL],
            "grid": grid(),
        },
        {"load.crit": [50, 50, 50], "grid.import_price_per_kwh": [1, 10, 10]},
    )
    assert plan.objective == pytest.approx(objective, abs=1e-6)
    assert list(col(plan, "generator.dg.on")) == on


def test_a_just_stopped_genset_cannot_restart_before_min_down() -> None:
    """Off-grid; stopped 0.5 h ago with min-down 2 h: locked off for ceil(1.5/1) = 2 steps.

    Battery (lossless) at SOC 0.6 with soc_min 0.2: 40 kWh. Critical 20 kW and comfort 10 kW
    (value 10/kWh) for 3 h. Steps 1–2: the battery serves critical (20 + 20 = 40 kWh), comfort is
    shed (20 kWh → 200). Step 3: start (5), 30 kW (0.25·30 + 2 = 9.5 l → 95; 2.5/kWh < 10).
    Objective = 200 + 5 + 95 = 300.
    """
    plan = solve(
        {
            "batteries": [battery(initial_soc=0.6, soc_min=0.2)],
            "generators": [
                genset(min_kw=20.0, min_down_h=2.0, startup_cost=5.0, initial_on=False, initial_hours_in_state=0.5)
            ],
            "fuels": diesel(),
            "loads": [CRITICAL, tier("comfort", 3, 10.0)],
        },
        {"load.crit": [20, 20, 20], "load.comfort": [10, 10, 10]},
    )
    assert plan.objective == pytest.approx(300.0, abs=1e-6)
    assert list(col(plan, "generator.dg.on")) == [0, 0, 1]
    assert col(plan, "battery.bat.discharge_kw") == pytest.approx([20, 20, 0], abs=1e-6)
    assert plan.energy_shed_kwh() == pytest.approx({"crit": 0.0, "comfort": 20.0}, abs=1e-6)


@pytest.mark.parametrize(
    ("startup_cost", "objective", "on", "starts"),
    [
        # Cheap start: stop in the cheap hour, import 50, restart: 145 + 50 + 30 + 145 = 370.
        (30.0, 370.0, [1, 0, 1], 1),
        # Dear start: idle at 20 kW (0.25·20 + 2 = 7 l → 70) + import 30 → 100: 145 + 100 + 145 = 390.
        (80.0, 390.0, [1, 1, 1], 0),
    ],
)
def test_startup_cost_decides_between_idling_and_restarting(
    startup_cost: float, objective: float, on: list[int], starts: int
) -> None:
    """Genset running (long enough), min 20 kW; load 50 kW; import 5, 1, 5. 50 kW from it costs 145."""
    plan = solve(
        {
            "generators": [
                genset(min_kw=20.0, startup_cost=startup_cost, initial_on=True, initial_hours_in_state=10.0)
            ],
            "fuels": diesel(),
            "loads": [CRITICAL],
            "grid": grid(),
        },
        {"load.crit": [50, 50, 50], "grid.import_price_per_kwh": [5, 1, 5]},
    )
    assert plan.objective == pytest.approx(objective, abs=1e-6)
    assert list(col(plan, "generator.dg.on")) == on
    assert plan.generator_starts() == {"dg": starts}
    assert plan.cost().startup == pytest.approx(startup_cost * starts)


FUEL_TIERS = [CRITICAL, tier("ess", 2, 100.0), tier("comfort", 3, 5.0)]
FUEL_LOADS = {"load.crit": [40, 40], "load.ess": [10, 10], "load.comfort": [40, 40]}


def test_fuel_stock_sheds_comfort_first() -> None:
    """Off-grid, 2 h; genset 0.25 l/kWh + 1 l/h, min 0; stock 30 l (state overrides the site's 1000).

    Critical 40 + essential 10 kW both hours: 2·(0.25·50 + 1) = 27 l; the last 3 l give 12 kWh of
    comfort (value 5 > 2.5 per kWh). Comfort shed 80 − 12 = 68 kWh; nothing else shed.
    Objective = 30 l · 10 + 68 · 5 = 640.
    """
    plan = solve(
        {"generators": [genset(fuel_per_hour_running=1.0)], "fuels": diesel(stock=1000.0), "loads": FUEL_TIERS},
        FUEL_LOADS,
        state={"fuels": {"diesel": {"stock": 30.0}}},
    )
    assert plan.objective == pytest.approx(640.0, abs=1e-6)
    assert plan.energy_shed_kwh() == pytest.approx({"crit": 0.0, "ess": 0.0, "comfort": 68.0}, abs=1e-6)
    assert plan.fuel_burnt()["diesel"] == pytest.approx(30.0, abs=1e-6)
    assert list(col(plan, "generator.dg.on")) == [1, 1]


def test_without_the_stock_limit_everything_is_served() -> None:
    """Same site with the site's stock of 1000 l: serve all 90 kW: 2·(0.25·90 + 1) = 47 l → 470."""
    plan = solve(
        {"generators": [genset(fuel_per_hour_running=1.0)], "fuels": diesel(stock=1000.0), "loads": FUEL_TIERS},
        FUEL_LOADS,
    )
    assert plan.objective == pytest.approx(470.0, abs=1e-6)
    assert sum(plan.energy_shed_kwh().values()) == pytest.approx(0.0, abs=1e-6)


def test_genset_locked_on_with_nowhere_to_put_its_minimum_is_infeasible() -> None:
    """Started 0 h ago with min-up 2 h (locked on for 2 steps) at min 50 kW; load 10 kW.

    The battery is full (SOC 1 = soc_max), the grid takes no export, shedding only lowers demand:
    50 kW cannot be absorbed, so there is no feasible plan.
    """
    with pytest.raises(microgrid.InfeasibleError):
        solve(
            {
                "batteries": [battery(initial_soc=1.0)],
                "generators": [genset(min_kw=50.0, min_up_h=2.0, initial_on=True, initial_hours_in_state=0.0)],
                "fuels": diesel(),
                "loads": [CRITICAL],
                "grid": grid(),
            },
            {"load.crit": [10, 10]},
        )


@pytest.mark.parametrize(("out", "expected_on"), [((), ("cheap",)), (("cheap",), ("dear",)), (("cheap", "dear"), ())])
def test_a_genset_left_out_is_not_planned(out: tuple[str, ...], expected_on: tuple[str, ...]) -> None:
    """No grid, critical load 50 kW for 2 h, value of lost load 1000: the cheaper genset (0.25 l/kWh) carries
    it; left out (it failed to start), the dearer one (0.4 l/kWh) does; both out, the load is shed."""
    site, profiles, state = setup(
        tiny_site(
            generators=[genset("cheap"), genset("dear", fuel_per_kwh=0.4)],
            fuels=diesel(),
            loads=[CRITICAL],
        ),
        {"load.crit": [50, 50]},
    )
    plan = optimize(microgrid.DispatchInputs(site, profiles, state, 0.0, 60.0, generators_out=frozenset(out)))
    for gen in ("cheap", "dear"):
        assert list(col(plan, f"generator.{gen}.on")) == ([1, 1] if gen in expected_on else [0, 0]), gen
    assert col(plan, "load.crit.shed_kw") == pytest.approx([0, 0] if expected_on else [50, 50], abs=1e-6)
