"""Drills: scripted fault scenarios run against the real controller and the simulated plant.

A drill file (:mod:`~microgrid.planning.drills.model`) names a site, its profiles, an initial state,
events at times and pass criteria; :func:`run_drill` runs it on a simulated clock
(:mod:`~microgrid.planning.drills.engine`) and judges it (:mod:`~microgrid.planning.drills.verdict`).
The shipped library is ``models/drills/*.yaml`` (:func:`library`).
"""

from microgrid.planning.drills.engine import SolverFaults, run_drill
from microgrid.planning.drills.files import LoadedDrill, library, read_drill
from microgrid.planning.drills.model import Criteria, Drill, Event
from microgrid.planning.drills.verdict import CriterionResult, DrillResult, Measures, judge

__all__ = [
    "Criteria",
    "CriterionResult",
    "Drill",
    "DrillResult",
    "Event",
    "LoadedDrill",
    "Measures",
    "SolverFaults",
    "judge",
    "library",
    "read_drill",
    "run_drill",
]
