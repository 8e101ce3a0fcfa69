"""The generic device profile's point names, written once (``models/devices/generic-*.yaml``).

Every module that reads, writes or simulates a point of the generic profile names it through
these constants, so a typo is an ``ImportError`` (or a mypy error), not a point silently never
read. A test checks each one against the profile definitions. Units and sign conventions are the
profile's (``models/devices/README.md``): batteries positive = discharge, the grid meter
positive = export, sources positive = generation, loads positive = consumption.

The module is pure data at the bottom of the layers, so the device edge (``telemetry``), the
controller (``control``), the simulator (``sim``) and the load and PV history (``forecast``,
which reads recorded points) share it.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "AC_FREQUENCY_HZ",
    "AC_VOLTAGE_V",
    "AVAILABLE_POWER_KW",
    "BATTERY_POWER_KW",
    "BATTERY_VOLTAGE_V",
    "CAPACITY_KWH",
    "CHARGED_ENERGY_KWH",
    "CONTROL_MODE",
    "COOLANT_TEMPERATURE_C",
    "DC_CURRENT_A",
    "DC_VOLTAGE_V",
    "DEVICE_CLASS",
    "DISCHARGED_ENERGY_KWH",
    "ENERGY_TOTAL_KWH",
    "ENGINE_STATE",
    "EXPORT_ENERGY_KWH",
    "FAULT_CODE",
    "FEEDER_NUMBERS",
    "FREQUENCY_HZ",
    "FUEL_LEVEL_L",
    "FUEL_LEVEL_PCT",
    "GENERATOR_FREQUENCY_HZ",
    "GENERATOR_POWER_KW",
    "GENERATOR_VOLTAGE_V",
    "GRID_POWER_KW",
    "GRID_PRESENT",
    "HEARTBEAT_COUNT",
    "IMPORT_ENERGY_KWH",
    "MAX_CHARGE_POWER_KW",
    "MAX_DISCHARGE_POWER_KW",
    "OPERATING_STATE",
    "POWER_LIMIT_ENABLED",
    "POWER_LIMIT_PCT",
    "POWER_SETPOINT_KW",
    "PROFILE_VERSION",
    "PV_POWER_KW",
    "RATED_POWER_KW",
    "REACTIVE_POWER_KVAR",
    "REMOTE_CONTROL",
    "REVERT_TIMEOUT_S",
    "RUNNING_HOURS_H",
    "RUN_COMMAND",
    "SOC_PCT",
    "SOH_PCT",
    "START_COUNT",
    "TEMPERATURE_C",
    "VOLTAGE_L1_V",
    "VOLTAGE_L2_V",
    "VOLTAGE_L3_V",
    "feeder_closed",
    "feeder_command",
    "feeder_command_number",
    "feeder_power_kw",
]

# -- every device class ----------------------------------------------------------------------
PROFILE_VERSION: Final = "profile_version"
DEVICE_CLASS: Final = "device_class"
FAULT_CODE: Final = "fault_code"
REMOTE_CONTROL: Final = "remote_control"
HEARTBEAT_COUNT: Final = "heartbeat_count"
"""The keep-alive counter: a *new* value restarts the device's revert timer."""
REVERT_TIMEOUT_S: Final = "revert_timeout_s"

# -- shared by several classes ---------------------------------------------------------------
OPERATING_STATE: Final = "operating_state"
AC_FREQUENCY_HZ: Final = "ac_frequency_hz"
AC_VOLTAGE_V: Final = "ac_voltage_v"
RATED_POWER_KW: Final = "rated_power_kw"
POWER_SETPOINT_KW: Final = "power_setpoint_kw"
"""Battery inverter (positive = discharge) and genset controller setpoint [kW]."""
CONTROL_MODE: Final = "control_mode"

# -- battery inverter ------------------------------------------------------------------------
SOC_PCT: Final = "soc_pct"
SOH_PCT: Final = "soh_pct"
BATTERY_POWER_KW: Final = "battery_power_kw"
"""Battery power [kW], positive = discharge."""
DC_VOLTAGE_V: Final = "dc_voltage_v"
DC_CURRENT_A: Final = "dc_current_a"
MAX_CHARGE_POWER_KW: Final = "max_charge_power_kw"
MAX_DISCHARGE_POWER_KW: Final = "max_discharge_power_kw"
TEMPERATURE_C: Final = "temperature_c"
CHARGED_ENERGY_KWH: Final = "charged_energy_kwh"
DISCHARGED_ENERGY_KWH: Final = "discharged_energy_kwh"
CAPACITY_KWH: Final = "capacity_kwh"

# -- genset controller -----------------------------------------------------------------------
ENGINE_STATE: Final = "engine_state"
GENERATOR_POWER_KW: Final = "generator_power_kw"
GENERATOR_FREQUENCY_HZ: Final = "generator_frequency_hz"
GENERATOR_VOLTAGE_V: Final = "generator_voltage_v"
RUNNING_HOURS_H: Final = "running_hours_h"
FUEL_LEVEL_PCT: Final = "fuel_level_pct"
FUEL_LEVEL_L: Final = "fuel_level_l"
START_COUNT: Final = "start_count"
BATTERY_VOLTAGE_V: Final = "battery_voltage_v"
COOLANT_TEMPERATURE_C: Final = "coolant_temperature_c"
RUN_COMMAND: Final = "run_command"

# -- PV inverter -----------------------------------------------------------------------------
PV_POWER_KW: Final = "pv_power_kw"
AVAILABLE_POWER_KW: Final = "available_power_kw"
ENERGY_TOTAL_KWH: Final = "energy_total_kwh"
POWER_LIMIT_PCT: Final = "power_limit_pct"
POWER_LIMIT_ENABLED: Final = "power_limit_enabled"

# -- grid meter ------------------------------------------------------------------------------
GRID_POWER_KW: Final = "grid_power_kw"
"""Grid power [kW], positive = export."""
VOLTAGE_L1_V: Final = "voltage_l1_v"
VOLTAGE_L2_V: Final = "voltage_l2_v"
VOLTAGE_L3_V: Final = "voltage_l3_v"
FREQUENCY_HZ: Final = "frequency_hz"
GRID_PRESENT: Final = "grid_present"
IMPORT_ENERGY_KWH: Final = "import_energy_kwh"
EXPORT_ENERGY_KWH: Final = "export_energy_kwh"
REACTIVE_POWER_KVAR: Final = "reactive_power_kvar"

# -- load feeder -----------------------------------------------------------------------------
FEEDER_NUMBERS: Final = range(1, 5)
"""The feeders a generic load-feeder device has (1…4)."""


def feeder_power_kw(number: int) -> str:
    """Feeder ``number``'s load [kW], positive = consumption."""
    return f"feeder_{number}_power_kw"


def feeder_closed(number: int) -> str:
    """Feeder ``number``'s relay state read back (0 open, 1 closed)."""
    return f"feeder_{number}_closed"


def feeder_command(number: int) -> str:
    """Feeder ``number``'s relay command (0 open, 1 close; reverts to 1)."""
    return f"feeder_{number}_command"


_FEEDER_COMMAND = re.compile(r"feeder_(\d+)_command")


def feeder_command_number(name: str) -> int | None:
    """The feeder number of a relay command point's name (``feeder_3_command`` → 3), else None."""
    match = _FEEDER_COMMAND.fullmatch(name)
    return int(match.group(1)) if match else None
