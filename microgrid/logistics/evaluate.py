"""What a delivery plan does to each island, simulated minute by minute at the real arrival times.

The same judge for every plan (the MILP's, nearest-first's, none): an island burns its hourly burn
while it has diesel; a delivery arrives at its arrival time and must fit the tank's headroom then.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from microgrid.logistics.fleet import Fleet

__all__ = ["Delivery", "Outcome", "hours_to_dry", "outcome"]

MINUTES_PER_H = 60


@dataclass(frozen=True)
class Delivery:
    """``litres`` [l] delivered to island index ``island`` at ``arrival_h`` [h from time 0]."""

    island: int
    arrival_h: float
    litres: float


@dataclass(frozen=True)
class Outcome:
    """Per island: hours-to-dry [h, capped at the horizon], dry hours [h] (time with demand unmet,
    weighted by the unmet share), and the largest overfill of a delivery [l] (0 when every delivery fit)."""

    hours_to_dry: np.ndarray
    dry_h: np.ndarray
    overfill_l: np.ndarray
    weights: np.ndarray

    @property
    def min_weighted_h(self) -> float:
        """The smallest hours-to-dry / weight over the islands [h]."""
        return float((self.hours_to_dry / self.weights).min())

    @property
    def total_dry_h(self) -> float:
        return float(self.dry_h.sum())

    @property
    def weighted_dry_h(self) -> float:
        """Σ weight × dry hours [h]."""
        return float((self.weights * self.dry_h).sum())


def hours_to_dry(fleet: Fleet, horizon_h: float, deliveries: Sequence[Delivery]) -> tuple[np.ndarray, ...]:
    """Hours-to-dry, dry hours and overfill of each island (arrays by island index); see :class:`Outcome`."""
    islands = fleet.islands
    minutes = math.ceil(horizon_h * MINUTES_PER_H - 1e-9)
    hours = math.ceil(horizon_h)
    rate = np.array([[fleet.burn_in_hour(i, h) / MINUTES_PER_H for h in range(hours)] for i in islands])  # l/min
    arrivals: dict[int, list[Delivery]] = {}
    for d in deliveries:
        arrivals.setdefault(max(0, math.floor(d.arrival_h * MINUTES_PER_H + 1e-9)), []).append(d)
    stock = np.array([i.stock_l for i in islands], dtype=float)
    capacity = np.array([i.capacity_l for i in islands], dtype=float)
    first_dry = np.full(len(islands), float(horizon_h))
    dry_min = np.zeros(len(islands))
    overfill = np.zeros(len(islands))
    for m in range(minutes):
        for d in arrivals.get(m, ()):
            stock[d.island] += d.litres
            overfill[d.island] = max(overfill[d.island], stock[d.island] - capacity[d.island])
        demand = rate[:, m // MINUTES_PER_H]
        served = np.minimum(stock, demand)
        stock -= served
        short = demand - served > 1e-9
        share = np.where(short, (demand - served) / np.where(demand > 0, demand, 1.0), 0.0)
        newly = short & (first_dry >= horizon_h)
        first_dry[newly] = (m + 1 - share[newly]) / MINUTES_PER_H
        dry_min += share
    return first_dry, dry_min / MINUTES_PER_H, overfill


def outcome(fleet: Fleet, horizon_h: float, deliveries: Sequence[Delivery]) -> Outcome:
    """The :class:`Outcome` of ``deliveries`` over ``horizon_h`` hours."""
    h, dry, over = hours_to_dry(fleet, horizon_h, deliveries)
    return Outcome(h, dry, over, np.array([i.weight for i in fleet.islands], dtype=float))
