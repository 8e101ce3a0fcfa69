"""The controller's own device connections over Modbus/TCP Security, where a device's ``devices:`` entry
says so (``tls: {ca, cert, key}``, paths relative to the site file): the simulator serves that device over
TLS 1.2+ requiring a client certificate from the CA; the controller reads it; without the right
certificate it cannot."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("cryptography")

from microgrid.profiles import read_profiles
from microgrid.sim.ports import free_ports
from microgrid.sim.server import SimulatedSite
from microgrid.site import read_site
from microgrid.telemetry.registers import Quality
from microgrid.telemetry.wiring import connect
from tests.conftest import HOSPITAL, WINTER
from tests.scada.test_tls import issue, save


def site_with_tls(folder: Path, **tls: str) -> Path:
    """The hospital on free ports, bess1's inverter over TLS with ``tls`` (paths relative to the site file)."""
    raw: dict[str, Any] = yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))
    old = sorted({d["port"] for d in raw["devices"]})
    new = dict(zip(old, free_ports(len(old)), strict=True))
    for device in raw["devices"]:
        device["port"] = new[device["port"]]
        device |= {"timeout_s": 1.0, "retries": 0}
        if device["id"] == "bess1-inverter":
            device["tls"] = tls
    raw["grid"]["schedule"]["source"] = str(HOSPITAL.parent / raw["grid"]["schedule"]["source"])
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


async def soc_quality(path: Path) -> Quality:
    """Serve the site (bess1's endpoint over TLS, client certificates from pki/ca.crt) and read bess1's SOC."""
    site = read_site(path)
    pki = path.parent / "pki"
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1_2
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_cert_chain(pki / "device.crt", pki / "device.key")
    server.load_verify_locations(pki / "ca.crt")
    bess1 = next(d for d in site.devices if d.id == "bess1-inverter")
    profiles = read_profiles(WINTER, site)
    async with SimulatedSite(site, profiles, speed=None, tls={(bess1.host, bess1.port): server}):
        devices = connect(site)
        try:
            return (await devices.devices["bess1-inverter"].read())["soc_pct"].quality
        finally:
            devices.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    pki = tmp_path / "pki"
    pki.mkdir()
    ca = issue("site CA")
    save(pki, "ca", ca)
    save(pki, "device", issue("bess1-inverter", ca, server=True))
    save(pki, "controller", issue("microgrid controller", ca))
    save(pki, "stranger", issue("microgrid controller", issue("another CA")))
    return tmp_path


def test_a_device_over_modbus_tcp_security_is_read(folder: Path) -> None:
    path = site_with_tls(folder, ca="pki/ca.crt", cert="pki/controller.crt", key="pki/controller.key")
    assert asyncio.run(soc_quality(path)) is Quality.OK


def test_without_a_certificate_from_its_ca_the_device_cannot_be_read(folder: Path) -> None:
    path = site_with_tls(folder, ca="pki/ca.crt", cert="pki/stranger.crt", key="pki/stranger.key")
    assert asyncio.run(soc_quality(path)) is Quality.COMMS_LOST


def test_a_tls_entry_whose_files_are_missing_is_a_config_error(folder: Path) -> None:
    from microgrid.errors import ConfigError

    path = site_with_tls(folder, ca="pki/nope.crt", cert="pki/controller.crt", key="pki/controller.key")
    with pytest.raises(ConfigError, match=r"nope\.crt"):
        connect(read_site(path))
