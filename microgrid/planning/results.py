"""What a simulated period gives back: :class:`SimulationResult` (the closed loop, the rules, perfect foresight)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = ["SimulationResult"]


@dataclass(frozen=True)
class SimulationResult:
    """A simulated period.

    Attributes
    ----------
    intervals
        One row per interval, UTC ``DatetimeIndex`` named ``timestamp`` (the interval's start);
        powers are interval averages [kW]: ``battery.<id>.charge_kw``, ``.discharge_kw``, ``.soc``
        (end of interval); ``generator.<id>.kw``, ``.on`` (ran in the interval), ``.fuel`` (fuel
        burnt), ``.hours`` (running hours), ``.starts``; ``fuel.<name>.stock`` (left, end);
        ``pv.<id>.available_kw``, ``pv.<id>.kw``; ``load.<tier>.demand_kw``, ``.served_kw``,
        ``.shed_kw``; ``grid.available`` (share of the interval up), ``grid.import_kw``,
        ``grid.export_kw``; ``price.import_per_kwh``, ``price.export_per_kwh``; ``cost.<part>``
        (money in the interval, :mod:`~microgrid.planning.kpis`); ``spill_kw`` (surplus no sink
        could take: sources − served load; 0 unless a genset's minimum load had nowhere to go);
        ``source`` (``plan``, ``previous_plan``, ``rules``, ``autonomous`` or
        ``perfect_foresight``); ``reason``; ``emergency`` (the controller was in emergency mode);
        ``contingency_windows`` (possible-outage windows its plan carried the protected tiers
        through); ``reserve_kw`` (the reserve the plan held on the grid-forming battery, while
        islanded); ``outlook.<fuel>.value`` (the long outlook's value of a unit of fuel, when on);
        ``autonomy.critical_h``, ``autonomy.critical_essential_h``; ``solve_s`` (wall time
        of the solve phase, when one ran); ``writes.refused`` (setpoints the writer refused).
    kpis
        :func:`~microgrid.planning.kpis.kpis_of` the intervals.
    controller
        ``mpc``, ``rules`` or ``perfect_foresight``.
    writes
        Every setpoint written: ``timestamp``, ``device``, ``point``, ``value``, ``status``
        (``written``, ``skipped`` unchanged, ``refused``, ``mismatch``, ``unknown`` with why).
    timings
        Per cycle: seconds in each controller phase, the solver's own ``highs`` time and the
        ``physics`` (plant substeps and metering).
    """

    intervals: pd.DataFrame
    kpis: pd.Series
    controller: str
    writes: pd.DataFrame = field(default_factory=pd.DataFrame)
    timings: pd.DataFrame = field(default_factory=pd.DataFrame)
