"""Who a SCADA client is: its address, its identity in the history, its role; TLS contexts for Modbus/TCP Security.

Over plain TCP a client is its address (``scada:127.0.0.1:50123``) with the ``operator`` role (writes
are still refused unless the server runs with ``--scada-writes``). Over TLS (Modbus/TCP Security,
TLS 1.2 or newer, the client's certificate required and checked against the CA given) a client is
its certificate's subject (``scada:CN=bms-1,O=Hospital 7``) and its role comes from a mapping file
(``roles.yaml``, optional; its entries take precedence)::

    # roles.yaml: certificate subject (RFC 4514, as printed) or its common name -> role
    CN=bms-1,O=Hospital 7: operator
    hmi-lobby: viewer

or else from the certificate's role extension as the Modbus/TCP Security specification defines it
(OID 1.3.6.1.4.1.50316.802.1, an ASN.1 UTF8String: :func:`role_from_der`). ``viewer`` reads;
``operator`` also commands. A certificate with no role either way, or another role, gets its
connection closed.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microgrid.errors import ConfigError
from microgrid.yamlio import load_yaml

__all__ = [
    "ROLES",
    "ROLE_OID",
    "Client",
    "RoleMap",
    "client_of",
    "load_roles",
    "role_from_der",
    "server_context",
    "subject_of",
]

ROLE_OID = "1.3.6.1.4.1.50316.802.1"
"""The Modbus/TCP Security role extension."""
_ROLE_OID_TLV = bytes([0x06, 0x0B, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x83, 0x89, 0x0C, 0x86, 0x22, 0x01])
""":data:`ROLE_OID` as DER (tag, length, 1.3 = 0x2B, then base-128 arcs)."""

ROLES = ("viewer", "operator")
RoleMap = dict[str, str]
"""Certificate subject or common name → role."""


@dataclass(frozen=True)
class Client:
    """One connected SCADA client."""

    identity: str
    """How the history names it (``by`` of its operator actions)."""
    address: str
    """Its IP address (the rate limit counts per address)."""
    role: str


def load_roles(path: Path) -> RoleMap:
    """The mapping file at ``path`` (module docstring); :class:`ConfigError` when it is not one."""
    raw = load_yaml(path)
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(str(path), ["a mapping of certificate subjects to roles (viewer, operator)"])
    problems = [f"{k}: role must be one of {', '.join(ROLES)}, got {v!r}" for k, v in raw.items() if v not in ROLES]
    if problems:
        raise ConfigError(str(path), problems)
    return {str(k): str(v) for k, v in raw.items()}


def subject_of(cert: dict[str, Any]) -> tuple[str, str]:
    """(RFC 4514 subject, common name) of a certificate as :meth:`ssl.SSLSocket.getpeercert` gives it."""
    parts = [(k, v) for rdn in cert.get("subject", ()) for k, v in rdn]
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C"}
    subject = ",".join(f"{short.get(k, k)}={v}" for k, v in reversed(parts))
    common = next((v for k, v in parts if k == "commonName"), "")
    return subject, common


def _der_length(data: bytes, at: int) -> tuple[int, int]:
    """(length, where the content starts) of the DER length at ``data[at]``."""
    first = data[at]
    if first < 0x80:
        return first, at + 1
    n = first & 0x7F
    return int.from_bytes(data[at + 1 : at + 1 + n], "big"), at + 1 + n


def role_from_der(der: bytes) -> str | None:
    """The role a DER certificate carries in the Modbus/TCP Security role extension (None when it has none).

    The extension is ``SEQUENCE { OID 1.3.6.1.4.1.50316.802.1, [BOOLEAN critical], OCTET STRING { UTF8String } }``.
    """
    at = der.find(_ROLE_OID_TLV)
    if at < 0:
        return None
    try:
        at += len(_ROLE_OID_TLV)
        if der[at] == 0x01:  # critical flag
            at += 2 + der[at + 1]
        if der[at] != 0x04:
            return None
        _, at = _der_length(der, at + 1)
        if der[at] != 0x0C:
            return None
        length, at = _der_length(der, at + 1)
        return der[at : at + length].decode("utf-8")
    except (IndexError, UnicodeDecodeError):
        return None


def client_of(
    peer: tuple[Any, ...] | None, cert: dict[str, Any] | None, roles: RoleMap | None, der: bytes | None = None
) -> Client | None:
    """The client at ``peer`` with TLS certificate ``cert`` (None over plain TCP; ``der``: its DER form, for the
    role extension); None when it has no known role."""
    host, port = (str(peer[0]), int(peer[1])) if peer else ("?", 0)
    if cert is None:
        return Client(f"scada:{host}:{port}", host, "operator")
    subject, common = subject_of(cert)
    role = (roles or {}).get(subject) or (roles or {}).get(common) or (role_from_der(der) if der else None)
    return Client(f"scada:{subject}", host, role) if role in ROLES else None


def server_context(certfile: Path, keyfile: Path, cafile: Path) -> ssl.SSLContext:
    """A server context for Modbus/TCP Security: TLS 1.2+, a client certificate signed by ``cafile`` required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(certfile, keyfile)
    context.load_verify_locations(cafile)
    return context
