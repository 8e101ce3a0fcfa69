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
        common: dict[str, Value | None] = {"profile_version": 1, "fault_code": 0}
        return common | {
            "remote_control": int(self.remote),
            "heartbeat_count": self.heartbeat,
            "revert_timeout_s": int(self.revert_timeout_s),
        }

    def write(self, name: str, value: Value) -> None:
        """Apply a write of a writable point (already range-checked against the map)."""
        if name == "revert_timeout_s":
            self.revert_timeout_s = float(value)
        elif name == "heartbeat_count":
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
            "device_class": 1,
            "soc_pct": round(bat.soc * 100, 2),
            "soh_pct": 100.0,
            "battery_power_kw": round(bat.power_kw, 3),
            "dc_voltage_v": 700.0,
            "dc_current_a": round(bat.power_kw * 1000 / 700, 1),
            "max_charge_power_kw": round(-low, 3),
            "max_discharge_power_kw": round(high, 3),
            "operating_state": 3 if bat.tripped else 2,
            "fault_code": TRIP_FAULT_CODE if bat.tripped else 0,
            "ac_frequency_hz": 50.0,
            "ac_voltage_v": 230.0,
            "temperature_c": 25.0,
            "charged_energy_kwh": round(bat.charged_kwh, 1),
            "discharged_energy_kwh": round(bat.discharged_kwh, 1),
            "capacity_kwh": bat.spec.capacity_kwh,
            "power_setpoint_kw": round(bat.setpoint_kw, 3),
            "control_mode": int(self.remote),
        }

    def command(self, name: str, value: Value) -> None:
        if name == "power_setpoint_kw":
            self.battery.command(float(value))
        elif name == "control_mode" and int(value) == 0:
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
            "device_class": 2,
            "engine_state": state,
            "generator_power_kw": round(gen.power_kw, 3),
            "generator_frequency_hz": 50.0 if gen.running else 0.0,
            "generator_voltage_v": 230.0 if gen.running else 0.0,
            "running_hours_h": round(gen.running_hours, 1),
            "fuel_level_pct": None if fuel is None or not initial else round(100 * fuel / initial, 1),
            "fuel_level_l": None if fuel is None else round(fuel, 1),
            "start_count": gen.starts,
            "control_mode": 3 if self.remote else 2,
            "rated_power_kw": gen.spec.max_kw,
            "battery_voltage_v": 27.2,
            "coolant_temperature_c": 82.0 if gen.running else 20.0,
            "run_command": int(gen.run_requested),
            "power_setpoint_kw": round(gen.setpoint_kw, 3),
        }

    def command(self, name: str, value: Value) -> None:
        if name == "run_command":
            self.genset.command(bool(int(value)))
        elif name == "power_setpoint_kw":
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
            "device_class": 3,
            "pv_power_kw": round(self.plant.pv_kw[self.asset], 3),
            "available_power_kw": round(self.plant.pv_available_kw.get(self.asset, 0.0), 3),
            "ac_frequency_hz": 50.0,
            "ac_voltage_v": 230.0,
            "energy_total_kwh": round(self.plant.pv_energy_kwh.get(self.asset, 0.0), 1),
            "operating_state": 3 if self.limit_enabled else 2,
            "rated_power_kw": peak,
            "power_limit_pct": self.limit_pct,
            "power_limit_enabled": int(self.limit_enabled),
        }

    def command(self, name: str, value: Value) -> None:
        if name == "power_limit_pct":
            self.limit_pct = float(value)
        elif name == "power_limit_enabled":
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
            "profile_version": 1,
            "device_class": 4,
            "fault_code": 0,
            "grid_power_kw": round(-self.plant.grid_kw, 3),
            "voltage_l1_v": 230.0 if up else 0.0,
            "voltage_l2_v": 230.0 if up else 0.0,
            "voltage_l3_v": 230.0 if up else 0.0,
            "frequency_hz": 50.0 if up else 0.0,
            "grid_present": int(up),
            "import_energy_kwh": round(self.plant.totals.imported_kwh, 1),
            "export_energy_kwh": round(self.plant.totals.exported_kwh, 1),
            "reactive_power_kvar": 0.0,
        }


@dataclass
class FeederAdapter(Adapter):
    """Load feeder relays (generic profile, device class 5): tier → feeder number."""

    feeders: dict[str, int] | None = None

    def _tiers(self) -> dict[int, str]:
        return {n: tier for tier, n in (self.feeders or {}).items()}

    def values(self) -> dict[str, Value | None]:
        out = super().values() | {"device_class": 5}
        tiers = self._tiers()
        for n in range(1, 5):
            tier = tiers.get(n)
            closed = self.plant.relay_closed.get(tier, False) if tier else False
            out[f"feeder_{n}_power_kw"] = round(self.plant.load_kw.get(tier, 0.0), 3) if tier else 0.0
            out[f"feeder_{n}_closed"] = int(closed)
            out[f"feeder_{n}_command"] = int(closed)
        return out

    def command(self, name: str, value: Value) -> None:
        number = int(name.split("_")[1])
        tier = self._tiers().get(number)
        if tier is not None:
            self.plant.relay_closed[tier] = bool(int(value))

    def revert(self) -> None:
        for tier in self._tiers().values():
            self.plant.relay_closed[tier] = True
