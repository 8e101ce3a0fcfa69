"""Register maps: every shipped map loads and holds together; bad maps name the file and key path."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from microgrid.errors import ConfigError
from microgrid.telemetry import load_map, map_from_dict, shipped_maps
from microgrid.telemetry.maps import RegisterMap
from microgrid.telemetry.registers import Quality, encode, is_numeric
from tests.conftest import ROOT

DEVICES = ROOT / "models" / "devices"
SHIPPED = sorted(p.stem for p in DEVICES.glob("*.yaml"))


def base_map(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "test-map",
        "title": "Test map",
        "device_class": "battery_inverter",
        "document": "test document v1",
        "points": [
            {"name": "power_kw", "address": 0, "type": "s32", "scale": 0.001, "unit": "kW"},
            {"name": "soc_pct", "address": 2, "type": "u16", "scale": 0.01, "unit": "%", "min": 0, "max": 100},
        ],
    }
    raw.update(changes)
    return raw


def with_point(index: int, **changes: Any) -> dict[str, Any]:
    raw = base_map()
    raw["points"][index].update(changes)
    return raw


def problems_of(raw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        map_from_dict(raw, "maps/test.yaml")
    return str(info.value)


# -- the shipped maps ----------------------------------------------------------------------------


def test_every_map_file_is_shipped_and_has_its_name() -> None:
    assert shipped_maps() == SHIPPED
    expected = {"generic-battery-inverter", "generic-genset-controller", "generic-pv-inverter"}
    expected |= {"generic-grid-meter", "generic-load-feeder", "dse-gencomm", "victron-gx-system"}
    expected |= {f"sunspec-{m}" for m in (1, 101, 103, 124, 704, 713, 802)}
    assert expected <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_map_loads_by_name_and_validates(name: str) -> None:
    regmap = load_map(name)
    assert regmap.name == name
    assert regmap == load_map(DEVICES / f"{name}.yaml")
    assert len(regmap.document) > 10
    located = regmap.located(40000) if regmap.sunspec else regmap
    blocks = located.read_blocks()
    assert all(b.count <= 125 for b in blocks)
    covered = {n for b in blocks for n in b.names}
    assert covered == {p.name for p in regmap.points if p.readable}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_writable_points_accept_their_own_range(name: str) -> None:
    regmap = load_map(name)
    for point in regmap.points:
        if not point.writable or not is_numeric(point.type) or point.scale_factor:
            continue
        codec = regmap.codecs[point.name]
        candidates = list(point.values) if point.values else [point.min, point.max]
        for value in candidates:
            assert value is not None
            encode(value, codec)


def test_generic_maps_follow_the_profile_header() -> None:
    for name in SHIPPED:
        if not name.startswith("generic-"):
            continue
        regmap = load_map(name)
        assert regmap.by_name["profile_version"].address == 0
        assert regmap.by_name["device_class"].address == 1
        if any(p.writable for p in regmap.points):
            assert regmap.keepalive is not None and regmap.keepalive.point == "heartbeat_count"
            assert regmap.by_name["heartbeat_count"].address == 10


def test_every_subpackage_ships_when_packages_are_listed() -> None:
    """If pyproject lists packages explicitly (to map models/ into the wheel), none may be missing."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = config.get("tool", {}).get("setuptools", {}).get("packages")
    if not isinstance(listed, list):
        pytest.skip("packages are discovered, not listed")
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "microgrid").rglob("__init__.py")}
    assert found <= set(listed)
    assert "microgrid.models" in listed


def test_unknown_shipped_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="generic-battery-inverter"):
        load_map("no-such-device")


# -- decoding through a map ---------------------------------------------------------------------


def test_map_decode_applies_scale_factors_and_their_sentinels() -> None:
    regmap = load_map("sunspec-802").located(1000)
    base = 1000
    image = {base + offset: 0 for offset in range(2, 64)}
    image[base + 11] = 655  # SoC
    image[base + 56] = 0xFFFF  # SoC_SF = -1
    image[base + 47] = 0xFF38  # W = -200
    image[base + 63] = 1  # W_SF = +1 → -2000 W
    image[base + 34] = 512  # V
    image[base + 59] = 0x8000  # V_SF not implemented
    decoded = regmap.decode(image)
    assert decoded["soc_pct"].value == 65.5
    assert decoded["battery_power_kw"].value == -2.0
    assert decoded["voltage_sf"].quality is Quality.NOT_IMPLEMENTED
    assert decoded["voltage_v"].quality is Quality.NOT_IMPLEMENTED and decoded["voltage_v"].value is None


def test_map_decode_skips_points_whose_registers_are_missing() -> None:
    regmap = load_map("generic-battery-inverter")
    decoded = regmap.decode({100: 5000, 102: 0, 103: 1500})
    assert decoded["soc_pct"].value == 50.0
    assert decoded["battery_power_kw"].value == 1.5
    assert "soh_pct" not in decoded


def test_scale_factor_out_of_range_marks_the_dependent_point() -> None:
    regmap = load_map("sunspec-713").located(0)
    decoded = regmap.decode({4: 50, 8: 20, 2: 1, 7: 0})
    assert decoded["percent_sf"].quality is Quality.OUT_OF_RANGE
    assert decoded["soc_pct"].quality is Quality.OUT_OF_RANGE and decoded["soc_pct"].value is None


def test_located_shifts_and_trims_to_the_discovered_length() -> None:
    regmap = load_map("sunspec-124")
    located = regmap.located(40070)
    assert located.by_name["soc_pct"].address == 40078
    assert located.addressing == "absolute"
    assert located.sunspec == regmap.sunspec and regmap.by_name["soc_pct"].address == 8
    short = regmap.located(40070, length=10)  # a shorter model: offsets 2…11 only
    # points past the end go, and so do points whose scale factor is past the end
    assert set(short.by_name) == {"storage_control_mode", "charge_status"}
    with pytest.raises(ValueError, match="does not fit"):
        regmap.located(65530)
    with pytest.raises(ValueError, match="absolute"):
        load_map("generic-grid-meter").located(0)


# -- bad maps ------------------------------------------------------------------------------------

SENTINEL_PT = {"name": "x", "address": 9, "type": "u16", "sentinel": 0x1FFFF}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (with_point(0, colour="red"), "points[0].colour: unknown key (point 'power_kw')"),
        (base_map(vendor="x"), "vendor: unknown key"),
        (with_point(1, name="power_kw", unit="kW"), "points[1].name: 'power_kw' already used by points[0]"),
        (with_point(1, address=1), "points[1].address: 'soc_pct' at 1 overlaps 'power_kw' (points[0], 0…1)"),
        (with_point(0, access="read_write"), "points[0].min: a writable (read_write) point needs min and max"),
        (with_point(1, access="write", min=None), "points[1].min: a writable (write) point needs min and max"),
        (with_point(0, scale_factor="w_sf"), "points[0].scale_factor: names no point of this map, got 'w_sf'"),
        (with_point(0, scale_factor="soc_pct"), "points[0].scale_factor: 'soc_pct' is not a sunssf point"),
        (with_point(0, name="power"), "points[0].name: a point in kW must end with '_kw', got 'power'"),
        (with_point(0, unit=None), "points[0].unit: name ends in the unit suffix '_kw' but no unit is given"),
        (with_point(0, unit="furlong"), "points[0].unit: unknown unit 'furlong'"),
        (with_point(0, type="u17"), "points[0].type: unknown data type 'u17'"),
        (with_point(0, type="string", scale=None, unit=None, name="label"), "points[0].count: a string needs"),
        (with_point(0, count=1), "points[0].count: s32 spans 2 register(s), got 1"),
        (with_point(1, invert=True), "points[1].invert: needs a sign convention and a signed type"),
        (with_point(0, sign="positive = up"), "points[0].sign"),
        (with_point(1, min=50, max=10), "points[1].min: must be ≤ max (10), got 50"),
        (with_point(0, address=65535), "points[0].address: point runs past register 65535"),
        (with_point(0, scale=0), "points[0].scale: must be non-zero"),
        (with_point(1, type="sunssf", name="w_sf", unit=None, min=None, max=None), "points[1].scale: a sunssf point"),
        (base_map(addressing="sunspec_model"), "sunspec: addressing sunspec_model needs the sunspec section"),
        (
            base_map(addressing="sunspec_model", sunspec={"id": 1, "length": 66}),
            "points[0].address: offset must lie in 2…",
        ),
        (base_map(keepalive={"point": "beat"}), "keepalive.point: names no point of this map, got 'beat'"),
        (base_map(keepalive={"point": "soc_pct"}), "keepalive.point: 'soc_pct' is not writable"),
        (base_map(read={"max_registers": 200}), "read.max_registers"),
        (base_map(points=[]), "points: a map needs at least one point"),
        (base_map(name="Bad Name"), "name"),
        (base_map(document=None), "document"),
        ({k: v for k, v in base_map().items() if k != "title"}, "title: required key is missing"),
        (base_map(points=[*base_map()["points"], SENTINEL_PT]), "points[2].sentinel: does not fit"),
        (with_point(1, values={0: False}), "points[1].values[0]: Input should be a valid string"),
        (["not", "a", "mapping"], "(top level): must be a mapping, got list"),
    ],
)
def test_bad_maps_name_the_file_and_key_path(raw: Any, expected: str) -> None:
    message = problems_of(raw)
    assert message.startswith("maps/test.yaml:")
    assert expected in message


def test_field_problems_are_listed_together() -> None:
    raw = base_map()
    raw["points"][0]["colour"] = "red"
    raw["points"][1]["type"] = "u99"
    message = problems_of(raw)
    assert "2 problem(s)" in message and "colour" in message and "u99" in message


def test_the_good_base_map_is_good() -> None:
    regmap = map_from_dict(copy.deepcopy(base_map()))
    assert isinstance(regmap, RegisterMap) and [p.name for p in regmap.points] == ["power_kw", "soc_pct"]


def test_a_bad_file_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\nname: b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"dup\.yaml.*\n.*line 2.*given twice"):
        load_map(path)
    path.write_text("name: a\ntitle: t\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"dup\.yaml: .*\n.*required key is missing"):
        load_map(str(path))
    with pytest.raises(ConfigError, match="cannot read file"):
        load_map(tmp_path / "missing.yaml")


def test_yaml_pitfalls_are_caught(tmp_path: Path) -> None:
    path = tmp_path / "off.yaml"
    raw = base_map()
    text = "\n".join(
        [
            f"name: {raw['name']}",
            f"title: {raw['title']}",
            f"device_class: {raw['device_class']}",
            f"document: {raw['document']}",
            "points:",
            "  - {name: state, address: 0, type: enum16, values: {0: off, 1: on}}",
            "  - {name: v_v, address: 1, type: u16, unit: V, description: Phase average, line to neutral}",
        ]
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_map(path)
    message = str(info.value)
    assert "points[0].values[0]: Input should be a valid string" in message  # YAML 1.1: off → False
    assert "points[1].line to neutral: unknown key" in message  # unquoted comma in a flow mapping
