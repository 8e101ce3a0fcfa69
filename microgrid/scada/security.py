"""Who a SCADA client is: its address, its identity in the history, its role; TLS contexts for Modbus/TCP Security.

Over plain TCP a client is its address (``scada:127.0.0.1:50123``) with the ``operator`` role (writes
are still refused unless the server runs with ``--scada-writes``). Over TLS (Modbus/TCP Security,
TLS 1.2 or newer, the client's certificate required and checked against the CA given) a client is
its certificate's subject (``scada:CN=bms-1,O=Hospital 7``) and its role comes from a mapping file::

    # scada-roles.yaml: certificate subject (RFC 4514, as printed) or its common name -> role
    CN=bms-1,O=Hospital 7: operator
    hmi-lobby: viewer

``viewer`` reads; ``operator`` also commands. A certificate the file does not name gets no role and
its connection is closed. (The specification's role extension, OID 1.3.6.1.4.1.50316.802.1, is not
read: Python's :mod:`ssl` does not expose certificate extensions.)
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microgrid.errors import ConfigError
from microgrid.yamlio import load_yaml

__all__ = ["ROLES", "Client", "RoleMap", "client_of", "load_roles", "server_context", "subject_of"]

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


def client_of(peer: tuple[Any, ...] | None, cert: dict[str, Any] | None, roles: RoleMap | None) -> Client | None:
    """The client at ``peer`` with TLS certificate ``cert`` (None over plain TCP); None when it has no role."""
    host, port = (str(peer[0]), int(peer[1])) if peer else ("?", 0)
    if cert is None:
        return Client(f"scada:{host}:{port}", host, "operator")
    subject, common = subject_of(cert)
    role = (roles or {}).get(subject) or (roles or {}).get(common)
    return None if role is None else Client(f"scada:{subject}", host, role)


def server_context(certfile: Path, keyfile: Path, cafile: Path) -> ssl.SSLContext:
    """A server context for Modbus/TCP Security: TLS 1.2+, a client certificate signed by ``cafile`` required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(certfile, keyfile)
    context.load_verify_locations(cafile)
    return context
