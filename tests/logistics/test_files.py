"""The fleet and trucks files: the shipped samples read; every problem named by its key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from microgrid.errors import ConfigError
from microgrid.logistics import fleet_from_dict, read_fleet, read_trucks, trucks_from_dict
from tests.conftest import ROOT

FLEET = ROOT / "data" / "logistics" / "city-fleet.yaml"
TRUCKS = ROOT / "data" / "logistics" / "trucks.yaml"


def test_the_samples_read() -> None:
    fleet, trucks = read_fleet(FLEET), read_trucks(TRUCKS)
    assert len(fleet.islands) == 12 and fleet.depot.stock_l == 40_000
    assert [t.id for t in trucks] == ["truck-1", "truck-2"]


def _fleet() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(FLEET.read_text(encoding="utf-8"))
    return raw


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("islands", 0, "colour"), "red", "islands[0].colour: unknown key"),
        (("islands", 1, "stock_l"), -5, "islands[1].stock_l: Input should be greater than or equal to 0"),
        (("islands", 2, "lat"), 95.0, "islands[2].lat: Input should be less than or equal to 90"),
        (("islands", 0, "stock_l"), 5000.0, "islands[0] (hospital-000).stock_l: 5000 l is more than its tank"),
        (("islands", 3, "burn_profile_l_per_h"), [1.0] * 24, "islands[3] (island-003): give exactly one of"),
        (("islands", 4, "id"), "hospital-000", "islands: id 'hospital-000' given twice"),
        (("islands", 5, "weight"), 0, "islands[5].weight: Input should be greater than 0"),
        (("depot", "stock_l"), "lots", "depot.stock_l: Input should be a valid number"),
        (("road_factor",), 0.5, "road_factor: Input should be greater than or equal to 1"),
        (("road_km",), {"depot": {"island-404": 3.0}}, "road_km.depot.island-404: unknown place"),
        (("road_km",), {"dpot": {"island-002": 3.0}}, "road_km.dpot: unknown place"),
        (("road_km",), {"depot": {"island-002": -3.0}}, "road_km.depot.island-002: Input should be greater than 0"),
        (("islands", 6, "queue"), "3", "islands[6] (island-006).queue: '3' has no entry in outages"),
        (("outages",), {"3": [[5.0, 2.0]]}, "outages.3[0]: ends (2 h) before it starts (5 h)"),
    ],
)
def test_a_bad_fleet_names_the_place(path: tuple[Any, ...], value: Any, expected: str) -> None:
    raw = _fleet()
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as caught:
        fleet_from_dict(raw, "fleet.yaml")
    assert str(caught.value).startswith("fleet.yaml: ")
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_a_missing_key_and_a_missing_section() -> None:
    raw = _fleet()
    del raw["islands"][0]["capacity_l"]
    del raw["depot"]
    with pytest.raises(ConfigError) as caught:
        fleet_from_dict(raw)
    assert set(caught.value.problems) >= {
        "islands[0].capacity_l: required key is missing",
        "depot: required key is missing",
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"capacity_l": 0}, "trucks[0].capacity_l: Input should be greater than 0"),
        ({"shift_h": 30}, "trucks[0].shift_h: Input should be less than or equal to 24"),
        ({"max_stops": 9}, "trucks[0].max_stops: Input should be less than or equal to 4"),
        ({"wheels": 6}, "trucks[0].wheels: unknown key"),
    ],
)
def test_a_bad_truck_names_the_place(change: dict[str, Any], expected: str) -> None:
    raw = yaml.safe_load(TRUCKS.read_text(encoding="utf-8"))
    raw["trucks"][0] |= change
    with pytest.raises(ConfigError) as caught:
        trucks_from_dict(raw)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_trucks_given_twice_and_none() -> None:
    raw = yaml.safe_load(TRUCKS.read_text(encoding="utf-8"))
    raw["trucks"][1]["id"] = "truck-1"
    with pytest.raises(ConfigError, match="trucks: id 'truck-1' given twice"):
        trucks_from_dict(raw)
    with pytest.raises(ConfigError, match="trucks: List should have at least 1 item"):
        trucks_from_dict({"trucks": []})


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("depot:\n  lat: 50\n  lat: 51\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 3, column 3: key 'lat' given twice"):
        read_fleet(path)
    path.write_text("[unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2"):
        read_fleet(path)
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\(top level\): must be a mapping, got list"):
        read_fleet(path)
