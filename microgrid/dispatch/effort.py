"""How much work a solve may do: HiGHS's wall-clock limit, or fixed work limits for reproducible studies.

By default every solve stops at its ``time_limit_s`` [s], so a solve that hits it ends wherever the
machine's speed (and its load) left the search: two runs of one simulation can differ. Inside
:func:`deterministic` the wall clock is out: the time limit is lifted and HiGHS stops on work
alone, at the gap or after ``max_nodes`` branch-and-bound nodes. HiGHS's search is otherwise
deterministic for a given model, options and thread count, so the plans, and a simulation built on
them, then do not depend on the machine (issue 14, item 4). The price: a hard solve runs to its
node limit however long that takes.

The setting is held in a :class:`contextvars.ContextVar`: it applies to the solves started in the
``with`` block, including those the controller hands to ``asyncio.to_thread`` (which copies the
context). Work started in a thread or process of its own (a Dask worker) must enter the block there
(``microgrid.planning.baselines.run_controller(..., deterministic=True)`` does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["DETERMINISTIC", "WorkLimits", "deterministic", "effort_options"]


@dataclass(frozen=True)
class WorkLimits:
    """Work limits that replace the wall clock.

    Attributes
    ----------
    max_nodes
        Branch-and-bound nodes per MIP solve (HiGHS ``mip_max_nodes``); the root node always runs
        to its end. A solve that reaches it returns its incumbent (status ``time_limit``, as any limit).
    """

    max_nodes: int = 1000


DETERMINISTIC = WorkLimits()
"""The limits of ``--deterministic``: 1,000 nodes per solve (the hospital's closed-loop solves at gap
0.05 end at the root; a 96 × (10 + 10) plan to gap 0.001 needs a few hundred)."""

_LIMITS: ContextVar[WorkLimits | None] = ContextVar("microgrid_work_limits", default=None)


@contextlib.contextmanager
def deterministic(limits: WorkLimits = DETERMINISTIC) -> Iterator[WorkLimits]:
    """Solve on work limits instead of the wall clock inside the block (module docstring)."""
    token = _LIMITS.set(limits)
    try:
        yield limits
    finally:
        _LIMITS.reset(token)


def effort_options(time_limit_s: float) -> dict[str, Any]:
    """The HiGHS options that bound a solve: ``time_limit`` [s], or inside :func:`deterministic` no time
    limit and ``mip_max_nodes``."""
    limits = _LIMITS.get()
    if limits is None:
        return {"time_limit": time_limit_s}
    return {"time_limit": float("inf"), "mip_max_nodes": limits.max_nodes}
