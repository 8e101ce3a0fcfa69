"""Certificates for the city's broker (``microgrid centre broker-config --make-certs``): a CA, the broker's server
certificate and one client certificate per identity (each island's id, and ``centre``), made with the
``cryptography`` package (optional: a clear error when it is missing).

Keys are EC P-256, written unencrypted in PKCS#8 PEM with mode 0600 (the key is the identity: keep it on its
island). Files that exist are kept, not re-made: adding an island to the list issues its certificate with the
same CA and leaves every other island's certificate valid.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

__all__ = ["Made", "make_pki"]

CA_DAYS = 3650
"""The CA's validity [days] (ten years: re-issuing it means re-issuing every island's certificate)."""


@dataclass(frozen=True)
class Made:
    """What :func:`make_pki` did: the files written and the files it found and kept."""

    written: list[Path]
    kept: list[Path]


def _crypto() -> Any:
    try:
        import cryptography  # noqa: PLC0415 - optional, loaded only for --make-certs
    except ImportError:
        raise ValueError(
            "--make-certs needs the 'cryptography' package (pip install 'cryptography>=42,<47'); "
            "or make the CA, server and client certificates with your own PKI (docs/situation-centre.md)"
        ) from None
    return cryptography


def _write_key(path: Path, key: EllipticCurvePrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _issue(
    name: str,
    days: int,
    issuer: tuple[x509.Certificate, EllipticCurvePrivateKey] | None,
    *,
    server_names: list[str] | None = None,
) -> tuple[x509.Certificate, EllipticCurvePrivateKey]:
    """A certificate for CN=``name`` valid ``days`` [days] from 5 minutes ago: a self-signed CA without
    ``issuer``; a server certificate (SANs ``server_names``) or a client certificate otherwise."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is None:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)  # cert and CRL signing
        builder = builder.add_extension(usage, critical=True)
    elif server_names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(n) for n in server_names]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _san(name: str) -> x509.GeneralName:
    from cryptography import x509  # noqa: PLC0415

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _save(folder: Path, stem: str, issued: tuple[x509.Certificate, EllipticCurvePrivateKey]) -> list[Path]:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    crt, key = folder / f"{stem}.crt", folder / f"{stem}.key"
    _write_key(key, issued[1])
    crt.write_bytes(issued[0].public_bytes(serialization.Encoding.PEM))
    return [crt, key]


def _load_ca(folder: Path) -> tuple[x509.Certificate, EllipticCurvePrivateKey]:
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    crt, key = folder / "ca.crt", folder / "ca.key"
    try:
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{folder}: cannot use the existing CA ({crt}, {key}): {exc}") from None
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key}: not an EC private key (the CA's key as --make-certs writes it)")
    return cert, private


def _names_of(path: Path) -> list[str] | None:
    """The subject alternative names of the certificate in ``path`` (None when it cannot be read)."""
    from cryptography import x509  # noqa: PLC0415

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    return [str(n.value) for n in names]


def make_pki(folder: Path, identities: list[str], server_names: list[str] | None, days: int) -> Made:
    """Make what is missing in ``folder``: ``ca.crt``/``ca.key`` (CN ``microgrid broker CA``), ``server.crt``/
    ``server.key`` (SANs ``server_names``, default ``localhost`` and ``127.0.0.1``; made again when names are
    given that differ from the existing certificate's: the islands trust the CA, not this certificate) and
    ``clients/<identity>.crt``/``.key`` (CN = the identity, client authentication) for each of ``identities``;
    valid ``days`` [days] (the CA: :data:`CA_DAYS`). ValueError without ``cryptography`` or with an unusable
    existing CA."""
    _crypto()
    server = folder / "server.crt"
    if server_names and server.exists() and _names_of(server) != server_names:
        server.unlink()  # made again below, with the names asked for
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    kept: list[Path] = []
    if (folder / "ca.crt").exists() or (folder / "ca.key").exists():
        ca = _load_ca(folder)
        kept += [folder / "ca.crt", folder / "ca.key"]
    else:
        ca = _issue("microgrid broker CA", CA_DAYS, None)
        written += _save(folder, "ca", ca)
    (folder / "clients").mkdir(exist_ok=True)
    names = server_names or ["localhost", "127.0.0.1"]
    wanted = [("server", "microgrid broker", names), *((f"clients/{i}", i, None) for i in identities)]
    for stem, name, sans in wanted:
        if (folder / f"{stem}.crt").exists():
            kept += [folder / f"{stem}.crt", folder / f"{stem}.key"]
            continue
        written += _save(folder, stem, _issue(name, days, ca, server_names=sans))
    return Made(written, kept)
