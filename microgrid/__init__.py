"""microgrid: a manager for energy islands.

The public API for notebooks and scripts::

    import microgrid
    site = microgrid.read_site("models/sites/hospital.yaml")
    profiles = microgrid.read_profiles("data/hospital-winter-day.csv", site)
    plan = microgrid.plan(site, profiles)
    plan.to_frame()        # one row per step, the spec's plan columns
    plan.summary()         # status, objective, cost split, shed energy, fuel, starts
"""

import importlib
from typing import TYPE_CHECKING, Any

from microgrid.errors import (
    ConfigError,
    InfeasibleError,
    InputError,
    MicrogridError,
    ProfileError,
    SolveError,
    StateError,
)

if TYPE_CHECKING:
    from microgrid.autonomy import Autonomy, autonomy_hours
    from microgrid.dispatch import DispatchInputs, optimize, plan
    from microgrid.plans import CostSplit, Plan, SolveStatus
    from microgrid.profiles import Profiles, profiles_from_frame, read_profiles
    from microgrid.site import Site, read_site, site_from_dict
    from microgrid.state import GeneratorState, SiteState, read_state, state_from_dict

__version__ = "0.1.0"

_LAZY = {
    "Autonomy": "microgrid.autonomy",
    "autonomy_hours": "microgrid.autonomy",
    "CostSplit": "microgrid.plans",
    "Plan": "microgrid.plans",
    "SolveStatus": "microgrid.plans",
    "Profiles": "microgrid.profiles",
    "profiles_from_frame": "microgrid.profiles",
    "read_profiles": "microgrid.profiles",
    "Site": "microgrid.site",
    "read_site": "microgrid.site",
    "site_from_dict": "microgrid.site",
    "GeneratorState": "microgrid.state",
    "SiteState": "microgrid.state",
    "read_state": "microgrid.state",
    "state_from_dict": "microgrid.state",
    "DispatchInputs": "microgrid.dispatch",
    "optimize": "microgrid.dispatch",
    "plan": "microgrid.dispatch",
}
"""Loaded on first use (PEP 562), so ``import microgrid`` costs almost nothing (issue 14): the site and
state models import pydantic (``--help`` needs none), profiles, plans and autonomy numpy and pandas
(``validate``, ``status`` need none), dispatch pyomo (only the commands that solve)."""


def __getattr__(name: str) -> Any:
    if (module := _LAZY.get(name)) is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'microgrid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
