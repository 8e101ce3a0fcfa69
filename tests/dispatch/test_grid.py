"""Spec section "Grid connection": export limits, direction binaries, outages."""

from __future__ import annotations

import pytest

import microgrid
from microgrid.dispatch import build_model, solve_model
from tests.conftest import tiny_site
from tests.dispatch.helpers import CRITICAL, battery, col, full_binary, grid, setup, solve

PV = [{"id": "roof", "peak_kw": 100}]
EXPORTING = grid(max_export_kw=30.0, import_price_per_kwh=3.0, export_price_per_kwh=1.0)


def test_pv_surplus_is_exported_up_to_the_export_limit() -> None:
    """Import 3, export 1 (so the direction binaries may be relaxed and netted); export ≤ 30 kW.

    Step 1: PV 80, load 20 → export 30 (limit), curtail 30. Step 2: no PV → import 20.
    Objective = 3·20 − 1·30 = 30.
    """
    plan = solve(
        {
            "pv": PV,
            "loads": [CRITICAL],
            "grid": grid(max_export_kw=30.0, import_price_per_kwh=3.0, export_price_per_kwh=1.0),
        },
        {"load.crit": [20, 20], "pv.roof": [80, 0]},
    )
    assert plan.objective == pytest.approx(30.0, abs=1e-6)
    assert col(plan, "grid.export_kw") == pytest.approx([30, 0], abs=1e-6)
    assert col(plan, "grid.import_kw") == pytest.approx([0, 20], abs=1e-6)
    assert col(plan, "pv.roof.kw") == pytest.approx([50, 0], abs=1e-6)


def test_no_export_during_an_outage() -> None:
    """Same, with the grid down in step 1: the surplus is curtailed (PV 20 = load); step 2 imports 20."""
    plan = solve(
        {
            "pv": PV,
            "loads": [CRITICAL],
            "grid": grid(max_export_kw=30.0, import_price_per_kwh=3.0, export_price_per_kwh=1.0),
        },
        {"load.crit": [20, 20], "pv.roof": [80, 0], "grid.available": [0, 1]},
    )
    assert plan.objective == pytest.approx(60.0, abs=1e-6)
    assert col(plan, "grid.export_kw") == pytest.approx([0, 0], abs=1e-6)
    assert col(plan, "pv.roof.kw") == pytest.approx([20, 0], abs=1e-6)


def test_export_dearer_than_import_in_the_same_step_is_not_a_money_pump() -> None:
    """Step 1: import 1, export 2, no load: the direction binary forbids importing to export.

    Objective 0 (without the binary: import 50, export 50 → −50). Step 2 imports 10 at 1.
    """
    sections = {"loads": [CRITICAL], "grid": grid(max_export_kw=50.0)}
    columns = {
        "load.crit": [0, 10],
        "grid.import_price_per_kwh": [1, 1],
        "grid.export_price_per_kwh": [2, 0],
    }
    plan = solve(sections, columns)
    assert plan.objective == pytest.approx(10.0, abs=1e-6)
    assert col(plan, "grid.export_kw") == pytest.approx([0, 0], abs=1e-6)
    assert col(plan, "grid.import_kw") == pytest.approx([0, 10], abs=1e-6)


ARBITRAGE = {
    "load.crit": [0, 10, 0],
    "grid.import_price_per_kwh": [1, 3, 5],
    "grid.export_price_per_kwh": [2, 0, 4],
}


def test_battery_arbitrage_through_the_grid_is_bounded_by_the_limits() -> None:
    """Lossless 100 kWh battery, empty, Pc = Pd = 40 kW; import ≤ 100 kW, export ≤ 30 kW.

    Prices (import / export): step 1: 1 / 2, step 2: 3 / 0, step 3: 5 / 4. Load 10 kW in step 2.
    Energy worth buying at 1 in step 1: 10 for step 2's load (saves 3) + 30 to export in step 3
    at 4 (export limit 30): 40 = Pc. Importing in step 1 forbids exporting then (direction).
    y = [40, 0, 0], q = [0, 0, 30], c = [40, 0, 0], d = [0, 10, 30].
    Objective = 40·1 − 30·4 = −80.
    """
    sections = {"batteries": [battery(max_charge_kw=40.0, max_discharge_kw=40.0)], "loads": [CRITICAL]}
    sections["grid"] = grid(max_export_kw=30.0)
    plan = solve(sections, ARBITRAGE)
    assert plan.objective == pytest.approx(-80.0, abs=1e-6)
    assert col(plan, "grid.import_kw") == pytest.approx([40, 0, 0], abs=1e-6)
    assert col(plan, "grid.export_kw") == pytest.approx([0, 0, 30], abs=1e-6)
    assert col(plan, "battery.bat.charge_kw") == pytest.approx([40, 0, 0], abs=1e-6)
    assert col(plan, "battery.bat.discharge_kw") == pytest.approx([0, 10, 30], abs=1e-6)


def test_the_direction_binaries_bite_in_the_arbitrage_case() -> None:
    """Without the direction binaries step 1 would also import 30 more to export them at 2:
    y = 70, q = 30 → step 1 costs 70 − 60 = 10 instead of 40: objective −110, not −80.
    """
    sections = {"batteries": [battery(max_charge_kw=40.0, max_discharge_kw=40.0)], "loads": [CRITICAL]}
    sections["grid"] = grid(max_export_kw=30.0)
    site, profiles, state = setup(tiny_site(**sections), ARBITRAGE)
    with_binaries = full_binary(site, profiles, state)
    assert with_binaries.objective == pytest.approx(-80.0, abs=1e-6)
    inputs = microgrid.DispatchInputs(site=site, profiles=profiles, state=state, mip_gap=0.0, time_limit_s=60)
    relaxed = solve_model(build_model(inputs, grid_direction_binaries=False), mip_gap=0.0, time_limit_s=60)
    assert relaxed.objective == pytest.approx(-110.0, abs=1e-6)


def test_direction_binaries_cannot_be_dropped_and_netted_when_export_pays_more() -> None:
    """Step 1: import 1, export 2, no load; step 2: import 1.5, load 100 kW. Import and export ≤ 100 kW.
    Lossless empty battery, 100 kWh, Pc = Pd = 100 kW.

    Spec optimum: buy 100 kWh at 1 in step 1, discharge them in step 2: objective 100.
    Without direction binaries the relaxation prefers to keep step 1's grid free for a fake
    import-to-export trade (y = q = 100 earns 100) and buys step 2's load at 1.5: objective
    −100 + 150 = 50; netting that plan afterwards would return 150, not the optimum.
    """
    sections = {"batteries": [battery(max_charge_kw=100.0, max_discharge_kw=100.0)], "loads": [CRITICAL]}
    sections["grid"] = grid(max_export_kw=100.0)
    columns = {
        "load.crit": [0, 100],
        "grid.import_price_per_kwh": [1, 1.5],
        "grid.export_price_per_kwh": [2, 0],
    }
    site, profiles, state = setup(tiny_site(**sections), columns)
    inputs = microgrid.DispatchInputs(site=site, profiles=profiles, state=state, mip_gap=0.0, time_limit_s=60)
    relaxed = solve_model(build_model(inputs, grid_direction_binaries=False), mip_gap=0.0, time_limit_s=60)
    assert relaxed.objective == pytest.approx(50.0, abs=1e-6)
    plan = solve(sections, columns)
    assert plan.objective == pytest.approx(100.0, abs=1e-6)
    assert col(plan, "grid.import_kw") == pytest.approx([100, 0], abs=1e-6)
    assert col(plan, "battery.bat.discharge_kw") == pytest.approx([0, 100], abs=1e-6)
