"""The next fuel delivery, when the island knows it: where the long outlook stops rationing.

The long outlook (``control.outlook``, ``docs/dispatch-extensions.md``) values fuel over ``days``
ahead with no delivery: an island that does not know when its next truck comes must ration as if
none came. One that knows (the operator's ``microgrid override --fuel-delivery-at``, a planner's
simulation, the Situation Centre's fuel plan) needs to ration only until then: the long plan ends
at the delivery, and fuel burnt after it is the delivery's (a full tank is assumed to cover the
rest of the outlook). With the delivery inside the fine plan's horizon there is nothing left to
ration: no long plan, fuel at its price, and the stock bounds only the fuel burnt before the delivery
(:func:`delivery_step`; the fine plan and its contingency shadows do not keep the tank for hours the
delivery's fuel will cover). The fuel kept back for a cut nobody announced
(``control.outlook.fuel_reserve_h`` of the most important tiers) need not outlast the delivery either.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from microgrid.fileio import parse_time

__all__ = ["delivery_step", "delivery_time", "long_plan_steps", "reserve_hours"]


def delivery_time(text: object) -> datetime | None:
    """An operator's delivery time: ISO 8601 with a UTC offset, as UTC; None (``null`` / ``none``) when the
    next delivery is not known. Raises ValueError naming what is wrong."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "none", "null")):
        return None
    when = parse_time(text)
    if when is None:
        raise ValueError(f"not an ISO 8601 time, got {text!r}")
    if when.utcoffset() is None:
        raise ValueError(f"needs a UTC offset (e.g. 2026-01-21T08:00+02:00), got {text!r}")
    return when.astimezone(UTC)


def long_plan_steps(days: float, step: timedelta, start: datetime, delivery_at: datetime | None) -> int:
    """Steps of ``step`` in the long plan from ``start``: ``days`` of them, cut at ``delivery_at`` (the
    whole steps before it). A delivery at or before ``start`` has come: the full outlook again, until
    the next one is known."""
    full = round(timedelta(days=days) / step)
    if delivery_at is None or delivery_at <= start:
        return full
    return min(full, int((delivery_at - start) // step))


def reserve_hours(hours: float, start: datetime, delivery_at: datetime | None) -> float:
    """Hours of the most important tiers the long plan keeps fuel back for: ``hours``, at most until the
    delivery (after it the tank is full again)."""
    if delivery_at is None or delivery_at <= start:
        return hours
    return min(hours, (delivery_at - start) / timedelta(hours=1))


def delivery_step(start: datetime, step: timedelta, steps: int, delivery_at: datetime | None) -> int | None:
    """The first step of a fine plan of ``steps`` steps from ``start`` that begins once the delivery has
    come (a step the delivery falls in counts as before it); None when no delivery is known, it has come
    already (the stock measured now holds it), or it comes after the horizon."""
    if delivery_at is None or delivery_at <= start:
        return None
    first = -(-(delivery_at - start) // step)  # ceil
    return first if first < steps else None
