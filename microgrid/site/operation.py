"""How ``run`` operates the site beyond the reference model: the ``control.reserve``,
``control.feeders`` and ``control.outlook`` sections (the model extensions are in
``docs/dispatch-extensions.md``).

All are on for the controller unless the site file turns them off (``reserve: off``,
``feeders: off``, ``outlook: off``); ``microgrid plan`` leaves them out (the spec's model) unless
asked for (``plan --operational``: the reserve and feeders).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from microgrid.site.values import _NUM, AssetId, Duration, Frozen, NonNegative, Positive

__all__ = ["Feeders", "Outlook", "Reserve", "switch_off"]


def switch_off(value: Any) -> Any:
    """``off`` / ``false`` (YAML: ``reserve: off``) turn a section off (None); anything else is the section."""
    return None if value is False or (isinstance(value, str) and value.lower() in {"off", "false", "no"}) else value


class Reserve(Frozen):
    """Operating reserve while islanded, held by the grid-forming battery.

    While the grid is down the grid-forming inverter takes every deviation from the plan (forecast
    error, a genset starting late or not at all): the plan keeps power headroom and energy above
    ``soc_min`` for it, and a battery below that is brought back up before anything but the most
    important tier's load, with the grid up too (charged back at once); and of two charges of it at the
    same price the plan takes the earlier, so that a cut that starts early finds it full.

    The reserve [kW] is ``max(min_kw, error_sigmas × RMS)`` of the change in measured net load
    (demand − PV) from one cycle to the next, over the controller's measured history (just
    ``min_kw`` until it has some), plus, with ``ride_through``, the planned output of a genset that is
    not yet confirmed running (a start may fail) and, with ``genset_trip``, the largest running
    genset's output (N-1). It must last ``hold_h`` (default: one control interval, until the next
    cycle re-plans from what happened).
    """

    grid_forming: AssetId | None = None
    """The battery that forms the grid while islanded (default: the largest by capacity)."""
    min_kw: NonNegative = 20.0
    error_sigmas: NonNegative = 2.5
    hold_h: Positive | None = None
    ride_through: Annotated[bool, Field(strict=True)] = False
    genset_trip: Annotated[bool, Field(strict=True)] = False
    shortfall_cost_per_kwh: NonNegative | None = None
    """Cost of each kWh of reserve missing for ``hold_h`` in the plan's later steps. Default: the most
    important tier's value of lost load × 0.3 × hold_h / horizon: with ``now_cost_per_kwh``, a reserve
    missing for the whole horizon costs 0.9 of the load it protects, so the plan never sheds that load
    to hold it, and restores a shortfall (with fuel, or by shedding the least important tiers) as soon
    as it would last."""
    now_cost_per_kwh: NonNegative | None = None
    """The same in the step executed now, before the next cycle re-plans. Default: that tier's value of
    lost load × 0.6: a plan leaving the reserve short now lets the next deviation take the battery below
    its floor, so it sheds every other tier or starts a genset first."""


class Feeders(Frozen):
    """Load shedding that feeder relays can execute: a tier is served whole or shed whole.

    Over the plan's first ``discrete_h`` each tier below the most important priority is on or off
    (a binary per step; later steps may shed fractions, an energy budget for the rationing to come);
    a relay, once switched, stays ``min_on_h`` closed or ``min_off_h`` open; a tier reconnected draws
    ``1 + pickup_fraction`` times its demand in its first step back (cold-load pickup).
    """

    discrete_h: Positive = 1.0
    min_on_h: NonNegative = 0.5
    min_off_h: NonNegative = 0.5
    pickup_fraction: Annotated[float, Field(ge=0, le=2, **_NUM)] = 0.2


class Outlook(Frozen):
    """The long, coarse plan that values fuel and stored energy at the fine plan's end.

    Every ``every`` (and when the schedule or the grid changes) the controller forecasts ``days``
    ahead at ``step`` resolution and solves the reference model over it as a linear programme; the
    fuel's and each battery's marginal values at the fine horizon's end become the fine plan's
    terminal values. Every published outage is assumed to last ``overrun_fraction`` longer than
    published (repairs overrun, cuts end late; a 4-day repair a day longer, a 4-hour cut an hour).
    The grid beyond what the schedule publishes follows ``beyond_schedule``: ``pattern`` (default:
    the queue's latest published day that is covered whole and has the grid on at some hour repeats,
    by local time of day: rotating queues keep rotating, and after an announced repair the rotation
    resumes), ``history`` (at each hour of day, as the grid mostly was at that hour over the last
    ``history_days`` days), ``as-now``, ``up`` or ``down``.
    """

    days: Annotated[float, Field(gt=1, le=31, **_NUM)] = 7.0
    fuel_reserve_h: NonNegative = 12.0
    """Fuel kept for cuts nobody announced: what the most important tiers need from the gensets for this
    long (at their forecast mean demand) is taken off the stock the long plan may allot."""
    step: Duration = timedelta(hours=1)
    every: Duration = timedelta(hours=1)
    overrun_fraction: Annotated[float, Field(ge=0, le=2, **_NUM)] = 0.25
    beyond_schedule: Literal["pattern", "history", "as-now", "up", "down"] = "pattern"
    history_days: Annotated[int, Field(ge=1, le=60, strict=True)] = 7


OptionalReserve = Annotated[Reserve | None, BeforeValidator(switch_off)]
OptionalFeeders = Annotated[Feeders | None, BeforeValidator(switch_off)]
OptionalOutlook = Annotated[Outlook | None, BeforeValidator(switch_off)]
