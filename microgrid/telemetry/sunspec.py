"""SunSpec discovery: find the ``SunS`` marker and walk the model chain. Pure: reads go through a callable.

A SunSpec device holds, at a base address of 40000, 0 or 50000 (protocol addresses), the two
registers ``0x5375 0x6E53`` ("SunS"), then one model after another: a header of two registers
(model id, length L) and L registers of model data, until a model id of 0xFFFF ends the chain.

:func:`discover` returns each model's id, the address of its ID register (the base that
``RegisterMap.located`` takes, as map offsets count from the ID register) and its length. The
walk is bounded (models, addresses) so a device answering garbage cannot keep it going, and a
chain that breaks raises :class:`SunSpecError` carrying the models found before the break.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from microgrid.errors import MicrogridError

__all__ = [
    "BASE_ADDRESSES",
    "END_MODEL_ID",
    "SUNS_MARKER",
    "ModelHeader",
    "Reader",
    "SunSpecError",
    "discover",
    "find_base",
]

SUNS_MARKER = (0x5375, 0x6E53)
"""The registers of "SunS" that start a SunSpec map."""
BASE_ADDRESSES = (40000, 0, 50000)
"""Where SunSpec allows the map to start, in the order to try them."""
END_MODEL_ID = 0xFFFF
"""The model id that ends the chain."""

Reader = Callable[[int, int], Sequence[int]]
"""``read(address, count)`` → ``count`` holding registers; raises if the device refuses."""


class ModelHeader(NamedTuple):
    """One model of the chain: its id, the address of its ID register, and its length L [registers]."""

    model_id: int
    address: int
    length: int


class SunSpecError(MicrogridError):
    """No SunSpec map found, or a model chain that breaks off. ``found``: the models read before."""

    def __init__(self, message: str, found: Sequence[ModelHeader] = ()) -> None:
        super().__init__(message)
        self.found = list(found)


def _read(read: Reader, address: int, count: int) -> list[int]:
    registers = list(read(address, count))
    if len(registers) != count or any(not isinstance(r, int) or not 0 <= r <= 0xFFFF for r in registers):
        raise ValueError(f"read({address}, {count}) returned {registers!r}, not {count} register(s)")
    return registers


def find_base(
    read: Reader, bases: Sequence[int] = BASE_ADDRESSES, errors: tuple[type[Exception], ...] = (Exception,)
) -> int:
    """The first of ``bases`` holding the ``SunS`` marker.

    ``errors`` are the exceptions of ``read`` that mean "nothing here" (an exception response for
    an unmapped address, say); each base address that raises one of them is skipped.
    """
    tried: list[str] = []
    for base in bases:
        try:
            marker = tuple(_read(read, base, 2))
        except errors as exc:
            tried.append(f"{base}: {exc}")
            continue
        if marker == SUNS_MARKER:
            return base
        tried.append(f"{base}: {marker[0]:#06x} {marker[1]:#06x}, not SunS")
    raise SunSpecError(f"no SunSpec map found ({'; '.join(tried)})")


def discover(
    read: Reader,
    bases: Sequence[int] = BASE_ADDRESSES,
    *,
    max_models: int = 64,
    errors: tuple[type[Exception], ...] = (Exception,),
) -> list[ModelHeader]:
    """Find the SunSpec map and list its models, in chain order.

    Parameters
    ----------
    read
        ``read(address, count)`` of holding registers.
    bases
        Base addresses to try, in order.
    max_models
        Most models to walk before giving up on the chain (a loop or garbage).
    errors
        Exceptions of ``read`` that mean "no answer": skip a base while probing; break the chain
        (a :class:`SunSpecError` with the models found) while walking.

    Raises
    ------
    SunSpecError
        No marker at any base; or a chain that cannot be read, holds an invalid model id (0),
        runs past register 65535, or has more than ``max_models`` models before its end marker.
    """
    base = find_base(read, bases, errors)
    found: list[ModelHeader] = []
    address = base + 2
    while len(found) < max_models:
        try:
            (model_id,) = _read(read, address, 1)
            if model_id == END_MODEL_ID:
                return found
            (length,) = _read(read, address + 1, 1)
        except errors as exc:
            raise SunSpecError(f"model chain from {base} breaks at {address}: {exc}", found) from exc
        if model_id == 0:
            raise SunSpecError(f"model chain from {base} breaks at {address}: model id 0", found)
        if address + 2 + length > 0xFFFF:
            raise SunSpecError(f"model {model_id} at {address} of length {length} runs past register 65535", found)
        found.append(ModelHeader(model_id, address, length))
        address += 2 + length
    raise SunSpecError(f"model chain from {base} has no end marker within {max_models} models", found)
