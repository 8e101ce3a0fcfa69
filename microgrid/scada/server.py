"""The controller served to SCADA, BMS and PLCs over Modbus TCP (or Modbus/TCP Security, TLS).

* **Reads never wait for the solver**: they are answered from :class:`Snapshot`, an immutable
  register image built once after each cycle (:meth:`ScadaServer.publish`, chained to the runner's
  ``on_cycle``) and swapped in whole; the server answers from a thread and event loop of its own
  (:func:`microgrid.scada.endpoint.serving`), so neither a solve nor the cycle's other phases hold it.
  A few points are the server's own and computed at read time: ``heartbeat_count``,
  ``last_cycle_age_s``, the alarms the watchdog latched or a late cycle sets, and the commands read back.
* **Writes** (functions 6 and 16) are refused with exception 01 (ILLEGAL FUNCTION) unless the server
  was started with writes on and the client's role is ``operator``; more than ``burst`` writes at
  ``rate_per_s`` get 06 (busy); modes and setpoints get 01 too while the controller runs in dry-run
  (emergency mode, planning only, is still taken). Accepted writes are checked and queued as operator actions by
  :class:`~microgrid.scada.commands.CommandState` (02 / 03 when refused: nothing queued), with the
  client named in ``by`` (``scada:127.0.0.1:50123``, or ``scada:CN=...`` over TLS). Every refusal is logged.
* **Who may connect**: an IP allowlist (default: loopback only); others are closed and logged. Over
  TLS the client's certificate is required and its role comes from :mod:`microgrid.scada.security`.
* **Watchdog**: while SCADA holds the island in manual it must change ``scada_heartbeat`` at least
  every ``timeout_s``; when it stops, a ``mode auto`` action is queued by ``scada-watchdog``, the
  alarm bit 5 is latched until ``alarm_acknowledge`` and a ``scada`` event is recorded. After a restart that
  resumed manual mode last asked for by a ``scada:`` client, SCADA holds the island again
  (:meth:`ScadaServer.resume_hold`): the timeout runs from the server's start.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from microgrid.control.cycle import CycleReport
from microgrid.control.decisions import asset_limits
from microgrid.control.recording import summary
from microgrid.scada.commands import DEVICE_BUSY, DEVICE_FAILURE, ILLEGAL_FUNCTION, ActionSink, CommandState, Refused
from microgrid.scada.pointmap import ScadaMap, site_map
from microgrid.scada.security import Client, RoleMap
from microgrid.scada.values import ALARM_BITS, cycle_values
from microgrid.site import Site
from microgrid.store import EventRow
from microgrid.telemetry.registers import Codec, EncodeError, Value, encode, encode_sentinel

__all__ = ["LOOPBACK", "ScadaServer", "Snapshot"]

log = logging.getLogger("microgrid.scada")

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
"""The default allowlist."""


@dataclass(frozen=True)
class Snapshot:
    """The register image after a cycle (address → word), swapped in whole; never mutated."""

    image: Mapping[int, int]
    at_s: float | None = None
    """Monotonic s when the cycle was published (None: no cycle yet)."""
    cycles: int = 0
    alarm_bits: int = 0
    alarm_count: int = 0
    mode: str | None = None
    """The controller's mode after the cycle."""


def _loose(codec: Codec) -> Codec:
    """The codec without range or enumeration: a reading outside them is still served as it is."""
    return replace(codec, minimum=None, maximum=None, choices=None)


def encode_values(scada: ScadaMap, values: Mapping[str, Value | None]) -> dict[int, int]:
    """Registers of the points named in ``values``; None (or a value the type cannot hold) → the sentinel."""
    image: dict[int, int] = {}
    for name, value in values.items():
        point, codec = scada.regmap.by_name[name], scada.regmap.codecs[name]
        try:
            words = encode(value, _loose(codec)) if value is not None else encode_sentinel(codec)
        except (EncodeError, ValueError):
            words = encode_sentinel(codec) if codec.sentinel is not None else [0] * point.words
        image.update(zip(range(point.address, point.address + point.words), words, strict=True))
    return image


@dataclass
class _Bucket:
    tokens: float
    at_s: float


@dataclass
class Options:
    """How the server runs (the CLI's ``--scada*`` options)."""

    host: str = "127.0.0.1"
    port: int = 1502
    writes: bool = False
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = LOOPBACK
    timeout_s: float | None = None
    """The watchdog's timeout [s]; None: the map's ``watchdog.timeout_s``."""
    rate_per_s: float = 5.0
    burst: int = 10
    tls: ssl.SSLContext | None = None
    roles: RoleMap | None = None


class ScadaServer:
    """The SCADA interface of one controller (module docstring).

    Parameters
    ----------
    site
        The site (its SCADA map is generated from it).
    options
        Address, writes, allowlist, watchdog timeout, rate limit, TLS.
    sink
        Where accepted commands are queued (the running controller's store); None refuses every write (04).
    clock
        Monotonic seconds (a test passes a faster one).
    """

    def __init__(
        self,
        site: Site,
        options: Options,
        sink: ActionSink | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float | None = None,
    ) -> None:
        self.site, self.options, self.sink, self.clock = site, options, sink, clock
        self.scada = site_map(site)
        self.timeout_s = options.timeout_s or self.scada.watchdog.timeout_s
        self.interval_s = interval_s or site.control.interval.total_seconds()
        self.commands = CommandState(self.scada, site)
        self.identity = self._identity()
        self.snapshot = Snapshot(self._blank())
        self.latched = 0
        self.started_s = clock()
        self.refused: list[tuple[str, int, str]] = []
        """(client, exception code, why) of every refused write, in order."""
        self.closed: list[tuple[str, str]] = []
        """(address, why) of every connection closed at once (allowlist, TLS role)."""
        self._buckets: dict[str, _Bucket] = {}
        self._live: tuple[tuple[int, int, int, int], dict[int, int]] | None = None
        self.span = max(p.address + p.words for p in self.scada.regmap.points)

    # -- the snapshot ----------------------------------------------------------------------------

    def _identity(self) -> dict[int, int]:
        try:
            release = version("microgrid")
        except PackageNotFoundError:
            release = "unknown"
        values: dict[str, Value | None] = {
            "interface_version": 1,
            "manufacturer": "microgrid",
            "model": "energy-island controller",
            "version": release[:16],
            "site_name": self.site.site.name.encode()[:64].decode(errors="ignore"),
        }
        return encode_values(self.scada, values)

    def _blank(self) -> dict[int, int]:
        status = {p.name: None for p in self.scada.regmap.points if p.address >= 100 and not p.writable}
        return encode_values(self.scada, status) | self.identity

    def publish(self, report: CycleReport) -> Snapshot:
        """Build the snapshot of ``report``'s cycle and swap it in (called after every cycle)."""
        recorded = summary(report, asset_limits(self.site))
        values = cycle_values(self.site, self.scada, report, recorded)
        image = self._blank() | encode_values(self.scada, values)
        bits, count = int(values["alarms"] or 0), int(values["active_alarm_count"] or 0)
        cycles = self.snapshot.cycles + 1
        self.snapshot = Snapshot(image, self.clock(), cycles, bits, count, report.mode.value)
        return self.snapshot

    def attach(self, runner: Any) -> None:
        """Publish after every cycle of ``runner`` (a :class:`~microgrid.control.runner.Runner`), before its
        own ``on_cycle``."""
        before: Callable[[CycleReport], None] | None = runner.on_cycle

        def on_cycle(report: CycleReport) -> None:
            self.publish(report)
            if before is not None:
                before(report)

        runner.on_cycle = on_cycle
        self.resume_hold(runner)

    def resume_hold(self, runner: Any) -> bool:
        """After a restart, watch the manual SCADA held before it: True when held.

        ``runner`` resumed manual mode from its store (not ``--mode``) and the last mode or manual action applied
        was a ``scada:`` client's: SCADA holds the island again, with its setpoints in force, and has
        ``timeout_s`` from the server's start to show its heartbeat, else the watchdog returns control to auto.
        """
        store = runner.store
        if store is None or not runner.mode_resumed or runner.controller.mode.value != "manual":
            return False
        try:
            last = store.last_applied_action("mode", "manual")
            cycle = store.last_cycle()
        except Exception as exc:  # a store that cannot tell: nobody is taken to hold the island
            log.warning("cannot tell whether SCADA held manual before the restart: %s", exc)
            return False
        if last is None or not str(last.get("by") or "").startswith("scada:"):
            return False
        state = self.commands
        state.holding, state.heartbeat_at_s, state.held_from_cycle = True, self.started_s, self.snapshot.cycles
        state.manual = dict((cycle or {}).get("summary", {}).get("manual") or {})
        log.warning("SCADA (%s) held manual before the restart: watching its heartbeat again", last["by"])
        return True

    def live(self) -> dict[int, int]:
        """The server's own points now (module docstring); encoded at most every 0.25 s or when they change."""
        now = self.clock()
        key = (id(self.snapshot), self.latched, self.commands.version, int(now * 4))
        if self._live is None or self._live[0] != key:
            self._live = (key, self._encode_live(now))
        return self._live[1]

    def _encode_live(self, now: float) -> dict[int, int]:
        snap = self.snapshot
        age = None if snap.at_s is None else max(0.0, now - snap.at_s)
        late = age is not None and age > 2 * self.interval_s
        bits = snap.alarm_bits | self.latched | ((1 << ALARM_BITS["late"]) if late else 0)
        count = snap.alarm_count + bin(self.latched).count("1") + int(late)
        values: dict[str, Value | None] = {
            "heartbeat_count": int(now - self.started_s) & 0xFFFF,
            "last_cycle_age_s": None if age is None else round(age),
            "cycle_count": snap.cycles,
            "alarms": bits,
            "active_alarm_count": count,
        }
        commands = [p for p in self.scada.regmap.points if p.writable]
        values |= {p.name: self.commands.accepted.get(p.name, 0) for p in commands}
        return encode_values(self.scada, values)

    def read(self, address: int, count: int) -> list[int]:
        """The registers ``address`` … ``address + count - 1`` now (unused addresses read 0)."""
        image, live = self.snapshot.image, self.live()
        return [live.get(a, image.get(a, 0)) for a in range(address, address + count)]

    # -- writes ----------------------------------------------------------------------------------

    def write(self, client: Client, address: int, words: list[int]) -> int | None:
        """Apply SCADA's write of ``words`` at ``address``: None when queued, else the Modbus exception code
        (module docstring; every refusal is logged and kept in :attr:`refused`)."""
        try:
            self._admit_write(client)
            values = self.commands.decode(address, words)
            planned = self.commands.plan(values)
            self._admit_actions(planned.actions)
            self._queue(planned.actions, client.identity)  # all of them or none
        except Refused as exc:
            log.warning(
                "SCADA write refused (exception %02d) from %s at %d: %s", exc.code, client.identity, address, exc.why
            )
            self.refused.append((client.identity, exc.code, exc.why))
            return exc.code
        self.commands.commit(planned, values, self.clock(), self.snapshot.cycles)
        if planned.acknowledge:
            self.latched = 0
            self._event(f"alarms acknowledged by {client.identity}", alarm=False)
        log.info("SCADA write from %s at %d: %s", client.identity, address, values)
        return None

    def _admit_write(self, client: Client) -> None:
        if not self.options.writes:
            raise Refused(ILLEGAL_FUNCTION, "read-only server (start it with --scada-writes to accept commands)")
        if client.role != "operator":
            raise Refused(ILLEGAL_FUNCTION, f"role {client.role!r} may read only (operator commands)")
        if self.sink is None:
            raise Refused(DEVICE_FAILURE, "no store to queue commands in")
        now = self.clock()
        bucket = self._buckets.setdefault(client.address, _Bucket(float(self.options.burst), now))
        bucket.tokens = min(float(self.options.burst), bucket.tokens + (now - bucket.at_s) * self.options.rate_per_s)
        bucket.at_s = now
        if bucket.tokens < 1.0:
            raise Refused(DEVICE_BUSY, f"more than {self.options.burst} writes at {self.options.rate_per_s:g}/s")
        bucket.tokens -= 1.0

    def _admit_actions(self, actions: list[tuple[str, dict[str, Any]]]) -> None:
        """A controller in dry-run refuses modes and setpoints (the runner would mark them refused): say so now."""
        if self.snapshot.mode == "dry-run" and any(action != "emergency" for action, _ in actions):
            raise Refused(ILLEGAL_FUNCTION, "the controller runs in dry-run: modes and setpoints are not applied")

    def _queue(self, actions: list[tuple[str, dict[str, Any]]], by: str) -> None:
        """Queue ``actions`` in one store transaction: when the store fails part-way, none of them is queued."""
        assert self.sink is not None
        if not actions:
            return
        try:
            self.sink.add_actions(actions, by=by)
        except Exception as exc:  # a store that cannot take them (locked, full): SCADA must know
            names = ", ".join(action for action, _ in actions)
            raise Refused(DEVICE_FAILURE, f"cannot queue the {names} action(s), none queued: {exc}") from exc

    def _event(self, message: str, *, alarm: bool) -> None:
        """A ``scada`` event in the store; ``alarm``: ``microgrid status`` lists it until a later one clears it."""
        record = getattr(self.sink, "record_events", None)
        if record is not None:
            try:
                record(EventRow(datetime.now(UTC), "scada", message, {"alarm": alarm}))
            except Exception as exc:  # the event is also logged
                log.warning("cannot record the SCADA event: %s", exc)
        log.warning(message)

    # -- watchdog --------------------------------------------------------------------------------

    def check_watchdog(self) -> bool:
        """Return control to auto when SCADA holds the island in manual without a heartbeat for ``timeout_s``;
        True when it fired."""
        state, snap = self.commands, self.snapshot
        # A write may come while a cycle runs, after it applied its actions: that cycle still ends in auto, and
        # only the one after it applies SCADA's manual. Only from the second cycle published since the write is
        # a mode other than manual someone else's doing (an operator, a refusal): then SCADA holds nothing.
        if state.holding and snap.cycles > state.held_from_cycle + 1 and snap.mode != "manual":
            state.holding, state.manual = False, {}  # SCADA's next setpoint must not bring back the old ones
        silent_s = self.clock() - state.heartbeat_at_s
        if not state.holding or silent_s < self.timeout_s:
            return False
        state.holding, state.manual = False, {}
        self.latched |= 1 << ALARM_BITS["watchdog"]
        try:
            self._queue([("mode", {"mode": "auto"})], f"scada-watchdog (no SCADA heartbeat for {silent_s:.0f} s)")
        except Refused as exc:
            log.error("the SCADA watchdog cannot return control to auto: %s", exc.why)
        self._event(
            f"SCADA watchdog: no heartbeat for {silent_s:.0f} s while SCADA held manual: back to auto", alarm=True
        )
        return True
