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

Every requested point ends in exactly one outcome of the :class:`WriteReport`:

* ``written``: the device answered (and, where the point is readable, the read-back shows the
  value); or the answer was lost but the read-back shows the value (``notes`` says so);
* ``skipped``: unchanged and written less than ``keepalive_s`` ago;
* ``refused``: certainly not applied: refused by the checks here, not sent (no connection, or an
  earlier write of the same call got no answer), or the device answered with a Modbus exception
  (except 5 *acknowledge* and 11 *gateway target failed to respond*, which do not say so);
* ``mismatches``: the read-back shows another value (such a point is also in ``written`` when the
  device answered the write);
* ``unknown``: no clear answer (timeout, dropped connection, garbled frame, exception 5 or 11) and
  the register cannot be read back (the read fails too, or the point is write-only).

A write with no clear answer is never sent again blindly: the transport does not retry it, and
while its outcome is unknown a later call asking for the same value reads the register first:
holding the value, it is not sent again (``written``, with a note: a device that answers late may
also apply late, after a first read-back showed the old value); holding another, it is sent;
unreadable, it is not sent (``unknown``). A write-only point cannot be checked: it is sent again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from microgrid.telemetry.maps import RegisterMap
from microgrid.telemetry.registers import Decoded, EncodeError, Quality, Value, encode
from microgrid.telemetry.transport import CommsError, ExceptionCodeError, NotSentError, Transport

__all__ = ["UNCLEAR_CODES", "Device", "Measurement", "WriteReport"]

UNCLEAR_CODES = frozenset({5, 11})
"""Modbus exception codes that do not say a write was not applied: 5 (*acknowledge*: accepted, still
being processed) and 11 (*gateway target failed to respond*: it may have reached the device)."""


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
    """What :meth:`Device.write` did with each requested setpoint (module docstring: the outcomes)."""

    written: dict[str, Value] = field(default_factory=dict)
    """Applied: answered (and read back where readable), or read back after a lost answer (``notes``)."""
    skipped: dict[str, Value] = field(default_factory=dict)
    """Unchanged and written less than ``keepalive_s`` ago: not rewritten."""
    refused: dict[str, str] = field(default_factory=dict)
    """Point name → why it certainly was not applied (read-only, out of range, not sent, device exception…)."""
    mismatches: dict[str, tuple[Value, Value | None]] = field(default_factory=dict)
    """Point name → (written, read back) when the read-back differs."""
    unknown: dict[str, str] = field(default_factory=dict)
    """Point name → why its outcome is unknown (no clear answer, and no read-back to tell)."""
    notes: dict[str, str] = field(default_factory=dict)
    """Point name → how its outcome was learned when not from a clean answer (e.g. the answer was lost,
    the read-back shows the value), or why a mismatch came about."""

    @property
    def ok(self) -> bool:
        """True when every point was applied (or skipped): nothing refused, mismatched or unknown."""
        return not self.refused and not self.mismatches and not self.unknown


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
        transport: Transport,
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
        self._pending: dict[str, Value] = {}
        """Point name → a value written without a clear answer and not read back since (outcome unknown)."""
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

        Returns
        -------
        WriteReport
            One outcome per point (module docstring); never raises for a device that misbehaves.
        """
        report = WriteReport()
        now = self.clock()
        answered: dict[str, Value] = {}
        """Points the device answered for, to read back."""
        dead = False
        for name, value in setpoints.items():
            if (why := self.check(name, value, limits or {})) is not None:
                report.refused[name] = why
            elif dead:
                report.refused[name] = "not sent: the device did not answer an earlier write"
            elif not self._due(name, value, now):
                report.skipped[name] = value
            elif not await self._settled(name, value, report, now):
                dead = await self._send(name, value, report, answered, now)
        await self._read_back(report, answered)
        return report

    async def _send(self, name: str, value: Value, report: WriteReport, answered: dict[str, Value], now: float) -> bool:
        """Send one point; its outcome goes to ``report`` (or ``answered``). True when the device is silent:
        no answer and no read-back (the rest of the call is not sent: no timeout waited again for each point)."""
        point = self.map.by_name[name]
        self._last_written.pop(name, None)
        try:
            await self.transport.write(self.unit, point.address, encode(value, self.map.codecs[name]))
        except NotSentError as exc:
            report.refused[name] = f"not sent: {exc}"
            return True
        except CommsError as exc:
            return not await self._unclear(name, value, f"no clear answer: {exc}", report, now)
        except ExceptionCodeError as exc:
            if exc.code in UNCLEAR_CODES:
                await self._unclear(name, value, f"no clear answer: {exc}", report, now)
            else:
                report.refused[name] = str(exc)
            return False
        except EncodeError as exc:
            report.refused[name] = str(exc)
            return False
        self._pending.pop(name, None)
        self._last_written[name] = (value, now)
        answered[name] = value
        return False

    async def _unclear(self, name: str, value: Value, why: str, report: WriteReport, now: float) -> bool:
        """A write without a clear answer: the read-back decides (applied, not applied), else it stays unknown
        and is remembered so that it is not sent again blindly (:meth:`_settled`). True when the read-back
        answered."""
        self.last_error = why
        point = self.map.by_name[name]
        if not point.readable:
            report.unknown[name] = f"{why}; the point cannot be read back"
            return False
        try:
            back = await self._read_point(name)
        except (CommsError, ExceptionCodeError) as exc:
            report.unknown[name] = f"{why}; the read-back failed too: {exc}"
            self._pending[name] = value
            return False
        if back is not None and _close(value, back, abs(point.scale or 1.0)):
            self._pending.pop(name, None)
            report.written[name] = value
            report.notes[name] = f"applied: the read-back shows the value ({why})"
            self._last_written[name] = (value, now)
        else:  # not yet: a device that answers late may apply late; the next call reads again before sending
            self._pending[name] = value
            report.mismatches[name] = (value, back)
            report.notes[name] = f"not applied when read back ({back}) ({why})"
        return True

    async def _settled(self, name: str, value: Value, report: WriteReport, now: float) -> bool:
        """True when ``name`` is not to be sent now because an earlier write of ``value`` had no clear answer:
        the register holds it (``written``, not sent again) or cannot be read (``unknown``, not sent)."""
        earlier = self._pending.get(name)
        point = self.map.by_name[name]
        if earlier is None or not _close(value, earlier, abs(point.scale or 1.0)):
            return False
        try:
            back = await self._read_point(name)
        except (CommsError, ExceptionCodeError) as exc:
            report.unknown[name] = (
                f"not sent again: an earlier write of it had no clear answer and the read fails: {exc}"
            )
            return True
        del self._pending[name]
        if back is None or not _close(value, back, abs(point.scale or 1.0)):
            return False  # the earlier write was not applied: send it
        report.written[name] = value
        report.notes[name] = "applied by an earlier write whose answer was lost (read back now): not sent again"
        self._last_written[name] = (value, now)
        return True

    async def _read_point(self, name: str) -> Value | None:
        """One point read on its own (its decoded value; None when the device shows none)."""
        point = self.map.by_name[name]
        registers = await self.transport.read(self.unit, point.address, point.words, self.map.table)
        image = dict(zip(range(point.address, point.address + point.words), registers, strict=True))
        back = self.map.decode(image).get(name)
        return None if back is None else back.value

    async def _read_back(self, report: WriteReport, answered: Mapping[str, Value]) -> None:
        """Read back every answered point that is readable: a value that differs is a mismatch (the device did
        not take it: rewritten at the next call); a read-back that fails leaves the answer believed but the
        point unconfirmed (rewritten at the next call, not skipped)."""
        for name, value in answered.items():
            report.written[name] = value
            point = self.map.by_name[name]
            if not point.readable:
                continue
            try:
                back = await self._read_point(name)
            except (CommsError, ExceptionCodeError) as exc:
                report.notes[name] = f"answered, but the read-back failed: {exc}"
                self._last_written.pop(name, None)  # not confirmed: rewrite it next time, don't skip it
                self.last_error = str(exc)
                continue
            if back is None or not _close(value, back, abs(point.scale or 1.0)):
                report.mismatches[name] = (value, back)
                self._last_written.pop(name, None)  # the device did not take it: rewrite it next time
