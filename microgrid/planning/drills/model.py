"""A drill file: a scripted fault scenario (IEEE 2030.8-style) read from YAML, strictly.

A drill names a site file and its profiles (paths relative to the drill file), where in the
profiles it starts (``start``, an offset from their first step), how long it runs (``duration``;
``short`` for CI), the initial state (SOCs, fuel, gensets), events at times and pass criteria::

    name: grid-meter-frozen-up
    site: ../sites/hospital.yaml
    profiles: ../../data/hospital-winter-day.csv
    start: "01:00"
    duration: 6h
    short: 1h
    initial: {soc: {bess1: 0.6}}
    events:
      - {at: "00:00", fault: {device: grid-meter, frozen: true}, expect_fallback: false}
      - {at: "00:15", grid: down}
    criteria: {critical_unserved_kwh: 0, unsafe_writes: 0, time_to_fallback: 30min}

Times (``at``, ``start``, ``duration``, ``short``, ``time_to_fallback``) are ``"HH:MM"``, a
duration (``"90min"``, ``"6h"``) or a number of minutes. Each event does exactly one thing
(:class:`Event`). Unknown keys are refused and every problem names its key path
(``events[2].fault.device``); ids are checked against the site.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from microgrid.site import Site, describe_error
from microgrid.site.grid import parse_clock
from microgrid.site.values import Fraction, Frozen, NonNegative, Positive, parse_duration, problem

__all__ = ["ACTIONS", "Criteria", "Drill", "DrillControl", "Event", "FaultSpec", "Initial", "OperatorAction"]


def _offset(value: Any) -> timedelta:
    if isinstance(value, bool):
        raise ValueError(f"not a time like '01:30', '90min' or a number of minutes, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0 or value > 1e6:
            raise ValueError(f"must be a number of minutes from 0 to 1e6, got {value!r}")
        return timedelta(minutes=value)
    if (minutes := parse_clock(value, hour_digits=3, max_minutes=None)) is not None:
        return timedelta(minutes=minutes)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            pass
    raise ValueError(f"not a time like '01:30', '90min' or a number of minutes, got {value!r}")


Offset = Annotated[timedelta, BeforeValidator(_offset)]
"""A time from the drill's start: ``"HH:MM"``, a duration (``"90min"``) or minutes."""


class FaultSpec(Frozen):
    """A device fault (:class:`~microgrid.sim.server.Fault`); it replaces the device's current one."""

    device: str
    silent: bool = False
    delay_s: NonNegative = 0.0
    exception: Annotated[int, Field(strict=True, ge=1, le=255)] | None = None
    garbage: bool = False
    frozen: bool = False
    frozen_points: list[str] = Field(default_factory=list)
    ignore_writes: bool = False


class OperatorAction(Frozen):
    """What an operator queues (as ``microgrid override`` does, through the store): setpoints for the
    assets named (values as typed, unchecked here: the controller must refuse the bad ones), a mode,
    or emergency mode on/off. ``expect``: whether the controller should apply or refuse it."""

    battery_kw: dict[str, Any] = Field(default_factory=dict)
    generator_kw: dict[str, Any] = Field(default_factory=dict)
    tier_connected: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["auto", "safe", "manual"] | None = None
    emergency: bool | None = None
    expect: Literal["applied", "refused"] = "applied"

    @model_validator(mode="after")
    def _one(self) -> OperatorAction:
        setpoints = bool(self.battery_kw or self.generator_kw or self.tier_connected)
        if setpoints + (self.mode is not None) + (self.emergency is not None) != 1:
            one = "setpoints (battery_kw, generator_kw, tier_connected), mode or emergency"
            raise problem("mode", f"give exactly one of {one}")
        return self


ACTIONS = (
    "grid",
    "fault",
    "clear",
    "offline",
    "online",
    "trip",
    "reset",
    "genset_fails_to_start",
    "genset_repaired",
    "solver",
    "operator",
    "clock_step_s",
    "store_full",
    "restart",
)
"""An event's possible actions (exactly one per event)."""

FALLBACK_BY_DEFAULT = frozenset({"fault", "offline", "trip", "solver"})
"""Actions after which the controller is expected to show a fallback unless ``expect_fallback`` says otherwise."""


class Event(Frozen):
    """One thing that happens at ``at``.

    Attributes
    ----------
    grid
        ``down`` / ``up``: the grid goes or returns whatever the profiles say; ``profile``: follow them.
    fault, clear
        Set a device fault / clear the device's fault (device id).
    offline, online
        Close / reopen a device's endpoint (connection refused; devices sharing it go too).
    trip, reset
        A battery inverter trips (no power, 0 kW limits, fault code) / is reset (battery id).
    genset_fails_to_start, genset_repaired
        A genset cranks on every run command but never runs / starts normally again (genset id).
    solver
        ``timeout`` (each solve hangs past the cycle's wall-clock budget), ``fail`` (each solve
        raises), ``ok`` (solves work again).
    operator
        An operator action queued through the store (:class:`OperatorAction`).
    clock_step_s
        The controller's wall clock steps by this many seconds (an NTP correction, a dead RTC set right;
        negative: back); its monotonic clock, the devices and the plant go on.
    store_full
        ``true``: the history's disk is full from now (every write fails: records wait in memory);
        ``false``: there is room again.
    restart
        ``true``: the controller is killed (no hand-back, kill -9) and a new one starts on the same store
        and resumes from it, running a cycle at once (as ``microgrid run`` after a crash).
    expect_fallback
        Time to fallback is measured from the first event with this set (default: true for
        ``fault``, ``offline``, ``trip`` and ``solver``).
    """

    at: Offset
    grid: Literal["down", "up", "profile"] | None = None
    fault: FaultSpec | None = None
    clear: str | None = None
    offline: str | None = None
    online: str | None = None
    trip: str | None = None
    reset: str | None = None
    genset_fails_to_start: str | None = None
    genset_repaired: str | None = None
    solver: Literal["timeout", "fail", "ok"] | None = None
    operator: OperatorAction | None = None
    clock_step_s: Annotated[float, Field(strict=False, allow_inf_nan=False)] | None = None
    store_full: bool | None = None
    restart: Literal[True] | None = None
    expect_fallback: bool | None = None
    note: str = ""

    @model_validator(mode="after")
    def _exactly_one(self) -> Event:
        given = [a for a in ACTIONS if getattr(self, a) is not None]
        if len(given) != 1:
            raise problem("at", f"an event does exactly one of {', '.join(ACTIONS)}; got {given or 'none'}")
        return self

    @property
    def action(self) -> str:
        """The one action this event takes."""
        return next(a for a in ACTIONS if getattr(self, a) is not None)

    @property
    def starts_fallback_clock(self) -> bool:
        """Whether time to fallback is measured from this event."""
        return self.expect_fallback if self.expect_fallback is not None else self.action in FALLBACK_BY_DEFAULT


class Initial(Frozen):
    """Overrides of the site file's initial state."""

    soc: dict[str, Fraction] = Field(default_factory=dict)
    fuel: dict[str, NonNegative] = Field(default_factory=dict)
    generators: dict[str, bool] = Field(default_factory=dict)
    """Genset id → running at the start."""


class Criteria(Frozen):
    """Pass criteria: each a maximum (None: not judged)."""

    critical_unserved_kwh: NonNegative | None = 0.0
    """Energy of the most important tier not served (tripped by the plant or behind an opened relay) [kWh]."""
    essential_unserved_kwh: NonNegative | None = None
    """The same for the second tier [kWh]."""
    unsafe_writes: Annotated[int, Field(strict=True, ge=0)] | None = 0
    records_lost: Annotated[int, Field(strict=True, ge=0)] | None = 0
    cycles_missed: Annotated[int, Field(strict=True, ge=0)] | None = 0
    below_floor_min: NonNegative | None = None
    """Minutes with a battery's true SOC below its ``soc_min`` (beyond ``sim.truth.SOC_TOLERANCE``)."""
    time_to_fallback: Offset | None = None
    """From the first event that starts the fallback clock to the first cycle showing a fallback."""


class DrillControl(Frozen):
    """Solver effort during the drill (the site's own is for a real site)."""

    mip_gap: Fraction = 0.02
    time_limit_s: Positive = 2.0
    solve_budget_s: Positive | None = None
    """The cycle's wall-clock budget for the solve [s]; default the controller's (time limit + 5 s)."""
    threads: Annotated[int, Field(strict=True, ge=1, le=64)] = 1


class Drill(Frozen):
    """A drill file (module docstring)."""

    name: Annotated[str, Field(min_length=1, max_length=80)]
    description: str = ""
    site: str
    profiles: str
    start: Offset = timedelta(0)
    duration: Offset
    short: Offset | None = None
    """The CI-sized duration (``--short``); default the full one."""
    control: DrillControl = DrillControl()
    initial: Initial = Initial()
    events: list[Event] = Field(default_factory=list)
    criteria: Criteria = Criteria()
    expect: Literal["pass", "fail"] = "pass"
    expect_reason: str = ""
    """Why a drill is expected to fail (a known controller defect): required with ``expect: fail``."""

    @model_validator(mode="after")
    def _checks(self) -> Drill:
        if self.expect == "fail" and not self.expect_reason.strip():
            raise problem("expect_reason", "required with expect: fail (the defect the drill shows)")
        if self.duration <= timedelta(0) or (self.short is not None and self.short <= timedelta(0)):
            raise problem("duration", "the duration (and short) must be longer than 0")
        late = [i for i, e in enumerate(self.events) if e.at > self.duration]
        if late:
            raise problem("events", f"events {late} come after the drill's duration ({self.duration})")
        return self


def site_problems(drill: Drill, site: Site) -> list[str]:
    """Ids the drill names that the site does not have, each with its key path."""
    devices, batteries = {d.id for d in site.devices}, {b.id for b in site.batteries}
    gensets = {g.id for g in site.generators}
    out = _unknown("initial.soc", drill.initial.soc, batteries)
    out += _unknown("initial.fuel", drill.initial.fuel, set(site.fuels))
    out += _unknown("initial.generators", drill.initial.generators, gensets)
    for i, event in enumerate(drill.events):
        key, value = f"events[{i}].{event.action}", getattr(event, event.action)
        known = {"clear": devices, "offline": devices, "online": devices, "trip": batteries, "reset": batteries}
        known |= {"genset_fails_to_start": gensets, "genset_repaired": gensets}
        if event.action in known and value not in known[event.action]:
            out.append(f"{key}: unknown id {value!r} (the site has {', '.join(sorted(known[event.action]))})")
        if event.fault is not None and event.fault.device not in devices:
            have = ", ".join(sorted(devices))
            out.append(f"{key}.device: unknown device {event.fault.device!r} (the site has {have})")
    if drill.start % site.control.interval:
        step = site.control.interval
        out.append(f"start: must be a whole number of the site's intervals ({step}), got {drill.start}")
    return out


def _unknown(key: str, given: dict[str, Any], known: set[str]) -> list[str]:
    return [f"{key}.{k}: unknown id (the site has {', '.join(sorted(known))})" for k in given if k not in known]


def drill_from_dict(raw: Any) -> tuple[Drill | None, list[str]]:
    """The drill, or None and every problem (key path: reason)."""
    if not isinstance(raw, dict):
        return None, [f"(top level): must be a mapping, got {type(raw).__name__}"]
    try:
        return Drill.model_validate(raw), []
    except ValidationError as exc:
        return None, [describe_error(e) for e in exc.errors()]
