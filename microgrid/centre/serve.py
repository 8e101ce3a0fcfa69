"""``microgrid centre serve``: the listener and the screen together, until Ctrl-C."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from microgrid.centre.fleet import FleetStore
from microgrid.centre.listen import Listener
from microgrid.centre.retention import DEFAULT_KEEP_DAYS, Retention
from microgrid.centre.web import app
from microgrid.uplink.topics import Broker

__all__ = ["serve"]


class _Server(uvicorn.Server):
    """uvicorn's server, which on Ctrl-C first tells the screen's event streams to end (``app.state.closing``)."""

    def __init__(self, screen: Starlette, host: str, port: int) -> None:
        super().__init__(uvicorn.Config(screen, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5))
        self.screen = screen

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.screen.state.closing.set()
        super().handle_exit(sig, frame)


def serve(
    broker: Broker,
    db: str | Path,
    host: str,
    port: int,
    *,
    keep_days: float | None = DEFAULT_KEEP_DAYS,
    opened: Callable[[], None] | None = None,
) -> None:
    """Subscribe to ``broker``'s city, keep the fleet in ``db`` (a SQLite file or a PostgreSQL URL,
    :class:`~microgrid.centre.fleet.FleetStore`) and serve the screen on ``host:port``;
    history older than ``keep_days`` [d] is deleted hourly (:mod:`~microgrid.centre.retention`; None keeps all).
    ``opened`` is called once the store is open (:class:`~microgrid.centre.dialects.StoreError` before it)."""
    fleet = FleetStore(db)
    if opened is not None:
        opened()
    retention = None if keep_days is None else Retention(fleet, keep_days)
    listener = Listener(broker, fleet)
    listener.start()
    if retention is not None:
        retention.start()
    try:
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises Ctrl-C again once stopped (as uvicorn.run)
            _Server(app(fleet), host, port).run()
    finally:
        if retention is not None:
            retention.close()
        listener.close()
        fleet.close()
