"""The controller served to SCADA, BMS and PLCs over Modbus TCP / Modbus/TCP Security.

The point map is data (``models/scada/microgrid-scada.yaml``, :mod:`microgrid.scada.pointmap`);
:mod:`~microgrid.scada.values` turns a cycle into point values, :mod:`~microgrid.scada.commands`
SCADA's writes into operator actions, :mod:`~microgrid.scada.server` keeps the snapshot, the
checks, the rate limit and the watchdog, :mod:`~microgrid.scada.endpoint` puts it on the wire
(pymodbus), :mod:`~microgrid.scada.security` says who a client is. :func:`serve_runner` serves a
running controller; :func:`options` builds the settings from the command line's ``--scada*`` options.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from microgrid.errors import ConfigError
from microgrid.scada.endpoint import serving
from microgrid.scada.security import load_roles, server_context
from microgrid.scada.server import LOOPBACK, Options, ScadaServer
from microgrid.store import Store

__all__ = ["LOOPBACK", "Options", "ScadaServer", "options", "serve_runner"]


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--scada: HOST:PORT, e.g. 127.0.0.1:1502, got {text!r}")
    return host.strip("[]"), int(port)


def options(
    endpoint: str,
    *,
    writes: bool = False,
    allow: Sequence[str] = (),
    timeout_s: float | None = None,
    tls_dir: Path | None = None,
) -> Options:
    """Settings from the CLI: ``HOST:PORT``, writes on, allowlist CIDRs (default loopback only), the
    watchdog's timeout, and a TLS folder (``server.crt``, ``server.key``, ``ca.crt``; ``roles.yaml`` optional).

    Raises
    ------
    ValueError
        A malformed address or network.
    ConfigError
        An unreadable TLS folder or roles file.
    """
    host, port = _endpoint(endpoint)
    networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in allow) or LOOPBACK
    tls, roles = None, None
    if tls_dir is not None:
        try:
            tls = server_context(tls_dir / "server.crt", tls_dir / "server.key", tls_dir / "ca.crt")
        except OSError as exc:
            raise ConfigError(str(tls_dir), [f"server.crt, server.key and ca.crt: {exc}"]) from None
        roles = load_roles(tls_dir / "roles.yaml") if (tls_dir / "roles.yaml").exists() else {}
    return Options(host, port, writes, networks, timeout_s, tls=tls, roles=roles)


@contextlib.asynccontextmanager
async def serve_runner(runner: Any, settings: Options) -> AsyncIterator[ScadaServer]:
    """Serve ``runner``'s controller (a :class:`~microgrid.control.runner.Runner`) while the block runs:
    its cycles published, SCADA's commands queued in its store."""
    store = runner.store
    sink = None if store is None else Store(store.path, retention_days=None)  # the server thread's own connection
    try:
        scada = ScadaServer(runner.controller.site, settings, sink)
        scada.attach(runner)
        async with serving(scada):
            yield scada
    finally:
        if sink is not None:
            sink.close()
