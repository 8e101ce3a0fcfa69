"""Devices that ignore the controller's writes: counted from the write phase's read-backs.

A device **ignores writes** when, in ``IGNORES_WRITES_AFTER`` = 2 consecutive cycles, a read-back of
a point the cycle wrote shows another value (a controller switched to local mode, a write-protect
jumper, a gateway that acknowledges without forwarding). One cycle is not enough: a device's own
logic may override a setpoint once (a limit reached as it was written), and the cycle writes again
at the next interval anyway. Only the cycles' writes count, not the keep-alives between them.

A cycle whose read-backs all match (at least one point written, none mismatched) clears the count
and the alarm; a cycle with no evidence (nothing written, every outcome ``unknown``, refused or
skipped) changes nothing. Raising and clearing the alarm are each one ``device`` event.

What the controller does with such a device (:meth:`~microgrid.control.estimate.Estimator.not_controlled`):
its health is ``ignores-writes`` with why (``Estimate.ignores_writes``, recorded with the cycle and
shown by ``microgrid status`` among the alarms); a battery behind it gets live limits of 0 kW, so
the safety layer holds its setpoint at 0 and the rules give its share to the other batteries. It is
still written to (its heartbeat and that 0 kW), which is how the controller sees it obey again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from microgrid.telemetry.devices import WriteReport

__all__ = ["IGNORES_WRITES_AFTER", "WriteWatch"]

IGNORES_WRITES_AFTER = 2
"""Consecutive cycles with a mismatching read-back after which a device ignores writes."""


@dataclass
class WriteWatch:
    """Counts each device's consecutive cycles of mismatching read-backs (module docstring)."""

    after_cycles: int = IGNORES_WRITES_AFTER
    ignoring: dict[str, str] = field(default_factory=dict)
    """Device id → why it is taken to ignore writes (the alarm in force)."""
    _runs: dict[str, int] = field(default_factory=dict)

    def observe(self, writes: Mapping[str, WriteReport]) -> list[str]:
        """Count one cycle's write reports; return the alarms raised and cleared (event messages)."""
        events = []
        for device, result in writes.items():
            if result.mismatches:
                events += self._mismatched(device, result)
            elif result.written and device in self._runs:
                del self._runs[device]
                if self.ignoring.pop(device, None) is not None:
                    events.append(f"{device} obeys writes again: its read-backs match; alarm cleared")
        return events

    def _mismatched(self, device: str, result: WriteReport) -> list[str]:
        runs = self._runs[device] = self._runs.get(device, 0) + 1
        if runs < self.after_cycles:
            return []
        shown = "; ".join(f"{p} written {w}, read back {b}" for p, (w, b) in sorted(result.mismatches.items()))
        why = f"read-backs differ from the writes for {runs} cycles in a row ({shown}): not controllable"
        raised = device not in self.ignoring
        self.ignoring[device] = why
        return [f"{device} ignores writes: {why}"] if raised else []
