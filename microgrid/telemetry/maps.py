"""Register maps: declarative YAML, one line per point, read into frozen models.

The format is documented in ``models/devices/README.md``. A map names the public document it
follows, its Modbus table and addressing, and its points: our name (unit in the name), address,
type, word order, scale or scale-factor point, unit, sign convention, access, sentinel and range.

:func:`load_map` finds a shipped map by name (package data ``microgrid.models/devices``) or reads
a file; :func:`map_from_dict` validates already-parsed YAML. Problems are reported as a
:class:`~microgrid.errors.ConfigError` naming the file and the key path (``points[3].scale``):
every problem within single points at once, then the first problem across points.
:func:`read_blocks` plans the fewest read requests that cover a set of points.
"""

from __future__ import annotations

import importlib.resources
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from microgrid.errors import ConfigError
from microgrid.resources import shipped
from microgrid.site import describe_error
from microgrid.telemetry.batching import ReadBlock, read_blocks
from microgrid.telemetry.points import UNIT_SUFFIXES, Access, Name, Point, Sign, problem
from microgrid.telemetry.registers import (
    Codec,
    DataType,
    Decoded,
    Quality,
    WordOrder,
    decode,
)
from microgrid.yamlio import load_yaml

__all__ = [
    "UNIT_SUFFIXES",
    "Access",
    "Keepalive",
    "Point",
    "ReadBlock",
    "ReadLimits",
    "RegisterMap",
    "Sign",
    "SunSpecModel",
    "load_map",
    "map_from_dict",
    "read_blocks",
    "shipped_maps",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SunSpecModel(_Frozen):
    """The SunSpec model a map describes: its id and length (registers after the ID and L header)."""

    id: Annotated[int, Field(strict=True, ge=1, le=65534)]
    length: Annotated[int, Field(strict=True, ge=0, le=65533)]


class ReadLimits(_Frozen):
    """How the device may be read: largest request and the unused registers a request may span."""

    max_registers: Annotated[int, Field(strict=True, ge=1, le=125)] = 125
    max_gap: Annotated[int, Field(strict=True, ge=0, le=124)] = 0


class Keepalive(_Frozen):
    """The device's keep-alive: a writable point the controller must refresh faster than the timeout."""

    point: Name
    revert_timeout_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """Fixed timeout after which the device reverts its setpoints [s]."""
    revert_timeout_point: Name | None = None
    """Or the point holding that timeout [s]."""


class RegisterMap(_Frozen):
    """A device's register map, as read from its YAML file."""

    name: Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    title: str
    device_class: Name
    document: Annotated[str, StringConstraints(strict=True, min_length=3)]
    """The public document (and version) the map follows."""
    table: Literal["holding", "input"] = "holding"
    addressing: Literal["absolute", "sunspec_model"] = "absolute"
    sunspec: SunSpecModel | None = None
    """The SunSpec model described (required for ``sunspec_model`` addressing; kept once located)."""
    unit_id: Annotated[int, Field(strict=True, ge=0, le=255)] | None = None
    """The Modbus unit id the device usually answers on."""
    word_order: WordOrder = WordOrder.BIG
    sentinels: Literal["sunspec", "none"] = "none"
    """Default not-implemented sentinel of points that give none."""
    read: ReadLimits = ReadLimits()
    keepalive: Keepalive | None = None
    points: tuple[Point, ...]

    @model_validator(mode="after")
    def _cross_checks(self) -> RegisterMap:
        if not self.points:
            raise problem("points", "a map needs at least one point")
        if self.addressing == "sunspec_model" and self.sunspec is None:
            raise problem("sunspec", "addressing sunspec_model needs the sunspec section (model id and length)")
        seen: dict[str, int] = {}
        for i, point in enumerate(self.points):
            if point.name in seen:
                raise problem(f"points[{i}].name", f"{point.name!r} already used by points[{seen[point.name]}]")
            seen[point.name] = i
        self._check_overlaps()
        for i, point in enumerate(self.points):
            self._check_point(i, point, seen)
        self._check_keepalive(seen)
        return self

    def _check_overlaps(self) -> None:
        order = sorted(range(len(self.points)), key=lambda i: self.points[i].address)
        for before, after in itertools.pairwise(order):
            a, b = self.points[before], self.points[after]
            if b.address < a.address + a.words:
                raise problem(
                    f"points[{after}].address",
                    f"{b.name!r} at {b.address} overlaps {a.name!r} (points[{before}], {a.address}…"
                    f"{a.address + a.words - 1})",
                )

    def _check_point(self, i: int, point: Point, index: Mapping[str, int]) -> None:
        where = f"points[{i}]"
        if point.scale_factor is not None:
            target = index.get(point.scale_factor)
            if target is None:
                raise problem(f"{where}.scale_factor", f"names no point of this map, got {point.scale_factor!r}")
            if self.points[target].type is not DataType.SUNSSF:
                raise problem(f"{where}.scale_factor", f"{point.scale_factor!r} is not a sunssf point")
        sentinel = point.raw_sentinel(self.sentinels)
        if sentinel is not None and not 0 <= sentinel < 1 << (16 * point.words):
            raise problem(f"{where}.sentinel", f"does not fit in {point.words} register(s), got {point.sentinel}")
        if self.sunspec is not None and self.addressing == "sunspec_model":
            end = self.sunspec.length + 2
            if point.address < 2 or point.address + point.words > end:
                raise problem(
                    f"{where}.address", f"offset must lie in 2…{end - point.words} of the model, got {point.address}"
                )

    def _check_keepalive(self, index: Mapping[str, int]) -> None:
        if self.keepalive is None:
            return
        for key in ("point", "revert_timeout_point"):
            name = getattr(self.keepalive, key)
            if name is not None and name not in index:
                raise problem(f"keepalive.{key}", f"names no point of this map, got {name!r}")
        if not self.points[index[self.keepalive.point]].writable:
            raise problem("keepalive.point", f"{self.keepalive.point!r} is not writable")

    # -- lookups and decoding --------------------------------------------------------------

    @cached_property
    def by_name(self) -> dict[str, Point]:
        """Point name → point."""
        return {p.name: p for p in self.points}

    @cached_property
    def codecs(self) -> dict[str, Codec]:
        """Point name → its :class:`~microgrid.telemetry.registers.Codec`."""
        return {p.name: self._codec(p) for p in self.points}

    def _codec(self, point: Point) -> Codec:
        return Codec(
            type=point.type,
            count=point.count,
            word_order=point.word_order or self.word_order,
            scale=1.0 if point.scale is None else point.scale,
            scale_factor=point.scale_factor is not None,
            sentinel=point.raw_sentinel(self.sentinels),
            minimum=point.min,
            maximum=point.max,
            negate=point.invert,
            choices=frozenset(point.values) if point.values is not None and point.writable else None,
        )

    def located(self, base_address: int, length: int | None = None) -> RegisterMap:
        """A SunSpec model map moved to the model's discovered address (that of its ID register).

        Points past a discovered ``length`` shorter than the map's (an older model revision) are
        dropped, and so are points scaled by a dropped scale factor.
        """
        if self.sunspec is None or self.addressing != "sunspec_model":
            raise ValueError(f"map {self.name!r} has absolute addresses already")
        end = 2 + (self.sunspec.length if length is None else min(length, self.sunspec.length))
        kept = {p.name for p in self.points if p.address + p.words <= end}
        kept = {n for n in kept if (sf := self.by_name[n].scale_factor) is None or sf in kept}
        points = tuple(
            p.model_copy(update={"address": p.address + base_address}) for p in self.points if p.name in kept
        )
        if not points or max(p.address + p.words for p in points) > 65536:
            raise ValueError(f"map {self.name!r} does not fit at base address {base_address}")
        keepalive = self.keepalive
        if keepalive is not None and not {keepalive.point, keepalive.revert_timeout_point} - {None} <= kept:
            keepalive = None
        # validate anew rather than model_copy: a copy would carry the cached by_name/codecs along
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return RegisterMap.model_validate(
            {**fields, "addressing": "absolute", "points": points, "keepalive": keepalive}
        )

    def read_blocks(self, names: Iterable[str] | None = None) -> list[ReadBlock]:
        """The fewest read requests covering the readable points (all, or those named)."""
        chosen = self.points if names is None else tuple(self.by_name[n] for n in names)
        return read_blocks(chosen, self.read.max_registers, self.read.max_gap)

    def decode(self, registers: Mapping[int, int]) -> dict[str, Decoded]:
        """Decode every readable point whose registers are all in ``registers`` (address → value).

        A point whose scale factor is not implemented or out of −10…10 gets that quality and no value.
        """
        result: dict[str, Decoded] = {}
        ordered = sorted(self.points, key=lambda p: p.type is not DataType.SUNSSF)
        for point in ordered:
            words = [registers.get(a) for a in range(point.address, point.address + point.words)]
            if not point.readable or any(w is None for w in words):
                continue
            regs = [w for w in words if w is not None]
            sf_name = point.scale_factor
            if sf_name is None:
                result[point.name] = decode(regs, self.codecs[point.name])
            elif sf_name in result:
                sf = result[sf_name]
                if sf.quality is Quality.OK and isinstance(sf.value, int):
                    result[point.name] = decode(regs, self.codecs[point.name], sf.value)
                else:
                    raw = decode(regs, self.codecs[point.name], 0).raw
                    result[point.name] = Decoded(None, sf.quality, raw)
        return result


# -- loading ---------------------------------------------------------------------------------


def _describe(error: Any, raw: Mapping[str, Any]) -> str:
    text = describe_error(error)
    loc = tuple(error["loc"])
    points = raw.get("points")
    if len(loc) < 2 or loc[0] != "points" or not isinstance(loc[1], int) or not isinstance(points, list):
        return text
    if loc[1] < len(points) and isinstance(points[loc[1]], dict) and "name" in points[loc[1]]:
        text += f" (point {points[loc[1]]['name']!r})"
    return text


def map_from_dict(raw: Any, source: str = "<register map>") -> RegisterMap:
    """Build a :class:`RegisterMap` from parsed YAML; raise :class:`ConfigError` listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"(top level): must be a mapping, got {type(raw).__name__}"])
    try:
        return RegisterMap.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(e, raw) for e in exc.errors()]) from None


def _shipped_dir() -> Traversable:
    """``models/devices``: package data of an installed wheel, else the source tree (editable install)."""
    return shipped("models", "devices")


def shipped_maps() -> list[str]:
    """Names of the register maps shipped with microgrid (``models/devices/*.yaml``)."""
    return sorted(f.name.removesuffix(".yaml") for f in _shipped_dir().iterdir() if f.name.endswith(".yaml"))


_MAP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def load_site_map(name_or_path: str, resolve: Callable[[str], Path]) -> RegisterMap:
    """A device binding's map (``devices[i].map``): a shipped one by name, or a file relative to the site
    file's folder (``resolve``: :meth:`microgrid.site.Site.resolve`), not to the working directory."""
    return load_map(name_or_path if _MAP_NAME.match(name_or_path) else resolve(name_or_path))


def load_map(name_or_path: str | Path) -> RegisterMap:
    """Load a register map: a shipped one by name (``"generic-battery-inverter"``) or a YAML file.

    Raises
    ------
    ConfigError
        Unknown name, unreadable file, or a map that breaks the format (file and key path named).
    """
    if isinstance(name_or_path, Path) or not _MAP_NAME.match(name_or_path):
        path = Path(name_or_path)
        return map_from_dict(load_yaml(path), str(path))
    resource = _shipped_dir() / f"{name_or_path}.yaml"
    if not resource.is_file():
        known = ", ".join(shipped_maps()) or "none"
        raise ConfigError(name_or_path, [f"no shipped register map of that name (shipped: {known})"])
    with importlib.resources.as_file(resource) as path:
        return map_from_dict(load_yaml(path), f"{name_or_path} ({path})")
