"""A fuel delivery in a simulation: the truck fills the simulated tank when it comes, the controller
burns the new fuel, every litre is accounted for, and a bad delivery is refused before anything runs."""

from __future__ import annotations

import copy
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from microgrid.planning.baselines import compare, perfect_foresight
from microgrid.planning.closed_loop import SimulationResult, simulate
from microgrid.profiles import Profiles, profiles_from_frame
from microgrid.site import Site, site_from_dict
from tests.planning.test_simulate import TINY

START_L = 3.0
TRUCK = datetime.fromisoformat("2026-01-15T02:00:00+00:00")


def _islanded() -> tuple[Site, Profiles]:
    """TINY islanded for 4 h: 30 kW critical, a near-empty battery (10 kWh above its floor) and 3 l of
    diesel, about 20 minutes of the genset (0.25 l/kWh · 30 kW + 2 l/h = 9.5 l/h)."""
    raw = copy.deepcopy(TINY)
    raw["batteries"][0]["initial_soc"] = 0.2
    raw["fuels"]["diesel"]["stock"] = START_L
    raw["generators"][0] |= {"initial_on": True, "initial_hours_in_state": 1}
    raw["devices"] = [
        {"id": "inverter", "map": "generic-battery-inverter", "port": 15601, "asset": "b"},
        {"id": "genset", "map": "generic-genset-controller", "port": 15602, "asset": "g"},
        {"id": "meter", "map": "generic-grid-meter", "port": 15603, "asset": "grid"},
        {"id": "feeders", "map": "generic-load-feeder", "port": 15604, "feeders": {"critical": 1, "comfort": 2}},
    ]
    site = site_from_dict(raw)
    times = pd.date_range("2026-01-15", periods=16, freq="15min", tz="UTC")
    frame = pd.DataFrame(
        {
            "timestamp": [t.isoformat() for t in times],
            "load.critical": [30.0] * 16,
            "load.comfort": [0.0] * 16,
            "grid.available": [0] * 16,
        }
    )
    return site, profiles_from_frame(frame, site)


def _poured(result: SimulationResult) -> pd.Series:
    """Fuel that came into the tank in each interval [l]: the stock's rise plus what the genset burnt."""
    i = result.intervals
    stock = i["fuel.diesel.stock"]
    before = pd.Series(np.concatenate(([START_L], stock.to_numpy()[:-1])), index=i.index)
    return stock - before + i["generator.g.fuel"]


def test_the_truck_fills_the_tank_when_it_comes_and_the_fuel_is_burnt() -> None:
    site, profiles = _islanded()
    dry = simulate(site, profiles)
    served = simulate(site, profiles, fuel_delivery_at=TRUCK, fuel_delivered={"diesel": 20.0})
    poured = _poured(served)
    assert poured[poured.index != TRUCK].abs().max() < 1e-6  # every other interval: stock falls by the fuel burnt
    assert poured[TRUCK] == pytest.approx(20.0)  # at the first interval starting at 02:00
    assert _poured(dry).abs().max() < 1e-6
    after = served.intervals.index >= TRUCK
    assert dry.intervals["fuel.diesel.stock"].iloc[-1] == 0.0
    assert served.intervals["generator.g.fuel"][after].sum() > 5.0  # the controller burns the new fuel
    unserved = {k: r.intervals["load.critical.shed_kw"][after].sum() * 0.25 for k, r in (("dry", dry), ("fed", served))}
    assert unserved["dry"] > 25.0 and unserved["fed"] < unserved["dry"] - 20.0


def test_by_default_the_truck_fills_the_tank_back_to_its_level_at_the_start() -> None:
    site, profiles = _islanded()
    result = simulate(site, profiles, days=2.5 / 24, fuel_delivery_at=TRUCK)
    i = result.intervals
    before = i["fuel.diesel.stock"][i.index < TRUCK].iloc[-1]
    assert _poured(result)[TRUCK] == pytest.approx(START_L - before)


@pytest.mark.parametrize(
    ("delivered", "at", "says"),
    [
        ({"petrol": 5.0}, TRUCK, "no fuel 'petrol'"),
        ({"diesel": -1.0}, TRUCK, "'diesel' needs a finite amount >= 0"),
        ({"diesel": float("nan")}, TRUCK, "'diesel' needs a finite amount"),
        ({"diesel": 5.0}, None, "fuel_delivered needs fuel_delivery_at"),
    ],
)
def test_a_bad_delivery_is_refused_before_the_simulation_runs(
    delivered: dict[str, float], at: datetime | None, says: str
) -> None:
    site, profiles = _islanded()
    with pytest.raises(ValueError, match=says):
        simulate(site, profiles, fuel_delivery_at=at, fuel_delivered=delivered)


# -- perfect foresight with the truck ---------------------------------------------------------------
# _islanded by hand: 120 kWh of critical demand (30 kW × 4 h), 10 kWh in the battery above its floor, and
# the genset makes at most 10 kWh a step (40 kW, the surplus into the battery) for 0.5 + 0.25 · 10 = 3 l,
# its cheapest litre per kWh. Before 02:00 the 3 l make 10 kWh; after it:
# - no truck: nothing, 120 − 10 − 10 = 100 kWh lost;
# - 10 l: 13 l burnt in all, ≤ 3 of them before: 5 steps running, 0.5 · 5 + 0.25 · E = 13 → E = 42 kWh,
#   120 − 10 − 42 = 68 kWh lost (a tank assumed full after the truck would lose only the 40 kWh before it);
# - the tank filled back to its 3 l: 3 l after it, 10 kWh, 120 − 30 = 90 kWh lost.


def _critical_lost_kwh(result: SimulationResult) -> float:
    return float(result.intervals["load.critical.shed_kw"].sum() * 0.25)


@pytest.mark.parametrize(("delivered", "lost_kwh", "burnt_l"), [(None, 90.0, 6.0), ({"diesel": 10.0}, 68.0, 13.0)])
def test_perfect_foresight_plans_with_the_truck_by_hand(
    delivered: dict[str, float] | None, lost_kwh: float, burnt_l: float
) -> None:
    site, profiles = _islanded()
    alone = perfect_foresight(site, profiles, mip_gap=1e-7, autonomy=False)
    assert _critical_lost_kwh(alone) == pytest.approx(100.0, abs=1e-3)
    result = perfect_foresight(
        site, profiles, mip_gap=1e-7, autonomy=False, fuel_delivery_at=TRUCK, fuel_delivered=delivered
    )
    assert _critical_lost_kwh(result) == pytest.approx(lost_kwh, abs=1e-3)
    i = result.intervals
    fuel = i["generator.g.fuel"]
    assert fuel[i.index < TRUCK].sum() <= START_L + 1e-6
    assert fuel.sum() == pytest.approx(burnt_l, abs=1e-4)
    stock = i["fuel.diesel.stock"]  # the delivery is in the tank from 02:00, every litre accounted for
    assert _poured(result)[TRUCK] == pytest.approx(START_L if delivered is None else 10.0, abs=1e-6)
    assert _poured(result)[i.index != TRUCK].abs().max() < 1e-6
    assert stock.iloc[-1] == pytest.approx(0.0, abs=1e-4) and stock.min() >= -1e-6


def test_compare_gives_the_truck_to_all_three() -> None:
    site, profiles = _islanded()
    table = compare(site, profiles, fuel_delivery_at=TRUCK, fuel_delivered={"diesel": 10.0}, mip_gap=0.01)
    assert (table["fuel_burnt.diesel"] > START_L + 5.0).all()  # each burnt fuel of the truck
    assert (table["fuel_burnt.diesel"] <= START_L + 10.0 + 1e-6).all()  # and no more than came
    assert table.loc["perfect_foresight", "unserved_kwh.critical"] == pytest.approx(68.0, abs=0.5)
    # the closed loops lose less than the model's bound only by the plant's latitude: the simulated battery
    # carries the load below its 10 % floor (10 kWh at most; the model never goes there)
    assert (table["unserved_kwh.critical"] >= 68.0 - 10.0 - 0.5).all()


def test_perfect_foresight_refuses_a_truck_it_cannot_plan() -> None:
    site, profiles = _islanded()
    with pytest.raises(ValueError, match="needs one MILP"):
        perfect_foresight(site, profiles, window_days=1 / 24, fuel_delivery_at=TRUCK)
    with pytest.raises(ValueError, match="no fuel of the site: 'petrol'"):
        perfect_foresight(site, profiles, fuel_delivery_at=TRUCK, fuel_delivered={"petrol": 1.0})
    with pytest.raises(ValueError, match="needs fuel_delivery_at"):
        perfect_foresight(site, profiles, fuel_delivered={"diesel": 1.0})
