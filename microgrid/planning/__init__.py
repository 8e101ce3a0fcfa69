"""Planners' toolkit: closed-loop simulation, baselines, survival analysis, sizing sweeps, plots.

Closed loop and baselines::

    from microgrid.planning import simulate, perfect_foresight, compare, kpis_of, SimulationResult
    from microgrid.planning.scenarios import hospital_winter
    site, profiles = hospital_winter(30, seed=0)
    result = simulate(site, profiles, days=7)                   # the controller's own forecaster
    result = simulate(site, profiles, days=7, forecast="oracle", forecast_error=0.1)
    result.intervals, result.kpis
    compare(site, profiles, days=7)          # rows mpc / rules / perfect_foresight

Outage weeks (the controller told only the published schedule)::

    week = outage_week("hospital", "repair", seed=0)
    simulate(week.site, week.truth, published=week.published, reference=week.reference)

(Imported eagerly: the function ``simulate`` must win over the submodule of the same name.)
"""

from microgrid.planning import plots
from microgrid.planning.baselines import compare, perfect_foresight
from microgrid.planning.closed_loop import SimulationResult, simulate
from microgrid.planning.designs import apply_design
from microgrid.planning.kpis import kpis_of
from microgrid.planning.outage_weeks import OutageWeek, outage_week
from microgrid.planning.report import write_simulation_report, write_sweep_report
from microgrid.planning.scenarios import hospital_winter, multi_day
from microgrid.planning.survival import SurvivalResult, survival
from microgrid.planning.sweep import read_sweep, run_sweep, sweep_from_dict

__all__ = [
    "OutageWeek",
    "SimulationResult",
    "SurvivalResult",
    "apply_design",
    "compare",
    "hospital_winter",
    "kpis_of",
    "multi_day",
    "outage_week",
    "perfect_foresight",
    "plots",
    "read_sweep",
    "run_sweep",
    "simulate",
    "survival",
    "sweep_from_dict",
    "write_simulation_report",
    "write_sweep_report",
]
