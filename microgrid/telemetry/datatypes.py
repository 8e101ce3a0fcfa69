"""Register data types, word orders and measurement qualities: the vocabulary of the codec.

Integer types are two's complement when signed; floats are IEEE 754; strings are NUL-padded
UTF-8, two bytes per register. SunSpec's type names (``uint16``, ``int32``…) are accepted as
aliases, and each type knows SunSpec's "not implemented" sentinel.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ALIASES",
    "LAYOUTS",
    "SF_RANGE",
    "DataType",
    "Quality",
    "TypeLayout",
    "Value",
    "WordOrder",
    "is_numeric",
    "is_signed",
    "parse_type",
    "sunspec_sentinel",
    "type_words",
]

Value = int | float | str
"""A decoded engineering value: int (unscaled integer types), float, or str (text)."""

SF_RANGE = range(-10, 11)
"""The values a SunSpec scale factor (``sunssf``) may take."""


class DataType(StrEnum):
    """Register data types. Integer widths are in bits; ``string`` spans ``count`` registers."""

    U16 = "u16"
    S16 = "s16"
    U32 = "u32"
    S32 = "s32"
    U64 = "u64"
    S64 = "s64"
    F32 = "f32"
    F64 = "f64"
    STRING = "string"
    SUNSSF = "sunssf"
    """SunSpec scale factor: int16 exponent in −10…10."""
    ACC16 = "acc16"
    ACC32 = "acc32"
    ACC64 = "acc64"
    """SunSpec accumulators (unsigned, wrapping; 0 = not implemented)."""
    ENUM16 = "enum16"
    ENUM32 = "enum32"
    BITFIELD16 = "bitfield16"
    BITFIELD32 = "bitfield32"
    BITFIELD64 = "bitfield64"


ALIASES: dict[str, DataType] = {
    "uint16": DataType.U16,
    "int16": DataType.S16,
    "uint32": DataType.U32,
    "int32": DataType.S32,
    "uint64": DataType.U64,
    "int64": DataType.S64,
    "float32": DataType.F32,
    "float64": DataType.F64,
}
"""SunSpec / IEC spellings accepted for the short names."""


@dataclass(frozen=True)
class TypeLayout:
    """How a data type sits in registers."""

    words: int  # registers; 0 = given by the point's count (string)
    kind: str  # "int", "float" or "str"
    signed: bool
    sunspec_sentinel: int  # SunSpec "not implemented" pattern (big word order)


_S16, _S32, _S64 = 0x8000, 0x8000_0000, 0x8000_0000_0000_0000
_U16, _U32, _U64 = 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF
LAYOUTS: dict[DataType, TypeLayout] = {
    DataType.U16: TypeLayout(1, "int", False, _U16),
    DataType.S16: TypeLayout(1, "int", True, _S16),
    DataType.U32: TypeLayout(2, "int", False, _U32),
    DataType.S32: TypeLayout(2, "int", True, _S32),
    DataType.U64: TypeLayout(4, "int", False, _U64),
    DataType.S64: TypeLayout(4, "int", True, _S64),
    DataType.F32: TypeLayout(2, "float", True, 0x7FC0_0000),
    DataType.F64: TypeLayout(4, "float", True, 0x7FF8_0000_0000_0000),
    DataType.STRING: TypeLayout(0, "str", False, 0),
    DataType.SUNSSF: TypeLayout(1, "int", True, _S16),
    DataType.ACC16: TypeLayout(1, "int", False, 0),
    DataType.ACC32: TypeLayout(2, "int", False, 0),
    DataType.ACC64: TypeLayout(4, "int", False, 0),
    DataType.ENUM16: TypeLayout(1, "int", False, _U16),
    DataType.ENUM32: TypeLayout(2, "int", False, _U32),
    DataType.BITFIELD16: TypeLayout(1, "int", False, _U16),
    DataType.BITFIELD32: TypeLayout(2, "int", False, _U32),
    DataType.BITFIELD64: TypeLayout(4, "int", False, _U64),
}


def parse_type(text: str) -> DataType:
    """The :class:`DataType` named ``text`` (short name or SunSpec alias such as ``uint16``)."""
    if text in ALIASES:
        return ALIASES[text]
    try:
        return DataType(text)
    except ValueError:
        known = ", ".join([*DataType, *ALIASES])
        raise ValueError(f"unknown data type {text!r} (known: {known})") from None


def sunspec_sentinel(data_type: DataType) -> int:
    """SunSpec's not-implemented pattern for ``data_type`` (big word order; ``string``: all zero)."""
    return LAYOUTS[data_type].sunspec_sentinel


def type_words(data_type: DataType) -> int:
    """Registers a value of ``data_type`` spans (0 for ``string``: its point's count)."""
    return LAYOUTS[data_type].words


def is_numeric(data_type: DataType) -> bool:
    """True for every type but ``string``."""
    return LAYOUTS[data_type].kind != "str"


def is_signed(data_type: DataType) -> bool:
    """True for types that can hold negative values (signed integers and floats)."""
    return LAYOUTS[data_type].signed


class WordOrder(StrEnum):
    """Order of the registers of a multi-register value. Bytes in a register are always big-endian."""

    BIG = "big"
    """Most significant register first (Modbus/SunSpec default, "ABCD")."""
    LITTLE = "little"
    """Least significant register first ("word-swapped", "CDAB")."""


class Quality(StrEnum):
    """Quality of a measurement. :func:`decode` yields the first three; the transport adds the rest."""

    OK = "ok"
    OUT_OF_RANGE = "out-of-range"
    NOT_IMPLEMENTED = "not-implemented"
    STALE = "stale"
    COMMS_LOST = "comms-lost"
