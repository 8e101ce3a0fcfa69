"""Retention of the centre's history: messages older than ``keep_days`` deleted, every ``every_s``.

``microgrid centre serve --keep-days N`` (default 30; 0 keeps everything). What is kept whatever
their age: every island's latest status, alarms and online flag (table ``islands``) and the newest
message of each island and kind (:meth:`~microgrid.centre.fleet.FleetStore.prune`). SQLite reuses
the freed pages, so the file stops growing once it holds ``keep_days`` of history (it does not shrink);
PostgreSQL's autovacuum makes the deleted rows' space reusable alike.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from microgrid.centre.fleet import FleetStore

__all__ = ["DEFAULT_KEEP_DAYS", "Retention"]

log = logging.getLogger("microgrid.centre")

DEFAULT_KEEP_DAYS = 30.0
"""Days of history ``microgrid centre serve`` keeps by default."""


class Retention:
    """Prunes ``fleet``'s history older than ``keep_days`` [d] at :meth:`start` and every ``every_s`` [s] after."""

    def __init__(
        self,
        fleet: FleetStore,
        keep_days: float,
        *,
        every_s: float = 3600.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if keep_days <= 0:
            raise ValueError(f"keep_days must be > 0, got {keep_days}")
        self.fleet, self.keep_days, self.every_s = fleet, keep_days, every_s
        self.clock = clock or (lambda: datetime.now(UTC))
        self.deleted = 0
        """Messages deleted since start."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="microgrid-centre-retention", daemon=True)

    def run_once(self) -> int:
        """Delete what is older than ``keep_days`` now; the number of messages deleted."""
        deleted = self.fleet.prune(self.clock() - timedelta(days=self.keep_days))
        self.deleted += deleted
        if deleted:
            log.info("retention: deleted %d message(s) older than %g days", deleted, self.keep_days)
        return deleted

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # a failing prune must not stop the centre: the next one tries again
                log.error("retention: cannot delete old history: %r", exc)
            self._stop.wait(self.every_s)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
