"""The one cost rule (microgrid.plans.cost_parts) behind Plan.cost, the simulations' KPIs and the demo."""

from __future__ import annotations

import numpy as np
import pytest

from microgrid.plans import cost_parts
from microgrid.site import site_from_dict
from tests.conftest import tiny_site

SITE = site_from_dict(
    tiny_site(
        batteries=[
            {
                "id": "bat",
                "capacity_kwh": 100.0,
                "max_charge_kw": 50.0,
                "max_discharge_kw": 50.0,
                "soc_min": 0.1,
                "soc_max": 0.9,
                "charge_efficiency": 1.0,
                "discharge_efficiency": 1.0,
                "initial_soc": 0.5,
                "wear_cost_per_kwh": 0.5,
                "terminal_value_per_kwh": 2.0,
            }
        ],
        fuels={"diesel": {"unit": "l", "price_per_unit": 60.0}},
        generators=[
            {
                "id": "dg",
                "max_kw": 100.0,
                "min_kw": 30.0,
                "fuel": "diesel",
                "fuel_per_kwh": 0.3,
                "fuel_per_hour_running": 2.0,
                "startup_cost": 150.0,
            },
        ],
        loads=[{"id": "crit", "priority": 1, "value_of_lost_load_per_kwh": 1000.0}],
        grid={"max_import_kw": 100.0, "import_price_per_kwh": 5.0},
    )
)
ONE_INTERVAL = {
    "import_kwh": 10.0,
    "export_kwh": 2.0,
    "import_price": 5.0,
    "export_price": 1.5,
    "fuel": {"dg": 4.0},
    "starts": {"dg": 1.0},
    "discharge_kwh": {"bat": 8.0},
    "shed_kwh": {"crit": 0.25},
    "stored_change": {"bat": -0.1},
}


def test_one_interval_by_hand() -> None:
    """grid 10·5 − 2·1.5 = 47; fuel 4 l · 60 = 240; one start 150; wear 8 kWh · 0.5 = 4; 0.25 kWh unserved ·
    1000 = 250; storage: 10 kWh (0.1 of 100) less stored, valued at 2 → +20."""
    parts = cost_parts(SITE, **ONE_INTERVAL)  # type: ignore[arg-type]
    assert parts == pytest.approx(
        {"grid": 47.0, "fuel": 240.0, "startup": 150.0, "wear": 4.0, "unserved": 250.0, "storage": 20.0}
    )


def test_per_step_arrays_add_up_to_the_whole() -> None:
    """Arrays per step and their sums give the same money (the KPIs per interval, the plan in total)."""
    steps = {k: (v if isinstance(v, float) else {a: x for a, x in v.items()}) for k, v in ONE_INTERVAL.items()}
    halves = {
        k: (np.array([v / 2, v / 2]) if isinstance(v, float) and "price" not in k else v) for k, v in steps.items()
    }
    halves |= {k: {a: np.array([x / 2, x / 2]) for a, x in v.items()} for k, v in steps.items() if isinstance(v, dict)}
    split = cost_parts(SITE, **halves)  # type: ignore[arg-type]
    whole = cost_parts(SITE, **ONE_INTERVAL)  # type: ignore[arg-type]
    assert {k: float(np.sum(v)) for k, v in split.items()} == pytest.approx(whole)
