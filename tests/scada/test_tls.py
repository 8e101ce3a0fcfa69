"""Modbus/TCP Security: TLS 1.2+ with mutual X.509 authentication, roles from the subject mapping file.

Certificates are made here with ``cryptography``: a CA, the server's certificate, an ``operator`` and
a ``viewer`` client, and a client signed by another CA. A client without a certificate cannot connect,
nor one the CA did not sign; a viewer reads but its write gets exception 01; an operator's command is
queued under its certificate's subject.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest

pytest.importorskip("cryptography")
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pymodbus.client import AsyncModbusTlsClient

from microgrid.profiles import Profiles
from microgrid.scada import options
from microgrid.scada.security import ROLE_OID, role_from_der
from microgrid.site import Site
from tests.scada.conftest import ScadaRig, run_scada

Issued = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def issue(name: str, ca: Issued | None = None, *, server: bool = False, role: str | None = None) -> Issued:
    """A certificate for CN=``name`` (self-signed CA when ``ca`` is None), valid for a day; ``role`` in the
    Modbus/TCP Security role extension (a DER UTF8String)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = ca if ca else (None, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if role is not None:
        utf8 = bytes([0x0C, len(role.encode())]) + role.encode()
        extension = x509.UnrecognizedExtension(x509.ObjectIdentifier(ROLE_OID), utf8)
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def save(folder: Path, stem: str, issued: Issued) -> tuple[Path, Path]:
    cert, key = issued
    crt, pem = folder / f"{stem}.crt", folder / f"{stem}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))  # fmt: skip
    return crt, pem


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    ca = issue("microgrid test CA")
    save(folder, "ca", ca)
    save(folder, "server", issue("localhost", ca, server=True))
    save(folder, "bms", issue("bms-1", ca))
    save(folder, "hmi", issue("hmi-lobby", ca))
    save(folder, "stranger", issue("bms-1", issue("another CA")))  # the right name, the wrong CA
    save(folder, "plc", issue("plc-water", ca, role="operator"))  # roles from the certificates alone
    save(folder, "kiosk", issue("kiosk", ca, role="viewer"))
    save(folder, "odd", issue("odd", ca, role="admin"))  # a role the server does not know
    (folder / "roles.yaml").write_text("CN=bms-1: operator\nhmi-lobby: viewer\n")
    return folder


def client_context(pki: Path, who: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki / "ca.crt"))
    if who is not None:
        context.load_cert_chain(pki / f"{who}.crt", pki / f"{who}.key")
    return context


async def tls_read_write(port: int, context: ssl.SSLContext) -> tuple[object, object]:
    """(a read of the mode, a write of emergency on) by a TLS client; an exception when it cannot connect."""
    client = AsyncModbusTlsClient("localhost", port=port, sslctx=context, timeout=2, retries=0)
    try:
        if not await client.connect():
            raise ConnectionError("TLS connection refused")
        read = await client.read_holding_registers(100, count=1, device_id=1)
        write = await client.write_register(201, 1, device_id=1)
        return read, write
    finally:
        client.close()


async def refused(port: int, context: ssl.SSLContext) -> bool:
    """True when a TLS client with ``context`` cannot read (the handshake fails, however pymodbus says it)."""
    try:
        read, _ = await tls_read_write(port, context)
    except Exception:
        return True
    return bool(read.isError())  # type: ignore[attr-defined]


def test_roles_and_refused_clients_over_tls(tcp_hospital: Site, winter: Profiles, tmp_path: Path, pki: Path) -> None:
    settings = options("127.0.0.1:1", writes=True, tls_dir=pki)

    async def body(s: ScadaRig) -> None:
        await s.cycle()
        port = s.scada.options.port
        for who in (None, "stranger"):  # no certificate; a certificate the CA did not sign
            assert await refused(port, client_context(pki, who)), who
        read, write = await tls_read_write(port, client_context(pki, "hmi"))
        assert read.registers == [1]  # type: ignore[attr-defined]
        assert write.isError() and write.exception_code == 1  # type: ignore[attr-defined]
        assert s.store.actions().empty
        read, write = await tls_read_write(port, client_context(pki, "bms"))
        assert not write.isError()  # type: ignore[attr-defined]
        assert s.store.actions()["by"].tolist() == ["scada:CN=bms-1"]
        _, write = await tls_read_write(port, client_context(pki, "kiosk"))
        assert write.isError() and write.exception_code == 1  # type: ignore[attr-defined]
        assert await refused(port, client_context(pki, "odd"))
        _, write = await tls_read_write(port, client_context(pki, "plc"))
        assert not write.isError()  # type: ignore[attr-defined]
        assert s.store.actions()["by"].tolist() == ["scada:CN=bms-1", "scada:CN=plc-water"]
        report = await s.cycle()
        assert report.emergency.get("active") is True
        await asyncio.sleep(0)

    run_scada(tcp_hospital, winter, tmp_path, body, writes=True, tls=settings.tls, roles=settings.roles)


@pytest.mark.parametrize("critical", [False, True])
@pytest.mark.parametrize("role", ["operator", "viewer", "a role of more than 127 bytes " * 6])
def test_the_role_extension_is_read_from_der(role: str, critical: bool) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    now = dt.datetime.now(dt.UTC)
    raw = role.encode()
    length = bytes([len(raw)]) if len(raw) < 0x80 else bytes([0x81, len(raw)])
    extension = x509.UnrecognizedExtension(x509.ObjectIdentifier(ROLE_OID), bytes([0x0C]) + length + raw)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(extension, critical=critical).sign(key, hashes.SHA256())
    )  # fmt: skip
    assert role_from_der(cert.public_bytes(serialization.Encoding.DER)) == role
    plain = issue("no role")[0].public_bytes(serialization.Encoding.DER)
    assert role_from_der(plain) is None
