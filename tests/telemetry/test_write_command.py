"""`microgrid write` (commissioning) says what became of a write: read back, applied after a lost answer,
or of unknown outcome (exit 4), against the simulated hospital served on free loopback ports in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from microgrid.cli import app
from microgrid.profiles import Profiles, read_profiles
from microgrid.sim.ports import free_ports
from microgrid.sim.server import Fault, SimulatedSite
from microgrid.site import Site, read_site
from tests.conftest import HOSPITAL, WINTER


@pytest.fixture
def site_file(tmp_path: Path) -> Path:
    raw: dict[str, Any] = yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))
    old = sorted({d["port"] for d in raw["devices"]})
    new = dict(zip(old, free_ports(len(old)), strict=True))
    for device in raw["devices"]:
        device |= {"port": new[device["port"]], "timeout_s": 0.5, "retries": 0}
    path = tmp_path / "hospital.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.fixture
def sim(site_file: Path) -> Iterator[SimulatedSite]:
    """The site served by a loop of its own in a thread (the command runs its own loop)."""
    site: Site = read_site(site_file)
    winter: Profiles = read_profiles(WINTER, site)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    served = SimulatedSite(site, winter, speed=None)
    asyncio.run_coroutine_threadsafe(served.start(), loop).result(10)
    try:
        yield served
    finally:
        asyncio.run_coroutine_threadsafe(served.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def write(site_file: Path, value: str) -> Any:
    args = ["write", str(site_file), "bess1-inverter", "power_setpoint_kw", value]
    return CliRunner().invoke(app, args, env={"COLUMNS": "250"})


def test_a_write_without_a_clear_outcome_exits_4_and_says_unknown(site_file: Path, sim: SimulatedSite) -> None:
    assert write(site_file, "20").exit_code == 0
    sim.faults["bess1-inverter"] = Fault(garbage=True)  # every answer garbled: the write's and the read-back's
    result = write(site_file, "30")
    assert result.exit_code == 4, result.output
    assert "power_setpoint_kw: outcome unknown: no clear answer" in result.output
    assert sim.plant.batteries["bess1"].setpoint_kw == 30.0  # it was applied all the same
    sim.faults["bess1-inverter"] = Fault(ignore_writes=True)
    result = write(site_file, "40")
    assert result.exit_code == 4 and "wrote 40.0, read back 30.0" in result.output
