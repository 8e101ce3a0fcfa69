"""What each simulated device shows in its registers, and what a write does to the plant.

One adapter per device class of the generic profile (``models/devices/README.md``). Values are
in the map's units and sign conventions (battery positive = discharge, grid meter positive =
export). Every adapter honours the profile's keep-alive: a write of a *new* ``heartbeat_count``
value restarts the revert timer (rewriting the same value or a setpoint does not; a setpoint
written while autonomous makes the device remote with a fresh timer); once ``revert_timeout_s``
passes without one, the device reverts to its autonomous behaviour:

* battery inverter: setpoint 0 (idle; it still forms the grid in an outage); a tripped one
  (:meth:`~microgrid.sim.physics.SitePlant.trip_battery`) reports ``operating_state`` 3 (fault),
  ``fault_code`` :data:`TRIP_FAULT_CODE` and 0 kW charge and discharge limits;
* genset controller: local automatic mains failure (runs while the grid is down) at rated power;
* PV inverter: curtailment limit disabled;
* load feeder: every relay closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from microgrid.point_names import (
    AC_FREQUENCY_HZ,
    AC_VOLTAGE_V,
    AVAILABLE_POWER_KW,
    BATTERY_POWER_KW,
    BATTERY_VOLTAGE_V,
    CAPACITY_KWH,
    CHARGED_ENERGY_KWH,
    CONTROL_MODE,
    COOLANT_TEMPERATURE_C,
    DC_CURRENT_A,
    DC_VOLTAGE_V,
    DEVICE_CLASS,
    DISCHARGED_ENERGY_KWH,
    ENERGY_TOTAL_KWH,
    ENGINE_STATE,
    EXPORT_ENERGY_KWH,
    FAULT_CODE,
    FEEDER_NUMBERS,
    FREQUENCY_HZ,
    FUEL_LEVEL_L,
    FUEL_LEVEL_PCT,
    GENERATOR_FREQUENCY_HZ,
    GENERATOR_POWER_KW,
    GENERATOR_VOLTAGE_V,
    GRID_POWER_KW,
    GRID_PRESENT,
    HEARTBEAT_COUNT,
    IMPORT_ENERGY_KWH,
    MAX_CHARGE_POWER_KW,
    MAX_DISCHARGE_POWER_KW,
    OPERATING_STATE,
    POWER_LIMIT_ENABLED,
    POWER_LIMIT_PCT,
    POWER_SETPOINT_KW,
    PROFILE_VERSION,
    PV_POWER_KW,
    RATED_POWER_KW,
    REACTIVE_POWER_KVAR,
    REMOTE_CONTROL,
    REVERT_TIMEOUT_S,
    RUN_COMMAND,
    RUNNING_HOURS_H,
    SOC_PCT,
    SOH_PCT,
    START_COUNT,
    TEMPERATURE_C,
    VOLTAGE_L1_V,
    VOLTAGE_L2_V,
    VOLTAGE_L3_V,
    feeder_closed,
    feeder_command,
    feeder_command_number,
    feeder_power_kw,
)
from microgrid.sim.physics import BatteryPlant, GensetPlant, SitePlant
from microgrid.telemetry.registers import Value

__all__ = ["Adapter", "BatteryAdapter", "FeederAdapter", "GensetAdapter", "GridMeterAdapter", "PVAdapter"]

DEFAULT_REVERT_S = 60.0

TRIP_FAULT_CODE = 0x0101
"""The ``fault_code`` a tripped battery inverter reports (with ``operating_state`` 3, fault, and 0 kW limits)."""


@dataclass
class Adapter:
    """Base: the keep-alive and revert logic shared by every device class."""

    plant: SitePlant
    revert_timeout_s: float = DEFAULT_REVERT_S
    heartbeat: int = 0
    since_keepalive_s: float = 0.0
    remote: bool = False

    def values(self) -> dict[str, Value | None]:
        """Point name → value now (None: not implemented)."""
        common: dict[str, Value | None] = {PROFILE_VERSION: 1, FAULT_CODE: 0}
        return common | {
            REMOTE_CONTROL: int(self.remote),
            HEARTBEAT_COUNT: self.heartbeat,
            REVERT_TIMEOUT_S: int(self.revert_timeout_s),
        }

    def write(self, name: str, value: Value) -> None:
        """Apply a write of a writable point (already range-checked against the map)."""
        if name == REVERT_TIMEOUT_S:
            self.revert_timeout_s = float(value)
        elif name == HEARTBEAT_COUNT:
            if int(value) != self.heartbeat:  # only a new value is a heartbeat (README: keep-alive)
                self.since_keepalive_s = 0.0
            self.heartbeat = int(value)
        else:
            if not self.remote:  # a setpoint while autonomous makes the device remote: full timeout from now
                self.since_keepalive_s = 0.0
            self.remote = True
            self.command(name, value)  # after: a command may revert at once (battery control_mode = 0)

    def command(self, name: str, value: Value) -> None:
        """A setpoint or command write (device-class specific)."""

    def tick(self, dt_s: float) -> None:
        """Advance the revert timer by ``dt_s`` simulated seconds."""
        self.since_keepalive_s += dt_s
        if self.remote and self.since_keepalive_s >= self.revert_timeout_s:
            self.remote = False
            self.revert()

    def revert(self) -> None:
        """Go back to autonomous behaviour."""


@dataclass
class BatteryAdapter(Adapter):
    """A battery inverter (generic profile, device class 1)."""

    asset: str = ""

    @property
    def battery(self) -> BatteryPlant:
        return self.plant.batteries[self.asset]

    def values(self) -> dict[str, Value | None]:
        bat = self.battery
        low, high = bat.limits_kw(1.0)
        return super().values() | {
            DEVICE_CLASS: 1,
            SOC_PCT: round(bat.soc * 100, 2),
            SOH_PCT: 100.0,
            BATTERY_POWER_KW: round(bat.power_kw, 3),
            DC_VOLTAGE_V: 700.0,
            DC_CURRENT_A: round(bat.power_kw * 1000 / 700, 1),
            MAX_CHARGE_POWER_KW: round(-low, 3),
            MAX_DISCHARGE_POWER_KW: round(high, 3),
            OPERATING_STATE: 3 if bat.tripped else 2,
            FAULT_CODE: TRIP_FAULT_CODE if bat.tripped else 0,
            AC_FREQUENCY_HZ: 50.0,
            AC_VOLTAGE_V: 230.0,
            TEMPERATURE_C: 25.0,
            CHARGED_ENERGY_KWH: round(bat.charged_kwh, 1),
            DISCHARGED_ENERGY_KWH: round(bat.discharged_kwh, 1),
            CAPACITY_KWH: bat.spec.capacity_kwh,
            POWER_SETPOINT_KW: round(bat.setpoint_kw, 3),
            CONTROL_MODE: int(self.remote),
        }

    def command(self, name: str, value: Value) -> None:
        if name == POWER_SETPOINT_KW:
            self.battery.command(float(value))
        elif name == CONTROL_MODE and int(value) == 0:
            self.revert()

    def tick(self, dt_s: float) -> None:
        self.battery.since_command_s = 0.0  # the adapter owns the revert timer
        super().tick(dt_s)

    def revert(self) -> None:
        self.remote = False
        self.battery.command(0.0)


@dataclass
class GensetAdapter(Adapter):
    """A genset controller (generic profile, device class 2)."""

    asset: str = ""

    @property
    def genset(self) -> GensetPlant:
        return self.plant.gensets[self.asset]

    def values(self) -> dict[str, Value | None]:
        gen, fuel = self.genset, self.plant.fuel.get(self.genset.spec.fuel)
        initial = self.plant.initial_fuel.get(gen.spec.fuel)
        state = 2 if gen.running else (1 if gen.run_requested else 0)
        return super().values() | {
            DEVICE_CLASS: 2,
            ENGINE_STATE: state,
            GENERATOR_POWER_KW: round(gen.power_kw, 3),
            GENERATOR_FREQUENCY_HZ: 50.0 if gen.running else 0.0,
            GENERATOR_VOLTAGE_V: 230.0 if gen.running else 0.0,
            RUNNING_HOURS_H: round(gen.running_hours, 1),
            FUEL_LEVEL_PCT: None if fuel is None or not initial else round(100 * fuel / initial, 1),
            FUEL_LEVEL_L: None if fuel is None else round(fuel, 1),
            START_COUNT: gen.starts,
            CONTROL_MODE: 3 if self.remote else 2,
            RATED_POWER_KW: gen.spec.max_kw,
            BATTERY_VOLTAGE_V: 27.2,
            COOLANT_TEMPERATURE_C: 82.0 if gen.running else 20.0,
            RUN_COMMAND: int(gen.run_requested),
            POWER_SETPOINT_KW: round(gen.setpoint_kw, 3),
        }

    def command(self, name: str, value: Value) -> None:
        if name == RUN_COMMAND:
            self.genset.command(bool(int(value)))
        elif name == POWER_SETPOINT_KW:
            self.genset.command(self.genset.run_requested, float(value))

    def tick(self, dt_s: float) -> None:
        super().tick(dt_s)
        if not self.remote:  # local automatic mains failure
            self.genset.command(not self.plant.grid_up, self.genset.spec.max_kw)

    def revert(self) -> None:
        self.genset.command(not self.plant.grid_up, self.genset.spec.max_kw)


@dataclass
class PVAdapter(Adapter):
    """A PV inverter (generic profile, device class 3)."""

    asset: str = ""
    limit_pct: float = 100.0
    limit_enabled: bool = False

    def values(self) -> dict[str, Value | None]:
        peak = next(a.peak_kw for a in self.plant.site.pv if a.id == self.asset)
        return super().values() | {
            DEVICE_CLASS: 3,
            PV_POWER_KW: round(self.plant.pv_kw[self.asset], 3),
            AVAILABLE_POWER_KW: round(self.plant.pv_available_kw.get(self.asset, 0.0), 3),
            AC_FREQUENCY_HZ: 50.0,
            AC_VOLTAGE_V: 230.0,
            ENERGY_TOTAL_KWH: round(self.plant.pv_energy_kwh.get(self.asset, 0.0), 1),
            OPERATING_STATE: 3 if self.limit_enabled else 2,
            RATED_POWER_KW: peak,
            POWER_LIMIT_PCT: self.limit_pct,
            POWER_LIMIT_ENABLED: int(self.limit_enabled),
        }

    def command(self, name: str, value: Value) -> None:
        if name == POWER_LIMIT_PCT:
            self.limit_pct = float(value)
        elif name == POWER_LIMIT_ENABLED:
            self.limit_enabled = bool(int(value))
        self._apply()

    def _apply(self) -> None:
        peak = next(a.peak_kw for a in self.plant.site.pv if a.id == self.asset)
        self.plant.pv_limit_kw[self.asset] = peak * self.limit_pct / 100 if self.limit_enabled else peak

    def revert(self) -> None:
        self.limit_enabled = False
        self._apply()


@dataclass
class GridMeterAdapter(Adapter):
    """A grid meter (generic profile, device class 4): positive power = export."""

    def values(self) -> dict[str, Value | None]:
        up = self.plant.grid_up
        return {
            PROFILE_VERSION: 1,
            DEVICE_CLASS: 4,
            FAULT_CODE: 0,
            GRID_POWER_KW: round(-self.plant.grid_kw, 3),
            VOLTAGE_L1_V: 230.0 if up else 0.0,
            VOLTAGE_L2_V: 230.0 if up else 0.0,
            VOLTAGE_L3_V: 230.0 if up else 0.0,
            FREQUENCY_HZ: 50.0 if up else 0.0,
            GRID_PRESENT: int(up),
            IMPORT_ENERGY_KWH: round(self.plant.totals.imported_kwh, 1),
            EXPORT_ENERGY_KWH: round(self.plant.totals.exported_kwh, 1),
            REACTIVE_POWER_KVAR: 0.0,
        }


@dataclass
class FeederAdapter(Adapter):
    """Load feeder relays (generic profile, device class 5): tier → feeder number."""

    feeders: dict[str, int] | None = None

    def _tiers(self) -> dict[int, str]:
        return {n: tier for tier, n in (self.feeders or {}).items()}

    def values(self) -> dict[str, Value | None]:
        out = super().values() | {DEVICE_CLASS: 5}
        tiers = self._tiers()
        for n in FEEDER_NUMBERS:
            tier = tiers.get(n)
            closed = self.plant.relay_closed.get(tier, False) if tier else False
            out[feeder_power_kw(n)] = round(self.plant.load_kw.get(tier, 0.0), 3) if tier else 0.0
            out[feeder_closed(n)] = int(closed)
            out[feeder_command(n)] = int(closed)
        return out

    def command(self, name: str, value: Value) -> None:
        number = feeder_command_number(name)
        tier = self._tiers().get(number) if number is not None else None
        if tier is not None:
            self.plant.relay_closed[tier] = bool(int(value))

    def revert(self) -> None:
        for tier in self._tiers().values():
            self.plant.relay_closed[tier] = True
