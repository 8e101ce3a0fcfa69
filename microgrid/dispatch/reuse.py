"""Keep built and compiled dispatch models between the solves of a rolling horizon.

A controller (or a closed-loop simulation) solves a model of the same shape every interval with
new numbers: forecast, prices, state. Building it in pyomo and compiling it to arrays costs about
as much as HiGHS's median solve of the hospital at a loose gap (≈ 40 ms). The builders keep every
number that changes from one solve to the next in a mutable parameter
(:func:`microgrid.dispatch.model.set_data`), so a :class:`ModelCache` keeps the model with its
compiled arrays and, for new inputs of the same shape, only sets the parameters and re-evaluates
what holds one: the bounds of those columns, the right-hand sides of those rows (whose
coefficients must be numbers, checked when the model is first kept) and the objective. Equal, array for array, to
compiling a fresh model (``tests/dispatch/test_reuse.py``).

A kept model is taken out of the cache while it is solved and handed back afterwards, so two
solves never share one (a second one builds its own).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyomo.environ as pyo
from pyomo.common.errors import InfeasibleConstraintException
from pyomo.core.expr.visitor import identify_mutable_parameters
from pyomo.repn import generate_standard_repn

from microgrid.dispatch.contingency import has_contingency
from microgrid.dispatch.dive import LpBases
from microgrid.dispatch.feeders import big_m_kw
from microgrid.dispatch.inputs import DispatchInputs
from microgrid.dispatch.model import build_model, set_data
from microgrid.dispatch.numbers import Numbers
from microgrid.dispatch.solve import CompiledModel, compile_model

__all__ = ["KeptModel", "ModelCache", "shape_of"]

log = logging.getLogger(__name__)

_Floats = npt.NDArray[np.float64]


def shape_of(
    inp: DispatchInputs, *, battery_mode_binaries: bool, grid_direction_binaries: bool, linear: bool = False
) -> Hashable | None:
    """What fixes the model's rows and columns (None: not kept, e.g. with a contingency).

    The site object itself (by identity), steps and step length, tier and PV columns, the fuels
    with a stock, the two relaxation flags, and the extensions' settings that fix rows (the reserve's
    battery and genset rows, the feeders' tiers, steps and big-M bounds, the delivery's step).
    """
    if has_contingency(inp):
        return None
    limited = tuple(f for f in inp.site.fuels if inp.fuel_stock(f) is not None)
    reserve = inp.reserve
    reserve_shape = None
    if reserve is not None:  # everything but the reserve itself (kW) is a coefficient
        reserve_shape = (
            reserve.battery,
            reserve.hold_h,
            reserve.ride_through,
            reserve.genset_trip,
            reserve.shortfall_cost_per_kwh,
            reserve.now_cost_per_kwh,
            reserve.early_charge_per_kwh,
        )
    feeders = inp.feeders
    feeder_shape = None
    if feeders is not None:  # the relays now are parameters
        feeder_shape = (
            feeders.tiers,
            feeders.discrete_steps,
            feeders.min_on_steps,
            feeders.min_off_steps,
            feeders.pickup_fraction,
            tuple(big_m_kw(inp).items()),
        )
    return (
        id(inp.site),
        inp.steps,
        inp.step_h,
        tuple(inp.profiles.pv_kw.columns),
        tuple(inp.profiles.load_kw.columns),
        limited,
        battery_mode_binaries,
        grid_direction_binaries,
        reserve_shape,
        feeder_shape,
        inp.terminal is not None,
        inp.fuel_delivery_step,
        tuple((f, rows[0]) for f in limited if (rows := inp.fuel_after_delivery(f)) is not None),
        linear,
    )


@dataclass
class _Changes:
    """What a refresh re-evaluates: one :class:`Numbers` over every expression that holds a parameter.

    Its values, in order: the lower bounds of ``lower_columns``, the upper bounds of ``upper_columns``,
    the bounds of ``rows`` (the lower bound of ≥ and = rows, the upper of ≤ rows), the constants of
    their bodies (rhs = bound − constant), the objective's coefficients of ``cost_columns``, and its
    constant.
    """

    lower_columns: npt.NDArray[np.intp]
    upper_columns: npt.NDArray[np.intp]
    rows: npt.NDArray[np.intp]
    costs: _Floats
    """Objective coefficients that hold no parameter; zero where one does."""
    cost_columns: npt.NDArray[np.intp]
    numbers: Numbers

    def split(self) -> tuple[_Floats, _Floats, _Floats, _Floats, float]:
        """The current lower bounds, upper bounds, right-hand sides, objective coefficients and constant."""
        values = self.numbers()
        sizes = [len(self.lower_columns), len(self.upper_columns), len(self.rows), len(self.rows)]
        lower, upper, bound, constant, coefficients = np.split(values[:-1], np.cumsum(sizes))
        costs = self.costs.copy()
        np.add.at(costs, self.cost_columns, coefficients)
        return lower, upper, bound - constant, costs, float(values[-1])


@dataclass
class KeptModel:
    """A built model, its compiled arrays (None when it could not be compiled), and what changes."""

    model: pyo.ConcreteModel
    compiled: CompiledModel | None
    shape: Hashable | None = None
    site: object = None
    changes: _Changes | None = None
    """What a refresh re-evaluates (None: not reusable)."""
    bases: LpBases = field(default_factory=LpBases)
    """The LP bases of its last warm-started solve (:func:`microgrid.dispatch.dive.prove_start`)."""

    @property
    def reusable(self) -> bool:
        return self.shape is not None and self.changes is not None

    def refresh(self, inp: DispatchInputs) -> None:
        """Set ``inp``'s numbers into the model and its compiled arrays."""
        assert self.compiled is not None and self.changes is not None
        set_data(self.model, inp)
        lp, changes = self.compiled.lp, self.changes
        new_lower, new_upper, rhs, costs, offset = changes.split()
        lower, upper = np.array(lp.col_lower_, dtype=float), np.array(lp.col_upper_, dtype=float)
        lower[changes.lower_columns], upper[changes.upper_columns] = new_lower, new_upper
        lp.col_lower_, lp.col_upper_ = lower, upper
        index = changes.rows
        row_lower, row_upper = np.array(lp.row_lower_, dtype=float), np.array(lp.row_upper_, dtype=float)
        for side in (row_lower, row_upper):
            side[index] = np.where(np.isfinite(side[index]), rhs, side[index])
        lp.row_lower_, lp.row_upper_ = row_lower, row_upper
        lp.col_cost_ = costs
        lp.offset_ = offset


def _mutable(expr: Any) -> bool:
    return expr is not None and not isinstance(expr, (int, float)) and not expr.is_constant()


def _analyse(kept: KeptModel) -> None:
    """Find what holds a parameter; leave ``kept`` not reusable when a coefficient does."""
    compiled = kept.compiled
    assert compiled is not None
    model, columns, position = kept.model, compiled.columns, compiled.position
    if any(v.fixed for v in model.component_data_objects(pyo.Var, descend_into=True)):
        return  # a fixed variable is a constant of the compiled rows
    (objective,) = model.component_data_objects(pyo.Objective, active=True)
    if objective.sense == pyo.maximize:
        return  # the dispatch models minimise; a maximised objective is not handled here
    lower = [(i, v.lower) for i, v in enumerate(columns) if _mutable(v.lower)]
    upper = [(i, v.upper) for i, v in enumerate(columns) if _mutable(v.upper)]
    rows: list[tuple[int, Any, Any]] = []
    for index, entry in enumerate(compiled.rows):
        con = entry.constraint
        if not identify_mutable_parameters(con.expr):
            continue
        low, body, up = con.to_bounded_expression()
        repn = generate_standard_repn(body, compute_values=False)
        if not repn.is_linear() or any(_mutable(c) for c in repn.linear_coefs):
            log.debug("reuse: %s has a parameter in a coefficient, model not kept", con.name)
            return
        rows.append((index, up if entry.bound_type == 1 else low, repn.constant))
    repn = generate_standard_repn(objective.expr, compute_values=False)
    if not repn.is_linear() or any(id(v) not in position for v in repn.linear_vars):
        return
    costs = np.zeros(len(columns))
    cost_columns: list[int] = []
    coefficients: list[Any] = []
    for var, coef in zip(repn.linear_vars, repn.linear_coefs, strict=True):
        if _mutable(coef):
            cost_columns.append(position[id(var)])
            coefficients.append(coef)
        else:
            costs[position[id(var)]] += float(coef)
    expressions = [e for _, e in lower] + [e for _, e in upper] + [b for _, b, _ in rows] + [c for _, _, c in rows]
    kept.changes = _Changes(
        np.array([i for i, _ in lower], dtype=np.intp),
        np.array([i for i, _ in upper], dtype=np.intp),
        np.array([i for i, _, _ in rows], dtype=np.intp),
        costs,
        np.array(cost_columns, dtype=np.intp),
        Numbers([*expressions, *coefficients, repn.constant]),
    )


class ModelCache:
    """Built and compiled dispatch models, kept by shape (at most ``size``, least recently used out).

    Use :meth:`take` to get a model for some inputs (a kept one refreshed, or a new one) and
    :meth:`give_back` once its solution has been read. Thread-safe.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._kept: OrderedDict[Hashable, KeptModel] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def take(
        self, inp: DispatchInputs, *, battery_mode_binaries: bool, grid_direction_binaries: bool, linear: bool = False
    ) -> KeptModel:
        """A model of ``inp`` with its compiled arrays, out of the cache until :meth:`give_back`."""
        flags = {
            "battery_mode_binaries": battery_mode_binaries,
            "grid_direction_binaries": grid_direction_binaries,
            "linear": linear,
        }
        shape = shape_of(inp, **flags)
        with self._lock:
            kept = self._kept.pop(shape, None) if shape is not None else None
        if kept is not None and kept.site is inp.site:
            kept.refresh(inp)
            self.hits += 1
            return kept
        self.misses += 1
        return new_model(inp, **flags)

    def give_back(self, kept: KeptModel) -> None:
        """Keep ``kept`` for the next inputs of its shape (when it can be refreshed)."""
        if not kept.reusable:
            return
        with self._lock:
            self._kept[kept.shape] = kept
            self._kept.move_to_end(kept.shape)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)


def new_model(
    inp: DispatchInputs,
    *,
    battery_mode_binaries: bool,
    grid_direction_binaries: bool,
    linear: bool = False,
    keep: bool = True,
) -> KeptModel:
    """Build and compile the model of ``inp``; with ``keep``, also find what a refresh must re-evaluate
    (≈ +50 % on the build: a one-off solve leaves it out). ``linear``: the outlook's LP (gensets relaxed,
    the rationing premium)."""
    flags = {
        "battery_mode_binaries": battery_mode_binaries,
        "grid_direction_binaries": grid_direction_binaries,
        "linear": linear,
    }
    model = build_model(
        inp,
        battery_mode_binaries=battery_mode_binaries,
        grid_direction_binaries=grid_direction_binaries,
        generator_binaries=not linear,
        rationing_premium=linear,
    )
    try:
        compiled = compile_model(model)
    except InfeasibleConstraintException:
        return KeptModel(model, None)  # solve_model compiles again and reports it infeasible
    kept = KeptModel(model, compiled)
    shape = shape_of(inp, **flags) if keep else None
    if shape is not None:
        _analyse(kept)
        kept.shape, kept.site = shape, inp.site
    return kept
