"""Modbus TCP transport: one connection owner per endpoint, raw registers in and out.

Many field devices (genset controllers, older inverters) accept a single Modbus TCP client,
so every device on one ``host:port`` shares one :class:`ModbusTransport`, and its requests
are serialised by a lock. Every request has its own timeout; failures are retried a bounded
number of times with a reconnect in between. Errors come out as :class:`CommsError` (no
answer, connection lost, garbage) or :class:`ExceptionCodeError` (the device answered with a
Modbus exception code), never as pymodbus types.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from microgrid.errors import DeviceError

__all__ = ["CommsError", "Endpoint", "ExceptionCodeError", "ModbusTransport", "Table"]

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
    """No valid answer: timeout, refused or dropped connection, malformed response."""


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


class ModbusTransport:
    """The single owner of the TCP connection to one ``host:port``.

    Parameters
    ----------
    timeout_s
        Per-request timeout [s].
    retries
        Extra attempts after a failed request (bounded); a reconnect precedes each.
    """

    def __init__(self, host: str, port: int, *, timeout_s: float = 0.5, retries: int = 1) -> None:
        self.host, self.port = host, port
        self.timeout_s, self.retries = timeout_s, retries
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self.close()
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
                    response = await asyncio.wait_for(
                        _call(client, kind, table=table, unit=unit, address=address, payload=payload),
                        timeout=self.timeout_s * 1.5,
                    )
                except ExceptionCodeError:
                    raise
                except (TimeoutError, OSError, ModbusException, CommsError) as exc:
                    last = exc
                    log.debug("%s: attempt %d failed: %s", what, attempt + 1, exc)
                    self.close()
                    continue
                if response.isError():
                    code = int(getattr(response, "exception_code", 0) or 0)
                    if code:
                        raise ExceptionCodeError(code, what)
                    last = CommsError(f"{what}: malformed response")
                    self.close()
                    continue
                return response
        raise CommsError(f"{what}: no valid answer after {self.retries + 1} attempt(s): {last}")

    def close(self) -> None:
        """Drop the connection (the next request reconnects)."""
        if self._client is not None:
            self._client.close()
            self._client = None


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
