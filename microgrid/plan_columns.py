"""The plan's column names, written once (``shared/spec/dispatch-model.md``, "Output").

A plan (:class:`microgrid.plans.Plan`) is a frame with one row per step and these columns, kW
unless named otherwise; every power is ≥ 0 with its direction in its name. The model's results,
the controller's decisions, the cost and the studies all name columns through these functions, so
a misspelt column is an ``ImportError`` or a ``NameError``, never a silent ``KeyError`` at run time.

The simulations' interval records (:class:`microgrid.planning.results.SimulationResult`) carry the
plan's columns plus those under "Interval records" below (what the plant did and saw).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "GRID_AVAILABLE",
    "GRID_EXPORT_KW",
    "GRID_IMPORT_KW",
    "PRICE_EXPORT_PER_KWH",
    "PRICE_IMPORT_PER_KWH",
    "battery_charge_kw",
    "battery_discharge_kw",
    "battery_soc",
    "fuel_stock",
    "generator_fuel",
    "generator_hours",
    "generator_kw",
    "generator_on",
    "generator_starts",
    "load_demand_kw",
    "load_served_kw",
    "load_shed_kw",
    "pv_available_kw",
    "pv_kw",
]

# -- the plan (the spec's columns) -----------------------------------------------------------
GRID_IMPORT_KW: Final = "grid.import_kw"
GRID_EXPORT_KW: Final = "grid.export_kw"


def battery_charge_kw(battery: str) -> str:
    """Battery charge power [kW, ≥ 0]."""
    return f"battery.{battery}.charge_kw"


def battery_discharge_kw(battery: str) -> str:
    """Battery discharge power [kW, ≥ 0]."""
    return f"battery.{battery}.discharge_kw"


def battery_soc(battery: str) -> str:
    """State of charge at the end of the step [fraction]."""
    return f"battery.{battery}.soc"


def generator_kw(generator: str) -> str:
    """Generator output [kW, ≥ 0]."""
    return f"generator.{generator}.kw"


def generator_on(generator: str) -> str:
    """Generator running [0/1]."""
    return f"generator.{generator}.on"


def generator_fuel(generator: str) -> str:
    """Fuel burnt in the step [fuel units]."""
    return f"generator.{generator}.fuel"


def pv_kw(array: str) -> str:
    """PV power used [kW, ≥ 0] (available less curtailed)."""
    return f"pv.{array}.kw"


def load_served_kw(tier: str) -> str:
    """Load tier served [kW, ≥ 0]."""
    return f"load.{tier}.served_kw"


def load_shed_kw(tier: str) -> str:
    """Load tier not served [kW, ≥ 0]."""
    return f"load.{tier}.shed_kw"


# -- interval records (simulations) ----------------------------------------------------------
GRID_AVAILABLE: Final = "grid.available"
"""Fraction of the interval the grid was up [0…1]."""
PRICE_IMPORT_PER_KWH: Final = "price.import_per_kwh"
PRICE_EXPORT_PER_KWH: Final = "price.export_per_kwh"


def pv_available_kw(array: str) -> str:
    """PV power available before curtailment [kW, interval mean]."""
    return f"pv.{array}.available_kw"


def load_demand_kw(tier: str) -> str:
    """Load tier demand [kW, interval mean]."""
    return f"load.{tier}.demand_kw"


def generator_hours(generator: str) -> str:
    """Running hours in the interval [h]."""
    return f"generator.{generator}.hours"


def generator_starts(generator: str) -> str:
    """Starts in the interval [count]."""
    return f"generator.{generator}.starts"


def fuel_stock(fuel: str) -> str:
    """Fuel left at the end of the interval [fuel units]."""
    return f"fuel.{fuel}.stock"
