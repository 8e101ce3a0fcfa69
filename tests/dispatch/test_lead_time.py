"""Lead time: the plan charges before an outage window it can see (``docs/dispatch-extensions.md``).

A definite outage (α = 0, schedule ``off``) needs nothing but the spec's model: the window is in
the horizon, the shed it would cost is in the objective, so the battery is charged ahead of it.
A possible window (the contingency extension) does the same for its protected tiers.
"""

from __future__ import annotations

import numpy as np
import pytest

from microgrid.dispatch import DispatchInputs, optimize
from tests.conftest import tiny_site
from tests.dispatch.helpers import CRITICAL, assert_invariants, battery, col, grid, setup

ETA = 0.95
SECTIONS = {
    "batteries": [
        battery(
            capacity_kwh=200.0,
            max_charge_kw=100.0,
            max_discharge_kw=100.0,
            charge_efficiency=ETA,
            discharge_efficiency=ETA,
            initial_soc=0.1,
        )
    ],
    "loads": [CRITICAL],
    "grid": grid(max_import_kw=200.0),
}
A = 4  # the window is steps 4 and 5 (1 h each)


def _energy_at_window_start(alpha: list[float], mask: list[int] | None = None) -> float:
    """Energy [kWh] at the end of step A − 1, flat import price 1, critical 50 kW, 20 kWh stored."""
    columns = {"load.crit": [50.0] * 8, "grid.available": alpha}
    site, profiles, st = setup(tiny_site(**SECTIONS), columns)
    possible = None if mask is None else np.array(mask, dtype=bool)
    plan = optimize(DispatchInputs(site, profiles, st, 0.0, 60, possible_outage=possible))
    assert_invariants(plan)
    assert col(plan, "load.crit.shed_kw").sum() == pytest.approx(0.0, abs=1e-6)
    return float(col(plan, "battery.bat.soc")[A - 1] * 200.0)


def test_the_plan_charges_before_a_definite_outage() -> None:
    """No outage: the battery only empties (20 kWh served, nothing stored at the window start).
    Outage in steps 4–5: it holds 100 / 0.95 kWh at the window start, charged from the grid before."""
    always = _energy_at_window_start([1.0] * 8)
    outage = _energy_at_window_start([1, 1, 1, 1, 0, 0, 1, 1])
    assert always == pytest.approx(0.0, abs=1e-6)
    assert outage == pytest.approx(100.0 / ETA)
    assert outage > always


def test_the_plan_charges_before_a_possible_outage_too() -> None:
    """The same window flagged ``possible`` (grid assumed up): the contingency charges ahead of it."""
    possible = _energy_at_window_start([1.0] * 8, mask=[0, 0, 0, 0, 1, 1, 0, 0])
    assert possible == pytest.approx(100.0 / ETA)
