"""Fuel logistics for the city: which island gets diesel first, and by which truck (docs/fuel-logistics.md).

Pure: the fleet snapshot and trucks in, a delivery plan out. The MILP (Pyomo, HiGHS) loads only when
:func:`plan_deliveries` first runs.
"""

from microgrid.logistics.chart import hours_to_dry_figure
from microgrid.logistics.city import city_fleet, city_trucks
from microgrid.logistics.evaluate import Delivery, Outcome
from microgrid.logistics.fleet import (
    Depot,
    Fleet,
    Island,
    Truck,
    fleet_from_dict,
    read_fleet,
    read_trucks,
    trucks_from_dict,
)
from microgrid.logistics.plan import FuelPlanInfeasible, baseline, plan_deliveries
from microgrid.logistics.routes import ROUTE_COLUMNS, FuelPlan, Trip

__all__ = [
    "ROUTE_COLUMNS",
    "Delivery",
    "Depot",
    "Fleet",
    "FuelPlan",
    "FuelPlanInfeasible",
    "Island",
    "Outcome",
    "Trip",
    "Truck",
    "baseline",
    "city_fleet",
    "city_trucks",
    "fleet_from_dict",
    "hours_to_dry_figure",
    "plan_deliveries",
    "read_fleet",
    "read_trucks",
    "trucks_from_dict",
]
