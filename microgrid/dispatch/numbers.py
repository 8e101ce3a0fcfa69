"""Many parameter expressions of a kept model evaluated together, an array at a time.

A kept model's refresh (:mod:`microgrid.dispatch.reuse`) re-evaluates 4,000-8,000 expressions of its
mutable parameters per solve (the hospital): column bounds, right-hand sides, objective coefficients.
Most share a handful of shapes (``p``, ``c · p``, ``p − c · p``, ...). :class:`Numbers` groups the expressions by shape
(the tree of operators with numbers and parameters as its leaves) and evaluates every group with
numpy, leaf arrays in the place of the leaves, in the same operations in the same order as the
expression itself: IEEE arithmetic is the same element by element, so the values are bit for bit
those of evaluating each expression alone in Python (``sum`` from 0 left to right, as the per-row
functions this replaced did — pyomo starts from the first term, which differs only in the sign of a
zero —, ``max``/``min`` keeping the first of equals). An expression of an operator not handled here is
evaluated alone by pyomo. Measured on the hospital: a refresh 2.2-4.5 → 1.0-1.8 ms, arrays bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyomo.environ as pyo
from pyomo.core.base.param import ParamData
from pyomo.core.expr.numeric_expr import (
    NPV_DivisionExpression,
    NPV_MaxExpression,
    NPV_MinExpression,
    NPV_NegationExpression,
    NPV_ProductExpression,
    NPV_SumExpression,
)

__all__ = ["Numbers"]

_Floats = npt.NDArray[np.float64]
_Shape = tuple[Any, ...]
"""``("c",)`` a number, ``("p",)`` a parameter, ``(operator, *shapes of its arguments)``."""

_NAMES: dict[type, str] = {
    NPV_SumExpression: "sum",
    NPV_ProductExpression: "mul",
    NPV_DivisionExpression: "div",
    NPV_NegationExpression: "neg",
    NPV_MaxExpression: "max",
    NPV_MinExpression: "min",
}
_NUMBER: _Shape = ("c",)
_PARAM: _Shape = ("p",)


@dataclass
class _Group:
    """The expressions of one shape: their positions in the output and their leaves, column per leaf."""

    shape: _Shape
    positions: list[int] = field(default_factory=list)
    numbers: list[list[float]] = field(default_factory=list)
    params: list[list[int]] = field(default_factory=list)


@dataclass
class _Leaves:
    numbers: list[float] = field(default_factory=list)
    params: list[int] = field(default_factory=list)


class Numbers:
    """The values of ``expressions`` (numbers, mutable parameters, or expressions of them) as one array.

    Built once per kept model; each call reads the parameters' current values.
    """

    def __init__(self, expressions: Sequence[Any]) -> None:
        self.size = len(expressions)
        self._params: list[ParamData] = []
        self._param_index: dict[int, int] = {}
        self._alone: list[tuple[int, Any]] = []
        groups: dict[_Shape, _Group] = {}
        for position, expr in enumerate(expressions):
            leaves = _Leaves()
            shape = self._shape(expr, leaves)
            if shape is None:
                self._alone.append((position, expr))
                continue
            group = groups.setdefault(shape, _Group(shape))
            group.positions.append(position)
            group.numbers.append(leaves.numbers)
            group.params.append(leaves.params)
        self._groups = [
            (
                np.array(g.positions, dtype=np.intp),
                g.shape,
                np.array(g.numbers, dtype=float).reshape(len(g.positions), len(g.numbers[0])).T.copy(),
                np.array(g.params, dtype=np.intp).reshape(len(g.positions), len(g.params[0])).T.copy(),
            )
            for g in groups.values()
        ]

    def _shape(self, expr: Any, leaves: _Leaves) -> _Shape | None:
        if isinstance(expr, (int, float)):
            leaves.numbers.append(float(expr))
            return _NUMBER
        if isinstance(expr, ParamData):
            index = self._param_index.setdefault(id(expr), len(self._params))
            if index == len(self._params):
                self._params.append(expr)
            leaves.params.append(index)
            return _PARAM
        name = _NAMES.get(type(expr))
        if name is None:
            return None
        shapes = [self._shape(arg, leaves) for arg in expr.args]
        if any(s is None for s in shapes):
            return None
        return (name, *shapes)

    def _param_values(self) -> _Floats:
        """The parameters' values through pyomo's public ``value`` (its private ``_value`` saves ≈ 0.1 µs per
        parameter, not worth reaching into pyomo for)."""
        return np.array([p.value for p in self._params], dtype=float)

    def __call__(self) -> _Floats:
        """The expressions' current values, in their order."""
        out = np.empty(self.size)
        if self._groups:
            values = self._param_values()
            for positions, shape, numbers, params in self._groups:
                cursor = [0, 0]
                out[positions] = _evaluate(shape, numbers, params, values, cursor)
        for position, expr in self._alone:
            out[position] = float(pyo.value(expr))
        return out


def _evaluate(shape: _Shape, numbers: _Floats, params: npt.NDArray[np.intp], values: _Floats, cursor: list[int]) -> Any:
    """``shape`` evaluated over a group: its leaves taken in order (``cursor``: the next number and parameter)."""
    kind = shape[0]
    if kind == "c":
        cursor[0] += 1
        return numbers[cursor[0] - 1]
    if kind == "p":
        cursor[1] += 1
        return values[params[cursor[1] - 1]]
    args = [_evaluate(s, numbers, params, values, cursor) for s in shape[1:]]
    return _OPERATIONS[kind](args)


def _sum(args: list[Any]) -> Any:
    total: Any = 0.0  # as Python's sum of floats: from 0, left to right
    for arg in args:
        total = total + arg
    return total


def _divide(args: list[Any]) -> Any:
    if np.any(np.asarray(args[1]) == 0):
        raise ZeroDivisionError("float division by zero in a parameter expression")
    return args[0] / args[1]


def _extreme(larger: bool) -> Callable[[list[Any]], Any]:
    def pick(args: list[Any]) -> Any:
        best = args[0]  # as Python's max/min: an argument replaces the best only when strictly beyond it
        for arg in args[1:]:
            best = np.where(arg > best if larger else arg < best, arg, best)
        return best

    return pick


_OPERATIONS: dict[str, Callable[[list[Any]], Any]] = {
    "sum": _sum,
    "mul": lambda a: a[0] * a[1],
    "div": _divide,
    "neg": lambda a: -a[0],
    "max": _extreme(True),
    "min": _extreme(False),
}
