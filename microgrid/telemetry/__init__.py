"""THE DEVICE EDGE: register maps, the register codec, read planning and SunSpec discovery.

These modules are pure (no sockets, no pymodbus): :mod:`~microgrid.telemetry.datatypes` names the
register types, :mod:`~microgrid.telemetry.registers` decodes and encodes point values,
:mod:`~microgrid.telemetry.points` and :mod:`~microgrid.telemetry.maps` read the declarative
register maps of ``models/devices``, :mod:`~microgrid.telemetry.batching` plans reads and
:mod:`~microgrid.telemetry.sunspec` walks a SunSpec model chain through a read callable.
"""

from microgrid.telemetry.batching import ReadBlock, read_blocks
from microgrid.telemetry.maps import Point, RegisterMap, load_map, map_from_dict, shipped_maps
from microgrid.telemetry.registers import (
    Codec,
    DataType,
    Decoded,
    EncodeError,
    Quality,
    WordOrder,
    decode,
    encode,
    encode_sentinel,
)
from microgrid.telemetry.sunspec import ModelHeader, SunSpecError, discover

__all__ = [
    "Codec",
    "DataType",
    "Decoded",
    "EncodeError",
    "ModelHeader",
    "Point",
    "Quality",
    "ReadBlock",
    "RegisterMap",
    "SunSpecError",
    "WordOrder",
    "decode",
    "discover",
    "encode",
    "encode_sentinel",
    "load_map",
    "map_from_dict",
    "read_blocks",
    "shipped_maps",
]
