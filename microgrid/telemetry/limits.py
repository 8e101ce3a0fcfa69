"""The site's limits on writable points, on top of each point's own range.

A battery inverter's power setpoint must lie within the battery's charge and discharge power
(positive = discharge); a genset controller's within [0, max_kw]. Anything the site file does
not limit keeps the map's range.
"""

from __future__ import annotations

from microgrid.point_names import POWER_SETPOINT_KW
from microgrid.site import Site
from microgrid.site.devices import DeviceBinding
from microgrid.telemetry.maps import RegisterMap

__all__ = ["site_limits"]


def site_limits(site: Site, binding: DeviceBinding, regmap: RegisterMap) -> dict[str, tuple[float, float]]:
    """Point name → (low, high) the site allows for ``binding``'s writable points (map units)."""
    batteries = {b.id: b for b in site.batteries}
    gensets = {g.id: g for g in site.generators}
    limits: dict[str, tuple[float, float]] = {}
    if binding.asset in batteries and regmap.device_class == "battery_inverter":
        bat = batteries[binding.asset]
        limits[POWER_SETPOINT_KW] = (-bat.max_charge_kw, bat.max_discharge_kw)
    if binding.asset in gensets and regmap.device_class == "genset_controller":
        limits[POWER_SETPOINT_KW] = (0.0, gensets[binding.asset].max_kw)
    return {name: bounds for name, bounds in limits.items() if name in regmap.by_name}
