"""A device = a register map + a transport + a unit id: typed reads and guarded writes.

:meth:`Device.read` returns one :class:`Measurement` per readable point, with a timestamp (UTC)
and a quality: ``ok``, ``out-of-range``, ``not-implemented`` (from the codec), ``stale`` (the
request failed; the last good value is given while it is younger than ``stale_after_s``) or
``comms-lost`` (no value). It never raises for a device that misbehaves.

:meth:`Device.write` writes only points marked writable, refuses values outside the point's
range and outside the limits the caller passes (the site's), reads every written point back
and reports mismatches. A setpoint equal to the last one written (and read back) is not
rewritten until ``keepalive_s`` has passed (flash wear), except the map's keep-alive point, which
is meant to change on every write; a mismatched write is retried on the next call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from microgrid.telemetry.maps import RegisterMap
from microgrid.telemetry.registers import Decoded, EncodeError, Quality, Value, encode
from microgrid.telemetry.transport import CommsError, ExceptionCodeError, ModbusTransport

__all__ = ["Device", "Measurement", "WriteReport"]


@dataclass(frozen=True, slots=True)
class Measurement:
    """One point's value [in ``unit``], its quality and when it was read (UTC)."""

    name: str
    value: Value | None
    unit: str | None
    quality: Quality
    timestamp: datetime


@dataclass
class WriteReport:
    """What :meth:`Device.write` did with each requested setpoint."""

    written: dict[str, Value] = field(default_factory=dict)
    skipped: dict[str, Value] = field(default_factory=dict)
    """Unchanged and written less than ``keepalive_s`` ago: not rewritten."""
    refused: dict[str, str] = field(default_factory=dict)
    """Point name → why it was not written (read-only, out of range, device exception…)."""
    mismatches: dict[str, tuple[Value, Value | None]] = field(default_factory=dict)
    """Point name → (written, read back) when the read-back differs."""

    @property
    def ok(self) -> bool:
        """True when nothing was refused and every read-back matched."""
        return not self.refused and not self.mismatches


def _close(a: Value, b: Value | None, resolution: float) -> bool:
    if isinstance(a, str) or isinstance(b, str) or b is None:
        return a == b
    return abs(float(a) - float(b)) <= resolution / 2 + 1e-9 * max(1.0, abs(float(a)))


class Device:
    """One Modbus device of a site.

    Parameters
    ----------
    device_id
        The id the site file gives the device.
    regmap
        Its register map (absolute addresses).
    transport
        The connection owner of its ``host:port`` (shared with other devices there).
    unit
        Its Modbus unit id.
    stale_after_s
        How long a value survives failed reads, as ``stale`` [s].
    keepalive_s
        Unchanged setpoints are rewritten at most this often [s]; keep it below the device's
        revert timeout.
    clock
        Seconds since the epoch (a simulated clock in tests).
    """

    def __init__(
        self,
        device_id: str,
        regmap: RegisterMap,
        transport: ModbusTransport,
        unit: int,
        *,
        stale_after_s: float = 30.0,
        keepalive_s: float = 20.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.id, self.map, self.transport, self.unit = device_id, regmap, transport, unit
        self.stale_after_s, self.keepalive_s, self.clock = stale_after_s, keepalive_s, clock
        self._last_good: dict[str, Measurement] = {}
        self._last_written: dict[str, tuple[Value, float]] = {}
        self.last_error: str | None = None

    # -- reading ---------------------------------------------------------------------------

    async def read(self) -> dict[str, Measurement]:
        """Read every readable point once, in as few requests as the map allows."""
        out: dict[str, Measurement] = {}
        self.last_error = None
        dead = False
        for block in self.map.read_blocks():
            now = self.clock()
            if dead:  # no answer on an earlier block: don't wait again for this one
                out.update(self._fallback(block.names, now))
                continue
            try:
                registers = await self.transport.read(self.unit, block.start, block.count, self.map.table)
            except (CommsError, ExceptionCodeError) as exc:
                self.last_error = str(exc)
                dead = isinstance(exc, CommsError)
                out.update(self._fallback(block.names, now))
                continue
            image = dict(zip(range(block.start, block.end), registers, strict=True))
            decoded = self.map.decode(image)
            stamp = datetime.fromtimestamp(now, UTC)
            for name in block.names:
                if name in decoded:
                    out[name] = self._measurement(name, decoded[name], stamp)
                    if out[name].quality is Quality.OK:
                        self._last_good[name] = out[name]
        return out

    def _measurement(self, name: str, decoded: Decoded, stamp: datetime) -> Measurement:
        return Measurement(name, decoded.value, self.map.by_name[name].unit, decoded.quality, stamp)

    def _fallback(self, names: tuple[str, ...], now: float) -> dict[str, Measurement]:
        out = {}
        for name in names:
            last = self._last_good.get(name)
            if last is not None and now - last.timestamp.timestamp() <= self.stale_after_s:
                out[name] = Measurement(name, last.value, last.unit, Quality.STALE, last.timestamp)
            else:
                unit = self.map.by_name[name].unit
                out[name] = Measurement(name, None, unit, Quality.COMMS_LOST, datetime.fromtimestamp(now, UTC))
        return out

    # -- writing ---------------------------------------------------------------------------

    def check(self, name: str, value: Value, limits: Mapping[str, tuple[float, float]]) -> str | None:
        """Why ``value`` may not be written to ``name`` (None when it may): read-only, site limits, range."""
        point = self.map.by_name.get(name)
        if point is None:
            return f"no point {name!r} in map {self.map.name!r}"
        if not point.writable:
            return f"point {name!r} is read-only"
        if name in limits and not isinstance(value, str):
            low, high = limits[name]
            if not low - 1e-9 <= float(value) <= high + 1e-9:
                return f"{value} outside the site's limits [{low:g}, {high:g}] {point.unit or ''}".rstrip()
        try:
            encode(value, self.map.codecs[name])
        except (EncodeError, ValueError) as exc:  # ValueError: e.g. a point scaled by a SunSpec scale factor
            return str(exc)
        return None

    def _due(self, name: str, value: Value, now: float) -> bool:
        last = self._last_written.get(name)
        keepalive_point = self.map.keepalive.point if self.map.keepalive else None
        if last is None or name == keepalive_point:
            return True
        return last[0] != value or now - last[1] >= self.keepalive_s

    async def write(
        self, setpoints: Mapping[str, Value], limits: Mapping[str, tuple[float, float]] | None = None
    ) -> WriteReport:
        """Write ``setpoints`` (point name → value in the point's unit), then read them back.

        Parameters
        ----------
        limits
            Point name → (low, high) allowed by the site (e.g. a battery's charge and discharge
            power), on top of the point's own range.
        """
        report = WriteReport()
        now = self.clock()
        dead = False
        for name, value in setpoints.items():
            if (why := self.check(name, value, limits or {})) is not None:
                report.refused[name] = why
                continue
            if dead:
                report.refused[name] = "not sent: the device did not answer an earlier write"
                continue
            if not self._due(name, value, now):
                report.skipped[name] = value
                continue
            point = self.map.by_name[name]
            try:
                registers = encode(value, self.map.codecs[name])
                await self.transport.write(self.unit, point.address, registers)
            except CommsError as exc:  # no answer: don't wait a timeout again for each remaining point
                report.refused[name] = str(exc)
                dead = True
                continue
            except (EncodeError, ExceptionCodeError) as exc:
                report.refused[name] = str(exc)
                continue
            self._last_written[name] = (value, now)
            report.written[name] = value
        await self._read_back(report)
        return report

    async def _read_back(self, report: WriteReport) -> None:
        for name, value in report.written.items():
            point = self.map.by_name[name]
            if not point.readable:
                continue
            try:
                registers = await self.transport.read(self.unit, point.address, point.words, self.map.table)
            except (CommsError, ExceptionCodeError) as exc:
                report.mismatches[name] = (value, None)
                self._last_written.pop(name, None)  # not confirmed: rewrite it next time, don't skip it
                self.last_error = str(exc)
                continue
            image = dict(zip(range(point.address, point.address + point.words), registers, strict=True))
            back = self.map.decode(image).get(name)
            resolution = abs(point.scale or 1.0)
            if back is None or not _close(value, back.value, resolution):
                report.mismatches[name] = (value, None if back is None else back.value)
                self._last_written.pop(name, None)  # the device did not take it: rewrite it next time
