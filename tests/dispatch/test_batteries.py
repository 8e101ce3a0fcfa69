"""Spec section "Batteries b": tiny cases solved by hand, then by HiGHS."""

from __future__ import annotations

from typing import NamedTuple

import pytest

import microgrid
from microgrid.dispatch import optimize
from tests.conftest import tiny_site
from tests.dispatch.helpers import CRITICAL, battery, col, grid, setup, solve

# Two one-hour steps: import at 1 then at 5, the load (20 kW) only in step 2.
ARBITRAGE_PROFILE = {"load.crit": [0, 20], "grid.import_price_per_kwh": [1, 5]}


def test_arbitrage_over_two_prices_pays_for_both_efficiencies() -> None:
    """Battery 100 kWh, empty, ηc = ηd = 0.9, 50 kW both ways; import ≤ 100 kW.

    Serving 20 kWh in step 2 from the battery needs 20/0.9 = 22.222 kWh stored, i.e.
    22.222/0.9 = 24.691 kW charged in step 1 at price 1: cost 24.691 < 20 · 5 = 100 from the grid.
    Objective = 20 / 0.81 = 24.691358…; SOC after step 1 = 22.222/100 = 0.2222, after step 2 = 0.
    """
    plan = solve(
        {"batteries": [battery(charge_efficiency=0.9, discharge_efficiency=0.9)], "loads": [CRITICAL], "grid": grid()},
        ARBITRAGE_PROFILE,
    )
    assert plan.objective == pytest.approx(20 / 0.81, abs=1e-6)
    assert col(plan, "battery.bat.charge_kw") == pytest.approx([20 / 0.81, 0], abs=1e-6)
    assert col(plan, "battery.bat.discharge_kw") == pytest.approx([0, 20], abs=1e-6)
    assert col(plan, "battery.bat.soc") == pytest.approx([0.2 / 0.9, 0], abs=1e-8)
    assert col(plan, "grid.import_kw") == pytest.approx([20 / 0.81, 0], abs=1e-6)


def test_arbitrage_not_worth_the_losses_is_not_done() -> None:
    """Same battery, prices 1 then 1.2: a kWh delivered costs 1/0.81 = 1.2346 > 1.2 via the battery.

    So the load is served from the grid in step 2: objective = 20 · 1.2 = 24, battery idle.
    """
    plan = solve(
        {"batteries": [battery(charge_efficiency=0.9, discharge_efficiency=0.9)], "loads": [CRITICAL], "grid": grid()},
        {"load.crit": [0, 20], "grid.import_price_per_kwh": [1, 1.2]},
    )
    assert plan.objective == pytest.approx(24.0, abs=1e-6)
    assert col(plan, "battery.bat.charge_kw") == pytest.approx([0, 0], abs=1e-6)
    assert col(plan, "battery.bat.discharge_kw") == pytest.approx([0, 0], abs=1e-6)


def test_arbitrage_bounded_by_charge_power() -> None:
    """ηc = ηd = 0.9, Pc = Pd = 50 kW; load 60 kW in step 2, prices 1 then 5.

    Charge is capped at 50 kW → 45 kWh stored (SOC 0.45) → 45 · 0.9 = 40.5 kW delivered in step 2;
    the other 19.5 kW are imported at 5. Objective = 50 · 1 + 19.5 · 5 = 147.5.
    """
    plan = solve(
        {"batteries": [battery(charge_efficiency=0.9, discharge_efficiency=0.9)], "loads": [CRITICAL], "grid": grid()},
        {"load.crit": [0, 60], "grid.import_price_per_kwh": [1, 5]},
    )
    assert plan.objective == pytest.approx(147.5, abs=1e-6)
    assert col(plan, "battery.bat.charge_kw") == pytest.approx([50, 0], abs=1e-6)
    assert col(plan, "battery.bat.discharge_kw") == pytest.approx([0, 40.5], abs=1e-6)
    assert col(plan, "battery.bat.soc") == pytest.approx([0.45, 0], abs=1e-8)
    assert col(plan, "grid.import_kw") == pytest.approx([50, 19.5], abs=1e-6)


class EndCase(NamedTuple):
    terminal: float
    wear: float
    objective: float
    charge: list[float]
    discharge: list[float]
    end_kwh: float


END_CASES = [
    # τ = 0, w = 0: discharging is free, serve both steps from the battery: 20 kWh out, 22.22 kWh used.
    EndCase(0.0, 0.0, 0.0, [0, 0], [10, 10], 50 - 20 / 0.9),
    # τ = 1.5, w = 0.5: a kWh delivered costs 1.5/0.9 + 0.5 = 2.1667 of value > 2 import: keep it.
    # Charging costs 2 per 0.9 kWh stored worth 1.35: no. Objective = 2·20 − 1.5·50 = −35.
    EndCase(1.5, 0.5, -35.0, [0, 0], [0, 0], 50.0),
    # τ = 1.5, w = 0: 1.5/0.9 = 1.6667 < 2: discharge 20 kWh; end 50 − 22.22 = 27.78 kWh.
    # Objective = −1.5 · 27.78 = −41.667.
    EndCase(1.5, 0.0, -1.5 * (50 - 20 / 0.9), [0, 0], [10, 10], 50 - 20 / 0.9),
    # τ = 3: a kWh imported at 2 stores 0.9 kWh worth 2.7: charge at Pc = 20 kW both steps,
    # end 50 + 2·18 = 86 kWh; import 30 + 30. Objective = 2·60 − 3·86 = −138.
    EndCase(3.0, 0.0, -138.0, [20, 20], [0, 0], 86.0),
]


@pytest.mark.parametrize("case", END_CASES, ids=lambda c: f"tau={c.terminal}-wear={c.wear}")
def test_terminal_value_and_wear_cost(case: EndCase) -> None:
    """Battery 100 kWh at SOC 0.5, ηc = ηd = 0.9, Pc = Pd = 20 kW; load 10 kW for two hours at import price 2.

    Discharging x kWh (delivered) saves 2x of import and costs (τ/ηd + w)·x; charging y kW costs 2y
    and is worth τ·ηc·y at the end (see the cases' comments).
    """
    terminal, wear, objective, charge, discharge, end_kwh = case
    bat = battery(
        initial_soc=0.5,
        charge_efficiency=0.9,
        discharge_efficiency=0.9,
        max_charge_kw=20.0,
        max_discharge_kw=20.0,
        terminal_value_per_kwh=terminal,
        wear_cost_per_kwh=wear,
    )
    plan = solve(
        {"batteries": [bat], "loads": [CRITICAL], "grid": grid(import_price_per_kwh=2.0)}, {"load.crit": [10, 10]}
    )
    assert plan.objective == pytest.approx(objective, abs=1e-6)
    assert col(plan, "battery.bat.charge_kw") == pytest.approx(charge, abs=1e-6)
    assert col(plan, "battery.bat.discharge_kw") == pytest.approx(discharge, abs=1e-6)
    assert col(plan, "battery.bat.soc")[-1] * 100 == pytest.approx(end_kwh, abs=1e-6)
    split = plan.cost()
    assert split.terminal == pytest.approx(-terminal * end_kwh, abs=1e-6)
    assert split.wear == pytest.approx(wear * sum(discharge), abs=1e-6)


def test_outage_step_is_served_by_the_battery_alone() -> None:
    """Grid (import 2) down in step 2 of 3; critical load 30 kW throughout.

    Battery 100 kWh at SOC 0.5, soc_min 0.1, ηc = 1, ηd = 0.8, terminal value 1.9/kWh.
    Step 2: discharge 30 kW uses 37.5 kWh → 12.5 kWh left (SOC 0.125). Discharging more in steps
    1/3 saves 2/kWh but gives up 1.9/0.8 = 2.375 of terminal value; charging costs 2 for 1.9: no.
    Objective = 2·(30 + 30) − 1.9·12.5 = 96.25.
    """
    bat = battery(initial_soc=0.5, soc_min=0.1, discharge_efficiency=0.8, terminal_value_per_kwh=1.9)
    plan = solve(
        {"batteries": [bat], "loads": [CRITICAL], "grid": grid(import_price_per_kwh=2.0)},
        {"load.crit": [30, 30, 30], "grid.available": [1, 0, 1]},
    )
    assert plan.objective == pytest.approx(96.25, abs=1e-6)
    assert col(plan, "grid.import_kw") == pytest.approx([30, 0, 30], abs=1e-6)
    assert col(plan, "battery.bat.discharge_kw") == pytest.approx([0, 30, 0], abs=1e-6)
    assert col(plan, "battery.bat.soc") == pytest.approx([0.5, 0.125, 0.125], abs=1e-8)
    assert plan.energy_shed_kwh() == pytest.approx({"crit": 0.0}, abs=1e-6)


def test_outage_beyond_the_battery_sheds_only_what_is_missing() -> None:
    """Grid down in both steps; 40 kW critical load, battery 30 kWh above soc_min, ηd = 1.

    The battery gives its 30 kWh (SOC 0.5 → 0.2); 10 kWh are shed at 1000: objective 10000.
    """
    plan = solve(
        {"batteries": [battery(initial_soc=0.5, soc_min=0.2)], "loads": [CRITICAL], "grid": grid()},
        {"load.crit": [40, 0], "grid.available": [0, 0]},
    )
    assert plan.objective == pytest.approx(10_000.0, abs=1e-6)
    assert col(plan, "battery.bat.discharge_kw") == pytest.approx([30, 0], abs=1e-6)
    assert plan.energy_shed_kwh()["crit"] == pytest.approx(10.0, abs=1e-6)


def test_battery_below_soc_min_stays_feasible_and_never_goes_lower() -> None:
    """Battery 100 kWh reported at SOC 0.10, below its soc_min 0.20; lossless; import price 1.

    Critical 10 kW in each of 3 one-hour steps; the grid is down in steps 1 and 3.
    Step 1: the battery may not go below 10 kWh (its widened floor) → 10 kWh shed (10000).
    Step 2: import 10 for the load + 10 to charge (SOC 0.2). Step 3: discharge 10 (SOC 0.1).
    Objective = 10000 + 20 = 10020.
    """
    plan = solve(
        {"batteries": [battery(soc_min=0.2)], "loads": [CRITICAL], "grid": grid()},
        {"load.crit": [10, 10, 10], "grid.available": [0, 1, 0]},
        state={"batteries": {"bat": {"soc": 0.1}}},
    )
    assert plan.objective == pytest.approx(10_020.0, abs=1e-6)
    assert col(plan, "battery.bat.discharge_kw") == pytest.approx([0, 0, 10], abs=1e-6)
    assert col(plan, "battery.bat.soc") == pytest.approx([0.1, 0.2, 0.1], abs=1e-8)
    assert col(plan, "load.crit.shed_kw") == pytest.approx([10, 0, 0], abs=1e-6)


def test_battery_below_soc_min_can_only_move_up() -> None:
    """At SOC 0.05 < soc_min 0.2 with an expensive step: it may charge but never discharge below 0.05.

    Import prices 1 then 100, load 10 kW in step 2 only, lossless, Pc = 50: charge 10 kW in step 1
    (SOC 0.15, still below the band) and discharge it in step 2 (back to 0.05). Objective = 10.
    """
    plan = solve(
        {"batteries": [battery(soc_min=0.2)], "loads": [CRITICAL], "grid": grid()},
        {"load.crit": [0, 10], "grid.import_price_per_kwh": [1, 100]},
        state={"batteries": {"bat": {"soc": 0.05}}},
    )
    assert plan.objective == pytest.approx(10.0, abs=1e-6)
    assert col(plan, "battery.bat.soc") == pytest.approx([0.15, 0.05], abs=1e-8)
    assert min(col(plan, "battery.bat.soc")) >= 0.05 - 1e-9


def test_battery_above_soc_max_cannot_charge_further() -> None:
    """SOC 0.98 reported above soc_max 0.9; PV 50 kW surplus and no export: the PV is curtailed.

    Lossless, no load in step 1: the battery may not charge above 0.98 (its widened ceiling),
    so PV is curtailed to 0. Step 2: load 10 kW served by the battery (SOC 0.88, into the band).
    Objective = 0.
    """
    plan = solve(
        {"batteries": [battery(soc_max=0.9)], "pv": [{"id": "roof", "peak_kw": 60}], "loads": [CRITICAL]},
        {"load.crit": [0, 10], "pv.roof": [50, 0]},
        state={"batteries": {"bat": {"soc": 0.98}}},
    )
    assert plan.objective == pytest.approx(0.0, abs=1e-6)
    assert col(plan, "battery.bat.charge_kw") == pytest.approx([0, 0], abs=1e-6)
    assert col(plan, "pv.roof.kw") == pytest.approx([0, 0], abs=1e-6)
    assert col(plan, "battery.bat.soc") == pytest.approx([0.98, 0.88], abs=1e-8)


def test_soc_column_is_end_of_step_fraction_with_quarter_hour_steps() -> None:
    """Δ = 0.25 h: 40 kW discharged for one step moves 10 kWh (SOC 0.5 → 0.4 of 100 kWh).

    Off-grid, critical 40 kW in step 1 only, lossless battery: objective 0.
    """
    plan = solve({"batteries": [battery(initial_soc=0.5)], "loads": [CRITICAL]}, {"load.crit": [40, 0]}, step_h=0.25)
    assert plan.step_hours == 0.25
    assert col(plan, "battery.bat.discharge_kw") == pytest.approx([40, 0], abs=1e-6)
    assert col(plan, "battery.bat.soc") == pytest.approx([0.4, 0.4], abs=1e-8)
    assert plan.objective == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("power_now_kw", "discharge", "imported", "objective"),
    [
        (None, [40, 40], [0, 0], 0.0),  # the site's 50 kW: the full battery serves both steps
        ({"bat": (50.0, 15.0)}, [15, 40], [25, 0], 25 * 5.0),  # derated to 15 kW now: 25 kW imported at 5
        ({"bat": (0.0, 0.0)}, [0, 40], [40, 0], 40 * 5.0),  # tripped (or ignoring writes) now
        ({"bat": (80.0, 900.0)}, [40, 40], [0, 0], 0.0),  # more than the site's: the site's
    ],
)
def test_the_first_step_can_do_only_what_the_inverter_reports_now(
    power_now_kw: dict[str, tuple[float, float]] | None, discharge: list[float], imported: list[float], objective: float
) -> None:
    """Battery full (100 kWh, lossless, 50 kW), load 40 kW for two 1-h steps, import at 5: the battery serves
    40 kW in each step. An inverter reporting less now bounds the first step only (the controller's
    ``power_now_kw``); the grid makes up the difference, at 5 per kWh."""
    site, profiles, state = setup(
        tiny_site(batteries=[battery(initial_soc=1.0)], loads=[CRITICAL], grid=grid()),
        {"load.crit": [40, 40], "grid.import_price_per_kwh": [5, 5]},
    )
    inputs = microgrid.DispatchInputs(site, profiles, state, 0.0, 60.0, power_now_kw=power_now_kw)
    plan = optimize(inputs)
    assert col(plan, "battery.bat.discharge_kw") == pytest.approx(discharge, abs=1e-6)
    assert col(plan, "grid.import_kw") == pytest.approx(imported, abs=1e-6)
    assert plan.objective == pytest.approx(objective, abs=1e-6)
