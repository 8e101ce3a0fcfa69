"""Parameter expressions evaluated an array at a time are, bit for bit, what pyomo evaluates one by one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyomo.core.expr.numeric_expr import NPV_MaxExpression, NPV_MinExpression

from microgrid.dispatch.numbers import Numbers

SIZE = 6
VALUES = st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, -0.0, 1.0, 1e-300, 0.1])


def _model(values: list[float]) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.p = pyo.Param(range(SIZE), mutable=True, initialize=dict(enumerate(values)))
    return m


def _expressions(m: pyo.ConcreteModel) -> Any:
    """Trees of +, −, ·, /, max, min over the parameters and numbers (divisors kept away from 0)."""
    leaves = st.integers(0, SIZE - 1).map(lambda i: m.p[i]) | st.floats(-100, 100, allow_nan=False)

    def grow(children: Any) -> Any:
        pairs = st.tuples(children, children)
        return st.one_of(
            pairs.map(lambda a: a[0] + a[1]),
            pairs.map(lambda a: a[0] - a[1]),
            pairs.map(lambda a: a[0] * a[1]),
            children.map(lambda a: a / (2.0 + m.p[0] * m.p[0])),
            children.map(lambda a: -a),
            st.lists(children, min_size=2, max_size=3).map(lambda a: NPV_MaxExpression(tuple(a))),
            st.lists(children, min_size=2, max_size=3).map(lambda a: NPV_MinExpression(tuple(a))),
        )

    return st.recursive(leaves, grow, max_leaves=8)


def _bits(values: Any) -> list[tuple[float, bool]]:
    array = np.asarray(values, dtype=float)
    return list(zip(array.tolist(), np.signbit(array).tolist(), strict=True))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), first=st.lists(VALUES, min_size=SIZE, max_size=SIZE))
def test_the_values_are_pyomos_bit_for_bit_and_follow_the_parameters(data: Any, first: list[float]) -> None:
    """Equal as floats (so bit for bit but for the sign of a zero: a sum starts from 0, as the per-row
    functions it replaced did, where pyomo starts from the first term: −0 + −0 is 0 here, −0 in pyomo)."""
    m = _model(first)
    expressions = data.draw(st.lists(_expressions(m), min_size=1, max_size=25))
    numbers = Numbers(expressions)
    assert numbers().tolist() == [pyo.value(e) for e in expressions]
    m.p.store_values(dict(enumerate(data.draw(st.lists(VALUES, min_size=SIZE, max_size=SIZE)))))
    assert numbers().tolist() == [pyo.value(e) for e in expressions]


def test_max_and_min_keep_the_first_of_equals_as_python_does() -> None:
    m = _model([0.0, -0.0, 2.0, 2.0, 0.0, 0.0])
    expressions = [
        NPV_MaxExpression((m.p[0], m.p[1])),
        NPV_MaxExpression((m.p[1], m.p[0])),
        NPV_MinExpression((m.p[1], m.p[0])),
    ]
    assert _bits(Numbers(expressions)()) == [(0.0, False), (-0.0, True), (-0.0, True)]


def test_an_operator_it_does_not_know_is_evaluated_alone() -> None:
    m = _model([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    expressions = [pyo.exp(m.p[0]), 3 * m.p[1], 7.5]
    numbers = Numbers(expressions)
    assert numbers().tolist() == [pytest.approx(np.e, rel=1e-15), 6.0, 7.5]
    m.p[0] = 0.0
    assert numbers()[0] == 1.0


def test_a_division_by_zero_raises_as_pyomo_does() -> None:
    m = _model([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    numbers = Numbers([m.p[0] / m.p[1]])
    with pytest.raises(ZeroDivisionError):
        numbers()
