"""Modbus TCP transport: one connection owner per endpoint, raw registers in and out.

Many field devices (genset controllers, older inverters) accept a single Modbus TCP client,
so every device on one ``host:port`` shares one :class:`ModbusTransport`, and its requests
are serialised by a lock. Every request has its own timeout; failures are retried a bounded
number of times with a reconnect in between, except a write that has left: a write whose answer
is lost may have been applied, so it is never sent again here (the device layer reads the register
back instead). Errors come out as :class:`CommsError` (no answer, connection lost, garbage),
:class:`NotSentError` (a :class:`CommsError`: no connection, the request never left) or
:class:`ExceptionCodeError` (the device answered with a Modbus exception code), never as pymodbus
types.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Literal, Protocol

from pymodbus.client import AsyncModbusTcpClient, AsyncModbusTlsClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from microgrid.errors import DeviceError

__all__ = ["CommsError", "Endpoint", "ExceptionCodeError", "ModbusTransport", "NotSentError", "Table", "Transport"]

log = logging.getLogger(__name__)
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # its own errors are re-raised as ours


class _GarbledFrameFilter(logging.Filter):
    """Demote asyncio's traceback for a garbled Modbus frame: the request fails as a CommsError."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ModbusException) and "data_received" in record.getMessage():
            log.debug("garbled frame from a device: %s", exc)
            return False
        return True


logging.getLogger("asyncio").addFilter(_GarbledFrameFilter())

Table = Literal["holding", "input"]

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class CommsError(DeviceError):
    """No valid answer: timeout, refused or dropped connection, malformed response.

    For a write, the device may have received and applied it (only :class:`NotSentError` says it did not).
    """


class NotSentError(CommsError):
    """No connection could be made: the request never left, a write certainly was not applied."""


class ExceptionCodeError(DeviceError):
    """The device answered with a Modbus exception code."""

    def __init__(self, code: int, what: str) -> None:
        self.code = code
        super().__init__(f"{what}: Modbus exception {code} ({EXCEPTION_NAMES.get(code, 'unknown')})")


@dataclass(frozen=True)
class Endpoint:
    """Where a device answers: host, TCP port and Modbus unit id (0-247)."""

    host: str = "127.0.0.1"
    port: int = 502
    unit: int = 1

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the connection owner is keyed by."""
        return self.host, self.port


class Transport(Protocol):
    """What a :class:`~microgrid.telemetry.devices.Device` needs of the way to its registers: raw registers
    in and out, errors as :class:`CommsError`, :class:`NotSentError` or :class:`ExceptionCodeError`.
    :class:`ModbusTransport` (TCP) and :class:`microgrid.sim.memory.MemoryTransport` (the simulator,
    in process) implement it."""

    host: str
    port: int

    async def read(self, unit: int, address: int, count: int, table: Table = "holding") -> list[int]:
        """``count`` registers of ``table`` from ``address``."""

    async def write(self, unit: int, address: int, registers: list[int]) -> None:
        """Write ``registers`` from ``address`` (holding registers); never resent once it has left."""

    def close(self) -> None:
        """Release the connection (a later request reconnects)."""


class ModbusTransport:
    """The single owner of the TCP connection to one ``host:port``.

    Parameters
    ----------
    timeout_s
        Per-request timeout [s].
    retries
        Extra attempts after a failed request (bounded); a reconnect precedes each.
    """

    def __init__(
        self, host: str, port: int, *, timeout_s: float = 0.5, retries: int = 1, sslctx: ssl.SSLContext | None = None
    ) -> None:
        self.host, self.port = host, port
        self.timeout_s, self.retries = timeout_s, retries
        self.sslctx = sslctx
        """Modbus/TCP Security (TLS) when given: the client context (CA, our certificate)."""
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self.close()
        if self.sslctx is not None:
            client: AsyncModbusTcpClient = AsyncModbusTlsClient(
                self.host, port=self.port, sslctx=self.sslctx, timeout=self.timeout_s, retries=0
            )
        else:
            client = AsyncModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0)
        try:
            ok = await asyncio.wait_for(client.connect(), timeout=self.timeout_s * 2)
        except (TimeoutError, OSError, ModbusException) as exc:
            client.close()
            raise CommsError(f"{self.host}:{self.port}: cannot connect ({exc or type(exc).__name__})") from exc
        if not ok:
            client.close()
            raise CommsError(f"{self.host}:{self.port}: connection refused or timed out")
        self._client = client
        return client

    async def read(self, unit: int, address: int, count: int, table: Table = "holding") -> list[int]:
        """Read ``count`` registers from ``address`` (0-based protocol address)."""
        what = f"{self.host}:{self.port} unit {unit} read {table} {address}+{count}"
        response = await self._request(what, unit, "read", table=table, address=address, payload=count)
        registers = list(getattr(response, "registers", []) or [])
        if len(registers) != count:
            async with self._lock:  # never drop a connection under another device's request
                self.close()
            raise CommsError(f"{what}: got {len(registers)} registers")
        return registers

    async def write(self, unit: int, address: int, registers: list[int]) -> None:
        """Write holding registers from ``address`` (function 16, or 6 for one register)."""
        what = f"{self.host}:{self.port} unit {unit} write {address}+{len(registers)}"
        await self._request(what, unit, "write", table="holding", address=address, payload=registers)

    async def _request(
        self, what: str, unit: int, kind: str, *, table: Table, address: int, payload: int | list[int]
    ) -> ModbusPDU:
        last: Exception | None = None
        async with self._lock:
            for attempt in range(self.retries + 1):
                try:
                    client = await self._connected()
                except CommsError as exc:  # nothing left: safe to try again, a write included
                    last = exc
                    log.debug("%s: attempt %d failed: %s", what, attempt + 1, exc)
                    continue
                response, last = await self._attempt(
                    client, what, kind, table=table, unit=unit, address=address, payload=payload
                )
                if response is not None:
                    return response
                log.debug("%s: attempt %d failed: %s", what, attempt + 1, last)
                self.close()
                if kind == "write":  # it left: the device may have applied it, never send it twice
                    raise CommsError(f"{what}: no valid answer (the write may have been applied): {last}")
        if kind == "write":  # no attempt could connect: it never left
            raise NotSentError(f"{what}: not sent after {self.retries + 1} attempt(s): {last}")
        raise CommsError(f"{what}: no valid answer after {self.retries + 1} attempt(s): {last}")

    async def _attempt(
        self,
        client: AsyncModbusTcpClient,
        what: str,
        kind: str,
        *,
        table: Table,
        unit: int,
        address: int,
        payload: int | list[int],
    ) -> tuple[ModbusPDU | None, Exception | None]:
        """One request on a connected client: (the response, None), or (None, why it failed); a Modbus
        exception answer raises :class:`ExceptionCodeError`."""
        try:
            response = await asyncio.wait_for(
                _call(client, kind, table=table, unit=unit, address=address, payload=payload),
                timeout=self.timeout_s * 1.5,
            )
        except (TimeoutError, OSError, ModbusException) as exc:
            return None, exc
        if not response.isError():
            if kind == "write" and not _echoes(response, address, payload):
                return None, CommsError(f"{what}: garbled answer (it does not echo the write)")
            return response, None
        if code := int(getattr(response, "exception_code", 0) or 0):
            raise ExceptionCodeError(code, what)
        return None, CommsError(f"{what}: malformed response")

    def close(self) -> None:
        """Drop the connection (the next request reconnects)."""
        if self._client is not None:
            self._client.close()
            self._client = None


def _echoes(response: ModbusPDU, address: int, payload: int | list[int]) -> bool:
    """A write's answer echoes its address (and, function 16, its register count): another echo is a
    garbled frame, not a confirmation. The value echoed by function 6 is not compared: the read-back
    that follows every write tells what the register holds."""
    if getattr(response, "address", address) != address or not isinstance(payload, list):
        return False
    return len(payload) == 1 or int(getattr(response, "count", len(payload))) == len(payload)


async def _call(
    client: AsyncModbusTcpClient, kind: str, *, table: Table, unit: int, address: int, payload: int | list[int]
) -> ModbusPDU:
    if kind == "read":
        assert isinstance(payload, int)
        if table == "input":
            return await client.read_input_registers(address, count=payload, device_id=unit)
        return await client.read_holding_registers(address, count=payload, device_id=unit)
    assert isinstance(payload, list)
    if len(payload) == 1:
        return await client.write_register(address, payload[0], device_id=unit)
    return await client.write_registers(address, payload, device_id=unit)
