"""microgrid: a manager for energy islands.

The public API for notebooks and scripts::

    import microgrid
    site = microgrid.read_site("models/sites/hospital.yaml")
    profiles = microgrid.read_profiles("data/hospital-winter-day.csv", site)
    plan = microgrid.plan(site, profiles)
    plan.to_frame()        # one row per step, the spec's plan columns
    plan.summary()         # status, objective, cost split, shed energy, fuel, starts
"""

from typing import TYPE_CHECKING, Any

from microgrid.autonomy import Autonomy, autonomy_hours
from microgrid.errors import (
    ConfigError,
    InfeasibleError,
    InputError,
    MicrogridError,
    ProfileError,
    SolveError,
    StateError,
)
from microgrid.plans import CostSplit, Plan, SolveStatus
from microgrid.profiles import Profiles, profiles_from_frame, read_profiles
from microgrid.site import Site, read_site, site_from_dict
from microgrid.state import GeneratorState, SiteState, read_state, state_from_dict

if TYPE_CHECKING:
    from microgrid.dispatch import DispatchInputs, optimize, plan

__version__ = "0.1.0"

_LAZY = {"DispatchInputs", "optimize", "plan"}
"""Loaded on first use: they import pyomo, which commands like ``validate`` or ``read`` never need."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from microgrid import dispatch  # noqa: PLC0415 - lazy on purpose

        return getattr(dispatch, name)
    raise AttributeError(f"module 'microgrid' has no attribute {name!r}")


__all__ = [
    "Autonomy",
    "ConfigError",
    "CostSplit",
    "DispatchInputs",
    "GeneratorState",
    "InfeasibleError",
    "InputError",
    "MicrogridError",
    "Plan",
    "ProfileError",
    "Profiles",
    "Site",
    "SiteState",
    "SolveError",
    "SolveStatus",
    "StateError",
    "autonomy_hours",
    "optimize",
    "plan",
    "profiles_from_frame",
    "read_profiles",
    "read_site",
    "read_state",
    "site_from_dict",
    "state_from_dict",
]
