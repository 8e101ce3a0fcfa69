"""The ``--publish`` options of ``run``: the island published to the Situation Centre over MQTT.

Light at import (the CLI starts fast): paho and the uplink's sender load only when ``--publish`` is given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from microgrid.cli.common import EXIT_BAD_INPUT, fail

__all__ = ["IslandIdOpt", "IslandKindOpt", "PublishOpt", "Uplink", "publish_options", "publishing"]

PublishOpt = Annotated[
    str | None,
    typer.Option(
        "--publish",
        metavar="mqtt://HOST:PORT/CITY",
        help="Publish every cycle to the Situation Centre's MQTT broker (docs/situation-centre.md).",
    ),
]
IslandIdOpt = Annotated[
    str | None, typer.Option("--island-id", help="With --publish: the island's id in topics (default: from the name).")
]
IslandKindOpt = Annotated[
    str,
    typer.Option("--island-kind", help="With --publish: hospital, water-pumping, boiler-house, shelter or other."),
]


@dataclass(frozen=True)
class Uplink:
    """``--publish``'s settings: the broker (:class:`microgrid.uplink.Broker`) and the island (``Island``)."""

    broker: Any
    island: Any


def publish_options(url: str | None, island_id: str | None, kind: str, site: Any) -> Uplink | None:
    """The uplink's settings, None without ``--publish``; exit 2 on bad input."""
    if url is None:
        if island_id is not None:
            raise fail(EXIT_BAD_INPUT, "--island-id needs --publish mqtt://HOST:PORT/CITY")
        return None
    from microgrid.uplink import KINDS, Island, island_topic, parse_url, slug

    if kind not in KINDS:
        raise fail(EXIT_BAD_INPUT, f"--island-kind: one of {', '.join(KINDS)}, got {kind!r}")
    try:
        broker = parse_url(url)
        name = island_id if island_id is not None else slug(site.site.name)
        island_topic(broker.city, name, "status")  # checks the id
    except ValueError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    where = site.location
    return Uplink(broker, Island(name, kind, where.latitude if where else None, where.longitude if where else None))


@contextlib.contextmanager
def publishing(runner: Any, settings: Uplink | None, store: Path) -> Iterator[Any]:
    """Publish ``runner``'s cycles while the block runs, through the outbox in ``store`` (nothing without settings);
    at the end, up to 5 s to send what waits, then goodbye (what is left is sent at the next start)."""
    if settings is None:
        yield None
        return
    from microgrid.store.outbox import Outbox
    from microgrid.uplink.publish import Publisher

    outbox = Outbox(store)
    publisher = Publisher(settings.broker, settings.island, runner.controller.site, outbox)
    publisher.attach(runner)
    publisher.start()
    try:
        yield publisher
    finally:
        publisher.flush(5.0)
        publisher.close()
        outbox.close()
