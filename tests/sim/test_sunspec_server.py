"""SunSpec simulator: image building (pure) and serving it over real Modbus TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from microgrid.sim.sunspec_image import (
    ModelSpec,
    build_image,
    choose_scale_factor,
    model_map,
    point_registers,
    sunspec_codec,
    walk_image,
)
from microgrid.sim.sunspec_server import ImageDevice, serve_sunspec
from microgrid.telemetry.registers import EncodeError
from microgrid.telemetry.sunspec import ModelHeader
from microgrid.telemetry.transport import ExceptionCodeError, ModbusTransport
from tests.sunspec_sample import BATTERY, MODELS

T = TypeVar("T")


def served(image: ImageDevice | dict[int, int], body: Callable[[int], Awaitable[T]]) -> T:
    """Run ``body(port)`` while ``image`` is served on 127.0.0.1."""

    async def go() -> T:
        async with serve_sunspec(image) as port:
            return await body(port)

    return asyncio.run(go())


# -- building --------------------------------------------------------------------------------


@pytest.mark.parametrize("base", [40000, 0, 50000])
def test_image_layout(base: int) -> None:
    image = build_image(MODELS, base)
    assert (image[base], image[base + 1]) == (0x5375, 0x6E53)
    lengths = [66, 24, 62]
    expected, address = [], base + 2
    for (model_id, _), length in zip(MODELS, lengths, strict=True):
        expected.append(ModelHeader(model_id, address, length))
        assert (image[address], image[address + 1]) == (model_id, length)
        address += 2 + length
    assert (image[address], image[address + 1]) == (0xFFFF, 0)
    assert len(image) == address + 2 - base
    assert walk_image(image) == expected


def test_values_scale_factors_and_sentinels() -> None:
    image = build_image([(802, BATTERY)])
    model = 40002
    assert image[model + 11] == 655 and image[model + 56] == 0xFFFF  # SoC 65.5 % = 655 × 10^-1
    assert image[model + 47] == (-2500) & 0xFFFF and image[model + 63] == 0  # W, W_SF 0
    assert image[model + 34] == 512 and image[model + 59] == 0xFFFF  # V 51.2 = 512 × 10^-1
    assert (image[model + 14], image[model + 15]) == (1, 123_456 - 65536)  # NCyc uint32
    assert image[model + 2] == 0xFFFF and image[model + 52] == 0x8000  # AHRtg and its SF not implemented
    assert image[model + 30] == 0  # EvtVnd1: not in our map, left 0


def test_scale_factor_fits_the_register() -> None:
    image = build_image([(124, {"WChaMax": 100_000}), (802, {"W": 100_000})])
    assert image[40004] == 10_000 and image[40002 + 18] == 1  # uint16: 10 000 × 10^1
    assert image[40028 + 47] == 10_000 and image[40028 + 63] == 1  # int16 too


def test_given_scale_factor_wins() -> None:
    image = build_image([(802, {"SoC": 65.5, "SoC_SF": -2})])
    assert image[40002 + 11] == 6550 and image[40002 + 56] == (-2) & 0xFFFF


def test_choose_scale_factor() -> None:
    regmap = model_map(802)
    assert regmap is not None
    soc = sunspec_codec(regmap, regmap.by_name["soc_pct"])
    assert choose_scale_factor([(65.5, soc)]) == -1
    assert choose_scale_factor([(65.5, soc), (0.25, soc)]) == -2
    assert choose_scale_factor([(0, soc)]) == 0
    assert choose_scale_factor([(1 / 3, soc)]) == -5  # inexact: the finest that fits a uint16 (33 333)
    with pytest.raises(EncodeError):
        choose_scale_factor([(-1, soc)])


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([(802, {"Soc": 1})], "no point named 'Soc'"),
        ([ModelSpec(802, {"SoC": 50}, length=40)], "past the model's length"),
        ([ModelSpec(64001, {"X": 1}, length=4)], "no shipped map"),
        ([ModelSpec(64001)], "give its length"),
        ([(802, {"SoC_SF": 11})], "scale factor SoC_SF"),
        ([(802, {"Hb": 70_000})], "Hb"),
        ([(802, {"Hb": 0xFFFF})], "sentinel"),
    ],
)
def test_build_refuses(models: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_image(models)


def test_partial_models_and_broken_chain() -> None:
    image = build_image([ModelSpec(802, {"NCyc": 5, "Hb": 1}, length=40), ModelSpec(64001, length=4)], end_marker=False)
    assert image[40003] == 40 and len(image) == 2 + 42 + 6
    assert image[40002 + 20] == 0xFFFF  # AlmRst: within the length, not implemented
    assert image[40002 + 34] == 0  # V is within 40 but its V_SF (59) is not: left out with it
    assert walk_image(image) == [ModelHeader(802, 40002, 40), ModelHeader(64001, 40044, 4)]


def test_point_registers() -> None:
    image = build_image([(802, {"SoC": 65.5})])
    assert point_registers(image, 802, "SoC", 70) == {40013: 700}
    changes = point_registers(image, 802, "A", 12.3)  # A_SF not implemented: chosen and written
    assert changes == {40002 + 61: 0xFFFF, 40002 + 44: 123}
    with pytest.raises(ValueError, match="no point named"):
        point_registers(image, 802, "Nope", 1)
    with pytest.raises(ValueError, match="instance 1"):
        point_registers(image, 802, "SoC", 1, instance=1)


# -- serving ---------------------------------------------------------------------------------


@pytest.mark.parametrize("base", [40000, 0, 50000])
def test_served_registers_match_the_image(base: int) -> None:
    image = build_image(MODELS, base)

    async def body(port: int) -> list[int]:
        transport = ModbusTransport("127.0.0.1", port, timeout_s=1.0)
        try:
            registers: list[int] = []
            for start in range(base, base + len(image), 125):
                registers += await transport.read(1, start, min(125, base + len(image) - start))
            return registers
        finally:
            transport.close()

    assert served(image, body) == [image[a] for a in sorted(image)]


def test_outside_the_image_is_illegal_address() -> None:
    async def body(port: int) -> None:
        transport = ModbusTransport("127.0.0.1", port, timeout_s=1.0)
        try:
            with pytest.raises(ExceptionCodeError) as info:
                await transport.read(1, 39990, 12)
            assert info.value.code == 2
        finally:
            transport.close()

    served(build_image(MODELS), body)


def test_live_updates_and_writes() -> None:
    device = ImageDevice(build_image([(802, {"SoC": 65.5, "CtrlHb": 1})]))

    async def body(port: int) -> tuple[int, int]:
        transport = ModbusTransport("127.0.0.1", port, timeout_s=1.0)
        try:
            device.set_point(802, "SoC", 70.1)
            (soc,) = await transport.read(1, 40013, 1)
            await transport.write(1, 40021, [2])  # CtrlHb
            (hb,) = await transport.read(1, 40021, 1)
            return soc, hb
        finally:
            transport.close()

    assert served(device, body) == (701, 2)
    assert device.registers[40021] == 2
    with pytest.raises(KeyError):
        device.update({39000: 1})
    with pytest.raises(ValueError):
        device.update({40013: 70_000})


def test_pysunspec2_reads_what_the_simulator_holds() -> None:
    client = pytest.importorskip("sunspec2.modbus.client", reason="pysunspec2 (test dependency) is not installed")
    device = ImageDevice(build_image(MODELS))

    def read_with_pysunspec2(port: int) -> dict[int, dict[str, Any]]:
        d = client.SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=2)
        try:
            d.scan()
            return {mid: {n: p.cvalue for n, p in d.models[mid][0].points.items()} for mid in (1, 124, 802)}
        finally:
            d.close()

    async def body(port: int) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
        before = await asyncio.to_thread(read_with_pysunspec2, port)
        device.set_point(802, "SoC", 80.2)  # with the SF the image holds (-1)
        after = await asyncio.to_thread(read_with_pysunspec2, port)
        return before, after

    before, after = served(device, body)
    for model_id, values in MODELS:
        for name, value in values.items():
            assert before[model_id][name] == pytest.approx(value), f"{model_id}.{name}"
    assert before[802]["L"] == 62 and before[802]["SoC_SF"] == -1 and before[124]["WChaMax_SF"] == 1
    assert before[802]["AHRtg"] is None and before[1]["Opt"] is None  # not implemented
    assert after[802]["SoC"] == pytest.approx(80.2) and after[802]["SoC_SF"] == -1
