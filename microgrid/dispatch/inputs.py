"""DispatchInputs: everything one solve needs, as plain numbers (no pyomo here)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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
    possible_outage
        One bool per step: the step lies in a ``possible`` outage window of the schedule. Any
        True switches on the contingency extension (``docs/dispatch-extensions.md``): every
        maximal run of True steps must be survivable without the grid. None or all False: the
        spec's model, exactly.
    protect_tiers
        Load tiers the contingency must carry through a possible outage. Empty: the site's
        ``grid.schedule.possible_outage_tiers``, else the tiers of the most important priority.
    """

    site: Site
    profiles: Profiles
    state: SiteState
    mip_gap: float
    time_limit_s: float
    possible_outage: npt.NDArray[np.bool_] | None = None
    protect_tiers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.possible_outage is not None:
            mask = np.asarray(self.possible_outage, dtype=bool).reshape(-1)
            if len(mask) != self.steps:
                raise ValueError(f"possible_outage has {len(mask)} values for {self.steps} steps")
            mask.setflags(write=False)
            object.__setattr__(self, "possible_outage", mask)
        tiers = {t.id for t in self.site.loads}
        if unknown := [t for t in self.protect_tiers if t not in tiers]:
            raise ValueError(f"protect_tiers names no load tier of the site: {unknown}")

    @property
    def steps(self) -> int:
        """Number of steps T."""
        return self.profiles.steps

    @property
    def step_h(self) -> float:
        """Step length Δ [h]."""
        return self.profiles.step_h

    def outage_windows(self) -> list[tuple[int, int]]:
        """Maximal runs ``(a, b)`` of possible-outage steps, first and last step included.

        Only steps with the grid available count: a step with α[t] = 0 is a definite outage, which
        the main plan already lives through (and a site without a grid has nothing to lose).
        """
        if self.possible_outage is None:
            return []
        runs: list[tuple[int, int]] = []
        for t in np.flatnonzero(self.possible_outage & (self.profiles.grid_available.to_numpy() > 0)):
            if runs and runs[-1][1] == t - 1:
                runs[-1] = (runs[-1][0], int(t))
            else:
                runs.append((int(t), int(t)))
        return runs

    def protected_tiers(self) -> tuple[str, ...]:
        """The tiers a possible outage must not shed: ``protect_tiers``, else the site's
        ``grid.schedule.possible_outage_tiers``, else every tier of the most important priority."""
        if self.protect_tiers:
            return self.protect_tiers
        schedule = self.site.grid.schedule if self.site.grid else None
        if schedule is not None and schedule.possible_outage_tiers:
            return tuple(schedule.possible_outage_tiers)
        if not self.site.loads:
            return ()
        top = min(t.priority for t in self.site.loads)
        return tuple(t.id for t in self.site.loads if t.priority == top)

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
