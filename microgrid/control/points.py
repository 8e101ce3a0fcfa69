"""From an asset-level decision to register writes, device by device (generic profile names).

Only points the device's map has, and marks writable, are produced; the writer checks them
against the map's ranges and the site's limits again.
"""

from __future__ import annotations

from typing import Any

from microgrid.control.decisions import Decision
from microgrid.point_names import (
    CONTROL_MODE,
    POWER_LIMIT_ENABLED,
    POWER_LIMIT_PCT,
    POWER_SETPOINT_KW,
    RUN_COMMAND,
    feeder_command,
)
from microgrid.site import Site
from microgrid.telemetry.maps import RegisterMap
from microgrid.telemetry.registers import Value
from microgrid.telemetry.wiring import SiteDevices

__all__ = ["hand_back_points", "heartbeat_point", "to_points"]


def _asset_points(site: Site, decision: Decision, asset: str) -> dict[str, Value]:
    peaks = {a.id: a.peak_kw for a in site.pv}
    if asset in decision.battery_kw:
        return {POWER_SETPOINT_KW: round(decision.battery_kw[asset], 3), CONTROL_MODE: 1}
    if asset in decision.generator_on:
        on = decision.generator_on[asset]
        return {RUN_COMMAND: int(on), POWER_SETPOINT_KW: round(decision.generator_kw.get(asset, 0.0), 3)}
    if asset in peaks:
        limit = decision.pv_limit_kw.get(asset)
        if limit is None:
            return {POWER_LIMIT_ENABLED: 0, POWER_LIMIT_PCT: 100.0}
        return {POWER_LIMIT_ENABLED: 1, POWER_LIMIT_PCT: round(100 * limit / peaks[asset], 2)}
    return {}


def to_points(site: Site, decision: Decision, devices: SiteDevices, heartbeat: int) -> dict[str, dict[str, Value]]:
    """Device id → point → value to write this cycle (with the keep-alive heartbeat)."""
    out: dict[str, dict[str, Value]] = {}
    for device_id, binding in devices.bindings.items():
        regmap = devices.devices[device_id].map
        points: dict[str, Any] = {}
        if binding.asset:
            points = _asset_points(site, decision, binding.asset)
        for tier, number in binding.feeders.items():
            points[feeder_command(number)] = int(decision.tier_connected.get(tier, True))
        if (keep := heartbeat_point(regmap)) is not None:
            points[keep] = heartbeat % 65536
        out[device_id] = {p: v for p, v in points.items() if p in regmap.by_name and regmap.by_name[p].writable}
    return out


def heartbeat_point(regmap: RegisterMap) -> str | None:
    """The map's keep-alive point when it is a dedicated heartbeat counter (``*heartbeat*``), else None.

    Some maps (SunSpec 124) name a setpoint as their keep-alive point: a counter must never be
    written there; re-sending the decided setpoints keeps such devices alive instead.
    """
    keep = regmap.keepalive.point if regmap.keepalive is not None else None
    return keep if keep is not None and "heartbeat" in keep.lower() else None


def hand_back_points(devices: SiteDevices) -> dict[str, dict[str, Value]]:
    """The writes that return every device to its autonomous mode (clean shutdown)."""
    out: dict[str, dict[str, Value]] = {}
    for device_id, device in devices.devices.items():
        names = device.map.by_name
        ours = {feeder_command(number) for number in devices.bindings[device_id].feeders.values()}
        points: dict[str, Value] = {}
        if CONTROL_MODE in names and names[CONTROL_MODE].writable and device.map.device_class == "battery_inverter":
            points[CONTROL_MODE] = 0
        if POWER_LIMIT_ENABLED in names and names[POWER_LIMIT_ENABLED].writable:
            points[POWER_LIMIT_ENABLED] = 0
        for name, point in names.items():
            if name in ours and point.writable:  # only the site's feeders: a spare one is not ours to switch
                points[name] = 1
        out[device_id] = points
    return out
