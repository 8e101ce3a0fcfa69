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
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyomo.environ as pyo
from pyomo.common.errors import InfeasibleConstraintException
from pyomo.core.base.param import ParamData
from pyomo.core.expr.numeric_expr import (
    NPV_DivisionExpression,
    NPV_MaxExpression,
    NPV_MinExpression,
    NPV_NegationExpression,
    NPV_ProductExpression,
    NPV_SumExpression,
)
from pyomo.core.expr.visitor import identify_mutable_parameters
from pyomo.repn import generate_standard_repn

from microgrid.dispatch.contingency import has_contingency
from microgrid.dispatch.dive import LpBases
from microgrid.dispatch.feeders import big_m_kw
from microgrid.dispatch.inputs import DispatchInputs
from microgrid.dispatch.model import build_model, set_data
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
    battery and genset rows, the feeders' tiers, steps and big-M bounds).
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
        linear,
    )


_Number = Callable[[], float]
"""A parameter expression made into a plain function (a refresh evaluates ~1,300 per solve)."""

_OPERATORS: dict[type, Callable[[list[float]], float]] = {
    NPV_SumExpression: sum,
    NPV_ProductExpression: lambda a: a[0] * a[1],
    NPV_DivisionExpression: lambda a: a[0] / a[1],
    NPV_NegationExpression: lambda a: -a[0],
    NPV_MaxExpression: max,
    NPV_MinExpression: min,
}


def _number(expr: Any) -> _Number:
    """``expr`` (a number, a mutable parameter or an expression of them) as a function of nothing.

    Pyomo's own evaluation walks the expression tree each time (≈ 10 µs a row); these closures are
    built once per kept model. An operator not listed above falls back to ``pyo.value``.
    """
    if isinstance(expr, (int, float)):
        value = float(expr)
        return lambda: value
    if isinstance(expr, ParamData):
        return lambda: float(expr.value)
    operator = _OPERATORS.get(type(expr))
    if operator is None:
        return lambda: float(pyo.value(expr))
    parts = [_number(arg) for arg in expr.args]
    return lambda: operator([part() for part in parts])


@dataclass
class _Row:
    """A row that holds a mutable parameter: rhs = bound − constant of the body."""

    index: int
    bound: _Number
    """The constraint's lower (≥ and = rows) or upper (≤ rows) bound."""
    constant: _Number
    """The constant part of the body."""


@dataclass
class _Objective:
    costs: _Floats
    """Coefficients that hold no parameter; zero where one does."""
    columns: npt.NDArray[np.intp]
    coefficients: list[_Number]
    """Per entry of ``columns``."""
    constant: _Number


@dataclass
class KeptModel:
    """A built model, its compiled arrays (None when it could not be compiled), and what changes."""

    model: pyo.ConcreteModel
    compiled: CompiledModel | None
    shape: Hashable | None = None
    site: object = None
    lower_bounds: list[tuple[int, _Number]] | None = None
    """Columns whose lower bound holds a mutable parameter."""
    upper_bounds: list[tuple[int, _Number]] | None = None
    rows: list[_Row] | None = None
    objective: _Objective | None = None
    bases: LpBases = field(default_factory=LpBases)
    """The LP bases of its last warm-started solve (:func:`microgrid.dispatch.dive.prove_start`)."""

    @property
    def reusable(self) -> bool:
        return self.shape is not None and self.objective is not None and self.rows is not None

    def refresh(self, inp: DispatchInputs) -> None:
        """Set ``inp``'s numbers into the model and its compiled arrays."""
        assert self.compiled is not None and self.lower_bounds is not None and self.upper_bounds is not None
        assert self.rows is not None and self.objective is not None
        set_data(self.model, inp)
        lp, rows = self.compiled.lp, self.rows
        lower, upper = np.array(lp.col_lower_, dtype=float), np.array(lp.col_upper_, dtype=float)
        for side, bounds in ((lower, self.lower_bounds), (upper, self.upper_bounds)):
            side[[i for i, _ in bounds]] = [f() for _, f in bounds]
        lp.col_lower_, lp.col_upper_ = lower, upper
        index = [row.index for row in rows]
        rhs = np.array([row.bound() - row.constant() for row in rows], dtype=float)
        row_lower, row_upper = np.array(lp.row_lower_, dtype=float), np.array(lp.row_upper_, dtype=float)
        for side in (row_lower, row_upper):
            side[index] = np.where(np.isfinite(side[index]), rhs, side[index])
        lp.row_lower_, lp.row_upper_ = row_lower, row_upper
        objective = self.objective
        costs = objective.costs.copy()
        np.add.at(costs, objective.columns, [c() for c in objective.coefficients])
        lp.col_cost_ = costs
        lp.offset_ = objective.constant()


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
    kept.lower_bounds = [(i, _number(v.lower)) for i, v in enumerate(columns) if _mutable(v.lower)]
    kept.upper_bounds = [(i, _number(v.upper)) for i, v in enumerate(columns) if _mutable(v.upper)]
    rows: list[_Row] = []
    for index, entry in enumerate(compiled.rows):
        con = entry.constraint
        if not identify_mutable_parameters(con.expr):
            continue
        lower, body, upper = con.to_bounded_expression()
        repn = generate_standard_repn(body, compute_values=False)
        if not repn.is_linear() or any(_mutable(c) for c in repn.linear_coefs):
            log.debug("reuse: %s has a parameter in a coefficient, model not kept", con.name)
            return
        rows.append(_Row(index, _number(upper if entry.bound_type == 1 else lower), _number(repn.constant)))
    repn = generate_standard_repn(objective.expr, compute_values=False)
    if not repn.is_linear() or any(id(v) not in position for v in repn.linear_vars):
        return
    costs = np.zeros(len(columns))
    param_columns: list[int] = []
    coefficients: list[_Number] = []
    for var, coef in zip(repn.linear_vars, repn.linear_coefs, strict=True):
        if _mutable(coef):
            param_columns.append(position[id(var)])
            coefficients.append(_number(coef))
        else:
            costs[position[id(var)]] += float(coef)
    kept.rows = rows
    kept.objective = _Objective(costs, np.array(param_columns, dtype=np.intp), coefficients, _number(repn.constant))


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
