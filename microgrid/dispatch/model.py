"""build_model: the reference dispatch MILP of ``shared/spec/dispatch-model.md``.

Reads like the spec's table of contents: one ``add_*`` per section. Pure: no I/O.

Every number that changes between two solves of a rolling horizon (the forecast, the prices, the
state) is a mutable parameter, set by the section's ``set_*_data``: :func:`set_data` turns a built
model into the model of other inputs of the same shape (:mod:`microgrid.dispatch.reuse`).
"""

from __future__ import annotations

import pyomo.environ as pyo

from microgrid.dispatch.balance import add_balance, add_objective, set_price_data
from microgrid.dispatch.batteries import add_batteries, set_battery_data
from microgrid.dispatch.contingency import add_contingency, has_contingency
from microgrid.dispatch.feeders import add_feeders, set_feeder_data
from microgrid.dispatch.fuels import add_fuels, set_fuel_data
from microgrid.dispatch.generators import add_generators, set_generator_data
from microgrid.dispatch.grid import add_grid, set_grid_data
from microgrid.dispatch.inputs import DispatchInputs
from microgrid.dispatch.loads import add_loads, add_rationing_premium, add_service_now_premium, set_load_data
from microgrid.dispatch.pv import add_pv, set_pv_data
from microgrid.dispatch.reserve import add_reserve, set_reserve_data

__all__ = ["build_model", "set_data"]


def build_model(
    inp: DispatchInputs,
    *,
    battery_mode_binaries: bool = True,
    grid_direction_binaries: bool = True,
    generator_binaries: bool = True,
    rationing_premium: bool = False,
) -> pyo.ConcreteModel:
    """Build the spec's model for ``inp``, plus the extensions ``inp`` switches on.

    Extensions (``docs/dispatch-extensions.md``): ``possible_outage`` with a True step adds the
    contingency shadow dispatch and its shed cost to the objective; ``feeders`` sheds whole tiers
    over the first steps (with cold-load pickup in the balance); ``reserve`` keeps the grid-forming
    battery's reserve while islanded, its shortfall priced in the objective. None is on by default.

    Parameters
    ----------
    battery_mode_binaries, grid_direction_binaries
        Leave the batteries' mode and the grid's direction binaries out (a relaxation). The
        caller must check and repair the solution (see :mod:`microgrid.dispatch.optimize`).
        The battery flag applies to the contingency's shadow batteries too.
    generator_binaries
        False: gensets on u ∈ [0, 1] (with the other two False, the model is an LP: the outlook).
    rationing_premium
        Add the outlook's premium on shedding more of a tier in a step (:func:`.loads.add_rationing_premium`).

    With the outlook's terminal values (``inp.terminal``) the fine plan also pays a premium on shedding
    now rather than later in its horizon (:func:`.loads.add_service_now_premium`).
    """
    m = pyo.ConcreteModel(name=inp.site.site.name)
    m.T = pyo.Set(initialize=range(inp.steps), ordered=True)
    add_batteries(m, inp, mode_binaries=battery_mode_binaries)
    add_generators(m, inp, binary=generator_binaries)
    add_fuels(m, inp)
    add_pv(m, inp)
    add_loads(m, inp)
    add_grid(m, inp, direction_binaries=grid_direction_binaries)
    if inp.feeders is not None:
        add_feeders(m, inp)
    add_balance(m, inp)
    add_objective(m, inp)
    if rationing_premium:
        add_rationing_premium(m, inp)
    if inp.terminal is not None:
        add_service_now_premium(m, inp)
    if inp.reserve is not None:
        add_reserve(m, inp)
        m.cost.expr = m.cost.expr + m.reserve_cost
    if has_contingency(inp):
        add_contingency(m, inp, mode_binaries=battery_mode_binaries)
        m.cost.expr = m.cost.expr + m.contingency_cost
    return m


def set_data(m: pyo.ConcreteModel, inp: DispatchInputs) -> None:
    """Put ``inp``'s forecast, prices and state into the mutable parameters of ``m``.

    ``m`` must have been built for inputs of the same shape: same site, steps, step length, tiers,
    PV arrays, limited fuels and extensions (:func:`microgrid.dispatch.reuse.shape_of`), and no
    contingency.
    """
    set_battery_data(m, inp)
    set_generator_data(m, inp)
    set_fuel_data(m, inp)
    set_pv_data(m, inp)
    set_load_data(m, inp)
    set_grid_data(m, inp)
    set_price_data(m, inp)
    if inp.feeders is not None:
        set_feeder_data(m, inp)
    if inp.reserve is not None:
        set_reserve_data(m, inp)
