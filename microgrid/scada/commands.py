"""SCADA's writes as operator actions: decoded, checked as ``microgrid override`` checks, then queued.

Pure except for the sink: a write is decoded against the SCADA map (whole writable points only,
else Modbus exception 02; a value outside the point's range or not one of its values, 03), turned
into the operator actions ``microgrid override`` queues (``mode``, ``emergency``, ``manual``) and
checked with the same rule (:func:`microgrid.control.decisions.override_problems` against the site's
:func:`~microgrid.control.decisions.asset_limits`: 03 when it refuses, and nothing is queued). A
write is all or nothing: every point it covers is checked before any action is queued, and its
actions are queued in one store transaction (:meth:`ActionSink.add_actions`: none when the store fails).

Manual setpoints accumulate: SCADA writing bess1's setpoint, then bess2's, holds both (the
runner's manual decision is replaced by each ``manual`` action, so each one carries everything
SCADA has set since it last took the island out of manual). ``mode_request`` auto or safe clears
them. ``scada_heartbeat`` and ``alarm_acknowledge`` stay in the server (:class:`CommandState`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol

from microgrid.control.decisions import asset_limits, override_problems
from microgrid.scada.pointmap import ScadaMap
from microgrid.site import Site
from microgrid.telemetry.registers import Quality, Value, decode

__all__ = ["ActionSink", "CommandState", "Planned", "Refused"]

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, DEVICE_FAILURE, DEVICE_BUSY = 1, 2, 3, 4, 6
"""The Modbus exception codes a refused write gets."""
MODE_NAMES = {1: "auto", 2: "manual", 3: "safe"}
_GROUPS = {"battery": "battery_kw", "genset": "generator_kw", "tier": "tier_connected"}


class ActionSink(Protocol):
    """Where accepted commands go: the store the running controller reads (``microgrid.store.Store``)."""

    def add_actions(self, actions: list[tuple[str, dict[str, Any]]], *, by: str | None = None) -> list[int]:
        """Queue (action, payload) operator actions all together or, when it fails, none; their ids."""


class Refused(Exception):  # noqa: N818 - a refusal, with its Modbus exception code
    """A write refused with Modbus exception ``code`` (1, 2, 3, 4 or 6) and why."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(why)
        self.code, self.why = code, why


@dataclass
class Planned:
    """What one write asks for: operator actions to queue, and the server's own (heartbeat, acknowledge)."""

    actions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    heartbeat: int | None = None
    acknowledge: bool = False
    holds: bool | None = None
    """True: SCADA takes the island into manual; False: out of it; None: unchanged."""
    manual: dict[str, dict[str, Any]] | None = None
    """SCADA's accumulated manual setpoints after this write (when it changes them)."""


@dataclass
class CommandState:
    """SCADA's commands so far: the values accepted (read back), its manual setpoints, the watchdog's state."""

    scada: ScadaMap
    site: Site
    accepted: dict[str, Value] = field(default_factory=dict)
    manual: dict[str, dict[str, Any]] = field(default_factory=dict)
    holding: bool = False
    """SCADA holds the island in manual (the watchdog runs)."""
    heartbeat: int | None = None
    heartbeat_at_s: float = 0.0
    """Monotonic s of the last heartbeat that counted (or of taking the island into manual)."""
    version: int = 0
    """Counts the writes committed (the server re-encodes what it reads back when it changes)."""
    held_from_cycle: int = 0
    """The server's cycle count when SCADA last asked for manual (the next cycle to start applies it: the
    next published, or the one after when a cycle was running at the write)."""

    def decode(self, address: int, words: list[int]) -> dict[str, Value]:
        """The writable points ``words`` at ``address`` cover, decoded; :class:`Refused` 02 or 03."""
        regmap = self.scada.regmap
        end = address + len(words)
        hit = [p for p in regmap.points if p.address < end and p.address + p.words > address]
        if not hit or sum(p.words for p in hit) != len(words):
            raise Refused(ILLEGAL_ADDRESS, f"{len(words)} register(s) at {address} are not whole points")
        if any(p.address < address or p.address + p.words > end for p in hit):
            raise Refused(ILLEGAL_ADDRESS, f"a write at {address} covers part of a point")
        if read_only := [p.name for p in hit if not p.writable]:
            raise Refused(ILLEGAL_ADDRESS, f"not writable: {', '.join(read_only)}")
        out: dict[str, Value] = {}
        for point in hit:
            result = decode(
                words[point.address - address : point.address - address + point.words], regmap.codecs[point.name]
            )
            allowed = point.values is None or result.value in point.values
            if result.quality is not Quality.OK or result.value is None or not allowed:
                raise Refused(ILLEGAL_VALUE, f"{point.name}: {result.value!r} is outside its range or values")
            out[point.name] = result.value
        return out

    def plan(self, values: dict[str, Value]) -> Planned:
        """The actions ``values`` ask for, checked like ``microgrid override``; :class:`Refused` 03."""
        planned = Planned()
        manual = copy.deepcopy(self.manual)
        touched = False
        for name, value in values.items():
            if name == "mode_request":
                mode = MODE_NAMES[int(value)]
                planned.actions.append(("mode", {"mode": mode}))
                planned.holds = mode == "manual"
                if mode != "manual":
                    manual, touched = {}, False
            elif name == "emergency_command":
                planned.actions.append(("emergency", {"on": bool(value)}))
            elif name == "alarm_acknowledge":
                planned.acknowledge = bool(value)  # 0: no-op (a write of the whole command block)
            elif name == "scada_heartbeat":
                planned.heartbeat = int(value)
            else:
                group, asset, setpoint = self._setpoint(name, value)
                manual.setdefault(group, {})[asset] = setpoint
                touched = True
        if touched:
            if problems := override_problems(manual, asset_limits(self.site)):
                raise Refused(ILLEGAL_VALUE, "; ".join(problems))
            planned.actions.append(("manual", manual))
            planned.holds = True
        planned.manual = manual if (touched or planned.holds is False) else None
        return planned

    def _setpoint(self, name: str, value: Value) -> tuple[str, str, float | bool]:
        """(override group, asset id, value) of a per-asset command point (``battery2_manual_setpoint_kw``)."""
        head = name.split("_", 1)[0]
        prefix = head.rstrip("0123456789")
        kind = {"battery": "batteries", "genset": "gensets", "tier": "tiers"}.get(prefix)
        if kind is None:
            raise Refused(ILLEGAL_ADDRESS, f"{name} is not a command")
        asset = self.scada.assets[kind][int(head[len(prefix) :]) - 1]
        group = _GROUPS[prefix]
        return group, asset, bool(value) if group == "tier_connected" else float(value)

    def commit(self, planned: Planned, values: dict[str, Value], now_s: float, cycles: int = 0) -> None:
        """Remember a write whose actions were queued (``cycles``: the server's cycle count then): values read
        back, manual setpoints, watchdog."""
        self.accepted.update(values)
        self.version += 1
        if planned.manual is not None:
            self.manual = planned.manual
        if planned.holds is not None:
            if planned.holds:
                self.held_from_cycle = cycles
            if planned.holds and not self.holding:
                self.heartbeat_at_s = now_s  # a full timeout from taking the island over
            self.holding = planned.holds
        if planned.heartbeat is not None and planned.heartbeat != self.heartbeat:
            self.heartbeat, self.heartbeat_at_s = planned.heartbeat, now_s
