"""HiGHS's shared state: the banner its first instance prints, the scheduler each thread keeps.

Two behaviours of highspy that a caller of one solve cannot see, and that changed in 1.16:

- **The banner.** highspy ≥ 1.16 prints ``Running HiGHS … Copyright …`` from C++ on file
  descriptor 1 when the first ``Highs`` of the process is constructed, before any option (``silent``)
  can be set. Our commands promise stdout to their users (``microgrid plan --json``), so the first
  instance is made with descriptor 1 pointed at ``/dev/null``; later instances print nothing.
- **The scheduler.** HiGHS runs the solves of one OS thread on that thread's scheduler, created by
  the thread's first ``run`` with that run's ``threads`` option. 1.15 quietly kept the first size when
  a later solve of the thread asked for another; 1.16 refuses the run (status ``kError``, "the
  scheduler has already been initialized"), and ``Highs.resetThreadScheduler`` resets the calling
  thread's scheduler only. `fit_scheduler` resets it, in the thread that is about to run, when the
  size asked for differs from the one that thread's scheduler has.

Every ``Highs`` of the package comes from :func:`new_highs`; every ``run`` follows :func:`fit_scheduler`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Final

import highspy

__all__ = ["fit_scheduler", "new_highs"]

_UNSET: Final = -1
"""A thread's scheduler size before its first run (``None`` means HiGHS's own default)."""

_banner_lock = threading.Lock()
_constructed = False
_thread = threading.local()
"""``scheduler_threads``: the ``threads`` option this OS thread's HiGHS scheduler was made with."""


@contextlib.contextmanager
def _stdout_to_devnull() -> Iterator[None]:
    """File descriptor 1 on ``/dev/null`` for the block (what C++ code writes there is dropped)."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


def new_highs() -> highspy.Highs:
    """A silent ``Highs``; the process's first one is constructed with its banner dropped."""
    global _constructed  # noqa: PLW0603 - the process-wide fact this module exists to keep
    with _banner_lock:
        if _constructed:
            highs = highspy.Highs()  # type: ignore[no-untyped-call]
        else:
            with _stdout_to_devnull():
                highs = highspy.Highs()  # type: ignore[no-untyped-call]
            _constructed = True
    highs.silent()
    return highs


def _reset_scheduler() -> None:
    reset = getattr(highspy.Highs, "resetThreadScheduler", None) or highspy.Highs.resetGlobalScheduler
    reset(True)


def fit_scheduler(threads: int | None) -> int | None:
    """Make this thread's scheduler fit a run with ``threads``; return the ``threads`` option to set.

    Parameters
    ----------
    threads
        Threads wanted for the solve about to run in this thread (None: HiGHS's default, which any
        scheduler accepts). When this thread's scheduler was made with another number, it is reset
        (``resetThreadScheduler``, this thread only) so that the run makes a new one.
    """
    had = getattr(_thread, "scheduler_threads", _UNSET)
    if threads is not None and had not in (threads, _UNSET):
        _reset_scheduler()
    if threads is not None or had == _UNSET:
        _thread.scheduler_threads = threads
    return threads
