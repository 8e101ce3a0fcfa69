"""``microgrid centre serve``: the listener and the screen together, until Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from microgrid.centre.fleet import FleetStore
from microgrid.centre.listen import Listener
from microgrid.centre.retention import DEFAULT_KEEP_DAYS, Retention
from microgrid.centre.web import app
from microgrid.uplink.topics import Broker

__all__ = ["serve"]


def serve(broker: Broker, db: Path, host: str, port: int, *, keep_days: float | None = DEFAULT_KEEP_DAYS) -> None:
    """Subscribe to ``broker``'s city, keep the fleet in ``db`` (SQLite) and serve the screen on ``host:port``;
    history older than ``keep_days`` [d] is deleted hourly (:mod:`~microgrid.centre.retention`; None keeps all)."""
    fleet = FleetStore(db)
    retention = None if keep_days is None else Retention(fleet, keep_days)
    listener = Listener(broker, fleet)
    listener.start()
    if retention is not None:
        retention.start()
    try:
        uvicorn.run(app(fleet), host=host, port=port, log_level="warning")
    finally:
        if retention is not None:
            retention.close()
        listener.close()
        fleet.close()
