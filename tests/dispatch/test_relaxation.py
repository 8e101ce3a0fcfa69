"""The battery-mode relaxation of ``microgrid.dispatch.optimize``.

``optimize`` first solves the model WITHOUT the battery mode binaries m[b,t] (a relaxation that
lets a lossy battery charge and discharge at once, i.e. burn energy), then nets the result or,
when netting would overfill a battery, solves again with the binaries. Its plan must be the
spec's optimum: these cases make the relaxation want to burn energy.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import microgrid
from microgrid.dispatch.results import net_batteries
from tests.conftest import tiny_site
from tests.dispatch.helpers import CRITICAL, NEARLY_FULL, battery, col, diesel, full_binary, genset, grid, setup


def _cheap_genset_case() -> tuple[microgrid.Site, microgrid.Profiles, microgrid.SiteState]:
    """Import at 10/kWh; a genset at 2.5/kWh (0.25 l/kWh, no running fuel) but min 50 kW; load 20 kW, 2 h."""
    sections = {
        "batteries": [NEARLY_FULL],
        "generators": [genset(min_kw=50.0, fuel_per_hour_running=0.0)],
        "fuels": diesel(),
        "loads": [CRITICAL],
        "grid": grid(import_price_per_kwh=10.0),
    }
    return setup(tiny_site(**sections), {"load.crit": [20, 20]})


def _relaxed_objective(site: microgrid.Site, profiles: microgrid.Profiles, state: microgrid.SiteState) -> float:
    result = full_binary(site, profiles, state, battery_mode_binaries=False)
    assert result.objective is not None
    return result.objective


def test_relaxation_would_burn_genset_surplus_but_the_plan_does_not(caplog: pytest.LogCaptureFixture) -> None:
    """Spec model: running the genset means ≥ 50 kW for a 20 kW load; the 30 kW surplus would store
    27 kWh, but the battery has 5 kWh of room: the genset stays off, import 2·20·10 = 400.

    Relaxation: run it at 50 kW (12.5 l → 125 per hour) and burn the 30 kW surplus by charging c
    and discharging d = 0.81·c at once (c − d = 30 → c = 157.9 kW): objective 250.
    ``optimize`` must notice, re-solve with the binaries and return the 400 plan.
    """
    site, profiles, state = _cheap_genset_case()
    assert _relaxed_objective(site, profiles, state) == pytest.approx(250.0, abs=1e-6)
    full = full_binary(site, profiles, state)
    assert full.objective == pytest.approx(400.0, abs=1e-6)

    with caplog.at_level(logging.INFO, logger="microgrid.dispatch.optimize"):
        plan = microgrid.plan(site, profiles, state, mip_gap=0.0, time_limit_s=60)
    assert "solving with mode binaries" in caplog.text
    assert plan.objective == pytest.approx(full.objective, abs=1e-6)
    assert plan.status is microgrid.SolveStatus.OPTIMAL
    assert list(col(plan, "generator.dg.on")) == [0, 0]
    charge, discharge = col(plan, "battery.bat.charge_kw"), col(plan, "battery.bat.discharge_kw")
    assert np.minimum(charge, discharge).max() <= 1e-6
    assert plan.mip_gap <= 1e-9


def test_relaxation_feasible_but_spec_model_infeasible_raises() -> None:
    """The genset is locked on (min-up 2 h, started just now) at min 50 kW, load 20 kW, no export.

    Only the relaxation can get rid of 2·30 kWh (by burning them in the battery); the spec's model
    has 5 kWh of room for 2·27 kWh: infeasible. ``optimize`` must raise, not return the burning plan.
    """
    sections = {
        "batteries": [NEARLY_FULL],
        "generators": [genset(min_kw=50.0, min_up_h=2.0, initial_on=True, initial_hours_in_state=0.0)],
        "fuels": diesel(),
        "loads": [CRITICAL],
        "grid": grid(),
    }
    site, profiles, state = setup(tiny_site(**sections), {"load.crit": [20, 20]})
    assert full_binary(site, profiles, state, battery_mode_binaries=False).status is microgrid.SolveStatus.OPTIMAL
    assert full_binary(site, profiles, state).status is microgrid.SolveStatus.INFEASIBLE
    with pytest.raises(microgrid.InfeasibleError):
        microgrid.plan(site, profiles, state, mip_gap=0.0, time_limit_s=60)


def test_negative_import_price_makes_the_relaxation_burn_grid_energy() -> None:
    """Import price −1 in step 1 (paid to take power), 2 in step 2; load 10 kW; import ≤ 100 kW.

    Spec model: import the 10 kW load plus what the battery can store: room 5 kWh at ηc = 0.9 →
    5.556 kW; step 2 discharge 5·0.9 = 4.5 kW, import 5.5 at 2. Objective = −15.556 + 11 = −4.556.
    Relaxation: in step 1 charge 200 kW (Pc) and discharge 157.5 at once: 180 − 175 = 5 kWh stored,
    42.5 kW net absorbed, import 52.5 → objective −52.5 + 11 = −41.5. The plan must be the spec's.
    """
    sections = {"batteries": [NEARLY_FULL], "loads": [CRITICAL], "grid": grid()}
    site, profiles, state = setup(tiny_site(**sections), {"load.crit": [10, 10], "grid.import_price_per_kwh": [-1, 2]})
    expected = -(10 + 5 / 0.9) + 2 * (10 - 4.5)
    assert _relaxed_objective(site, profiles, state) == pytest.approx(-41.5, abs=1e-6)
    full = full_binary(site, profiles, state)
    assert full.objective == pytest.approx(expected, abs=1e-6)
    plan = microgrid.plan(site, profiles, state, mip_gap=0.0, time_limit_s=60)
    assert plan.objective == pytest.approx(expected, abs=1e-6)
    assert col(plan, "grid.import_kw") == pytest.approx([10 + 5 / 0.9, 5.5], abs=1e-6)


def _frame_with(charge: list[float], discharge: list[float], soc: list[float]) -> pd.DataFrame:
    index = pd.date_range("2026-01-01", periods=len(charge), freq="h", tz="UTC")
    return pd.DataFrame(
        {"battery.bat.charge_kw": charge, "battery.bat.discharge_kw": discharge, "battery.bat.soc": soc}, index=index
    )


def test_netting_keeps_the_net_power_and_stores_the_saved_losses() -> None:
    """SOC 0.5 of 100 kWh, ηc = ηd = 0.9; step 1 charges 30 and discharges 10 at once.

    Relaxed energy: 50 + 27 − 11.11 = 65.89. Netted: charge 20, discharge 0 → 50 + 18 = 68.
    """
    sections = {"batteries": [battery(initial_soc=0.5, charge_efficiency=0.9, discharge_efficiency=0.9)]}
    sections["loads"] = [CRITICAL]
    site, profiles, state = setup(tiny_site(**sections), {"load.crit": [0, 0]})
    inputs = microgrid.DispatchInputs(site=site, profiles=profiles, state=state, mip_gap=0.0, time_limit_s=60)
    relaxed = _frame_with([30, 0], [10, 0], [(50 + 27 - 10 / 0.9) / 100] * 2)
    netted = net_batteries(relaxed, inputs)
    assert netted is not None
    assert netted["battery.bat.charge_kw"].tolist() == pytest.approx([20, 0])
    assert netted["battery.bat.discharge_kw"].tolist() == pytest.approx([0, 0])
    assert netted["battery.bat.soc"].tolist() == pytest.approx([0.68, 0.68])


def test_netting_that_would_overfill_gives_up() -> None:
    """Battery at SOC 0.95 = soc_max; the relaxed step burns 30 kW (c − 0.81·c = 30 at ηc = ηd = 0.9).

    Netting leaves a 30 kW charge, 27 kWh more than a full battery holds: None (re-solve needed).
    """
    sections = {
        "batteries": [battery(initial_soc=0.95, soc_max=0.95, charge_efficiency=0.9, discharge_efficiency=0.9)],
        "loads": [CRITICAL],
    }
    site, profiles, state = setup(tiny_site(**sections), {"load.crit": [0, 0]})
    inputs = microgrid.DispatchInputs(site=site, profiles=profiles, state=state, mip_gap=0.0, time_limit_s=60)
    c = 30 / (1 - 0.81)
    relaxed = _frame_with([c, 0], [0.81 * c, 0], [0.95, 0.95])
    assert net_batteries(relaxed, inputs) is None
