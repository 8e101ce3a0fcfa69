"""The site file's ``devices`` section: which Modbus device measures and drives which asset.

::

    devices:
      - id: bess1-inverter            # unique across the site
        map: generic-battery-inverter # a shipped register map (models/devices) or a path
        host: 127.0.0.1               # default 127.0.0.1 (loopback only)
        port: 15021                   # default 502
        unit: 1                       # Modbus unit id, default 1
        asset: bess1                  # a battery, generator or PV id, or "grid" for the grid meter
      - id: feeders
        map: generic-load-feeder
        port: 15027
        feeders: {critical: 1, essential: 2, comfort: 3}   # load tier → feeder number on the device

Several devices may share one ``host:port`` (a gateway) with different unit ids: they then
share one connection. A device that speaks Modbus/TCP Security (TLS 1.2+, mutual X.509; port 802
by convention) says so with ``tls: {ca: ..., cert: ..., key: ...}`` (:class:`DeviceTls`: paths
relative to the site file); devices sharing a ``host:port`` share the first one's connection and
its TLS. Checks here are the ones the site file alone allows; whether a map exists and fits the
asset is checked by :func:`microgrid.telemetry.wiring.check_wiring`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

__all__ = ["DeviceBinding", "DeviceTls", "device_problems"]

_ID = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
_HOST = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$|^\[?[0-9a-fA-F:]+\]?$"


class DeviceTls(BaseModel):
    """Modbus/TCP Security to a device: the CA its certificate must be signed by (its certificate must name
    its ``host``), and the controller's own certificate and key. Paths are relative to the site file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ca: Annotated[str, StringConstraints(strict=True, min_length=1)]
    cert: Annotated[str, StringConstraints(strict=True, min_length=1)]
    key: Annotated[str, StringConstraints(strict=True, min_length=1)]


class DeviceBinding(BaseModel):
    """One Modbus device of the site and the asset (or load tiers) it serves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, StringConstraints(strict=True, pattern=_ID)]
    map: Annotated[str, StringConstraints(strict=True, min_length=1)]
    host: Annotated[str, StringConstraints(strict=True, pattern=_HOST)] = "127.0.0.1"
    port: Annotated[int, Field(strict=True, ge=1, le=65535)] = 502
    unit: Annotated[int, Field(strict=True, ge=0, le=247)] = 1
    asset: Annotated[str, StringConstraints(strict=True, pattern=_ID)] | None = None
    feeders: dict[Annotated[str, StringConstraints(pattern=_ID)], Annotated[int, Field(strict=True, ge=1, le=16)]] = {}
    timeout_s: Annotated[float, Field(gt=0, le=30, strict=True, allow_inf_nan=False)] = 0.5
    """Per-request timeout [s]."""
    retries: Annotated[int, Field(strict=True, ge=0, le=5)] = 1
    keepalive_s: Annotated[float, Field(gt=0, le=3600, strict=True, allow_inf_nan=False)] = 20.0
    """Unchanged setpoints are rewritten at most this often [s]; keep it below the revert timeout."""
    tls: DeviceTls | None = None
    """Modbus/TCP Security to this device (None: plain Modbus TCP)."""

    @model_validator(mode="after")
    def _one_target(self) -> DeviceBinding:
        if (self.asset is None) == (not self.feeders):
            raise PydanticCustomError("cross_check", "needs exactly one of 'asset' or 'feeders'", {"key": "asset"})
        if len(set(self.feeders.values())) != len(self.feeders):
            raise PydanticCustomError("cross_check", "two tiers on one feeder", {"key": "feeders"})
        return self


def device_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Cross-checks of the ``devices`` section against the site's assets, as (key path, reason).

    Works on the raw (unvalidated) site mapping, skipping values of the wrong type (they get
    their own error), so that every problem of a file is listed at once.
    """
    kinds = _asset_kinds(data)
    devices = data.get("devices")
    if not isinstance(devices, list | tuple):
        return []
    problems: list[tuple[str, str]] = []
    ids: dict[str, int] = {}
    endpoints: dict[tuple[Any, Any, Any], str] = {}
    served: dict[str, str] = {}
    for i, dev in enumerate(devices):
        if not isinstance(dev, dict):
            continue
        where, dev_id = f"devices[{i}]", str(dev.get("id"))[:64]
        if dev_id in ids:
            problems.append((f"{where}.id", f"id {dev_id!r} already used at devices[{ids[dev_id]}]"))
        elif dev_id in kinds:
            problems.append((f"{where}.id", f"id {dev_id!r} is already an asset id"))
        ids.setdefault(dev_id, i)
        key = (dev.get("host", "127.0.0.1"), dev.get("port", 502), dev.get("unit", 1))
        if not all(isinstance(part, str | int) for part in key):
            pass  # a wrong type gets its own error
        elif key in endpoints:
            problems.append((f"{where}.unit", f"{key[0]}:{key[1]} unit {key[2]} already used by {endpoints[key]!r}"))
        else:
            endpoints[key] = dev_id
        problems += _target_problems(where, dev, kinds, "grid" in data and data["grid"] is not None, served)
    return problems


def _asset_kinds(data: dict[str, Any]) -> dict[str, str]:
    kinds = {"batteries": "battery", "generators": "generator", "pv": "pv", "loads": "load"}
    out = {}
    for section, kind in kinds.items():
        items = data.get(section)
        for item in items if isinstance(items, list | tuple) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                out[item["id"]] = kind
    return out


def _target_problems(
    where: str, dev: dict[str, Any], kinds: dict[str, str], has_grid: bool, served: dict[str, str]
) -> list[tuple[str, str]]:
    asset, feeders = dev.get("asset"), dev.get("feeders")
    targets: list[tuple[str, str, bool]] = []
    if isinstance(asset, str):
        targets.append((f"{where}.asset", asset, False))
    if isinstance(feeders, dict):
        targets += [(f"{where}.feeders.{t}", str(t), True) for t in feeders]
    problems = []
    for path, target, is_tier in targets:
        if is_tier and kinds.get(target) != "load":
            problems.append((path, f"names no load tier of the site, got {target!r}"))
        elif not is_tier and target == "grid" and not has_grid:
            problems.append((path, "the site has no grid section"))
        elif not is_tier and target != "grid" and kinds.get(target) not in ("battery", "generator", "pv"):
            problems.append((path, f"names no battery, generator or PV array of the site (or 'grid'), got {target!r}"))
        elif target in served:
            problems.append((path, f"{target!r} is already served by device {served[target]!r}"))
        else:
            served[target] = str(dev.get("id"))
    return problems
