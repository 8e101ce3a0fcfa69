"""The controller's measured history: demand per tier and PV per array, one row per cycle.

What the forecaster learns from (:mod:`microgrid.control.forecast`: the load forecast and the PV's
clear-sky index) and what sizes the reserve (:meth:`MeasuredHistory.net_change_rms_kw`). Kept in memory,
bounded, seeded from the store at a restart.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MeasuredHistory"]


@dataclass
class MeasuredHistory:
    """Measured demand per tier and PV per array, one row per cycle, newest last (bounded)."""

    max_rows: int = 96 * 35
    rows: deque[tuple[datetime, dict[str, float], dict[str, float]]] = field(default_factory=deque)
    _frames: tuple[tuple[int, object, object], pd.DataFrame, pd.DataFrame] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    """(the rows they were built from: count, first and last row; load; PV)."""
    _packed: deque[tuple[object, _Packed, _Packed]] = field(
        default_factory=deque, init=False, repr=False, compare=False
    )

    def add(self, when: datetime, load_kw: dict[str, float], pv_kw: dict[str, float]) -> None:
        """Append one cycle's measurements (older rows beyond ``max_rows`` are dropped)."""
        if self.rows and when <= self.rows[-1][0]:
            return  # a repeated or out-of-order cycle adds nothing
        self.rows.append((when, dict(load_kw), dict(pv_kw)))
        while len(self.rows) > self.max_rows:
            self.rows.popleft()

    def net_change_rms_kw(self, interval: timedelta, *, min_pairs: int = 4) -> float | None:
        """RMS of the change in measured net load (Σ demand − Σ PV) from one cycle to the next [kW].

        Over pairs of cycles exactly ``interval`` apart that measured the same tiers and arrays (a
        feeder switched in between says nothing about forecast error); None with fewer than
        ``min_pairs`` pairs.
        """
        changes = []
        rows = list(self.rows)
        for (t0, load0, pv0), (t1, load1, pv1) in itertools.pairwise(rows):
            if t1 - t0 != interval or load0.keys() != load1.keys() or pv0.keys() != pv1.keys():
                continue
            net0 = sum(load0.values()) - sum(pv0.values())
            net1 = sum(load1.values()) - sum(pv1.values())
            changes.append(net1 - net0)
        if len(changes) < min_pairs:
            return None
        return math.sqrt(sum(c * c for c in changes) / len(changes))

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(load kW per tier, PV kW per array), UTC-indexed; NaN where not measured.

        Built once per change of the rows (a cycle asks for them up to four times: the fine forecast's
        load and PV, the outlook's), each caller getting its own copy.
        """
        key = (len(self.rows), self.rows[0], self.rows[-1]) if self.rows else (0, None, None)
        cached = self._frames
        if cached is None or cached[0][0] != key[0] or cached[0][1] is not key[1] or cached[0][2] is not key[2]:
            self._frames = cached = (key, *self._build_frames())  # the key holds its rows: no id is reused
        return cached[1].copy(), cached[2].copy()

    def _build_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        index = pd.DatetimeIndex([r[0] for r in self.rows], tz="UTC") if self.rows else pd.DatetimeIndex([], tz="UTC")
        packed, rows = self._packed_rows(), self.rows
        return _frame(rows, packed, 1, index), _frame(rows, packed, 2, index)

    def _packed_rows(self) -> deque[tuple[object, _Packed, _Packed]]:
        """Per row: (the row, its load and its PV as (keys, values)), kept beside ``rows`` as they change."""
        packed, rows = self._packed, self.rows
        while packed and (not rows or packed[0][0] is not rows[0]):
            packed.popleft()  # rows dropped from the front
        start = len(packed)
        if start > len(rows) or (start and packed[-1][0] is not rows[start - 1]):
            packed.clear()  # the rows were changed some other way: pack them afresh
            start = 0
        last_load = packed[-1][1][0] if packed else ()
        last_pv = packed[-1][2][0] if packed else ()
        for i in range(start, len(rows)):
            row = rows[i]
            load, pv = _pack(row[1], last_load), _pack(row[2], last_pv)
            packed.append((row, load, pv))
            last_load, last_pv = load[0], pv[0]
        return packed


_Packed = tuple[tuple[str, ...], tuple[float, ...]]
"""A row's values by key: (keys, values), the keys the previous row's tuple when they are the same."""


def _pack(values: dict[str, float], last_keys: tuple[str, ...]) -> _Packed:
    keys = tuple(values)
    return (last_keys if keys == last_keys else keys), tuple(values.values())


def _frame(rows: deque[Any], packed: deque[Any], part: int, index: pd.DatetimeIndex) -> pd.DataFrame:
    """``pandas.DataFrame([row[part] for row in rows], index=index, dtype=float)`` (``part`` 1: load, 2: PV);
    by a plain array when every row has the same keys: when the first and the last row share their keys'
    tuple (:func:`_pack` hands it on only while the keys stay the same; a new tuple is another object)."""
    keys = packed[0][part][0] if packed else ()
    if not keys or packed[-1][part][0] is not keys:
        return pd.DataFrame([row[part] for row in rows], index=index, dtype=float)
    return pd.DataFrame(np.array([p[part][1] for p in packed], dtype=float), index=index, columns=list(keys))
