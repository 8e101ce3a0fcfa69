"""From the site file's ``devices`` section to live :class:`~microgrid.telemetry.devices.Device` objects.

One :class:`~microgrid.telemetry.transport.ModbusTransport` per ``host:port``: devices behind
one gateway share its connection (over Modbus/TCP Security when its first device has ``tls``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from microgrid.errors import ConfigError
from microgrid.site import Site
from microgrid.site.devices import DeviceBinding, DeviceTls
from microgrid.telemetry.maps import RegisterMap, load_site_map

if TYPE_CHECKING:  # pymodbus loads only when devices are connected: `microgrid validate` checks maps without it
    import ssl

    from microgrid.telemetry.devices import Device, Measurement
    from microgrid.telemetry.transport import Transport

__all__ = ["SiteDevices", "check_wiring", "client_context", "connect"]

DEVICE_CLASS_FOR = {
    "battery": "battery_inverter",
    "generator": "genset_controller",
    "pv": "pv_inverter",
    "grid": "grid_meter",
    "load": "load_feeder",
}
"""The register-map ``device_class`` each kind of asset needs."""


def _kind(site: Site, binding: DeviceBinding) -> str:
    if binding.feeders:
        return "load"
    if binding.asset == "grid":
        return "grid"
    return site.asset_ids()[binding.asset or ""]


def check_wiring(site: Site, source: str = "<site>") -> dict[str, RegisterMap]:
    """Load every device's map and check it fits its asset; return device id → map.

    Raises
    ------
    ConfigError
        Listing every device whose map is unknown, broken, or of the wrong device class.
    """
    maps: dict[str, RegisterMap] = {}
    problems: list[str] = []
    for i, binding in enumerate(site.devices):
        try:
            regmap = load_site_map(binding.map, site.resolve)
        except ConfigError as exc:
            problems.append(f"devices[{i}].map: {'; '.join(exc.problems)}")
            continue
        wanted = DEVICE_CLASS_FOR[_kind(site, binding)]
        if regmap.device_class != wanted:
            problems.append(f"devices[{i}].map: {binding.map!r} is a {regmap.device_class} map, {wanted} needed")
            continue
        if regmap.addressing != "absolute":
            problems.append(f"devices[{i}].map: {binding.map!r} has model offsets (SunSpec): use `microgrid scan`")
            continue
        maps[binding.id] = regmap
    if problems:
        raise ConfigError(source, problems)
    return maps


@dataclass
class SiteDevices:
    """Every device of a site, connected through shared transports."""

    devices: dict[str, Device]
    bindings: dict[str, DeviceBinding]
    transports: dict[tuple[str, int], Transport]

    async def read_all(self) -> dict[str, dict[str, Measurement]]:
        """Read every device once; endpoints are read concurrently, devices on one endpoint in turn."""
        by_endpoint: dict[tuple[str, int], list[str]] = {}
        for device_id, binding in self.bindings.items():
            by_endpoint.setdefault((binding.host, binding.port), []).append(device_id)

        async def read_endpoint(ids: list[str]) -> dict[str, dict[str, Measurement]]:
            return {device_id: await self.devices[device_id].read() for device_id in ids}

        results = await asyncio.gather(*(read_endpoint(ids) for ids in by_endpoint.values()))
        return {k: v for result in results for k, v in result.items()}

    def close(self) -> None:
        """Close every connection."""
        for transport in self.transports.values():
            transport.close()


def connect(site: Site, source: str = "<site>") -> SiteDevices:
    """Build the devices of ``site`` (connections open lazily, on the first request)."""
    from microgrid.telemetry.devices import Device  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)
    from microgrid.telemetry.transport import ModbusTransport  # noqa: PLC0415

    maps = check_wiring(site, source)
    transports: dict[tuple[str, int], Transport] = {}
    devices: dict[str, Device] = {}
    for binding in site.devices:
        key = (binding.host, binding.port)
        if key not in transports:
            transports[key] = ModbusTransport(
                binding.host,
                binding.port,
                timeout_s=binding.timeout_s,
                retries=binding.retries,
                sslctx=None if binding.tls is None else client_context(site, binding.tls),
            )
        devices[binding.id] = Device(
            binding.id, maps[binding.id], transports[key], binding.unit, keepalive_s=binding.keepalive_s
        )
    return SiteDevices(devices, {b.id: b for b in site.devices}, transports)


def client_context(site: Site, tls: DeviceTls) -> ssl.SSLContext:
    """The TLS client context for a device's ``tls`` entry (Modbus/TCP Security: TLS 1.2+, the device's
    certificate checked against ``ca`` and its host, ours from ``cert`` and ``key``).

    Raises
    ------
    ConfigError
        A file that cannot be read or is not a certificate or key.
    """
    import ssl  # noqa: PLC0415 - lazy on purpose (start-up cost, issue 14)

    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(site.resolve(tls.ca))
        context.load_cert_chain(site.resolve(tls.cert), site.resolve(tls.key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("devices[].tls", [f"{tls.ca}, {tls.cert}, {tls.key}: {exc}"]) from None
    return context
