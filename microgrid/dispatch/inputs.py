"""DispatchInputs: everything one solve needs, as plain numbers (no pyomo here)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.state import SiteState

_CEIL_TOL = 1e-9


def ceil_steps(hours: float, step_h: float) -> int:
    """``ceil(hours / step_h)``, tolerant of float noise (0.9 h / 0.1 h is 9 steps, not 10)."""
    return max(0, math.ceil(hours / step_h - _CEIL_TOL))


@dataclass(frozen=True)
class DispatchInputs:
    """A site, its forecast and its current state, plus the solver settings.

    Attributes
    ----------
    mip_gap
        Relative MIP gap at which HiGHS may stop.
    time_limit_s
        Wall-clock limit handed to HiGHS [s] (HiGHS may overrun it inside presolve).
    """

    site: Site
    profiles: Profiles
    state: SiteState
    mip_gap: float
    time_limit_s: float

    @property
    def steps(self) -> int:
        """Number of steps T."""
        return self.profiles.steps

    @property
    def step_h(self) -> float:
        """Step length Δ [h]."""
        return self.profiles.step_h

    def fuel_stock(self, fuel: str) -> float | None:
        """Stock of ``fuel`` available now (state first, then the site file); None = unlimited."""
        return self.state.fuel_stock.get(fuel, self.site.fuels[fuel].stock)

    def grid_arbitrage_impossible(self) -> bool:
        """True when import never costs less than export earns (ci[t] ≥ ce[t] at every step).

        Then importing and exporting in the same step never pays, and the grid direction
        binary of the spec can be dropped without changing the optimum.
        """
        ci = self.profiles.import_price_per_kwh.to_numpy()
        ce = self.profiles.export_price_per_kwh.to_numpy()
        return bool(np.all(ci >= ce))
