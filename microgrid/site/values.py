"""Value types shared by the site model's sections: units-checked numbers, ids, durations."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

__all__ = [
    "AssetId",
    "Duration",
    "Efficiency",
    "Fraction",
    "Frozen",
    "NonNegative",
    "Positive",
    "Real",
    "parse_duration",
    "problem",
]

# -- value types -------------------------------------------------------------------------

_NUM = {"strict": True, "allow_inf_nan": False}
Real = Annotated[float, Field(**_NUM)]
NonNegative = Annotated[float, Field(ge=0, **_NUM)]
Positive = Annotated[float, Field(gt=0, **_NUM)]
Fraction = Annotated[float, Field(ge=0, le=1, **_NUM)]
Efficiency = Annotated[float, Field(gt=0, le=1, **_NUM)]
AssetId = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
"""Asset ids: a letter, then letters, digits, ``_`` or ``-`` (no dots: ids name CSV columns)."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|min|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse ``"15min"``, ``"24h"``, ``"30s"`` or ``"1d"`` into a :class:`timedelta`."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration like '15min' or '24h', got {text!r}")
    try:
        duration = timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    except OverflowError:
        raise ValueError(f"too long a duration, got {text!r}") from None
    if duration <= timedelta(0):  # also catches durations that round to 0 µs
        raise ValueError(f"must be a positive duration, got {text!r}")
    return duration


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"not a duration like '15min' or '24h' (the unit is required), got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def problem(key: str, message: str) -> PydanticCustomError:
    """A cross-field error attached to ``key`` of the model that raises it."""
    return PydanticCustomError("cross_check", message, {"key": key})


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
