"""microgrid: a manager for energy islands.

The public API for notebooks and scripts::

    import microgrid
    site = microgrid.read_site("models/sites/hospital.yaml")
    profiles = microgrid.read_profiles("data/hospital-winter-day.csv", site)
    plan = microgrid.plan(site, profiles)
    plan.to_frame()        # one row per step, the spec's plan columns
    plan.summary()         # status, objective, cost split, shed energy, fuel, starts
"""

from microgrid.dispatch import DispatchInputs, optimize, plan
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

__version__ = "0.1.0"

__all__ = [
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
    "optimize",
    "plan",
    "profiles_from_frame",
    "read_profiles",
    "read_site",
    "read_state",
    "site_from_dict",
    "state_from_dict",
]
