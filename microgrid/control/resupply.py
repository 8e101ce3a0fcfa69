"""The next fuel delivery, when the island knows it: where the long outlook stops rationing.

The long outlook (``control.outlook``, ``docs/dispatch-extensions.md``) values fuel over ``days``
ahead with no delivery: an island that does not know when its next truck comes must ration as if
none came. One that knows (the operator's ``microgrid override --fuel-delivery-at``, a planner's
simulation, the Situation Centre's fuel plan) needs to ration only until then: the long plan ends
at the delivery, and fuel burnt after it is the delivery's (a full tank is assumed to cover the
rest of the outlook). With the delivery inside the fine plan's horizon there is nothing left to
ration: no long plan, fuel at its price.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["long_plan_steps"]


def long_plan_steps(days: float, step: timedelta, start: datetime, delivery_at: datetime | None) -> int:
    """Steps of ``step`` in the long plan from ``start``: ``days`` of them, cut at ``delivery_at`` (the
    whole steps before it). A delivery at or before ``start`` has come: the full outlook again, until
    the next one is known."""
    full = round(timedelta(days=days) / step)
    if delivery_at is None or delivery_at <= start:
        return full
    return min(full, int((delivery_at - start) // step))
