"""The generic point names the code uses exist in the device profiles, and no module spells one out."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

import microgrid
from microgrid import point_names
from microgrid.point_names import FEEDER_NUMBERS, feeder_closed, feeder_command, feeder_command_number, feeder_power_kw

PACKAGE = Path(microgrid.__file__).parent
DEVICES = PACKAGE.parent / "models" / "devices"


def _profile_points() -> dict[str, set[str]]:
    """Generic profile file → its point names, read from the YAML itself (not through our loader)."""
    out = {}
    for path in sorted(DEVICES.glob("generic-*.yaml")):
        out[path.stem] = {p["name"] for p in yaml.safe_load(path.read_text())["points"]}
    return out


def _constants() -> dict[str, str]:
    return {n: getattr(point_names, n) for n in point_names.__all__ if n.isupper() and n != "FEEDER_NUMBERS"}


def test_the_five_generic_profiles_are_read() -> None:
    profiles = _profile_points()
    assert len(profiles) == 5
    assert "soc_pct" in profiles["generic-battery-inverter"]
    assert "feeder_4_command" in profiles["generic-load-feeder"]


@pytest.mark.parametrize("name", sorted(_constants()))
def test_every_constant_names_a_point_of_a_generic_profile(name: str) -> None:
    value = _constants()[name]
    assert value == name.lower(), "a constant is spelt as its point"
    assert any(value in points for points in _profile_points().values()), f"{value!r} is in no generic profile"


def test_feeder_points_exist_for_every_feeder_number() -> None:
    feeder = _profile_points()["generic-load-feeder"]
    for n in FEEDER_NUMBERS:
        assert {feeder_power_kw(n), feeder_closed(n), feeder_command(n)} <= feeder
    assert feeder_power_kw(len(FEEDER_NUMBERS) + 1) not in feeder


def test_feeder_command_number_parses_only_relay_commands() -> None:
    assert feeder_command_number("feeder_3_command") == 3
    assert feeder_command_number(feeder_command(12)) == 12
    for name in ("feeder_3_closed", "feeder_x_command", "run_command", "feeder_3_command_x", "xfeeder_3_command"):
        assert feeder_command_number(name) is None


def _bare_names(path: Path, names: set[str]) -> list[str]:
    """String literals in ``path`` (docstrings left out) that spell one of ``names``."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in names and id(node) not in docs
    ]


def test_no_module_of_the_device_side_spells_a_point_name() -> None:
    """telemetry, control, sim and forecast name generic points only through :mod:`microgrid.point_names`."""
    names = set().union(*_profile_points().values())
    found = [
        hit
        for package in ("telemetry", "control", "sim", "forecast")
        for path in sorted((PACKAGE / package).rglob("*.py"))
        for hit in _bare_names(path, names)
    ]
    assert found == []
