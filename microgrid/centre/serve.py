"""``microgrid centre serve``: the listener and the screen together, until Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from microgrid.centre.fleet import FleetStore
from microgrid.centre.listen import Listener
from microgrid.centre.web import app
from microgrid.uplink.topics import Broker

__all__ = ["serve"]


def serve(broker: Broker, db: Path, host: str, port: int) -> None:
    """Subscribe to ``broker``'s city, keep the fleet in ``db`` (SQLite) and serve the screen on ``host:port``."""
    fleet = FleetStore(db)
    listener = Listener(broker, fleet)
    listener.start()
    try:
        uvicorn.run(app(fleet), host=host, port=port, log_level="warning")
    finally:
        listener.close()
        fleet.close()
