"""Plan reads: group points into the fewest Modbus read requests.

A request reads one contiguous range of at most ``max_registers`` registers (125 for function
codes 3/4). Points are sorted by address and packed greedily: a block grows while the next point
still ends within ``max_registers`` of the block's start and the unused registers between it and
the block (the gap) are at most ``max_gap``. Points never span two requests, so blocks are runs of
consecutive points and the greedy packing is minimal (each block holds the longest run it can).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["MODBUS_MAX_REGISTERS", "Addressed", "ReadBlock", "read_blocks"]

MODBUS_MAX_REGISTERS = 125
"""Most registers one read request (function 3 or 4) may ask for."""


class Addressed(Protocol):
    """What :func:`read_blocks` needs of a point."""

    @property
    def name(self) -> str: ...
    @property
    def address(self) -> int: ...
    @property
    def words(self) -> int: ...
    @property
    def readable(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: ``count`` registers from ``start``, covering the points ``names``."""

    start: int
    count: int
    names: tuple[str, ...]

    @property
    def end(self) -> int:
        """First register after the block."""
        return self.start + self.count


def read_blocks(
    points: Iterable[Addressed], max_registers: int = MODBUS_MAX_REGISTERS, max_gap: int = 0
) -> list[ReadBlock]:
    """The fewest read requests that cover every readable point.

    Parameters
    ----------
    points
        Points with ``name``, ``address``, ``words`` and ``readable``; write-only points are skipped.
    max_registers
        Largest request the device accepts (1…125 registers).
    max_gap
        Most unused registers a request may read between two points (0: only adjacent points share
        a request; devices that answer reserved registers allow more).

    Raises
    ------
    ValueError
        ``max_registers`` outside 1…125, a negative ``max_gap``, or a point wider than ``max_registers``.
    """
    if not 1 <= max_registers <= MODBUS_MAX_REGISTERS:
        raise ValueError(f"max_registers must be in 1…{MODBUS_MAX_REGISTERS}, got {max_registers}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be ≥ 0, got {max_gap}")
    chosen = sorted((p for p in points if p.readable), key=lambda p: (p.address, p.words))
    blocks: list[ReadBlock] = []
    start, end, names = 0, 0, list[str]()
    for point in chosen:
        if point.words > max_registers:
            raise ValueError(f"point {point.name!r} spans {point.words} registers, more than {max_registers}")
        point_end = point.address + point.words
        if names and point.address - end <= max_gap and max(end, point_end) - start <= max_registers:
            end = max(end, point_end)
            names.append(point.name)
            continue
        if names:
            blocks.append(ReadBlock(start, end - start, tuple(names)))
        start, end, names = point.address, point_end, [point.name]
    if names:
        blocks.append(ReadBlock(start, end - start, tuple(names)))
    return blocks
