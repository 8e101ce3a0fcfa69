"""Estimate phase: from one snapshot of device measurements to the site's state now.

Only measurements of quality ``ok`` are believed; a ``stale`` value is used but marks its
device degraded; anything else leaves the quantity unknown. Rules:

* battery SOC from ``soc_pct``; the live charge/discharge limits are the site's, further
  capped by the inverter's ``max_charge_power_kw`` / ``max_discharge_power_kw`` when read;
* a genset is on when ``engine_state`` is ``running``; the hours in its state are counted
  by the controller from the cycles it saw (a genset first seen running counts 0 h, so its
  minimum up time holds; one first seen stopped counts its ``min_down_h``, so it may start);
* fuel stock is the lowest ``fuel_level_l`` among the gensets burning that fuel, else the
  site file's stock;
* the grid is up or down from the grid meter's ``grid_present``; unknown when the meter is
  not read (an unknown grid is unknown, not "off-grid");
* a device whose every reading is identical to the previous cycle while its asset should be
  moving (a battery at non-zero power) is **frozen**: its values are treated as stale. Points
  that only echo the controller's own writes (setpoints, heartbeat: ``Estimator.echoes``) are
  left out of the comparison, since a frozen device still echoes them;
* every reading the plan depends on is **cross-checked** against an independent signal (what
  each check compares, its thresholds and why: :mod:`microgrid.control.plausibility`). A reading
  that fails is **implausible**: the device's health says so and ``Estimate.implausible`` says why
  (in the cycle's record; ``status`` shows both). The estimate then uses instead:

  - of a battery's ``soc_pct``: the model's SOC (the reading when it stopped changing, moved by the
    measured energy through the battery's efficiencies) until the register changes again; nor is
    a keep-alive's re-read believed (:meth:`Estimator.implausible_soc`);
  - of the grid meter: the grid's state **unknown** (the plan then treats the grid as down now: a
    meter frozen at "up" no longer has the batteries charged from a dead grid) until one of its
    readings changes;
  - of a genset's ``engine_state``: its status **unknown**, as for a genset that does not answer:
    no plan is made without it, the previous plan does not match, the rules count no power from it;
  - of a ``fuel_level_l``: the model's stock, the last level that fell less the burn since, until
    the reading falls again or jumps by a delivery; a genset controller whose every reading is
    unchanged while its level is contradicted is frozen, and its status unknown too;
  - of a tier's relay: the tier as its load says (open while drawing: served; closed at 0 kW on a
    tier never at 0 kW: shed);
  - of a tier's load reading: the site's balance's value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import microgrid.point_names as pt
from microgrid.control.plausibility import (
    GENSET_IDLE_FRACTION,
    GRID_CHECK_FRACTION,
    GRID_CHECK_KW,
    POWER_FROZEN_CYCLES,
    SETPOINT_FOLLOW_KW,
    SOC_CHECK_FRACTION,
    FeederCheck,
    FuelCheck,
    RunningCheck,
    SocTrack,
    balance_tolerance_kw,
)
from microgrid.site import Battery, Generator, Site
from microgrid.state import GeneratorState, SiteState
from microgrid.telemetry.devices import Measurement
from microgrid.telemetry.registers import Quality

__all__ = ["GRID_CHECK_FRACTION", "GRID_CHECK_KW", "SOC_CHECK_FRACTION", "Estimate", "Estimator", "Snapshot"]

Snapshot = dict[str, dict[str, Measurement]]
"""Device id → point name → measurement."""


@dataclass
class Estimate:
    """The site now, as far as the telemetry tells.

    Attributes
    ----------
    soc
        Battery id → SOC (fraction); absent when unknown.
    charge_limit_kw, discharge_limit_kw
        Battery id → most charge / discharge power allowed now [kW, ≥ 0].
    battery_kw
        Battery id → measured power [kW], positive = discharge.
    generators
        Generator id → on and hours in that state; absent when unknown.
    fuel_stock
        Fuel → stock now (fuel units); None = unlimited.
    grid_up
        True / False, or None when unknown.
    load_kw
        Load tier → measured demand [kW] (feeder power), when read.
    pv_kw
        PV array → power it can deliver now [kW]: the inverter's MPP estimate
        (``available_power_kw``) when it reports one, else its AC output (a curtailed
        inverter without an MPP estimate understates it).
    tier_connected
        Load tier → its feeder relay is closed, when read.
    tier_hours
        Load tier → hours its relay has been in that state, counted from the cycles seen (a relay
        first seen closed counts 24 h, free to open; one first seen open counts 0 h, so it stays
        open for its minimum time).
    health
        Device id → ``ok``, ``degraded`` (stale or out-of-range values), ``frozen``,
        ``implausible`` (a reading its cross-check contradicts), ``ignores-writes`` (read-backs of its
        writes differ: :mod:`microgrid.control.obedience`), ``fault`` (it reports itself in fault: a
        tripped inverter) or ``lost``.
    implausible
        Device id → why a reading of it is not believed (module docstring).
    faults
        Device id → the fault it reports (a battery inverter whose ``operating_state`` is fault: its live
        limits are 0 kW, whatever its limit registers say).
    generators_out
        Genset id → why it is left out of plans and rules now (it failed to start:
        :mod:`microgrid.control.starts`).
    ignores_writes
        Device id → why it is taken to ignore the controller's writes (not controllable).
    """

    time: datetime
    soc: dict[str, float] = field(default_factory=dict)
    charge_limit_kw: dict[str, float] = field(default_factory=dict)
    discharge_limit_kw: dict[str, float] = field(default_factory=dict)
    battery_kw: dict[str, float] = field(default_factory=dict)
    generators: dict[str, GeneratorState] = field(default_factory=dict)
    fuel_stock: dict[str, float | None] = field(default_factory=dict)
    grid_up: bool | None = None
    load_kw: dict[str, float] = field(default_factory=dict)
    pv_kw: dict[str, float] = field(default_factory=dict)
    tier_connected: dict[str, bool] = field(default_factory=dict)
    tier_hours: dict[str, float] = field(default_factory=dict)
    health: dict[str, str] = field(default_factory=dict)
    implausible: dict[str, str] = field(default_factory=dict)
    ignores_writes: dict[str, str] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)
    generators_out: dict[str, str] = field(default_factory=dict)

    def missing(self, site: Site) -> list[str]:
        """Assets whose state is unknown (a plan needs every battery's SOC and every genset's status)."""
        gone = [f"battery {b.id}: SOC unknown" for b in site.batteries if b.id not in self.soc]
        gone += [f"generator {g.id}: status unknown" for g in site.generators if g.id not in self.generators]
        return gone

    def site_state(self) -> SiteState:
        """The state a plan starts from."""
        return SiteState(soc=dict(self.soc), generators=dict(self.generators), fuel_stock=dict(self.fuel_stock))


INVERTER_FAULT_STATE = 3
"""``operating_state`` of a battery inverter in fault (generic profile: 0 off, 1 standby, 2 running, 3 fault)."""


def _value(measurements: dict[str, Measurement], name: str) -> float | None:
    m = measurements.get(name)
    if m is None or m.value is None or isinstance(m.value, str):
        return None
    if m.quality in (Quality.OK, Quality.STALE):
        return float(m.value)
    return None


def _fresh(measurements: dict[str, Measurement], name: str) -> float | None:
    """A reading fit for a cross-check: read now (``ok``), numeric; else None (a stale copy is no evidence)."""
    m = measurements.get(name)
    return _value(measurements, name) if m is not None and m.quality is Quality.OK else None


def _flag(est: Estimate, device: str, why: str) -> None:
    """Record why a reading of ``device`` is not believed (several reasons per device are joined)."""
    est.implausible[device] = f"{est.implausible[device]}; {why}" if device in est.implausible else why


def _health(measurements: dict[str, Measurement], frozen: bool) -> str:
    qualities = {m.quality for m in measurements.values()}
    if not measurements or qualities <= {Quality.COMMS_LOST}:
        return "lost"
    if frozen:
        return "frozen"
    if qualities & {Quality.STALE, Quality.OUT_OF_RANGE, Quality.COMMS_LOST}:
        return "degraded"
    return "ok"


@dataclass
class Estimator:
    """Turns snapshots into estimates; remembers what it needs across cycles."""

    site: Site
    echoes: dict[str, frozenset[str]] = field(default_factory=dict)
    """Device id → points that echo the controller's writes (not evidence that the device is alive)."""
    ignores_writes: dict[str, str] = field(default_factory=dict)
    """Device id → why it ignores the controller's writes (set by the write phase: :meth:`not_controlled`)."""
    _previous: Estimate | None = None
    _previous_values: dict[str, tuple[object, ...]] = field(default_factory=dict)
    _soc_tracks: dict[str, SocTrack] = field(default_factory=dict)
    _unchanged: set[str] = field(default_factory=set)
    """Devices whose every fresh reading equals the last cycle's."""
    _distrusted: set[str] = field(default_factory=set)
    """Grid meters contradicted while frozen: not believed until a reading changes."""
    _running: RunningCheck = field(default_factory=RunningCheck)
    _fuel: FuelCheck = field(default_factory=FuelCheck)
    _feeders: FeederCheck = field(default_factory=FeederCheck)

    def seed(self, when: datetime, generators: dict[str, tuple[bool, float]]) -> None:
        """Start from a recorded estimate (a restart): gensets' on state and hours at ``when``."""
        self._previous = Estimate(time=when, generators={g: GeneratorState(on, h) for g, (on, h) in generators.items()})

    def __call__(self, snapshot: Snapshot, now: datetime) -> Estimate:
        """Estimate the site at ``now`` from ``snapshot``."""
        frozen = {d: self._frozen(d, ms) for d, ms in snapshot.items()}
        usable = {d: ({} if frozen[d] else ms) for d, ms in snapshot.items()}
        by_asset = {b.asset: b.id for b in self.site.devices if b.asset}
        est = Estimate(time=now, health={d: _health(ms, frozen[d]) for d, ms in snapshot.items()})
        self._batteries(est, usable, by_asset)
        self._generators(est, usable, by_asset, now)
        self._grid_and_loads(est, usable, by_asset)
        fresh_loads = self._cross_check_relays(est, usable)
        self._cross_check_grid(est, usable, by_asset)
        self._cross_check_tier_loads(est, fresh_loads, usable, by_asset)
        for device in est.implausible:
            est.health[device] = "implausible"
        for device in est.faults:
            est.health[device] = "fault"
        self.not_controlled(est)
        self._previous = est
        return est

    def not_controlled(self, est: Estimate) -> None:
        """Mark the devices that ignore the controller's writes (``ignores_writes``): health ``ignores-writes``
        (unless lost) with why; a battery behind one gets live limits of 0 kW, so the safety layer holds its
        setpoint at 0 and the rules give its share to the others (:mod:`microgrid.control.obedience`)."""
        assets = {b.id: b.asset for b in self.site.devices}
        batteries = {b.id for b in self.site.batteries}
        for device, why in self.ignores_writes.items():
            est.ignores_writes[device] = why
            if est.health.get(device, "lost") != "lost":
                est.health[device] = "ignores-writes"
            if (asset := assets.get(device)) in batteries:
                est.charge_limit_kw[str(asset)] = est.discharge_limit_kw[str(asset)] = 0.0

    def implausible_soc(self) -> dict[str, float]:
        """Battery id → the model's SOC, for the batteries whose SOC register the last estimate did not
        believe (a keep-alive's re-read of such a register must not be believed either)."""
        by_battery = {b.asset: b.id for b in self.site.devices if b.asset}
        flagged = self._previous.implausible if self._previous else {}
        return {b: t.soc for b, t in self._soc_tracks.items() if by_battery.get(b) in flagged}

    def _frozen(self, device: str, ms: dict[str, Measurement]) -> bool:
        echoes = self.echoes.get(device, frozenset())
        values = tuple((n, m.value) for n, m in sorted(ms.items()) if m.quality is Quality.OK and n not in echoes)
        before = self._previous_values.get(device)
        self._previous_values[device] = values
        if values and values == before:
            self._unchanged.add(device)
        else:
            self._unchanged.discard(device)
        power = dict(values).get(pt.BATTERY_POWER_KW)
        moving = isinstance(power, float | int) and abs(float(power)) > 1.0
        return bool(values) and values == before and moving

    def _batteries(self, est: Estimate, usable: Snapshot, by_asset: dict[str, str]) -> None:
        for bat in self.site.batteries:
            ms = usable.get(by_asset.get(bat.id, ""), {})
            soc_pct, power = _value(ms, pt.SOC_PCT), _value(ms, pt.BATTERY_POWER_KW)
            fresh = all(ms[n].quality is Quality.OK for n in (pt.SOC_PCT, pt.BATTERY_POWER_KW) if n in ms)
            if soc_pct is not None and fresh:
                asked = _fresh(ms, pt.POWER_SETPOINT_KW)
                est.soc[bat.id] = self._cross_checked_soc(
                    bat, soc_pct, power, est, by_asset.get(bat.id, ""), asked_kw=asked
                )
            elif soc_pct is not None:  # a stale copy is no evidence either way: the check starts again
                est.soc[bat.id] = soc_pct / 100
                self._soc_tracks.pop(bat.id, None)
            else:
                self._soc_tracks.pop(bat.id, None)
            if power is not None:
                est.battery_kw[bat.id] = power
            live_c, live_d = _value(ms, pt.MAX_CHARGE_POWER_KW), _value(ms, pt.MAX_DISCHARGE_POWER_KW)
            est.charge_limit_kw[bat.id] = min(bat.max_charge_kw, live_c if live_c is not None else bat.max_charge_kw)
            est.discharge_limit_kw[bat.id] = min(
                bat.max_discharge_kw, live_d if live_d is not None else bat.max_discharge_kw
            )
            if _value(ms, pt.OPERATING_STATE) == INVERTER_FAULT_STATE:
                code = _value(ms, pt.FAULT_CODE)
                est.faults[by_asset.get(bat.id, bat.id)] = f"battery {bat.id}: inverter in fault" + (
                    f" (code {code:g})" if code else ""
                )
                est.charge_limit_kw[bat.id] = est.discharge_limit_kw[bat.id] = 0.0

    def _cross_checked_soc(
        self,
        bat: Battery,
        soc_pct: float,
        power_kw: float | None,
        est: Estimate,
        device: str,
        *,
        asked_kw: float | None = None,
    ) -> float:
        """The SOC to believe: the register's, unless it has not moved while the battery has (docstring).
        ``asked_kw``: the setpoint read back, integrated instead of a power reading frozen away from it."""
        track = self._soc_tracks.get(bat.id)
        if track is None or track.reading_pct != soc_pct:
            self._soc_tracks[bat.id] = SocTrack(soc_pct, soc_pct / 100, 0.0, power_kw, est.time, est.time)
            return soc_pct / 100
        track.unmoved = track.unmoved + 1 if power_kw is not None and power_kw == track.reading_kw else 0
        track.reading_kw = power_kw
        frozen = track.unmoved >= POWER_FROZEN_CYCLES
        if frozen and asked_kw is not None and power_kw is not None and abs(asked_kw - power_kw) > SETPOINT_FOLLOW_KW:
            power_kw = asked_kw  # a reading frozen away from the setpoint: what a following inverter does
        eta = {"eta_c": bat.charge_efficiency, "eta_d": bat.discharge_efficiency}
        track.advance(power_kw, est.time, cap_kwh=bat.capacity_kwh, **eta)
        if abs(track.out_kwh) < SOC_CHECK_FRACTION * bat.capacity_kwh:
            return soc_pct / 100
        est.implausible[device] = (
            f"battery {bat.id}: SOC register unchanged at {soc_pct:g} % since {track.since:%Y-%m-%d %H:%M} while its "
            f"measured power moved {track.out_kwh:+.1f} kWh (discharge > 0); using the model's SOC {track.soc:.3f}"
        )
        return track.soc

    def _generators(self, est: Estimate, usable: Snapshot, by_asset: dict[str, str], now: datetime) -> None:
        for gen in self.site.generators:
            device = by_asset.get(gen.id, "")
            ms = usable.get(device, {})
            if (state := _value(ms, pt.ENGINE_STATE)) is None:
                self._running.forget(gen.id)
                continue
            kw = _fresh(ms, pt.GENERATOR_POWER_KW) if _fresh(ms, pt.ENGINE_STATE) is not None else None
            if why := self._running(gen, int(state), kw, _fresh(ms, pt.POWER_SETPOINT_KW), now):
                _flag(est, device, why)  # status unknown: no plan counts on it
                continue
            on = int(state) == 2
            est.generators[gen.id] = GeneratorState(on, self._hours(gen.id, on, now, gen.min_down_h))
        self._fuels(est, usable, by_asset)

    def _fuels(self, est: Estimate, usable: Snapshot, by_asset: dict[str, str]) -> None:
        """Fuel stock: the lowest level read per fuel, each cross-checked against the burn (module docstring)."""
        levels: dict[str, list[float]] = {}
        for gen in self.site.generators:
            device = by_asset.get(gen.id, "")
            ms = usable.get(device, {})
            if (level := _value(ms, pt.FUEL_LEVEL_L)) is None or _fresh(ms, pt.FUEL_LEVEL_L) is None:
                self._fuel.forget(device)
            else:
                burners = [g for g in self.site.generators if g.fuel == gen.fuel]
                rate = sum(self._burn_rate(g, est, usable.get(by_asset.get(g.id, ""), {})) for g in burners)
                level, why = self._fuel(gen, device, level, rate_per_h=rate, burners=burners, now=est.time)
                if why is not None:
                    _flag(est, device, why)
                    self._frozen_genset(est, gen, device)
            if level is not None:
                levels.setdefault(gen.fuel, []).append(level)
        for name, fuel in self.site.fuels.items():
            est.fuel_stock[name] = min(levels[name]) if name in levels else fuel.stock

    @staticmethod
    def _burn_rate(gen: Generator, est: Estimate, ms: dict[str, Measurement]) -> float:
        """``gen``'s burn now [fuel units/h]: its measured power through the fuel curve while it runs (its
        status as estimated; unknown: running when it delivers); power unread: at ``min_kw``."""
        kw = _fresh(ms, pt.GENERATOR_POWER_KW)
        state = est.generators.get(gen.id)
        on = state.on if state is not None else kw is not None and kw >= GENSET_IDLE_FRACTION * gen.max_kw
        return gen.fuel_per_hour(kw if kw is not None else gen.min_kw, on)

    def _frozen_genset(self, est: Estimate, gen: Generator, device: str) -> None:
        """A genset controller whose level is contradicted and whose every reading is unchanged is frozen:
        its status is unknown (running or stopped, the image of a controller that stopped updating)."""
        if device in self._unchanged and gen.id in est.generators:
            del est.generators[gen.id]
            _flag(est, device, f"generator {gen.id}: every reading unchanged (a frozen controller); status unknown")

    def _hours(self, gen_id: str, on: bool, now: datetime, min_down_h: float) -> float:
        before = self._previous.generators.get(gen_id) if self._previous else None
        if before is None:
            return 0.0 if on else min_down_h
        if before.on != on:
            return 0.0
        elapsed_h = (now - self._previous.time).total_seconds() / 3600 if self._previous else 0.0
        return before.hours_in_state + max(elapsed_h, 0.0)

    def _relay_hours(self, tier: str, closed: bool, now: datetime) -> float:
        before = self._previous
        if before is None or tier not in before.tier_connected:
            return 24.0 if closed else 0.0
        if before.tier_connected[tier] != closed:
            return 0.0
        elapsed_h = (now - before.time).total_seconds() / 3600
        return before.tier_hours.get(tier, 0.0) + max(elapsed_h, 0.0)

    def _cross_check_grid(self, est: Estimate, usable: Snapshot, by_asset: dict[str, str]) -> None:
        """A frozen grid meter that the site's balance contradicts: grid state unknown (module docstring)."""
        meter = by_asset.get("grid", "")
        export_kw = _value(usable.get(meter, {}), pt.GRID_POWER_KW)
        if est.grid_up is None or export_kw is None or meter not in self._unchanged:
            self._distrusted.discard(meter)  # it shows life (or is not read): judged afresh
            return
        if meter in self._distrusted:  # contradicted before and frozen since: still not believed
            est.implausible[meter] = f"grid meter frozen at {export_kw:+.1f} kW since it was contradicted; grid unknown"
            est.grid_up = None
            return
        terms = [_value(usable.get(by_asset.get(a.id, ""), {}), pt.PV_POWER_KW) for a in self.site.pv]
        terms += [_value(usable.get(by_asset.get(g.id, ""), {}), pt.GENERATOR_POWER_KW) for g in self.site.generators]
        terms += [est.battery_kw.get(b.id) for b in self.site.batteries]
        loads = [est.load_kw.get(t.id) if est.tier_connected.get(t.id, True) else 0.0 for t in self.site.loads]
        load_kw = sum(v for v in loads if v is not None)
        tolerance_kw = balance_tolerance_kw(load_kw)
        said = f"grid meter frozen at {export_kw:+.1f} kW (export > 0, grid {'up' if est.grid_up else 'down'})"
        if not any(v is None for v in terms + loads):
            balance_kw = sum(v for v in terms if v is not None) - load_kw
            if abs(balance_kw - export_kw) > tolerance_kw:
                est.implausible[meter] = (
                    f"{said} while the site's balance says {balance_kw:+.1f} kW; grid state unknown"
                )
        former = self.site.grid_forming_battery()
        if est.grid_up and former is not None and meter not in est.implausible:
            ms = usable.get(by_asset.get(former.id, ""), {})
            asked, kw = _value(ms, pt.POWER_SETPOINT_KW), est.battery_kw.get(former.id)
            if asked is not None and kw is not None and kw > max(asked, 0.0) + tolerance_kw:
                est.implausible[meter] = (
                    f"{said} while the grid-forming battery {former.id} discharges {kw:.1f} kW against its setpoint "
                    f"{asked:+.1f} kW (it carries the site: no grid); grid state unknown"
                )
        if meter in est.implausible:
            est.grid_up = None
            self._distrusted.add(meter)

    def _grid_and_loads(self, est: Estimate, usable: Snapshot, by_asset: dict[str, str]) -> None:
        present = _value(usable.get(by_asset.get("grid", ""), {}), pt.GRID_PRESENT)
        if self.site.grid is None:
            est.grid_up = False  # an off-grid site: no grid, known
        elif present is not None:
            est.grid_up = bool(int(present))
        for array in self.site.pv:
            ms = usable.get(by_asset.get(array.id, ""), {})
            kw = _value(ms, pt.AVAILABLE_POWER_KW)
            if (kw := kw if kw is not None else _value(ms, pt.PV_POWER_KW)) is not None:
                est.pv_kw[array.id] = max(kw, 0.0)
        for binding in self.site.devices:
            ms = usable.get(binding.id, {})
            for tier, number in binding.feeders.items():
                if (kw := _value(ms, pt.feeder_power_kw(number))) is not None:
                    est.load_kw[tier] = kw
                if (closed := _value(ms, pt.feeder_closed(number))) is not None:
                    est.tier_connected[tier] = bool(int(closed))
                    est.tier_hours[tier] = self._relay_hours(tier, est.tier_connected[tier], est.time)

    def _cross_check_relays(self, est: Estimate, usable: Snapshot) -> dict[str, float]:
        """Each tier's relay against its load (module docstring); returns tier → load read fresh [kW]."""
        fresh: dict[str, float] = {}
        for binding in self.site.devices:
            ms = usable.get(binding.id, {})
            for tier, number in binding.feeders.items():
                if (kw := _fresh(ms, pt.feeder_power_kw(number))) is None:
                    continue
                fresh[tier] = kw
                if (closed := _fresh(ms, pt.feeder_closed(number))) is None:
                    continue
                if why := self._feeders.relay(tier, bool(int(closed)), kw, est.time):
                    _flag(est, binding.id, why)
                    est.tier_connected[tier] = not bool(int(closed))
                    est.tier_hours[tier] = self._relay_hours(tier, est.tier_connected[tier], est.time)
        return fresh

    def _cross_check_tier_loads(
        self, est: Estimate, fresh_kw: dict[str, float], usable: Snapshot, by_asset: dict[str, str]
    ) -> None:
        """Tier loads that do not move against the site's balance (module docstring)."""
        every = len(fresh_kw) == len(self.site.loads)
        supply = self._supply_kw(est, usable, by_asset) if every else None
        where = {tier: b.id for b in self.site.devices for tier in b.feeders}
        for tier, (kw, why) in self._feeders.loads(fresh_kw, est.tier_connected, supply).items():
            _flag(est, where[tier], why)
            est.load_kw[tier] = kw

    def _supply_kw(self, est: Estimate, usable: Snapshot, by_asset: dict[str, str]) -> float | None:
        """PV + batteries + gensets + grid import now, every term read fresh [kW]; None when one is not, or
        when the grid meter is not believed (implausible, or unchanged while the grid may be up)."""

        def read(asset: str, name: str) -> float | None:
            return _fresh(usable.get(by_asset.get(asset, ""), {}), name)

        terms = [read(a.id, pt.PV_POWER_KW) for a in self.site.pv]
        terms += [read(g.id, pt.GENERATOR_POWER_KW) for g in self.site.generators]
        terms += [read(b.id, pt.BATTERY_POWER_KW) for b in self.site.batteries]
        if self.site.grid is not None:
            meter, export_kw = by_asset.get("grid", ""), read("grid", pt.GRID_POWER_KW)
            doubtful = meter in est.implausible or (est.grid_up is not False and meter in self._unchanged)
            terms.append(None if export_kw is None or doubtful else -export_kw)
        return None if any(t is None for t in terms) else sum(t for t in terms if t is not None)
