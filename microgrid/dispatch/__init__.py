"""THE MODEL: the reference dispatch MILP, pure and free of I/O; the only place pyomo is imported."""

from microgrid.dispatch.emergency import optimize_emergency
from microgrid.dispatch.inputs import DispatchInputs
from microgrid.dispatch.model import build_model
from microgrid.dispatch.optimize import optimize, plan
from microgrid.dispatch.reuse import ModelCache
from microgrid.dispatch.solve import SolveResult, solve_model

__all__ = [
    "DispatchInputs",
    "ModelCache",
    "SolveResult",
    "build_model",
    "optimize",
    "optimize_emergency",
    "plan",
    "solve_model",
]
