"""The SCADA server on the wire: pymodbus's Modbus TCP (or TLS) server in front of a :class:`ScadaServer`.

pymodbus serves the frames; every request reaches :meth:`ScadaServer.read` / :meth:`ScadaServer.write`
through the simulator's action hook, with the connection's :class:`~microgrid.scada.security.Client`
(set per request by the connection handler, which also closes connections from addresses outside
the allowlist and TLS clients without a role). Functions 3 and 4 read, 6 and 16 write; any other
gets exception 01. Every unit id answers (1 by convention; gateways often send 0 or 255).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import ipaddress
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer, ModbusTlsServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from microgrid.scada.security import Client, client_of
from microgrid.scada.server import ScadaServer

__all__ = ["serving"]

log = logging.getLogger("microgrid.scada")
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

_CLIENT: contextvars.ContextVar[Client | None] = contextvars.ContextVar("scada_client", default=None)
_READ, _WRITE = frozenset({3, 4}), frozenset({6, 16})
WATCH_S = 1.0
"""How often [s] the watchdog looks at SCADA's heartbeat."""


class _Handler(ServerRequestHandler):
    """One connection: admitted (allowlist, TLS role) when it opens; its client set for each request."""

    scada: ScadaServer
    client: Client | None = None

    def callback_connected(self) -> None:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        cert = self.transport.get_extra_info("peercert") if self.transport else None
        why = self._refusal(peer, cert)
        if why is not None:
            log.warning("SCADA connection from %s closed: %s", peer[0] if peer else "?", why)
            self.scada.closed.append((str(peer[0]) if peer else "?", why))
            self.close()
            return
        if self.client is not None:
            log.info("SCADA client connected: %s (%s)", self.client.identity, self.client.role)
        super().callback_connected()

    def _refusal(self, peer: Any, cert: dict[str, Any] | None) -> str | None:
        try:
            address = ipaddress.ip_address(str(peer[0]).split("%")[0])
        except (TypeError, ValueError, IndexError):
            return "no peer address"
        if not any(address in network for network in self.scada.options.allow):
            return "not in the allowlist (--scada-allow)"
        if self.scada.options.tls is not None and not cert:
            return "no client certificate (Modbus/TCP Security)"
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self.client = client_of(peer, cert if self.scada.options.tls else None, self.scada.options.roles, der)
        return "its certificate has no role (roles.yaml, role extension)" if self.client is None else None

    async def handle_request(self) -> None:
        token = _CLIENT.set(self.client)
        try:
            await super().handle_request()  # type: ignore[no-untyped-call]
        finally:
            _CLIENT.reset(token)


def _device(scada: ScadaServer) -> SimDevice:
    block = SimData(0, count=scada.span + 1, values=0, datatype=DataType.REGISTERS)

    async def action(  # noqa: PLR0917 - the signature pymodbus calls
        func_code: int, start: int, address: int, count: int, registers: list[int], values: Any
    ) -> ExcCodes | None:
        client = _CLIENT.get()
        if client is None:
            return ExcCodes.DEVICE_FAILURE
        if values is not None and func_code in _WRITE:
            code = scada.write(client, address, [int(v) for v in values])
            if code is not None:
                return ExcCodes(code)
            values[:] = scada.read(address, len(values))  # what pymodbus stores and echoes: the value accepted
            return None
        if values is not None or func_code not in _READ | _WRITE:
            return ExcCodes.ILLEGAL_FUNCTION
        registers[address - start : address - start + count] = scada.read(address, count)
        return None

    return SimDevice(0, simdata=[block], action=action)  # id 0: pymodbus's default device, any unit id answers


def _server(scada: ScadaServer) -> ModbusTcpServer:
    device = _device(scada)
    address = (scada.options.host, scada.options.port)

    def handler(owner: ModbusTcpServer) -> _Handler:
        connection = _Handler(owner, owner.trace_packet, owner.trace_pdu, owner.trace_connect)  # type: ignore[no-untyped-call]
        connection.scada = scada
        return connection

    if scada.options.tls is not None:
        server: ModbusTcpServer = ModbusTlsServer(device, address=address, sslctx=scada.options.tls)
    else:
        server = ModbusTcpServer(device, address=address)
    server.callback_new_connection = lambda: handler(server)  # type: ignore[method-assign]
    return server


async def _watch(scada: ScadaServer) -> None:
    while True:
        await asyncio.sleep(WATCH_S)
        try:
            scada.check_watchdog()
        except Exception as exc:  # never stop watching
            log.error("SCADA watchdog: %r", exc)


@contextlib.asynccontextmanager
async def serving(scada: ScadaServer) -> AsyncIterator[ScadaServer]:
    """Serve ``scada`` on its address while the block runs, with its watchdog, in a thread of its own.

    The thread has its own event loop: the controller's loop may be busy (estimating, forecasting,
    writing to devices) and reads are answered all the same. The two threads share only the
    snapshot, which :meth:`ScadaServer.publish` replaces whole; the server's sink (a store) must be
    its own connection.

    Raises
    ------
    RuntimeError
        The address cannot be listened on.
    """
    ready: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = concurrent.futures.Future()
    thread = threading.Thread(target=_serve_in_thread, args=(scada, ready), name="scada-server", daemon=True)
    thread.start()
    loop, stop = await asyncio.wrap_future(ready)
    log.info("SCADA server on %s:%d (writes %s)", scada.options.host, scada.options.port, scada.options.writes)
    try:
        yield scada
    finally:
        loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join, 10.0)


def _serve_in_thread(
    scada: ScadaServer, ready: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]]
) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        try:
            server = _server(scada)
            await server.serve_forever(background=True)
        except Exception as exc:  # the caller raises it
            ready.set_exception(exc)
            return
        watchdog = asyncio.create_task(_watch(scada))
        ready.set_result((asyncio.get_running_loop(), stop))
        try:
            await stop.wait()
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            await server.shutdown()  # type: ignore[no-untyped-call]

    asyncio.run(main())
