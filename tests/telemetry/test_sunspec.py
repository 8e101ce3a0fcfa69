"""SunSpec discovery over an in-memory register image: three base addresses, partial and garbage chains."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from microgrid.telemetry import load_map
from microgrid.telemetry.registers import encode
from microgrid.telemetry.sunspec import ModelHeader, SunSpecError, discover, find_base


class IllegalAddressError(Exception):
    """What a device answers for an unmapped register (Modbus exception 2)."""


class Device:
    """A register image; reading an address it does not hold raises :class:`IllegalAddressError`."""

    def __init__(self, registers: dict[int, int]) -> None:
        self.registers = registers
        self.reads = 0

    def read(self, address: int, count: int) -> list[int]:
        self.reads += 1
        try:
            return [self.registers[a] for a in range(address, address + count)]
        except KeyError:
            raise IllegalAddressError(f"illegal data address {address}") from None


def image(base: int, models: Sequence[tuple[int, int]], end: bool = True) -> dict[int, int]:
    registers = {base: 0x5375, base + 1: 0x6E53}
    address = base + 2
    for model_id, length in models:
        registers[address], registers[address + 1] = model_id, length
        registers.update({address + 2 + i: 0 for i in range(length)})
        address += 2 + length
    if end:
        registers[address], registers[address + 1] = 0xFFFF, 0
    return registers


STORAGE = [(1, 66), (103, 50), (124, 24), (802, 62), (713, 7)]


@pytest.mark.parametrize("base", [40000, 0, 50000])
def test_discovery_on_each_base_address(base: int) -> None:
    models = discover(Device(image(base, STORAGE)).read)
    expected, address = [], base + 2
    for model_id, length in STORAGE:
        expected.append(ModelHeader(model_id, address, length))
        address += 2 + length
    assert models == expected


def test_40000_is_tried_first() -> None:
    registers = image(0, [(1, 66)]) | image(40000, [(103, 50)])
    assert [m.model_id for m in discover(Device(registers).read)] == [103]


def test_no_marker_anywhere_lists_what_each_base_answered() -> None:
    registers = {40000: 1, 40001: 2}
    with pytest.raises(SunSpecError, match=r"40000: 0x0001 0x0002, not SunS; 0: illegal data address 0; 50000"):
        discover(Device(registers).read)


def test_a_device_with_only_some_models() -> None:
    assert discover(Device(image(40000, [(1, 66)])).read) == [ModelHeader(1, 40002, 66)]
    assert discover(Device(image(40000, [])).read) == []


def test_a_chain_without_its_end_marker_keeps_what_was_found() -> None:
    device = Device(image(40000, STORAGE[:2], end=False))
    with pytest.raises(SunSpecError, match="breaks at 40122") as info:
        discover(device.read)
    assert [m.model_id for m in info.value.found] == [1, 103]


def test_an_end_marker_without_length_is_enough() -> None:
    registers = image(40000, [(1, 66)])
    del registers[40000 + 2 + 68 + 1]  # some devices give no L for the end model
    assert discover(Device(registers).read) == [ModelHeader(1, 40002, 66)]


@pytest.mark.parametrize(
    ("registers", "message"),
    [
        (image(40000, [(1, 66), (0, 10)]), "model id 0"),
        (image(40000, [(1, 66)]) | {40070: 124, 40071: 65000}, "runs past register 65535"),
        (
            {40000: 0x5375, 40001: 0x6E53}
            | {40002 + 2 * i: 7 for i in range(100)}
            | {40003 + 2 * i: 0 for i in range(100)},
            "no end marker within 64 models",
        ),
    ],
)
def test_garbage_chains_raise_clear_errors(registers: dict[int, int], message: str) -> None:
    device = Device(registers)
    with pytest.raises(SunSpecError, match=message):
        discover(device.read)
    assert device.reads < 200  # bounded walk


def test_a_read_that_returns_the_wrong_count_breaks_the_chain() -> None:
    def read(address: int, count: int) -> list[int]:
        return [0x5375, 0x6E53] if address == 40000 else [1, 2, 3]

    with pytest.raises(SunSpecError, match="not 1 register"):
        discover(read)


def test_only_the_given_errors_mean_no_answer() -> None:
    def read(address: int, count: int) -> list[int]:
        raise RuntimeError("socket closed")

    with pytest.raises(RuntimeError):
        find_base(read, errors=(IllegalAddressError,))
    with pytest.raises(SunSpecError, match="socket closed"):
        find_base(read)


def test_discover_then_decode_a_storage_device() -> None:
    registers = image(40000, STORAGE)
    device = Device(registers)
    models = {m.model_id: m for m in discover(device.read)}
    battery = load_map("sunspec-802").located(models[802].address, models[802].length)
    soc, sf = battery.codecs["soc_pct"], battery.codecs["soc_sf"]
    registers[battery.by_name["soc_sf"].address] = encode(-1, sf)[0]
    registers[battery.by_name["soc_pct"].address] = encode(65.5, soc, scale_factor=-1)[0]
    block = battery.read_blocks(["soc_pct", "soc_sf"])
    values = {a: v for b in block for a, v in zip(range(b.start, b.end), device.read(b.start, b.count), strict=True)}
    assert battery.decode(values)["soc_pct"].value == 65.5
