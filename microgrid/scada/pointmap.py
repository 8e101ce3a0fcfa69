"""The SCADA point map: ``models/scada/microgrid-scada.yaml`` expanded for a site, and its point list.

The YAML is a device map (:mod:`microgrid.telemetry.maps`: same keys, codec and register types)
with two more sections: ``watchdog`` (``timeout_s``) and ``assets``, one block of points per kind of
asset. Asset *n* of a kind (counted from 1 in the site file's order) sits at
``base + (n - 1) × stride`` and its points are named ``<prefix><n>_<point>``; a block's point
addresses are offsets inside the block. :func:`site_map` expands the blocks for a site into one
validated :class:`~microgrid.telemetry.maps.RegisterMap` (so overlaps, names and units are checked
as for any device map), narrowing each manual setpoint's range to its asset's limits.
:func:`point_rows` and :func:`render` give the point list (Markdown or CSV: address, name, type,
scale, unit, access, meaning).
"""

from __future__ import annotations

import csv
import importlib.resources
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from microgrid.errors import ConfigError
from microgrid.resources import shipped
from microgrid.site import Site
from microgrid.telemetry.maps import Point, RegisterMap, map_from_dict
from microgrid.yamlio import load_yaml

__all__ = ["ASSET_KINDS", "ScadaMap", "load_scada_map", "point_rows", "render", "site_map"]

ASSET_KINDS = ("batteries", "gensets", "pv", "tiers", "fuels")
"""The asset blocks, in address order."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AssetBlock(_Frozen):
    """One kind of asset's block: where asset 1 starts, the stride between assets, the most assets."""

    prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{0,15}$")]
    base: Annotated[int, Field(ge=0, le=65535)]
    stride: Annotated[int, Field(ge=1, le=1000)]
    max: Annotated[int, Field(ge=1, le=100)]
    points: tuple[dict[str, Any], ...]


class Watchdog(_Frozen):
    """SCADA's heartbeat watchdog (``scada.timeout``)."""

    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0


class _Extra(_Frozen):
    watchdog: Watchdog = Watchdog()
    assets: dict[str, AssetBlock]


@dataclass(frozen=True)
class ScadaMap:
    """The SCADA map for one site: its register map, the watchdog, and which asset each block index is."""

    regmap: RegisterMap
    watchdog: Watchdog
    assets: dict[str, tuple[str, ...]]
    """Kind (``batteries``…) → asset ids, block index 1 first."""
    blocks: dict[str, AssetBlock]


def _asset_ids(site: Site) -> dict[str, tuple[str, ...]]:
    return {
        "batteries": tuple(b.id for b in site.batteries),
        "gensets": tuple(g.id for g in site.generators),
        "pv": tuple(a.id for a in site.pv),
        "tiers": tuple(t.id for t in sorted(site.loads, key=lambda t: t.priority)),
        "fuels": tuple(site.fuels),
    }


def _limits(site: Site, kind: str, asset: str) -> tuple[float, float] | None:
    """The range of an asset's manual setpoint (what ``microgrid override`` accepts), in kW."""
    if kind == "batteries":
        bat = next(b for b in site.batteries if b.id == asset)
        return -bat.max_charge_kw, bat.max_discharge_kw
    if kind == "gensets":
        return 0.0, next(g for g in site.generators if g.id == asset).max_kw
    return None


def _expand(site: Site, kind: str, block: AssetBlock, ids: tuple[str, ...]) -> list[dict[str, Any]]:
    if len(ids) > block.max:
        raise ConfigError("SCADA map", [f"assets.{kind}: the site has {len(ids)}, the map serves at most {block.max}"])
    points = []
    for n, asset in enumerate(ids, start=1):
        for template in block.points:
            point = dict(template)
            point["name"] = f"{block.prefix}{n}_{template['name']}"
            point["address"] = block.base + (n - 1) * block.stride + int(template["address"])
            point["description"] = f"{asset}: {template.get('description', '')}".rstrip(": ")
            if template.get("access", "read") != "read" and (limits := _limits(site, kind, asset)):
                point["min"], point["max"] = limits
                if kind == "gensets":
                    low = next(g for g in site.generators if g.id == asset).min_kw
                    point["description"] += f" (accepted: 0 or {low:g} … {limits[1]:g} kW)"
            points.append(point)
    return points


def load_scada_map(site: Site, path: Path | None = None) -> ScadaMap:
    """The shipped SCADA map (or the YAML at ``path``) expanded for ``site``.

    Raises
    ------
    ConfigError
        A map that breaks the format, or a site with more assets of a kind than its block serves.
    """
    if path is None:
        resource = shipped("models", "scada") / "microgrid-scada.yaml"
        with importlib.resources.as_file(resource) as file:
            raw, source = load_yaml(file), str(file)
    else:
        raw, source = load_yaml(path), str(path)
    if not isinstance(raw, dict):
        raise ConfigError(source, ["(top level): must be a mapping"])
    extra_keys = {"watchdog", "assets"}
    try:
        extra = _Extra.model_validate({k: v for k, v in raw.items() if k in extra_keys})
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(source, problems) from None
    if set(extra.assets) != set(ASSET_KINDS):
        raise ConfigError(source, [f"assets: needs exactly the blocks {', '.join(ASSET_KINDS)}"])
    ids = _asset_ids(site)
    points = list(raw.get("points", []))
    for kind in ASSET_KINDS:
        points += _expand(site, kind, extra.assets[kind], ids[kind])
    base = {k: v for k, v in raw.items() if k not in extra_keys}
    regmap = map_from_dict({**base, "points": points}, source)
    return ScadaMap(regmap, extra.watchdog, ids, dict(extra.assets))


def site_map(site: Site) -> ScadaMap:
    """The shipped SCADA map for ``site`` (:func:`load_scada_map`)."""
    return load_scada_map(site)


COLUMNS = ("address", "name", "type", "words", "scale", "unit", "access", "meaning")


def _meaning(point: Point) -> str:
    text = point.description
    if point.sign:
        text += f" ({point.sign})"
    labels = point.values or point.bits
    if labels:
        text += "; " + ", ".join(f"{k} = {v}" for k, v in labels.items())
    if point.writable and point.min is not None and point.max is not None:
        text += f"; writable range {point.min:g} … {point.max:g}"
    return text


def point_rows(scada: ScadaMap) -> list[dict[str, str]]:
    """One row per point, in address order (the point list)."""
    rows = []
    for point in sorted(scada.regmap.points, key=lambda p: p.address):
        rows.append(
            {
                "address": str(point.address),
                "name": point.name,
                "type": str(point.type),
                "words": str(point.words),
                "scale": "" if point.scale is None else f"{point.scale:g}",
                "unit": point.unit or "",
                "access": point.access,
                "meaning": _meaning(point),
            }
        )
    return rows


def render(scada: ScadaMap, fmt: str, site_name: str) -> str:
    """The point list as ``markdown`` or ``csv`` text."""
    rows = point_rows(scada)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    if fmt != "markdown":
        raise ValueError(f"format: markdown or csv, got {fmt!r}")
    return _markdown(scada, rows, site_name)


def _markdown(scada: ScadaMap, rows: list[dict[str, str]], site_name: str) -> str:
    regmap = scada.regmap
    lines = [
        f"# SCADA point list: {site_name}",
        "",
        f"Generated by `microgrid scada-map` from `models/scada/{regmap.name}.yaml` ({regmap.document}).",
        "Modbus TCP, unit id 1, holding registers (function 3; function 4 reads the same registers), writes",
        "with functions 6 and 16, protocol (0-based) addresses (mbpoll: `-0`), big-endian words",
        "(mbpoll: `-B`). value = raw × scale; an all-ones pattern (0xFFFF, 0xFFFFFFFF) or 0x80000000 for",
        "signed values means unknown. Asset n of a kind sits at `base + (n - 1) × stride`:",
        "",
        "| block | base | stride | assets here |",
        "| --- | --- | --- | --- |",
    ]
    for kind in ASSET_KINDS:
        block = scada.blocks[kind]
        lines.append(f"| {kind} | {block.base} | {block.stride} | {', '.join(scada.assets[kind]) or 'none'} |")
    lines += [
        "",
        "Commands (access `read_write`) are refused with exception 01 (ILLEGAL FUNCTION) unless the",
        "server runs with `--scada-writes` (and, over TLS, the client's role is `operator`); a value",
        "outside the range or the asset's limits gets exception 03 (ILLEGAL DATA VALUE) and nothing is",
        "applied; a write to a read-only point or part of a point gets 02; too many writes, 06 (busy).",
        "Accepted commands are queued as operator actions (the client named in `by`) and applied at",
        "the next cycle. Watchdog: while SCADA holds the island in manual, `scada_heartbeat` must",
        f"change at least every {scada.watchdog.timeout_s:g} s, else the controller returns to auto and",
        "alarm bit 5 is latched until `alarm_acknowledge`. A controller restarted in the manual mode",
        "SCADA last asked for (resumed from its store) watches it again: SCADA has the timeout from the",
        "server's start to write its heartbeat.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    lines += ["| " + " | ".join(row[c].replace("|", "/") for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"
