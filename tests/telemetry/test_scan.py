"""``microgrid scan``: SunSpec discovery and decoding against the simulator over real TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from typing import Any

import pytest
from rich.console import Console

from microgrid.errors import DeviceError
from microgrid.sim.sunspec_image import ModelSpec, build_image, model_map
from microgrid.sim.sunspec_server import ImageDevice, serve_sunspec
from microgrid.telemetry.registers import Quality
from microgrid.telemetry.scan import ScanError, ScanResult, format_table, parse_address, scan, to_json
from tests.sunspec_sample import COMMON, MODELS


def scan_image(image: ImageDevice | dict[int, int], unit: int = 1, **served: Any) -> ScanResult:
    async def go() -> ScanResult:
        async with serve_sunspec(image, **served) as port:
            return await scan("127.0.0.1", port, unit=unit, timeout_s=1.0)

    return asyncio.run(go())


def expected_points(models: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    return {f"{model_id}.{name}": value for model_id, values in models for name, value in values.items()}


def assert_holds(result: ScanResult, expected: dict[str, Any]) -> None:
    points = result.points
    for key, value in expected.items():
        assert key in points, key
        assert points[key] == (value if isinstance(value, str) else pytest.approx(value)), key


# -- discovery -------------------------------------------------------------------------------


@pytest.mark.parametrize("base", [40000, 0, 50000])
def test_discovers_each_base_address(base: int) -> None:
    result = scan_image(build_image(MODELS, base))
    assert result.base == base
    assert result.models == [1, 124, 802]
    assert [m.header.address for m in result.chain] == [base + 2, base + 70, base + 96]
    assert not result.all_problems
    assert_holds(result, expected_points(MODELS))
    assert result.points["802.SoC"] == 65.5
    assert result.points["802.W"] == -2500  # SunSpec units: W, not our kW
    assert result.points["124.WChaMax"] == 100_000 and result.points["124.WChaMax_SF"] == 1


def test_not_implemented_points_are_none() -> None:
    result = scan_image(build_image(MODELS))
    points = result.points
    assert points["802.AHRtg"] is None and points["802.AHRtg_SF"] is None and points["1.Opt"] is None
    regmap = model_map(802)
    assert regmap is not None
    assert len([k for k in points if k.startswith("802.")]) == len(regmap.points)  # every point of our map
    soc = next(p for m in result.chain for p in m.points if p.key == "802.SoC")
    assert (soc.name, soc.unit, soc.quality) == ("soc_pct", "%", Quality.OK)
    state = next(p for m in result.chain for p in m.points if p.key == "802.State")
    assert state.label == "connected"


def test_short_model_drops_points_past_its_length() -> None:
    image = build_image([(1, COMMON), ModelSpec(802, {"NCyc": 5, "Hb": 9, "ChaSt": 4}, length=40)])
    result = scan_image(image)
    assert result.models == [1, 802] and result.chain[1].header.length == 40
    points = result.points
    assert points["802.NCyc"] == 5 and points["802.Hb"] == 9 and points["802.ChaSt"] == 4
    assert "802.SoC" not in points  # its SoC_SF (offset 56) is past the length
    assert "802.W" not in points and "802.EvtVnd1" not in points
    assert not result.all_problems


def test_chain_without_end_marker_keeps_what_was_found() -> None:
    result = scan_image(build_image(MODELS, end_marker=False))
    assert result.models == [1, 124, 802]
    assert result.points["802.SoC"] == 65.5
    assert len(result.problems) == 1 and "breaks at 40160" in result.problems[0]
    assert "exception 2" in result.problems[0]


def test_model_cut_off_mid_body() -> None:
    image = build_image(MODELS)
    cut = {a: r for a, r in image.items() if a < 40096 + 30}  # 802 claims 62 registers, 28 are there
    result = scan_image(cut)
    assert result.models == [1, 124, 802]
    assert result.chain[2].points == () and "cannot read" in (result.chain[2].problem or "")
    assert result.points["124.ChaState"] == 65.5
    assert any("model 802" in p for p in result.all_problems)


def test_models_without_a_map_and_repeated_models() -> None:
    image = build_image([ModelSpec(64001, length=5), (802, {"SoC": 10}), (802, {"SoC": 20})])
    result = scan_image(image)
    assert result.models == [64001, 802, 802]
    assert result.chain[0].map_name is None and result.chain[0].points == ()
    assert result.points["802.SoC"] == 10 and result.points["802#2.SoC"] == 20


def test_live_values() -> None:
    device = ImageDevice(build_image(MODELS))

    async def go() -> tuple[ScanResult, ScanResult]:
        async with serve_sunspec(device) as port:
            first = await scan("127.0.0.1", port)
            device.set_point(802, "SoC", 12.3)
            device.set_point(802, "W", 4000)
            return first, await scan("127.0.0.1", port)

    first, second = asyncio.run(go())
    assert first.points["802.SoC"] == 65.5 and first.points["802.W"] == -2500
    assert second.points["802.SoC"] == pytest.approx(12.3) and second.points["802.W"] == 4000


# -- errors ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nothing_listening() -> None:
    port = free_port()
    with pytest.raises(ScanError, match=f"127.0.0.1:{port} unit 1: no Modbus answer") as info:
        asyncio.run(scan("127.0.0.1", port, timeout_s=0.5))
    assert isinstance(info.value, DeviceError)


def test_device_without_sunspec() -> None:
    image = {40000: 0x1234, 40001: 0x5678, **{a: 0 for a in range(10)}}
    with pytest.raises(ScanError, match=r"no SunSpec device found.*40000: 0x1234 0x5678, not SunS"):
        scan_image(image)


def test_wrong_unit_id() -> None:
    with pytest.raises(ScanError, match="unit 7: no SunSpec device found"):
        scan_image(build_image(MODELS), unit=7)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unit"):
        asyncio.run(scan("127.0.0.1", 502, unit=300))


# -- address parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.10", ("192.168.1.10", 502)),
        ("192.168.1.10:1502", ("192.168.1.10", 1502)),
        ("inverter.local", ("inverter.local", 502)),
        (" gw:5020 ", ("gw", 5020)),
        ("[::1]:1502", ("::1", 1502)),
        ("[fe80::1]", ("fe80::1", 502)),
        ("::1", ("::1", 502)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected HOST or HOST:PORT"),
        (":502", "expected HOST or HOST:PORT"),
        ("host:", "empty port"),
        ("host:abc", "integer in 1…65535"),
        ("host:0", "integer in 1…65535"),
        ("host:70000", "integer in 1…65535"),
        ("[::1", r"expected \[IPv6\]"),
        ("[::1]x", r"expected \[IPv6\]"),
        ("my host", "expected HOST or HOST:PORT"),
    ],
)
def test_parse_address_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(text)


# -- output ----------------------------------------------------------------------------------


def test_json_and_table() -> None:
    result = scan_image(build_image(MODELS))
    data = json.loads(to_json(result))
    assert set(data) == {"models", "points"}
    assert data["models"] == [1, 124, 802]
    assert data["points"]["802.SoC"] == 65.5 and data["points"]["1.Mn"] == "Acme Storage"
    assert data["points"]["802.AHRtg"] is None
    console = Console(record=True, width=160)
    console.print(format_table(result))
    text = console.export_text()
    assert "802.SoC" in text and "65.5" in text and "3 (connected)" in text and "model 124" in text


# -- an independent SunSpec client -----------------------------------------------------------


def test_pysunspec2_agrees_with_scan() -> None:
    client = pytest.importorskip("sunspec2.modbus.client", reason="pysunspec2 (test dependency) is not installed")
    image = build_image(MODELS)

    def read_with_pysunspec2(port: int) -> dict[str, Any]:
        d = client.SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=2)
        try:
            d.scan()
            return {
                f"{mid}.{name}": point.cvalue
                for mid in (1, 124, 802)
                for name, point in d.models[mid][0].points.items()
            }
        finally:
            d.close()

    async def go() -> tuple[ScanResult, dict[str, Any]]:
        async with serve_sunspec(image) as port:
            return await scan("127.0.0.1", port), await asyncio.to_thread(read_with_pysunspec2, port)

    ours, theirs = asyncio.run(go())
    assert ours.points.keys() <= theirs.keys()
    for key, value in ours.points.items():
        other = theirs[key]
        if value is None or other is None:
            assert value is None and other is None, key
        elif isinstance(value, str):
            assert value == other, key
        else:
            assert math.isclose(value, other, rel_tol=1e-12), key
