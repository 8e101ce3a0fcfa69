"""One point of a register map: our name and unit, where and how it sits in the registers.

The YAML keys are documented in ``models/devices/README.md``. A :class:`Point` validates what it
can alone (count against type, unit against name, range, writable ⇒ range); checks across points
live in :class:`~microgrid.telemetry.maps.RegisterMap`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from microgrid.telemetry.datatypes import (
    DataType,
    WordOrder,
    is_numeric,
    is_signed,
    parse_type,
    sunspec_sentinel,
    type_words,
)

__all__ = ["UNIT_SUFFIXES", "Access", "Name", "Point", "Sign", "problem"]

UNIT_SUFFIXES: dict[str, str] = {
    "W": "w",
    "kW": "kw",
    "Wh": "wh",
    "kWh": "kwh",
    "VA": "va",
    "kVA": "kva",
    "var": "var",
    "kvar": "kvar",
    "V": "v",
    "A": "a",
    "Ah": "ah",
    "Hz": "hz",
    "%": "pct",
    "%/s": "pct_per_s",
    "s": "s",
    "ms": "ms",
    "h": "h",
    "°C": "c",
    "kPa": "kpa",
    "rpm": "rpm",
    "l": "l",
    "l/h": "l_per_h",
}
"""Units a point may give, and the suffix its name must then end with (``_kw``, ``_pct``…)."""

Access = Literal["read", "write", "read_write"]
Sign = Literal[
    "positive = discharge",
    "positive = charge",
    "positive = export",
    "positive = import",
    "positive = generation",
    "positive = consumption",
]
"""Sign convention of a decoded value. Ours: batteries positive = discharge, grid positive = export,
sources positive = generation, loads positive = consumption; ``invert`` flips a device that differs."""
_Num = Annotated[float, Field(strict=False, allow_inf_nan=False)]
Name = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z][a-z0-9_]{0,63}$")]
_Register = Annotated[int, Field(strict=True, ge=0, le=65535)]


def problem(key: str, message: str) -> PydanticCustomError:
    """A cross-field error attached to ``key`` of the model that raises it."""
    return PydanticCustomError("cross_check", message, {"key": key})


def _data_type(value: Any) -> Any:
    return parse_type(value) if isinstance(value, str) else value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Point(_Frozen):
    """One point of a register map. ``min``/``max``/``unit`` are in our terms (after scale and sign)."""

    name: Name
    """Our name for the point, ending with the unit's suffix (``battery_power_kw``)."""
    address: _Register
    """Protocol (0-based) register address; in a SunSpec model map, the offset from the model ID."""
    type: Annotated[DataType, BeforeValidator(_data_type)]
    count: Annotated[int, Field(strict=True, ge=1, le=125)] | None = None
    """Registers spanned; required for ``string``, implied by the type otherwise."""
    word_order: WordOrder | None = None
    """Overrides the map's word order."""
    scale: _Num | None = None
    """Constant multiplier raw → unit (``0.1``, ``0.001``…)."""
    scale_factor: Name | None = None
    """Name of the ``sunssf`` point whose value ``sf`` multiplies by ``10**sf``."""
    unit: str | None = None
    sign: Sign | None = None
    """Sign convention of the decoded value (after ``invert``)."""
    invert: Annotated[bool, Field(strict=True)] = False
    """True when the device's own convention is the opposite of ``sign`` (its raw value is negated)."""
    access: Access = "read"
    sentinel: Annotated[int, Field(strict=True)] | Literal["sunspec", "none"] | None = None
    """Raw not-implemented pattern (negative allowed for signed types); ``sunspec``: the type's default."""
    min: _Num | None = None
    max: _Num | None = None
    values: dict[int, str] | None = None
    """Labels of enumerated values; for a writable point, the only values a write may use."""
    bits: dict[Annotated[int, Field(ge=0, le=63)], str] | None = None
    """Labels of the bits of a bitfield (bit 0 = least significant)."""
    source_name: str | None = None
    """The point's name in the public document the map follows (``WMaxLimPct``, ``SoC``)."""
    description: str = ""

    @property
    def words(self) -> int:
        """Registers spanned."""
        return type_words(self.type) or (self.count or 0)

    @property
    def readable(self) -> bool:
        """True unless the point is write-only."""
        return self.access != "write"

    @property
    def writable(self) -> bool:
        """True for ``write`` and ``read_write`` points: the only ones that can ever be written."""
        return self.access != "read"

    @model_validator(mode="after")
    def _check(self) -> Point:
        width = type_words(self.type)
        if width == 0 and self.count is None:
            raise problem("count", "a string needs its register count")
        if width and self.count not in (None, width):
            raise problem("count", f"{self.type} spans {width} register(s), got {self.count}")
        if self.address + self.words > 65536:
            raise problem("address", f"point runs past register 65535, got {self.address} + {self.words}")
        self._check_numeric()
        if self.scale == 0:
            raise problem("scale", "must be non-zero")
        if self.invert and (self.sign is None or not is_signed(self.type)):
            raise problem("invert", f"needs a sign convention and a signed type, got {self.sign} {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise problem("min", f"must be ≤ max ({self.max:g}), got {self.min:g}")
        if self.writable and is_numeric(self.type) and (self.min is None or self.max is None):
            key = "min" if self.min is None else "max"
            raise problem(key, f"a writable ({self.access}) point needs min and max: the range a write may use")
        self._check_unit()
        return self

    def _check_numeric(self) -> None:
        if self.type is DataType.SUNSSF:
            for key in ("scale", "scale_factor", "unit"):
                if getattr(self, key) is not None:
                    raise problem(key, f"a sunssf point is a plain exponent and takes no {key}")
        if not is_numeric(self.type):
            for key in ("scale", "scale_factor", "sign", "min", "max", "unit", "values", "bits"):
                if getattr(self, key) is not None:
                    raise problem(key, f"a string point takes no {key}")

    def _check_unit(self) -> None:
        if self.unit is None:
            last = self.name.rsplit("_", 1)[-1]
            if "_" in self.name and last in UNIT_SUFFIXES.values():
                raise problem("unit", f"name ends in the unit suffix '_{last}' but no unit is given")
            return
        if self.unit not in UNIT_SUFFIXES:
            raise problem("unit", f"unknown unit {self.unit!r} (known: {', '.join(UNIT_SUFFIXES)})")
        suffix = UNIT_SUFFIXES[self.unit]
        if not self.name.endswith(f"_{suffix}"):
            raise problem("name", f"a point in {self.unit} must end with '_{suffix}', got {self.name!r}")

    def raw_sentinel(self, default: Literal["sunspec", "none"]) -> int | None:
        """The not-implemented pattern (unsigned, big word order), given the map's default."""
        sentinel = default if self.sentinel is None else self.sentinel
        if sentinel == "none":
            return None
        if sentinel == "sunspec":
            return sunspec_sentinel(self.type)
        bits = 16 * self.words
        return sentinel & ((1 << bits) - 1) if -(1 << (bits - 1)) <= sentinel < 0 else sentinel
