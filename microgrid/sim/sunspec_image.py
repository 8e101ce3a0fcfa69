"""SunSpec register images for the simulator and tests: ``SunS``, a model chain, an end marker. Pure.

An image is a ``dict`` of protocol address → register (0…65535). :func:`build_image` lays out::

    base      0x5375 0x6E53                  "SunS"
    base + 2  ID L  body (L registers)       one model after another
    …         0xFFFF 0                       end marker (optional, to build a broken chain)

Model bodies are encoded from the shipped ``sunspec-<id>`` register maps (``models/devices``):

- **Values are given by SunSpec point name** (the map's ``source_name``: ``"SoC"``, ``"W"``,
  ``"ChaState"``), **in SunSpec units**: the value the device states after its scale factor,
  ``raw × 10^SF`` (W, not our kW). That is what ``microgrid scan`` prints and what pysunspec2's
  ``cvalue`` gives, so tests compare the three directly.
- **Scale factors**: a ``*_SF`` point given in the values (``"SoC_SF": -1``) is used as is.
  Otherwise each scale factor is chosen for the values that share it: the one closest to 0
  that represents every value exactly and fits the registers (65.5 % → SF −1, raw 655;
  100 000 W in an int16 → SF 1, raw 10 000), else the finest one that fits. A scale factor
  none of whose points has a value is left not implemented (0x8000).
- **Points not given** hold SunSpec's not-implemented sentinel (uint16 0xFFFF, int16 0x8000,
  acc32 0, strings all zero…); registers no map point covers (reserved, pads, points the map
  leaves out) hold 0.
- A :class:`ModelSpec` ``length`` shorter than the map's builds an older or partial model
  revision: the points past it (and those scaled by a scale factor past it) are left out. A
  model without a shipped map needs a ``length`` and gets a body of zeros.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from microgrid.telemetry.maps import Point, RegisterMap, load_map, shipped_maps
from microgrid.telemetry.registers import (
    SF_RANGE,
    Codec,
    DataType,
    EncodeError,
    Quality,
    Value,
    decode,
    encode,
    encode_sentinel,
)
from microgrid.telemetry.sunspec import (
    BASE_ADDRESSES,
    END_MODEL_ID,
    SUNS_MARKER,
    ModelHeader,
    SunSpecError,
    discover,
)

__all__ = [
    "Image",
    "ModelSpec",
    "build_image",
    "choose_scale_factor",
    "model_map",
    "point_registers",
    "sunspec_codec",
    "walk_image",
]

Image = dict[int, int]
"""Protocol address → register value (0…65535)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of an image: its id, point values by SunSpec name, and optionally its length L.

    ``length`` ``None`` takes the shipped map's length; a shorter one builds a partial model.
    """

    model_id: int
    values: Mapping[str, Value] = field(default_factory=dict)
    length: int | None = None


@cache
def model_map(model_id: int) -> RegisterMap | None:
    """The shipped map of a SunSpec model (``sunspec-<id>``), or ``None`` if microgrid ships none."""
    name = f"sunspec-{model_id}"
    return load_map(name) if name in shipped_maps() else None


def sunspec_codec(regmap: RegisterMap, point: Point) -> Codec:
    """The point's codec in SunSpec units: ``raw × 10^SF``, without our unit scale, sign or range."""
    return replace(regmap.codecs[point.name], scale=1.0, negate=False, minimum=None, maximum=None, choices=None)


def _sunspec_name(point: Point) -> str:
    return point.source_name or point.name


# -- scale factors ---------------------------------------------------------------------------


def _error(value: Value, codec: Codec, sf: int) -> float | None:
    """Relative error of ``value`` encoded with ``sf`` and decoded back; ``None`` if its registers cannot hold it."""
    try:
        back = decode(encode(value, codec, sf), codec, sf).value
    except EncodeError:
        return None
    if not isinstance(back, int | float) or not isinstance(value, int | float):
        return None
    return abs(back - value) / max(abs(value), 1e-300) if value else abs(back)


def choose_scale_factor(items: Iterable[tuple[Value, Codec]]) -> int:
    """The scale factor for values sharing it (SunSpec units, each with its point's codec).

    The one closest to 0 that represents every value exactly; else the finest that holds every
    value within 0.1 % (a value like 1/3 is rounded to the register's resolution).

    Raises
    ------
    EncodeError
        No scale factor in −10…10 holds every value in its registers within 0.1 %.
    """
    pairs = list(items)
    errors = {sf: [_error(v, c, sf) for v, c in pairs] for sf in SF_RANGE}
    close = [sf for sf, errs in errors.items() if all(e is not None and e <= 1e-3 for e in errs)]
    if not close:
        raise EncodeError(f"no scale factor in -10…10 holds {[v for v, _ in pairs]} in its registers")
    exact = [sf for sf in close if all(e is not None and e <= 1e-12 for e in errors[sf])]
    return min(exact, key=abs) if exact else min(close)


# -- building --------------------------------------------------------------------------------


def _check_values(model_id: int, located: RegisterMap | None, full: RegisterMap, values: Mapping[str, Value]) -> None:
    present = {_sunspec_name(p) for p in located.points} if located is not None else set()
    known = {_sunspec_name(p) for p in full.points}
    for name in values:
        if name not in known:
            raise ValueError(f"model {model_id}: no point named {name!r} (known: {', '.join(sorted(known))})")
        if name not in present:
            raise ValueError(f"model {model_id}: point {name!r} (or its scale factor) lies past the model's length")


def _scale_factors(regmap: RegisterMap, values: Mapping[str, Value]) -> dict[str, int]:
    """Our sf point name → the scale factor to encode with (given or chosen); absent: not implemented."""
    chosen: dict[str, int] = {}
    for sf_point in (p for p in regmap.points if p.type is DataType.SUNSSF):
        given = values.get(_sunspec_name(sf_point))
        users = [p for p in regmap.points if p.scale_factor == sf_point.name and _sunspec_name(p) in values]
        if given is not None:
            if not isinstance(given, int) or isinstance(given, bool) or given not in SF_RANGE:
                raise ValueError(f"scale factor {_sunspec_name(sf_point)} must be an int in -10…10, got {given!r}")
            chosen[sf_point.name] = given
        elif users:
            items = [(values[_sunspec_name(p)], sunspec_codec(regmap, p)) for p in users]
            try:
                chosen[sf_point.name] = choose_scale_factor(items)
            except EncodeError as exc:
                raise EncodeError(f"{', '.join(_sunspec_name(p) for p in users)}: {exc}") from None
    return chosen


def _encode_point(regmap: RegisterMap, point: Point, values: Mapping[str, Value], sfs: Mapping[str, int]) -> list[int]:
    name = _sunspec_name(point)
    codec = sunspec_codec(regmap, point)
    if point.type is DataType.SUNSSF:
        return encode(sfs[point.name], codec) if point.name in sfs else encode_sentinel(codec)
    if name not in values:
        return encode_sentinel(codec)
    sf = sfs.get(point.scale_factor) if point.scale_factor is not None else None
    try:
        return encode(values[name], codec, sf)
    except (EncodeError, ValueError) as exc:
        raise EncodeError(f"point {name}: {exc}") from None


def _model_registers(spec: ModelSpec, address: int) -> list[int]:
    """The model's registers from its ID register: ID, L, body."""
    full = model_map(spec.model_id)
    if full is None or full.sunspec is None:
        if spec.length is None:
            raise ValueError(f"model {spec.model_id}: no shipped map, so give its length")
        if spec.values:
            raise ValueError(f"model {spec.model_id}: no shipped map, so no point values can be given")
        return [spec.model_id, spec.length, *([0] * spec.length)]
    length = full.sunspec.length if spec.length is None else spec.length
    if address + 2 + length > 0x10000:
        raise ValueError(f"model {spec.model_id} at {address} of length {length} runs past register 65535")
    try:
        located: RegisterMap | None = full.located(address, length)
    except ValueError:  # no point (with its scale factor) lies within the length
        located = None
    _check_values(spec.model_id, located, full, spec.values)
    registers = [spec.model_id, length, *([0] * length)]
    if located is not None:
        sfs = _scale_factors(located, spec.values)
        for point in located.points:
            offset = point.address - address
            registers[offset : offset + point.words] = _encode_point(located, point, spec.values, sfs)
    return registers


def build_image(
    models: Sequence[ModelSpec | tuple[int, Mapping[str, Value]]], base: int = 40000, *, end_marker: bool = True
) -> Image:
    """A SunSpec register image: ``SunS`` at ``base``, the models in order, then the end marker.

    Parameters
    ----------
    models
        ``(model_id, {SunSpec point name: value})`` pairs or :class:`ModelSpec` entries, in chain order.
    base
        Address of ``SunS``: SunSpec allows 40000, 0 and 50000 (others are built too, for tests).
    end_marker
        False leaves out ``0xFFFF 0`` (a chain that runs into unmapped registers).

    Raises
    ------
    ValueError
        An unknown point name, a point past a short model's length, a model without a shipped map
        given values or no length, or an image that runs past register 65535.
    EncodeError
        A value its registers cannot hold (a :class:`ValueError` too).
    """
    if not 0 <= base <= 0xFFFF - 3:
        raise ValueError(f"base address must be in 0…65532, got {base}")
    registers: list[int] = list(SUNS_MARKER)
    for entry in models:
        spec = entry if isinstance(entry, ModelSpec) else ModelSpec(entry[0], entry[1])
        if not 1 <= spec.model_id < END_MODEL_ID or (spec.length is not None and not 0 <= spec.length <= 0xFFFF):
            raise ValueError(f"invalid model id {spec.model_id} or length {spec.length}")
        registers += _model_registers(spec, base + len(registers))
    if end_marker:
        registers += [END_MODEL_ID, 0]
    if base < 0 or base + len(registers) > 0x10000:
        raise ValueError(f"an image of {len(registers)} registers does not fit at base {base}")
    return {base + i: r for i, r in enumerate(registers)}


# -- reading an image back -------------------------------------------------------------------


def walk_image(image: Mapping[int, int], bases: Sequence[int] = BASE_ADDRESSES) -> list[ModelHeader]:
    """The model chain of an image (models before a break if the chain breaks, e.g. no end marker)."""

    def read(address: int, count: int) -> list[int]:
        return [image[a] for a in range(address, address + count)]

    try:
        return discover(read, bases, errors=(KeyError,))
    except SunSpecError as exc:
        if not exc.found:
            raise
        return exc.found


def _locate(image: Mapping[int, int], model_id: int, instance: int) -> tuple[RegisterMap, ModelHeader]:
    headers = [h for h in walk_image(image) if h.model_id == model_id]
    if len(headers) <= instance:
        raise ValueError(f"the image holds {len(headers)} model(s) {model_id}, not instance {instance}")
    full = model_map(model_id)
    if full is None:
        raise ValueError(f"model {model_id}: no shipped map")
    header = headers[instance]
    return full.located(header.address, header.length), header


def point_registers(
    image: Mapping[int, int], model_id: int, name: str, value: Value, *, instance: int = 0
) -> dict[int, int]:
    """The registers to change so that point ``name`` (SunSpec name) of a model in ``image`` reads ``value``.

    The value is encoded with the scale factor the image holds; if that one is not implemented,
    one is chosen for the value and its register is part of the change.
    """
    regmap, header = _locate(image, model_id, instance)
    point = next((p for p in regmap.points if _sunspec_name(p) == name), None)
    if point is None:
        raise ValueError(f"model {model_id} at {header.address}: no point named {name!r} within its length")
    codec = sunspec_codec(regmap, point)
    changes: dict[int, int] = {}
    sf: int | None = None
    if point.scale_factor is not None:
        sf_point = regmap.by_name[point.scale_factor]
        current = decode([image[sf_point.address]], regmap.codecs[sf_point.name])
        if current.quality is Quality.OK and isinstance(current.value, int):
            sf = current.value
        else:
            sf = choose_scale_factor([(value, codec)])
            changes[sf_point.address] = encode(sf, regmap.codecs[sf_point.name])[0]
    for i, register in enumerate(encode(value, codec, sf)):
        changes[point.address + i] = register
    return changes
