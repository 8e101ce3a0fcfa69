"""The site file's grid-facing sections: the grid connection with its tariff zones, price file and
outage schedule, the site's location and the forecast settings (issue 5's keys)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints, model_validator

from microgrid.site.values import _NUM, AssetId, Duration, Frozen, NonNegative, Positive, Real, problem

__all__ = [
    "ClockTime",
    "ForecastConfig",
    "Grid",
    "Location",
    "OutageScheduleConfig",
    "TariffZone",
    "clock_minutes",
    "forecast_problems",
    "parse_clock",
    "schedule_problems",
]


def parse_clock(text: object, *, hour_digits: int = 2, max_minutes: int | None = 1440) -> int | None:
    """Minutes after local midnight of a local time of day ``"HH:MM"`` or ``"H:MM"``, up to ``"24:00"``
    (= 1440, the end of a day); None when ``text`` is not one. The one reader of ``H:MM`` times (site
    file tariffs, outage schedules; with ``hour_digits=3, max_minutes=None`` a drill's times from its
    start, ``"H:MM"`` to ``"HHH:MM"``)."""
    clock = rf"^(\d{{1,{hour_digits}}}):([0-5]\d)$"
    match = re.match(clock, text.strip()) if isinstance(text, str) else None
    minutes = int(match[1]) * 60 + int(match[2]) if match else None
    return minutes if minutes is not None and (max_minutes is None or minutes <= max_minutes) else None


def clock_minutes(text: str) -> int:
    """:func:`parse_clock` of a time already validated; ValueError if it is not one."""
    if (minutes := parse_clock(text)) is None:
        raise ValueError(f"not a local time of day like '07:00' or '23:30', got {text!r}")
    return minutes


def _clock(value: Any) -> Any:
    clock_minutes(value)
    return value


ClockTime = Annotated[str, BeforeValidator(_clock)]


def _runs(flags: list[bool]) -> str:
    """Runs of True minutes of a day as ``"00:00-07:00, 23:00-24:00"``."""
    runs, start = [], None
    for minute, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = minute
        elif not flag and start is not None:
            runs.append(f"{start // 60:02d}:{start % 60:02d}-{minute // 60:02d}:{minute % 60:02d}")
            start = None
    return ", ".join(runs)


class TariffZone(Frozen):
    """One zone of a time-of-use tariff, in local time: ``start`` ≤ time < ``end`` (may wrap midnight)."""

    start: ClockTime
    end: ClockTime
    import_price_per_kwh: Real
    export_price_per_kwh: Real | None = None
    """None = the grid's constant ``export_price_per_kwh``."""

    def covers(self, minute_of_day: int) -> bool:
        """True when local ``minute_of_day`` (0..1439) falls in this zone."""
        start, end = clock_minutes(self.start), clock_minutes(self.end)
        if start < end:
            return start <= minute_of_day < end
        return minute_of_day >= start or minute_of_day < end  # wraps midnight (start == end: all day)


UNANNOUNCED_CUT_H = 4.0
"""The default of ``grid.schedule.unannounced_cut_h`` [h] (measured on the outage weeks and the drills:
``docs/dispatch-extensions.md``)."""


class OutageScheduleConfig(Frozen):
    """Where the site's grid outage schedule comes from (format: ``docs/outage-schedules.md``).

    ``source`` is a file (CSV or JSON) or a folder of them, relative to the site file, re-read
    every cycle. ``possible_outage_tiers`` are carried through every ``possible`` window from
    battery, PV and fuel (default: the most important priority). ``emergency_exit_after`` is the
    time the grid must stay up before emergency mode ends by itself (absent: only explicitly).
    ``unannounced_cut_h``: how long emergency mode entered by a cut outside the schedule plans that
    cut to last [h] (default 4); beyond it the schedule holds again, with the rest of the horizon a
    ``possible`` outage whose shadow carries the ``possible_outage_tiers`` to the horizon's end
    (``null``: no grid for the whole horizon and the maximum-autonomy solve, as for a voided
    schedule).
    ``late_return_h``: how late a published outage may end [h]: the fine plan counts on the grid at
    the published end, but the steps that long after it are a ``possible`` outage whose shadow carries
    the ``possible_outage_tiers`` from what the plan leaves at the published end (absent: none).
    ``possible_outage_probability``: how likely a ``possible`` outage is to happen (0 < p ≤ 1, default
    0.5): the contingency shadow prices what it would shed at this share of the tiers' value of lost
    load (no more than 1/k each when k windows are in the horizon), so a certain loss now always
    weighs more than the same loss in an outage that may not come (``docs/dispatch-extensions.md``).
    """

    queue: Annotated[str, StringConstraints(strict=True, min_length=1)]
    source: Annotated[str, StringConstraints(strict=True, min_length=1)]
    possible_outage_tiers: tuple[AssetId, ...] | None = None
    emergency_exit_after: Duration | None = None
    unannounced_cut_h: Positive | None = UNANNOUNCED_CUT_H
    late_return_h: Positive | None = None
    possible_outage_probability: Annotated[float, Field(gt=0, le=1, **_NUM)] = 0.5


class Grid(Frozen):
    """The grid connection. Import/export limits in kW; prices per kWh.

    Import price precedence per step: the profiles' price column, else ``price_file``, else the
    ``tariff`` zone covering the step's local start time, else ``import_price_per_kwh``.
    """

    max_import_kw: NonNegative
    max_export_kw: NonNegative = 0.0
    import_price_per_kwh: Real | None = None
    """Constant import price, used when the profiles carry no price column."""
    export_price_per_kwh: Real = 0.0
    tariff: tuple[TariffZone, ...] = ()
    """Time-of-use zones covering the whole local day without overlap (e.g. day/night)."""
    price_file: str | None = None
    """A price CSV (``timestamp``, ``import_price_per_kwh``[, ``export_price_per_kwh``]), relative to the site file."""
    schedule: OutageScheduleConfig | None = None

    @model_validator(mode="after")
    def _tariff_covers_day(self) -> Grid:
        if self.tariff:
            counts = [sum(z.covers(m) for z in self.tariff) for m in range(0, 1440)]
            if gaps := _runs([c == 0 for c in counts]):
                raise problem("tariff", f"zones must cover the whole day; in no zone: {gaps}")
            if (both := next((m for m, c in enumerate(counts) if c > 1), None)) is not None:
                raise problem("tariff", f"zones overlap at {both // 60:02d}:{both % 60:02d}")
        return self


class Location(Frozen):
    """Where the site is, for the clear-sky PV forecast: degrees north / east, metres above sea level."""

    latitude: Annotated[float, Field(ge=-90, le=90, **_NUM)]
    longitude: Annotated[float, Field(ge=-180, le=180, **_NUM)]
    altitude_m: Annotated[float, Field(ge=-500, le=9000, **_NUM)] = 0.0


class ForecastConfig(Frozen):
    """How ``run`` forecasts (:mod:`microgrid.forecast`).

    ``pv``: ``auto`` (clear-sky when the site has a ``location``, else the reference day),
    ``clear-sky`` or ``reference``; ``pv_file``: an external PV forecast CSV (``timestamp``,
    ``pv.<id>`` kW), used where it covers the horizon. Load: a recency-weighted same-weekday /
    time-of-day profile over ``load_history_days`` of stored history (weights halve every
    ``load_halflife_days``), the reference day while fewer than ``min_history_days`` are stored.
    """

    pv: Literal["auto", "clear-sky", "reference"] = "auto"
    pv_file: str | None = None
    load_history_days: Annotated[int, Field(ge=1, le=366, strict=True)] = 28
    load_halflife_days: Positive = 7.0
    min_history_days: Annotated[float, Field(ge=0, **_NUM)] = 3.0


def forecast_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    forecast = data.get("forecast")
    if isinstance(forecast, dict) and forecast.get("pv") == "clear-sky" and not data.get("location"):
        return [("forecast.pv", "'clear-sky' needs the site's 'location' (latitude, longitude)")]
    return []


def schedule_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    grid = data.get("grid")
    schedule = grid.get("schedule") if isinstance(grid, dict) else None
    tiers = schedule.get("possible_outage_tiers") if isinstance(schedule, dict) else None
    if not isinstance(tiers, list | tuple):
        return []
    loads = data.get("loads")
    ids = [t.get("id") for t in loads if isinstance(t, dict)] if isinstance(loads, list | tuple) else []
    known = {i for i in ids if isinstance(i, str)}  # a corrupt id (a mapping, a list) has its own error
    names = ", ".join(sorted(known))
    return [
        (f"grid.schedule.possible_outage_tiers[{i}]", f"names no load tier ({names}), got {tier!r}")
        for i, tier in enumerate(tiers)
        if isinstance(tier, str) and tier not in known
    ]
