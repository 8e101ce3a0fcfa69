"""The demo's scenario (a city-wide cut, staggered restorations, a district emergency) and its islands.

Times are simulated hours from the scenario's start (``t_h``). :class:`Scenario` says when the grid is up
for an outage queue and when the centre commands a district; :class:`SimIsland` is one island: its plant
(:class:`~microgrid.centre.demo_plant.Plant`), its own SQLite store and outbox, and the real publisher
(:class:`~microgrid.uplink.publish.Publisher`) that sends its messages and takes the centre's commands.
Each cycle an island applies the operator actions the centre's commands queued in its store (as the
controller's runner does), steps its plant and queues the cycle's status, alarms and cycle messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from microgrid.centre.demo_city import QUEUES, IslandSpec
from microgrid.centre.demo_plant import Plant, site_of
from microgrid.store import Store, StoreError
from microgrid.store.outbox import Outbox
from microgrid.uplink import Broker, Island
from microgrid.uplink.publish import Publisher

__all__ = ["Scenario", "SimIsland"]

log = logging.getLogger("microgrid.centre.demo")


@dataclass(frozen=True)
class Scenario:
    """The story the demo tells, in simulated hours from its start (defaults: a 12 h story).

    The grid is up everywhere until ``cut_h``, then down everywhere; outage queue number ``k`` of
    :data:`~microgrid.centre.demo_city.QUEUES` gets it back at ``first_restore_h + k × restore_every_h``.
    At ``emergency_h`` the centre declares emergency mode for one district, and lifts it at ``lift_h``.
    One island (outside that district) loses its link from ``offline_h[0]`` to ``offline_h[1]``
    (its messages wait in its outbox and are sent when it is back).
    """

    step_min: float = 10.0
    cut_h: float = 1.0
    emergency_h: float = 3.0
    first_restore_h: float = 5.0
    restore_every_h: float = 1.0
    lift_h: float = 11.0
    end_h: float = 12.0
    offline_h: tuple[float, float] = (4.0, 6.5)

    def __post_init__(self) -> None:
        times = (self.cut_h, self.emergency_h, self.lift_h, self.end_h)
        if self.step_min <= 0 or list(times) != sorted(times) or self.offline_h[0] > self.offline_h[1]:
            raise ValueError(f"a scenario's times must be in order and its step positive: {self}")

    @property
    def step_h(self) -> float:
        return self.step_min / 60.0

    def restore_h(self, queue: str) -> float:
        """When the grid comes back for ``queue`` (the last of :data:`QUEUES` for an unknown one)."""
        k = QUEUES.index(queue) if queue in QUEUES else len(QUEUES) - 1
        return self.first_restore_h + k * self.restore_every_h

    def grid_up(self, queue: str, t_h: float) -> bool:
        """Is the grid up for ``queue`` at ``t_h``."""
        return t_h < self.cut_h or t_h >= self.restore_h(queue)


class SimIsland:
    """One simulated island (module docstring); its files in ``folder``."""

    def __init__(self, spec: IslandSpec, broker: Broker, folder: Path, *, fails_to_start: bool = False) -> None:
        self.spec, self.broker = spec, broker
        self.plant = Plant(spec, fails_to_start=fails_to_start)
        self.site = site_of(spec)
        path = folder / f"{spec.island}.sqlite"
        self.store = Store(path, retention_days=None)
        self.outbox = Outbox(path)
        self.identity = Island(spec.island, spec.kind, spec.latitude, spec.longitude, spec.district, spec.queue)
        self.publisher: Publisher | None = None
        self.linked = False
        """The publisher is running (False: the link is lost; cycles queue into the outbox)."""
        self.applied: list[str] = []
        """What the island did with the centre's commands, in order."""

    def connect(self) -> Publisher:
        """A fresh publisher on the island's outbox, started (again, after :meth:`disconnect`)."""
        self.publisher = Publisher(self.broker, self.identity, self.site, self.outbox, keepalive_s=10)
        self.publisher.start()
        self.linked = True
        return self.publisher

    def disconnect(self) -> None:
        """Lose the link: the publisher says goodbye (``online: false``); cycles go on into the outbox."""
        if self.publisher is not None and self.linked:
            self.publisher.close(timeout_s=1.0)
        self.linked = False

    def _apply_actions(self, now: datetime) -> None:
        """The operator actions waiting in the store (the centre's commands), applied as the runner does."""
        try:
            pending = self.store.pending_actions()
        except StoreError as exc:
            log.error("%s: cannot read its actions: %s", self.spec.island, exc)
            return
        for action in pending:
            if action["action"] == "emergency":
                result, ok = self.plant.mode.command(bool(action["payload"]["on"]), now), True
            else:
                result, ok = (
                    f"refused: the demo's islands take emergency commands only, not {action['action']!r}",
                    False,
                )
            try:
                self.store.mark_applied(action["id"], result, ok=ok)
            except StoreError as exc:
                result += f" (not marked in the store: {exc})"
            self.applied.append(f"{action.get('by')}: {result}")

    def cycle(self, now: datetime, grid_up: bool, dt_h: float) -> None:
        """One cycle at ``now`` (simulated, UTC): commands, plant step, messages into the outbox."""
        self._apply_actions(now)
        self.plant.step(now.hour + now.minute / 60.0, grid_up, dt_h)
        facts = self.plant.facts(now, grid_up)
        if self.publisher is not None:  # a closed one still queues: the rows wait for the next publisher
            self.publisher.queue(facts)

    def close(self) -> None:
        self.disconnect()
        self.outbox.close()
        self.store.close()
