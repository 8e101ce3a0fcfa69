"""The site file's ``devices`` section: validation by ``site_from_dict`` and by ``check_wiring``.

Every case changes the shipped hospital's devices (ports 15021-15026; nothing is served here)
and checks that the problem is reported under its key path ``devices[i]...``.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from microgrid.errors import ConfigError
from microgrid.site import site_from_dict
from microgrid.telemetry.wiring import check_wiring
from tests.conftest import HOSPITAL

RAW: dict[str, Any] = yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))
BESS1, BESS2, DG1, DG2, ROOF, METER, FEEDERS = range(7)

Mutation = Callable[[dict[str, Any]], None]


def hospital(mutate: Mutation | None = None) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    if mutate is not None:
        mutate(raw)
    return raw


def device(i: int, **changes: Any) -> Mutation:
    """Set keys of devices[i] (a value of ``...`` deletes the key)."""

    def mutate(raw: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is ...:
                raw["devices"][i].pop(key, None)
            else:
                raw["devices"][i][key] = value

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        for m in mutations:
            m(raw)

    return mutate


def site_problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        site_from_dict(raw, "hospital.yaml")
    assert info.value.source == "hospital.yaml"
    return info.value.problems


def wiring_problems(raw: dict[str, Any]) -> list[str]:
    site = site_from_dict(raw)
    with pytest.raises(ConfigError) as info:
        check_wiring(site, "hospital.yaml")
    return info.value.problems


def test_the_shipped_devices_section_is_valid() -> None:
    site = site_from_dict(hospital())
    maps = check_wiring(site)
    assert list(maps) == [d["id"] for d in RAW["devices"]]
    dg1, dg2 = site.devices[DG1], site.devices[DG2]
    assert (dg1.port, dg1.unit, dg2.port, dg2.unit) == (15023, 1, 15023, 2)
    assert site.devices[BESS1].host == "127.0.0.1" and site.devices[BESS1].unit == 1  # defaults
    assert (site.devices[BESS1].timeout_s, site.devices[BESS1].retries, site.devices[BESS1].keepalive_s) == (
        0.5,
        1,
        20.0,
    )
    assert site.devices[FEEDERS].feeders == {"critical": 1, "essential": 2, "comfort": 3}


def _drop_grid(raw: dict[str, Any]) -> None:
    del raw["grid"]


def _null_grid(raw: dict[str, Any]) -> None:
    raw["grid"] = None


def _second_feeder_device(raw: dict[str, Any]) -> None:
    raw["devices"].append({"id": "feeders2", "map": "generic-load-feeder", "port": 15027, "feeders": {"comfort": 1}})


def _devices_as_mapping(raw: dict[str, Any]) -> None:
    raw["devices"] = {"bess1-inverter": RAW["devices"][0]}


def _device_as_text(raw: dict[str, Any]) -> None:
    raw["devices"][METER] = "grid-meter"


def _defaults_collide(raw: dict[str, Any]) -> None:
    for i in (BESS1, BESS2):
        raw["devices"][i].pop("port")


SITE_CASES: dict[str, tuple[Mutation, str, str]] = {
    "unknown key": (device(BESS1, colour="red"), "devices[0].colour", "unknown key"),
    "unknown key (typo)": (device(DG2, units=2), "devices[3].units", "unknown key"),
    "missing map": (device(BESS1, map=...), "devices[0].map", "required key is missing"),
    "missing id": (device(ROOF, id=...), "devices[4].id", "required key is missing"),
    "empty map": (device(BESS1, map=""), "devices[0].map", "at least 1 character"),
    "asset and feeders": (
        device(BESS1, feeders={"critical": 4}),
        "devices[0].asset",
        "needs exactly one of 'asset' or 'feeders'",
    ),
    "neither asset nor feeders": (device(BESS1, asset=...), "devices[0].asset", "needs exactly one of"),
    "empty feeders": (device(FEEDERS, feeders={}), "devices[6].asset", "needs exactly one of"),
    "asset naming nothing": (
        device(BESS1, asset="bess9"),
        "devices[0].asset",
        "names no battery, generator or PV array of the site (or 'grid'), got 'bess9'",
    ),
    "asset naming a load tier": (device(ROOF, asset="critical"), "devices[4].asset", "got 'critical'"),
    "grid without a grid section": (_drop_grid, "devices[5].asset", "the site has no grid section"),
    "grid section null": (_null_grid, "devices[5].asset", "the site has no grid section"),
    "feeders naming a battery": (
        device(FEEDERS, feeders={"critical": 1, "bess1": 2}),
        "devices[6].feeders.bess1",
        "names no load tier of the site, got 'bess1'",
    ),
    "feeders naming nothing": (device(FEEDERS, feeders={"icu": 1}), "devices[6].feeders.icu", "names no load tier"),
    "two tiers on one feeder": (
        device(FEEDERS, feeders={"critical": 1, "essential": 1}),
        "devices[6].feeders",
        "two tiers on one feeder",
    ),
    "feeder number 0": (device(FEEDERS, feeders={"critical": 0}), "devices[6].feeders.critical", "greater than"),
    "feeder number 17": (device(FEEDERS, feeders={"critical": 17}), "devices[6].feeders.critical", "less than"),
    "duplicate device id": (
        device(BESS2, id="bess1-inverter"),
        "devices[1].id",
        "id 'bess1-inverter' already used at devices[0]",
    ),
    "device id equal to an asset id": (device(BESS2, id="bess2"), "devices[1].id", "id 'bess2' is already an asset id"),
    "device id equal to a tier id": (device(FEEDERS, id="comfort"), "devices[6].id", "already an asset id"),
    "bad device id": (device(BESS1, id="bess 1"), "devices[0].id", "should match pattern"),
    "duplicate host:port:unit": (
        device(DG2, unit=1),
        "devices[3].unit",
        "127.0.0.1:15023 unit 1 already used by 'dg1-controller'",
    ),
    "duplicate endpoint by defaults": (
        _defaults_collide,
        "devices[1].unit",
        "127.0.0.1:502 unit 1 already used by 'bess1-inverter'",
    ),
    "asset served twice": (
        device(BESS2, asset="bess1"),
        "devices[1].asset",
        "'bess1' is already served by device 'bess1-inverter'",
    ),
    "tier served twice": (_second_feeder_device, "devices[7].feeders.comfort", "already served by device 'feeders'"),
    "port 0": (device(BESS1, port=0), "devices[0].port", "greater than or equal to 1"),
    "port 65536": (device(BESS1, port=65536), "devices[0].port", "less than or equal to 65535"),
    "port as text": (device(BESS1, port="15021"), "devices[0].port", "valid integer"),
    "port as float": (device(BESS1, port=15021.0), "devices[0].port", "valid integer"),
    "unit 248": (device(DG2, unit=248), "devices[3].unit", "less than or equal to 247"),
    "unit -1": (device(DG2, unit=-1), "devices[3].unit", "greater than or equal to 0"),
    "bad host": (device(BESS1, host="my host"), "devices[0].host", "should match pattern"),
    "timeout 0": (device(BESS1, timeout_s=0), "devices[0].timeout_s", "greater than 0"),
    "retries 6": (device(BESS1, retries=6), "devices[0].retries", "less than or equal to 5"),
    "keepalive_s nan": (device(BESS1, keepalive_s=float("nan")), "devices[0].keepalive_s", "finite"),
    "devices a mapping": (_devices_as_mapping, "devices", "valid tuple"),
    "a device not a mapping": (_device_as_text, "devices[5]", "valid dictionary"),
}


@pytest.mark.parametrize(("mutate", "path", "reason"), SITE_CASES.values(), ids=SITE_CASES.keys())
def test_site_file_problems_name_their_key_path(mutate: Mutation, path: str, reason: str) -> None:
    problems = site_problems(hospital(mutate))
    assert any(p.startswith(f"{path}: ") and reason in p for p in problems), problems


def test_every_devices_problem_is_listed_at_once() -> None:
    mutate = both(
        device(BESS1, port=0),
        device(BESS2, asset="nope"),
        device(DG1, id="bess1-inverter"),
        device(DG2, unit=1, colour="red"),
        device(FEEDERS, feeders={"critical": 1, "essential": 1}),
    )
    problems = site_problems(hospital(mutate))
    paths = {p.split(": ", 1)[0] for p in problems}
    assert {"devices[0].port", "devices[1].asset", "devices[2].id", "devices[3].colour"} <= paths
    assert "devices[6].feeders" in paths


def test_a_gateway_may_share_a_port_across_hosts_and_units() -> None:
    mutate = both(device(BESS2, port=15021, unit=2), device(ROOF, port=15021, host="10.0.0.7"))
    site = site_from_dict(hospital(mutate))
    check_wiring(site)
    assert {(d.host, d.port, d.unit) for d in site.devices[:5]} >= {
        ("127.0.0.1", 15021, 1),
        ("127.0.0.1", 15021, 2),
        ("10.0.0.7", 15021, 1),
    }


def _rename_roof(raw: dict[str, Any]) -> None:
    raw["pv"][0]["id"] = "roof2"


def test_renaming_an_asset_leaves_its_device_naming_nothing() -> None:
    problems = site_problems(hospital(_rename_roof))
    assert problems == ["devices[4].asset: names no battery, generator or PV array of the site (or 'grid'), got 'roof'"]


WIRING_CASES: dict[str, tuple[Mutation, str]] = {
    "unknown map name": (device(BESS1, map="nope-inverter"), "devices[0].map: no shipped register map of that name"),
    "missing map file": (device(BESS1, map="maps/nope.yaml"), "devices[0].map: cannot read file"),
    "pv map on a battery": (
        device(BESS1, map="generic-pv-inverter"),
        "devices[0].map: 'generic-pv-inverter' is a pv_inverter map, battery_inverter needed",
    ),
    "battery map on a genset": (
        device(DG2, map="generic-battery-inverter"),
        "devices[3].map: 'generic-battery-inverter' is a battery_inverter map, genset_controller needed",
    ),
    "feeder map on the grid": (
        device(METER, map="generic-load-feeder"),
        "devices[5].map: 'generic-load-feeder' is a load_feeder map, grid_meter needed",
    ),
    "meter map on the feeders": (
        device(FEEDERS, map="generic-grid-meter"),
        "devices[6].map: 'generic-grid-meter' is a grid_meter map, load_feeder needed",
    ),
    "victron system map on a battery": (
        device(BESS1, map="victron-gx-system"),
        "devices[0].map: 'victron-gx-system' is a energy_system map, battery_inverter needed",
    ),
    "sunspec battery model map on a battery": (
        device(BESS2, map="sunspec-124"),
        "devices[1].map: 'sunspec-124' has model offsets (SunSpec): use `microgrid scan`",
    ),
    "sunspec inverter model map on the pv": (
        device(ROOF, map="sunspec-103"),
        "devices[4].map: 'sunspec-103' has model offsets (SunSpec): use `microgrid scan`",
    ),
    "sunspec battery model of another class": (
        device(BESS1, map="sunspec-802"),
        "devices[0].map: 'sunspec-802' is a battery map, battery_inverter needed",
    ),
}


@pytest.mark.parametrize(("mutate", "problem"), WIRING_CASES.values(), ids=WIRING_CASES.keys())
def test_wiring_problems_name_the_device(mutate: Mutation, problem: str) -> None:
    problems = wiring_problems(hospital(mutate))
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_every_wiring_problem_is_listed_at_once() -> None:
    mutate = both(device(BESS1, map="generic-pv-inverter"), device(DG1, map="nope"), device(ROOF, map="sunspec-101"))
    problems = wiring_problems(hospital(mutate))
    assert [p.split(": ", 1)[0] for p in problems] == ["devices[0].map", "devices[2].map", "devices[4].map"]


def test_other_genset_maps_fit_a_genset() -> None:
    site = site_from_dict(hospital(device(DG1, map="dse-gencomm", unit=10)))
    assert check_wiring(site)["dg1-controller"].name == "dse-gencomm"


def test_a_map_file_is_loaded_and_its_own_problems_are_named(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parent.parent / "models/devices/generic-pv-inverter.yaml").read_text()
    good = tmp_path / "my-pv.yaml"
    good.write_text(text.replace("name: generic-pv-inverter", "name: my-pv"), encoding="utf-8")
    site = site_from_dict(hospital(device(ROOF, map=str(good))))
    assert check_wiring(site)["roof-inverter"].name == "my-pv"
    bad = tmp_path / "bad-pv.yaml"
    bad.write_text(text.replace('scale: 0.01, unit: "%", access: read_write', 'unit: "%", access: read_write, x: 1'))
    problems = wiring_problems(hospital(device(ROOF, map=str(bad))))
    assert len(problems) == 1 and problems[0].startswith("devices[4].map: points[") and "unknown key" in problems[0]


def _microgrid(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, as a subprocess."""
    command = [sys.executable, "-m", "microgrid", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120, cwd=cwd)


def _validate(tmp_path: Path, raw: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return _microgrid("validate", str(path))


def test_validate_exits_2_for_a_map_of_the_wrong_class(tmp_path: Path) -> None:
    proc = _validate(tmp_path, hospital(device(BESS1, map="generic-pv-inverter")))
    assert proc.returncode == 2, proc.stderr
    assert "devices[0].map: 'generic-pv-inverter' is a pv_inverter map, battery_inverter needed" in proc.stderr
    assert proc.stdout == ""


def test_validate_exits_2_for_a_shared_endpoint(tmp_path: Path) -> None:
    proc = _validate(tmp_path, hospital(device(DG2, unit=1)))
    assert proc.returncode == 2, proc.stderr
    assert "devices[3].unit: 127.0.0.1:15023 unit 1 already used by 'dg1-controller'" in proc.stderr


def test_a_map_path_is_relative_to_the_site_file_not_the_working_directory(tmp_path: Path) -> None:
    """Issue 12: ``map: maps/bat.yaml`` was looked up in the working directory."""
    import shutil

    from microgrid.resources import shipped

    (tmp_path / "maps").mkdir()
    shutil.copy(str(shipped("models", "devices", "generic-battery-inverter.yaml")), tmp_path / "maps" / "bat.yaml")
    path = tmp_path / "site.yaml"
    raw = hospital(device(BESS1, map="maps/bat.yaml"))
    raw["grid"]["schedule"]["source"] = str(shipped("data", "schedules", "kharkiv-2026-01-15.csv"))
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _microgrid("validate", str(path), cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr


def test_sim_refuses_to_serve_beyond_loopback_unless_asked(tmp_path: Path) -> None:
    """Issue 12: `microgrid sim` served 0.0.0.0 (every interface) while its help said loopback."""
    raw = hospital()
    raw["devices"][0]["host"] = "0.0.0.0"
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    proc = _microgrid("sim", str(path), "--duration-s", "0.1")
    assert proc.returncode == 2, proc.stderr
    assert "devices bind 0.0.0.0, beyond loopback" in proc.stderr and "--allow-remote" in proc.stderr


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)
"""A "billion laughs": 9 levels of 9 aliases, ~340 bytes, 9⁹ strings once expanded."""


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    """Issue 12: a 340-byte alias bomb kept `validate` busy > 120 s (the error message expanded it)."""
    path = tmp_path / "site.yaml"
    path.write_text(BOMB, encoding="utf-8")
    assert len(BOMB) < 400
    proc = _microgrid("validate", str(path))
    assert proc.returncode == 2, proc.stderr
    assert "aliases (*name) expand to" in proc.stderr and "refused" in proc.stderr
    assert len(proc.stderr) < 2_000


def test_aliases_and_merge_keys_of_a_normal_size_still_load(tmp_path: Path) -> None:
    from microgrid.yamlio import expanded_size, load_yaml

    path = tmp_path / "x.yaml"
    path.write_text("base: &b {x: 1, y: [1, 2]}\nuse: {<<: *b, y: [3]}\nagain: *b\n", encoding="utf-8")
    doc = load_yaml(path)
    assert doc["use"] == {"x": 1, "y": [3]} and doc["again"] == {"x": 1, "y": [1, 2]}
    # the top mapping and its 3 keys; base and again: itself, 2 keys, 1, [1, 2] (3); use: 1 + 2 + 1 + [3] (2)
    assert expanded_size(doc) == 1 + 3 + 7 + 6 + 7


def test_validate_names_a_schedule_file_that_does_not_exist(tmp_path: Path) -> None:
    """Issue 12: `validate` accepted a site whose outage schedule file does not exist."""
    raw = hospital()
    raw["grid"]["schedule"]["source"] = "no-such-schedule.csv"
    proc = _validate(tmp_path, raw)
    assert proc.returncode == 2, proc.stderr
    assert "grid.schedule.source" in proc.stderr and "no-such-schedule.csv" in proc.stderr
    assert "no such file or folder" in proc.stderr
