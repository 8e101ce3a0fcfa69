"""Decode and encode Modbus register values: data type, word order, scale, sentinel, sign, range.

Pure: no I/O and no pymodbus; :mod:`struct` does the bit work. A register is an unsigned
16-bit integer (0…65535) as it travels in a Modbus PDU; bytes inside a register are always
big-endian (Modbus), the order of registers in multi-register values is the codec's
:class:`WordOrder`.

The engineering value of a numeric point is::

    value = sign × raw × scale × 10**scale_factor

where ``raw`` is the integer (or IEEE float) the registers hold, ``scale`` a constant multiplier
from the map (``0.1``, ``0.001``…; powers of ten are applied exactly, by division), and
``scale_factor`` the value of a SunSpec ``sunssf`` point (−10…10) when the point names one.
``sign`` is −1 when the point is inverted (the device's sign convention is the opposite of the
one the map states for the value), else +1. The unit of ``value`` is the point's ``unit``.

A register pattern equal to the point's not-implemented sentinel decodes to ``value=None`` with
quality :attr:`Quality.NOT_IMPLEMENTED`; a float NaN always does. A value outside the point's
``[minimum, maximum]`` keeps its value and gets :attr:`Quality.OUT_OF_RANGE`. :func:`encode`
refuses what it cannot represent exactly in the registers (out of range, overflow, NaN, text
too long, the sentinel pattern itself) with :class:`EncodeError`, and rounds a number to the
nearest step of the register's resolution.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from microgrid.errors import MicrogridError
from microgrid.telemetry.datatypes import (
    ALIASES,
    LAYOUTS,
    SF_RANGE,
    DataType,
    Quality,
    Value,
    WordOrder,
    is_numeric,
    is_signed,
    parse_type,
    sunspec_sentinel,
    type_words,
)

__all__ = [
    "ALIASES",
    "SF_RANGE",
    "Codec",
    "DataType",
    "Decoded",
    "EncodeError",
    "Quality",
    "Value",
    "WordOrder",
    "decode",
    "encode",
    "encode_sentinel",
    "is_numeric",
    "is_signed",
    "parse_type",
    "sunspec_sentinel",
    "type_words",
]


class EncodeError(MicrogridError, ValueError):
    """A value that cannot be written to the point's registers (message says why)."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded point: its engineering value (``None`` if not implemented), quality and raw pattern."""

    value: Value | None
    quality: Quality
    raw: int
    """The registers as one unsigned integer, most significant register first."""


def _pow10_exponent(scale: float) -> int | None:
    """``k`` if ``scale`` is ``10**k`` (−12 ≤ k ≤ 12), else ``None``."""
    for k in range(-12, 13):
        if math.isclose(scale, 10.0**k, rel_tol=1e-12, abs_tol=0.0):
            return k
    return None


@dataclass(frozen=True, slots=True)
class Codec:
    """How one point's registers map to an engineering value.

    Parameters
    ----------
    type
        The register data type.
    count
        Registers of a ``string`` (2 characters each); must match the width for other types.
    word_order
        Order of registers in multi-register values.
    scale
        Constant multiplier applied to the raw number (e.g. ``0.1`` for a register in 0.1 units).
    scale_factor
        True if the point's value is also multiplied by ``10**sf`` of a SunSpec ``sunssf`` point,
        which :func:`decode` / :func:`encode` then require.
    sentinel
        Not-implemented pattern, as the unsigned integer the registers hold in big word order.
    minimum, maximum
        Valid range of the engineering value (after scale and sign), in the point's unit.
    negate
        True if the raw value is negated (the device's sign convention is the opposite of ours).
    choices
        If given, the only values :func:`encode` accepts (enumerated commands).
    """

    type: DataType
    count: int | None = None
    word_order: WordOrder = WordOrder.BIG
    scale: float = 1.0
    scale_factor: bool = False
    sentinel: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    negate: bool = False
    choices: frozenset[int] | None = None

    def __post_init__(self) -> None:
        words = LAYOUTS[self.type].words
        if words == 0 and (self.count is None or not 1 <= self.count <= 125):
            raise ValueError(f"a string needs a register count in 1…125, got {self.count}")
        if words and self.count not in (None, words):
            raise ValueError(f"{self.type} spans {words} register(s), got count {self.count}")
        if not math.isfinite(self.scale) or self.scale == 0:
            raise ValueError(f"scale must be a finite non-zero number, got {self.scale}")
        if self.sentinel is not None and not 0 <= self.sentinel < 1 << (16 * self.words):
            raise ValueError(f"sentinel {self.sentinel:#x} does not fit in {self.words} register(s)")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} > maximum {self.maximum}")
        if self.negate and not LAYOUTS[self.type].signed:
            raise ValueError(f"a sign convention needs a signed type, got {self.type}")

    @property
    def words(self) -> int:
        """Registers the value spans."""
        return LAYOUTS[self.type].words or (self.count or 0)

    @property
    def integer_valued(self) -> bool:
        """True if decoded numbers are ints: an integer type with no scale and no scale factor."""
        return LAYOUTS[self.type].kind == "int" and self.scale == 1 and not self.scale_factor


# -- bits <-> registers ----------------------------------------------------------------------


def _to_pattern(registers: Sequence[int], codec: Codec) -> int:
    if len(registers) != codec.words:
        raise ValueError(f"{codec.type} needs {codec.words} register(s), got {len(registers)}")
    if any(not isinstance(r, int) or not 0 <= r <= 0xFFFF for r in registers):
        raise ValueError(f"registers must be integers in 0…65535, got {list(registers)}")
    ordered = registers if codec.word_order is WordOrder.BIG else list(reversed(registers))
    pattern = 0
    for register in ordered:
        pattern = (pattern << 16) | register
    return pattern


def _to_registers(pattern: int, codec: Codec) -> list[int]:
    words = [(pattern >> (16 * i)) & 0xFFFF for i in reversed(range(codec.words))]
    return words if codec.word_order is WordOrder.BIG else list(reversed(words))


def _float_format(data_type: DataType) -> tuple[str, str]:
    return (">f", ">I") if data_type is DataType.F32 else (">d", ">Q")


# -- scale -----------------------------------------------------------------------------------


def _check_sf(codec: Codec, scale_factor: int | None) -> int:
    if not codec.scale_factor:
        return 0
    if scale_factor is None:
        raise ValueError("this point is scaled by a scale-factor point: pass its value")
    if scale_factor not in SF_RANGE:
        raise ValueError(f"a SunSpec scale factor must be in -10…10, got {scale_factor}")
    return scale_factor


def _scale_up(raw: float, codec: Codec, sf: int) -> float:
    """raw × scale × 10**sf, exact for powers of ten (by integer division)."""
    k = _pow10_exponent(codec.scale)
    multiplier, exponent = (1.0, k + sf) if k is not None else (codec.scale, sf)
    value = raw * 10**exponent if exponent >= 0 else raw / 10 ** (-exponent)
    return value * multiplier if multiplier != 1.0 else float(value)


def _scale_down(value: float, codec: Codec, sf: int) -> float:
    """The inverse of :func:`_scale_up`."""
    k = _pow10_exponent(codec.scale)
    multiplier, exponent = (1.0, k + sf) if k is not None else (codec.scale, sf)
    value = value / multiplier if multiplier != 1.0 else value
    return float(value / 10**exponent if exponent >= 0 else value * 10 ** (-exponent))


# -- decode ----------------------------------------------------------------------------------


def _raw_number(pattern: int, codec: Codec) -> int | float:
    layout = LAYOUTS[codec.type]
    if layout.kind == "float":
        number_format, bits_format = _float_format(codec.type)
        value: float = struct.unpack(number_format, struct.pack(bits_format, pattern))[0]
        return value
    bits = 16 * layout.words
    if layout.signed and pattern >= 1 << (bits - 1):
        return pattern - (1 << bits)
    return pattern


def _in_range(value: float, codec: Codec) -> bool:
    if codec.type is DataType.SUNSSF and value not in SF_RANGE:
        return False
    if not math.isfinite(value):
        return False
    return (codec.minimum is None or value >= codec.minimum) and (codec.maximum is None or value <= codec.maximum)


def decode(registers: Sequence[int], codec: Codec, scale_factor: int | None = None) -> Decoded:
    """Decode a point's registers into its engineering value.

    Parameters
    ----------
    registers
        Exactly ``codec.words`` registers, each 0…65535, in the order the device sends them.
    codec
        The point's codec.
    scale_factor
        Value of the point's SunSpec scale-factor point (−10…10), required if ``codec.scale_factor``.

    Returns
    -------
    Decoded
        ``value`` in the point's unit (``None`` and ``NOT_IMPLEMENTED`` for the sentinel or a NaN;
        ``OUT_OF_RANGE`` outside ``[minimum, maximum]`` or for ±inf).

    Raises
    ------
    ValueError
        Wrong register count, a register outside 0…65535, or a missing/invalid scale factor.
    """
    pattern = _to_pattern(registers, codec)
    sf = _check_sf(codec, scale_factor)
    if codec.sentinel is not None and pattern == codec.sentinel:
        return Decoded(None, Quality.NOT_IMPLEMENTED, pattern)
    if codec.type is DataType.STRING:
        text = pattern.to_bytes(2 * codec.words, "big").split(b"\0", 1)[0].decode("utf-8", errors="replace")
        return Decoded(text, Quality.OK, pattern)
    raw = _raw_number(pattern, codec)
    if isinstance(raw, float) and math.isnan(raw):
        return Decoded(None, Quality.NOT_IMPLEMENTED, pattern)
    value: int | float = raw if codec.integer_valued else _scale_up(raw, codec, sf)
    if codec.negate:
        value = -value
    quality = Quality.OK if _in_range(value, codec) else Quality.OUT_OF_RANGE
    return Decoded(value, quality, pattern)


# -- encode ----------------------------------------------------------------------------------


def _encode_text(value: str, codec: Codec) -> int:
    data = value.encode("utf-8")
    if b"\0" in data:
        raise EncodeError(f"text may not contain NUL characters, got {value!r}")
    if len(data) > 2 * codec.words:
        raise EncodeError(f"text of {len(data)} bytes does not fit in {codec.words} register(s), got {value!r}")
    return int.from_bytes(data.ljust(2 * codec.words, b"\0"), "big")


def _check_value(value: object, codec: Codec) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EncodeError(f"{codec.type} needs a number, got {value!r}")
    if not math.isfinite(value):
        raise EncodeError(f"cannot write a non-finite number, got {value!r}")
    if not _in_range(value, codec):
        low = "-inf" if codec.minimum is None else f"{codec.minimum:g}"
        high = "+inf" if codec.maximum is None else f"{codec.maximum:g}"
        raise EncodeError(f"out of the point's range [{low}, {high}], got {value!r}")
    if codec.choices is not None and value not in codec.choices:
        raise EncodeError(f"not one of the point's values {sorted(codec.choices)}, got {value!r}")
    return value


def _encode_number(value: float, codec: Codec, sf: int) -> int:
    layout = LAYOUTS[codec.type]
    signed_value = -value if codec.negate else value
    if layout.kind == "float":
        number_format, bits_format = _float_format(codec.type)
        raw_float = _scale_down(signed_value, codec, sf)
        try:
            packed = struct.pack(number_format, raw_float)
        except OverflowError:
            raise EncodeError(f"{value!r} overflows {codec.type}") from None
        if math.isinf(struct.unpack(number_format, packed)[0]):
            raise EncodeError(f"{value!r} overflows {codec.type}")
        pattern: int = struct.unpack(bits_format, packed)[0]
        return pattern
    if isinstance(signed_value, int) and codec.integer_valued:
        raw = signed_value
    else:
        raw = round(_scale_down(signed_value, codec, sf))
    bits = 16 * layout.words
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if layout.signed else (0, (1 << bits) - 1)
    if not low <= raw <= high:
        raise EncodeError(f"{value!r} needs raw {raw}, outside {codec.type}'s {low}…{high} (scale {codec.scale:g})")
    return raw & ((1 << bits) - 1)


def encode(value: Value, codec: Codec, scale_factor: int | None = None) -> list[int]:
    """Encode an engineering value (in the point's unit) into the point's registers.

    Numbers are divided by scale × 10**scale_factor and rounded to the nearest integer step for
    integer types.

    Raises
    ------
    EncodeError
        Not a number (or text for ``string``), NaN/inf, outside ``[minimum, maximum]``, outside the
        register type's range after scaling, text too long, or equal to the not-implemented sentinel.
    ValueError
        A missing or invalid scale factor.
    """
    sf = _check_sf(codec, scale_factor)
    if codec.type is DataType.STRING:
        if not isinstance(value, str):
            raise EncodeError(f"a string point needs text, got {value!r}")
        pattern = _encode_text(value, codec)
    else:
        pattern = _encode_number(_check_value(value, codec), codec, sf)
    if codec.sentinel is not None and pattern == codec.sentinel:
        raise EncodeError(f"{value!r} encodes to the not-implemented sentinel {pattern:#x}")
    return _to_registers(pattern, codec)


def encode_sentinel(codec: Codec) -> list[int]:
    """The registers that mean "not implemented" for this point (a simulator serves these)."""
    if codec.sentinel is None:
        raise EncodeError("this point has no not-implemented sentinel")
    return _to_registers(codec.sentinel, codec)
