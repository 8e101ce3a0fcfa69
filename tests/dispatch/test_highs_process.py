"""HiGHS's shared state (highspy 1.16): its banner never reaches stdout, and solves asking for
different thread counts all solve, in any thread. 1.16 refuses a run whose ``threads`` differs from
the size of the scheduler its OS thread made first, which made perfect foresight (1 thread) fail
after a default solve, in the main thread or in a worker thread that had solved before."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pyomo.environ as pyo
import pytest

from microgrid.dispatch import solve_model
from microgrid.plans import SolveStatus


def _knapsack() -> pyo.ConcreteModel:
    """max 5a + 4b + 3c with 2a + 3b + c ≤ 5, binaries: a = b = 1, c = 0 → 9 (a with c: 8; b with c: 7)."""
    m = pyo.ConcreteModel()
    m.a, m.b, m.c = (pyo.Var(within=pyo.Binary) for _ in range(3))
    m.cap = pyo.Constraint(expr=2 * m.a + 3 * m.b + m.c <= 5)
    m.value = pyo.Objective(expr=5 * m.a + 4 * m.b + 3 * m.c, sense=pyo.maximize)
    return m


def _solve(threads: int | None) -> float | None:
    result = solve_model(_knapsack(), mip_gap=0.0, time_limit_s=10, threads=threads)
    assert result.status is SolveStatus.OPTIMAL, (threads, result)
    return result.objective


SEQUENCE = (None, 1, None, 2, 1, 3, None)


def test_solves_asking_for_different_thread_counts_in_one_thread_all_solve() -> None:
    assert [_solve(t) for t in SEQUENCE] == pytest.approx([9.0] * len(SEQUENCE))


def test_a_worker_thread_that_solved_before_solves_with_another_thread_count() -> None:
    with ThreadPoolExecutor(1) as worker:  # one OS thread, like asyncio.to_thread's pool reused
        first = worker.submit(_solve, None).result()
        _solve(2)  # the main thread's scheduler changes nothing in the worker's
        again = [worker.submit(_solve, t).result() for t in (1, None, 2)]
    assert [first, *again] == pytest.approx([9.0] * 4)


def test_the_banner_never_reaches_stdout() -> None:
    code = "from tests.dispatch.test_highs_process import _solve\n_solve(None); _solve(1)\nprint('only this')\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert proc.stdout == "only this\n"
