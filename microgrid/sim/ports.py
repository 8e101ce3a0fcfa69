"""Free loopback ports for simulated sites (the demo, tests and benchmarks)."""

from __future__ import annotations

import socket
from contextlib import ExitStack
from typing import Any

from microgrid.site import Site

__all__ = ["free_ports", "on_free_ports"]


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 now (bound together, then released).

    Another process may take one before it is bound again: servers that must not fail
    retry with fresh ports.
    """
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def on_free_ports(site: Site, **overrides: Any) -> Site:
    """``site`` with every device endpoint moved to a free port (devices sharing a port still share
    one), and ``overrides`` (e.g. ``timeout_s=0.2``) applied to every device."""
    old = sorted({d.port for d in site.devices})
    new = dict(zip(old, free_ports(len(old)), strict=True))
    devices = tuple(d.model_copy(update={"port": new[d.port], **overrides}) for d in site.devices)
    return site.model_copy(update={"devices": devices})
