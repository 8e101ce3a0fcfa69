"""Cross-checks of single readings against independent signals: the estimate's plausibility rules.

A reading the plan depends on is compared with something measured elsewhere (DESIGN.md, "Field
lessons": never trust one reading). What each check remembers across cycles is a small track
here; :mod:`microgrid.control.estimate` feeds them and decides what the estimate then uses. Only
fresh (``ok``) readings take part: a stale copy is no evidence either way (a check starts again).
A reading is **implausible**:

* **a battery's SOC** (:class:`SocTrack`): ``soc_pct`` unchanged while the energy integrated from
  the battery's measured power (the power read at a cycle, held over the interval before it)
  exceeds ``SOC_CHECK_FRACTION`` of its capacity: a register frozen while the battery moves (an
  idle battery whose register froze and that is then asked to discharge escapes the estimate's
  whole-device frozen check). A power reading that has not moved for ``POWER_FROZEN_CYCLES`` cycles while
  the setpoint read back asks for more than ``SETPOINT_FOLLOW_KW`` away from it is no evidence of what
  the battery does: the setpoint is integrated instead (an inverter follows its setpoint), so a
  battery whose whole image froze while idle, then asked to discharge, is caught too;
* **the grid meter**: every one of its readings identical to the last cycle's (a live meter's
  power moves) and its ``grid_power_kw`` (export > 0) away from PV + batteries + gensets − tier
  loads, all measured, by more than :func:`balance_tolerance_kw`; or saying "up" while the
  grid-forming battery discharges more than its setpoint asks by that tolerance (grid-parallel it
  follows its setpoint, islanded it carries the site). Once contradicted it stays so until one of
  its readings changes (plans made meanwhile for a grid that is down may well agree with a frozen
  meter). A balance with a term unread is no cross-check (nor a battery whose setpoint is not
  read back);
* **a genset's running state** (:class:`RunningCheck`): ``engine_state`` stopped while its
  ``generator_power_kw`` delivers at least ``GENSET_IDLE_FRACTION`` of ``max_kw``, or running
  while delivering less although its ``min_kw`` or the setpoint read back asks for more
  (:func:`genset_empty`), at every cycle over ``GENSET_START_ALLOWANCE`` (a start, a cool-down);
* **a fuel level** (:class:`FuelCheck`): ``fuel_level_l`` has not fallen while the gensets of its
  fuel burnt more than :func:`fuel_tolerance` (their measured power through the site's fuel curve,
  :meth:`~microgrid.site.Generator.fuel_per_hour`); a jump up of that size is a delivery, a smaller
  rise is no fall (thermal expansion on an idle set is harmless; while burning it is judged like a
  frozen level). The site model has one stock per fuel, which every genset of the fuel reads: an
  idle set's frozen level is caught while the other sets burn;
* **a tier's relay** (:class:`FeederCheck`): open while the tier draws more than
  ``FEEDER_LIVE_KW``, or closed at exactly 0 kW on a tier never at 0 kW for ``TIER_NEVER_ZERO``;
* **a tier's load** (:class:`TierTrack`): its reading has not moved while the site's supply (PV +
  batteries + gensets + grid import, every term read fresh, the grid meter believed and moving)
  less the other tiers' readings moved it by more than :func:`balance_tolerance_kw`; checked only
  on a site whose every tier is read (an unmetered tier's change would look like a frozen one's).

Every threshold is a named constant with its unit and reasoning. They are conservative on
purpose: a live device on a normal day never trips them (``tests/control/test_normal_day.py``
asserts that no reading is implausible over a simulated day with outages and genset runs). Each
needs a contradiction larger than a sensor's resolution and noise, or one that lasts longer than
the device's normal transients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from microgrid.site import Generator

__all__ = [
    "FEEDER_LIVE_KW",
    "FUEL_CHECK_FRACTION",
    "FUEL_CHECK_FULL_LOAD_H",
    "GENSET_IDLE_FRACTION",
    "GENSET_START_ALLOWANCE",
    "GRID_CHECK_FRACTION",
    "GRID_CHECK_KW",
    "POWER_FROZEN_CYCLES",
    "SETPOINT_FOLLOW_KW",
    "SOC_CHECK_FRACTION",
    "TIER_NEVER_ZERO",
    "FeederCheck",
    "FuelCheck",
    "FuelTrack",
    "RunningCheck",
    "SocTrack",
    "TierTrack",
    "balance_tolerance_kw",
    "fuel_tolerance",
    "genset_empty",
    "relay_contradiction",
]

RUNNING, STOPPED = 2, 0
"""``engine_state`` codes of the generic genset profile (``models/devices/generic-genset-controller.yaml``)."""

GRID_CHECK_KW = 10.0
"""A frozen grid meter is implausible when the site's balance differs from it by more than this [kW] ..."""
GRID_CHECK_FRACTION = 0.10
"""... and more than this fraction of the measured tier load (unmetered loads, reads a moment apart). The
same tolerance judges a frozen tier load against the balance (:func:`balance_tolerance_kw`)."""

SOC_CHECK_FRACTION = 0.03
"""Energy through a battery [fraction of its capacity] after which an unchanged SOC register is
implausible: three times a 1 %-resolution register's step, ≈ 7 min of full power on the hospital's
batteries (a cycle later at most)."""

SETPOINT_FOLLOW_KW = 5.0
"""A battery's power reading unchanged for ``POWER_FROZEN_CYCLES`` and further than this from the setpoint
read back [kW] is taken to be frozen: the SOC check integrates the setpoint instead (a live inverter's
reading moves, and follows its setpoint within a few kW; the safety layer never asks a battery at a
limit for more)."""

POWER_FROZEN_CYCLES = 2
"""Cycles in a row a battery's power reading must repeat the one before to count as frozen: one repeat
may be a reading not yet refreshed (two cycles close together, a clock step)."""

GENSET_IDLE_FRACTION = 0.02
"""A genset delivering less than this fraction of its ``max_kw`` delivers nothing [fraction]: 4 kW on the
hospital's 200 kW sets, a fifteenth of their 60 kW minimum stable load; above a power transducer's zero error."""

GENSET_START_ALLOWANCE = timedelta(minutes=10)
"""How long a genset may report running while delivering nothing although it should [duration]: crank,
warm-up, synchronise and close the breaker take 10 s to 2 min on a standby set, and a set asked to stop
may run unloaded through a cool-down of 3-5 min before it reports stopping; 10 min covers both with a
margin. With 15-min cycles it takes two consecutive cycles that see the set running empty."""

FUEL_CHECK_FULL_LOAD_H = 0.5
"""A fuel level that has not fallen is implausible once the gensets burning that fuel burnt (integrated
from their measured power and the site's fuel curve) more than this many hours of the fuel's largest
set at full load [h] ... (26 l on the hospital: 0.24 l/kWh · 200 kW + 3.5 l/h = 51.5 l/h) ..."""
FUEL_CHECK_FRACTION = 0.02
"""... and more than this fraction of the level [fraction]: a tank's level sender is accurate to 1-2 % of
the tank, whose size the site model does not know: the level stands in for it (30 l at the hospital's
1,500 l). At 100 kW on one set (27.5 l/h) a frozen level is caught after 1.1 h, at the cycle after.
The same size separates a delivery (a jump up at least this large between two cycles) from sender
noise or thermal expansion."""

FEEDER_LIVE_KW = 5.0
"""A tier drawing more than this through a relay that reads open is clearly served [kW]: far above a
feeder meter's zero-current error (a few W), below any tier's real demand (the hospital's smallest,
comfort, draws ≈ 20 kW)."""

TIER_NEVER_ZERO = timedelta(hours=24)
"""A tier whose every closed, fresh reading was above 0 kW for this long is one that is never 0
[duration]: its closed relay then reading exactly 0 kW is implausible (a dead meter, or a relay that is
really open). A day covers a tier's daily low; a restart learns it again. A zero that lasts as long again
is the tier's new normal and is believed."""


def balance_tolerance_kw(load_kw: float) -> float:
    """How far the site's balance may be from a meter before the meter is contradicted [kW]."""
    return max(GRID_CHECK_KW, GRID_CHECK_FRACTION * load_kw)


def fuel_tolerance(level: float, gensets: list[Generator]) -> float:
    """The smallest change of a fuel level that is not sender noise [fuel units] (``FUEL_CHECK_*``):
    ``max(FUEL_CHECK_FULL_LOAD_H · the largest set's full-load rate, FUEL_CHECK_FRACTION · level)``."""
    full_rate = max((g.fuel_per_hour(g.max_kw, True) for g in gensets), default=0.0)
    return max(FUEL_CHECK_FULL_LOAD_H * full_rate, FUEL_CHECK_FRACTION * max(level, 0.0))


def genset_empty(gen: Generator, power_kw: float, asked_kw: float | None) -> bool:
    """A running ``gen`` delivers nothing (< ``GENSET_IDLE_FRACTION`` of ``max_kw``) although it should:
    its minimum stable load, or the setpoint read back (``asked_kw``), is above that. A set asked for
    0 kW with ``min_kw`` 0 (hot standby) may run empty."""
    idle_kw = GENSET_IDLE_FRACTION * gen.max_kw
    return power_kw < idle_kw and max(gen.min_kw, asked_kw or 0.0) > idle_kw


def relay_contradiction(tier: str, closed: bool, kw: float, never_zero: bool) -> str | None:
    """Why tier ``tier``'s relay reading (``closed``) is not believed given its measured load ``kw``
    [kW], or None: open while drawing more than ``FEEDER_LIVE_KW``, or closed at exactly 0 kW on a tier
    that is never 0 (``TIER_NEVER_ZERO``)."""
    if not closed and kw > FEEDER_LIVE_KW:
        return f"tier {tier}: relay reads open while the tier draws {kw:.1f} kW; taken as served"
    if closed and kw == 0.0 and never_zero:
        return f"tier {tier}: relay reads closed while the tier, never at 0 kW before, draws 0.0 kW; taken as shed"
    return None


@dataclass
class SocTrack:
    """What the SOC cross-check remembers of one battery since its register last changed."""

    reading_pct: float
    """The register's value [%]."""
    soc: float
    """The model's SOC [fraction]: the reading when it was first seen, moved by ``out_kwh``."""
    out_kwh: float
    """Energy out of the battery's terminals since [kWh] (integrated measured power, discharge > 0)."""
    power_kw: float | None
    time: datetime
    """The last cycle's time (``since``: when the reading was first seen)."""
    since: datetime
    reading_kw: float | None = None
    """The power register's last reading [kW] (``power_kw`` is what was integrated: the setpoint read back
    when the reading was frozen away from it)."""
    unmoved: int = 0
    """Cycles in a row the power reading has been identical to the cycle before's."""

    def __post_init__(self) -> None:
        if self.reading_kw is None:
            self.reading_kw = self.power_kw

    def advance(self, power_kw: float | None, now: datetime, *, cap_kwh: float, eta_c: float, eta_d: float) -> None:
        """Integrate the measured power up to ``now``: the power read now, held since the last cycle (it is
        what the setpoint written at that cycle made of the battery; the reading then came before that
        write). Unknown now: the last reading held."""
        held = power_kw if power_kw is not None else self.power_kw
        hours = max((now - self.time).total_seconds() / 3600, 0.0)
        kwh = hours * held if held is not None else 0.0
        self.out_kwh += kwh
        stored = kwh / eta_d if kwh > 0 else kwh * eta_c
        self.soc = min(max(self.soc - stored / cap_kwh, 0.0), 1.0)
        self.power_kw, self.time = power_kw, now


@dataclass
class FuelTrack:
    """What the fuel cross-check remembers of one level reading since it last fell (or a delivery came).

    The site model has one stock per fuel, so every genset of a fuel reads that stock (the estimate
    takes the lowest reading): the burn that must show in a reading is that of all the fuel's sets.
    """

    trusted: float
    """The level when the track began: the last reading that fell, or a delivery's [fuel units]."""
    level: float
    """The last reading [fuel units]."""
    burnt: float
    """Fuel the fuel's gensets burnt since [fuel units]: their measured power through the site's fuel curve,
    the rate read at a cycle held since the last one (as :class:`SocTrack` holds power)."""
    time: datetime
    since: datetime

    def advance(self, rate_per_h: float, now: datetime) -> None:
        """Integrate the burn rate read now [fuel units/h] since the last cycle."""
        self.burnt += rate_per_h * max((now - self.time).total_seconds() / 3600, 0.0)
        self.time = now

    def restarts(self, level: float, tolerance: float) -> bool:
        """A reading that fell since the last one shows the sender alive; one that jumped up by at least
        ``tolerance`` is a delivery. A smaller rise is noise or a stuck sender: no fall."""
        return level < self.level or level - self.level >= tolerance

    @property
    def model(self) -> float:
        """The model's stock: the trusted level less the burn since [fuel units, ≥ 0]."""
        return max(self.trusted - self.burnt, 0.0)


@dataclass
class TierTrack:
    """What the tier-load cross-check remembers since a tier's load reading last changed.

    A live feeder meter never reads the same watt twice across a cycle; an unchanged reading is judged
    by the site's balance: the supply (PV + batteries + gensets + grid import, all measured) less the
    other tiers' readings moved by ``residual_kw`` since the reading froze, which this tier's reading
    should have shown.
    """

    reading_kw: float
    supply_kw: float
    """The site's supply when the reading was first seen [kW]."""
    others_kw: float
    """The other tiers' readings then [kW]."""

    def residual_kw(self, supply_kw: float, others_kw: float) -> float:
        """The change of this tier's load the balance implies since the reading froze [kW]."""
        return (supply_kw - self.supply_kw) - (others_kw - self.others_kw)


@dataclass
class RunningCheck:
    """A genset's engine state against its measured power (``GENSET_*``)."""

    empty_since: dict[str, datetime] = field(default_factory=dict)
    """Genset id → the first cycle that saw it running empty, while it still does."""

    def __call__(
        self, gen: Generator, state: int, kw: float | None, asked_kw: float | None, now: datetime
    ) -> str | None:
        """Why ``gen``'s engine ``state`` is not believed given its power ``kw`` [kW] and the setpoint read
        back (``asked_kw``), or None: stopped while delivering, or running empty for longer than
        ``GENSET_START_ALLOWANCE``. Unknown power: no judgment."""
        if kw is not None and state == STOPPED and kw >= GENSET_IDLE_FRACTION * gen.max_kw:
            self.empty_since.pop(gen.id, None)
            return f"generator {gen.id}: reports stopped while delivering {kw:.1f} kW; status unknown"
        if kw is None or state != RUNNING or not genset_empty(gen, kw, asked_kw):
            self.empty_since.pop(gen.id, None)
            return None
        since = self.empty_since.setdefault(gen.id, now)
        if now - since < GENSET_START_ALLOWANCE:
            return None
        return (
            f"generator {gen.id}: reports running but has delivered nothing ({kw:.1f} kW) since "
            f"{since:%Y-%m-%d %H:%M}, longer than a start takes; status unknown"
        )

    def forget(self, gen_id: str) -> None:
        """The state not read: the allowance starts again when it is."""
        self.empty_since.pop(gen_id, None)


@dataclass
class FuelCheck:
    """Fuel level readings against the burn of the fuel's gensets (``FUEL_CHECK_*``)."""

    tracks: dict[str, FuelTrack] = field(default_factory=dict)
    """Device id → its level reading's track."""

    def __call__(
        self, gen: Generator, device: str, level: float, *, rate_per_h: float, burners: list[Generator], now: datetime
    ) -> tuple[float, str | None]:
        """The stock to believe from ``device``'s fresh reading ``level`` [fuel units], given the fuel's burn
        rate read now [fuel units/h], and why the reading is not believed (None: it is)."""
        track = self.tracks.get(device)
        if track is None or track.restarts(level, fuel_tolerance(track.trusted, burners)):
            self.tracks[device] = FuelTrack(level, level, 0.0, now, now)
            return level, None
        track.advance(rate_per_h, now)
        track.level = level
        if track.burnt < fuel_tolerance(track.trusted, burners):
            return level, None
        return track.model, (
            f"generator {gen.id}: {gen.fuel} level {level:g} has not fallen from {track.trusted:g} since "
            f"{track.since:%Y-%m-%d %H:%M} while the {gen.fuel} gensets burnt {track.burnt:.1f}; using the "
            f"model's stock {track.model:.1f}"
        )

    def forget(self, device: str) -> None:
        """A reading not fresh is no evidence either way: the check starts again."""
        self.tracks.pop(device, None)


@dataclass
class FeederCheck:
    """Tier relays against tier loads, and tier loads against the site's balance (``FEEDER_LIVE_KW``,
    ``TIER_NEVER_ZERO``, :class:`TierTrack`)."""

    tracks: dict[str, TierTrack] = field(default_factory=dict)
    live_since: dict[str, datetime] = field(default_factory=dict)
    """Tier → since when every closed, fresh reading was above 0 kW."""
    zero_since: dict[str, datetime] = field(default_factory=dict)
    """Tier → since when its closed relay reads 0 kW."""

    def relay(self, tier: str, closed: bool, kw: float, now: datetime) -> str | None:
        """Why the relay reading ``closed`` is not believed given the tier's fresh load ``kw`` [kW], or None."""
        never_zero = closed and self._never_zero(tier, kw, now)
        return relay_contradiction(tier, closed, kw, never_zero)

    def _never_zero(self, tier: str, kw: float, now: datetime) -> bool:
        """Whether the tier, its relay closed and reading ``kw``, is one that is never 0 (``TIER_NEVER_ZERO``)."""
        if kw != 0.0:
            self.zero_since.pop(tier, None)
            self.live_since.setdefault(tier, now)
            return False
        zero = self.zero_since.setdefault(tier, now)
        live = self.live_since.get(tier)
        if now - zero >= TIER_NEVER_ZERO:  # at 0 kW as long again: the tier's new normal
            self.live_since.pop(tier, None)
            return False
        return live is not None and zero - live >= TIER_NEVER_ZERO

    def loads(
        self, fresh_kw: dict[str, float], connected: dict[str, bool], supply_kw: float | None
    ) -> dict[str, tuple[float, str]]:
        """Tier → (the load to use [kW], why) for the connected tiers whose reading has not moved while the
        balance moved it more than :func:`balance_tolerance_kw`. ``fresh_kw`` holds every tier of the site
        read fresh now, ``supply_kw`` the site's supply (None: a term unread, no check). When several are
        contradicted at once the balance cannot tell them apart: the change is split evenly."""
        self.tracks = {t: k for t, k in self.tracks.items() if t in fresh_kw}
        if supply_kw is None:
            return {}
        total_kw = sum(fresh_kw.values())
        moved: dict[str, float] = {}
        for tier, kw in fresh_kw.items():
            track = self.tracks.get(tier)
            if track is None or track.reading_kw != kw:
                self.tracks[tier] = TierTrack(kw, supply_kw, total_kw - kw)
                continue
            residual_kw = track.residual_kw(supply_kw, total_kw - kw)
            if connected.get(tier, True) and abs(residual_kw) > balance_tolerance_kw(total_kw):
                moved[tier] = residual_kw
        out = {}
        for tier, residual_kw in moved.items():
            model_kw = max(fresh_kw[tier] + residual_kw / len(moved), 0.0)
            out[tier] = (
                model_kw,
                (
                    f"tier {tier}: load reading unchanged at {fresh_kw[tier]:.1f} kW while the site's balance moved "
                    f"{residual_kw:+.1f} kW; using {model_kw:.1f} kW"
                ),
            )
        return out
