"""The ``--publish`` options of ``run``: the island published to the Situation Centre over MQTT.

Light at import (the CLI starts fast): paho and the uplink's sender load only when ``--publish`` is given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from microgrid.cli.common import EXIT_BAD_INPUT, fail

__all__ = [
    "IslandIdOpt",
    "IslandKindOpt",
    "MqttCaOpt",
    "MqttCertOpt",
    "MqttKeyOpt",
    "MqttLogin",
    "MqttPasswordFileOpt",
    "MqttUsernameOpt",
    "PublishOpt",
    "Uplink",
    "publish_options",
    "publishing",
    "secured",
]

PublishOpt = Annotated[
    str | None,
    typer.Option(
        "--publish",
        metavar="mqtt[s]://HOST:PORT/CITY",
        help="Publish every cycle to the Situation Centre's MQTT broker (docs/situation-centre.md).",
    ),
]
MqttCaOpt = Annotated[
    Path | None,
    typer.Option(
        "--mqtt-ca",
        metavar="FILE",
        help="With mqtts://: the CA certificate (PEM) that signed the broker's (default: the system's CAs).",
        show_default=False,
    ),
]
MqttCertOpt = Annotated[
    Path | None,
    typer.Option(
        "--mqtt-cert",
        metavar="FILE",
        help="With mqtts://: this client's certificate (PEM; its CN is the identity: the island id, centre, operator).",
        show_default=False,
    ),
]
MqttKeyOpt = Annotated[
    Path | None,
    typer.Option("--mqtt-key", metavar="FILE", help="The private key of --mqtt-cert (PEM).", show_default=False),
]
MqttUsernameOpt = Annotated[
    str | None,
    typer.Option(
        "--mqtt-username", help="Log in to the broker as this user (default with --mqtt-password-file: the id)."
    ),
]
MqttPasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--mqtt-password-file",
        metavar="FILE",
        help="The broker's password: the first line of FILE (never on the command line).",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class MqttLogin:
    """The ``--mqtt-*`` options as given (files not yet checked): :func:`secured` checks them."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    username: str | None = None
    password_file: Path | None = None

    def given(self) -> str | None:
        """The first ``--mqtt-*`` option given, or None."""
        names = ("--mqtt-ca", "--mqtt-cert", "--mqtt-key", "--mqtt-username", "--mqtt-password-file")
        values = (self.ca, self.cert, self.key, self.username, self.password_file)
        return next((name for name, value in zip(names, values, strict=True) if value is not None), None)


def secured(broker: Any, login: MqttLogin | None, identity: str) -> Any:
    """``broker`` (a :class:`microgrid.uplink.Broker`) with ``login``'s credentials checked (user name by default
    ``identity`` when a password file is given); exit 2 naming the option and the file."""
    if login is None:
        return broker
    from dataclasses import replace

    from microgrid.uplink.security import credentials

    username = login.username or (identity if login.password_file is not None else None)
    try:
        found = credentials(
            broker.tls,
            ca_file=login.ca,
            cert_file=login.cert,
            key_file=login.key,
            username=username,
            password_file=login.password_file,
        )
    except ValueError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc)) from None
    return replace(broker, credentials=found)


IslandIdOpt = Annotated[
    str | None, typer.Option("--island-id", help="With --publish: the island's id in topics (default: from the name).")
]
IslandKindOpt = Annotated[
    str | None,
    typer.Option(
        "--island-kind",
        help="With --publish: hospital, water-pumping, boiler-house, shelter or other (default: the site's "
        "centre.kind, else other).",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class Uplink:
    """``--publish``'s settings: the broker (:class:`microgrid.uplink.Broker`) and the island (``Island``)."""

    broker: Any
    island: Any
    keepalive_s: int = 30
    """MQTT keep-alive [s] (the site's ``centre.keepalive_s``)."""


def publish_options(
    url: str | None, island_id: str | None, kind: str | None, site: Any, login: MqttLogin | None = None
) -> Uplink | None:
    """The uplink's settings: from ``--publish`` and its options, else from the site file's ``centre:`` section
    (``--publish`` replaces its broker, city and credentials; ``--island-id``/``--island-kind`` its id and kind;
    district and queue come from the section, the queue else from ``grid.schedule.queue``). None when neither
    is there; exit 2 on bad input."""
    section = site.centre
    if url is None and section is None:
        option = "--island-id" if island_id is not None else "--island-kind" if kind is not None else None
        if (option := option or (login.given() if login is not None else None)) is not None:
            raise fail(EXIT_BAD_INPUT, f"{option} needs --publish mqtt[s]://HOST:PORT/CITY (or a centre: section)")
        return None
    from microgrid.uplink import KINDS, Island, island_topic, parse_url, slug

    kind = kind or (section.kind if section is not None else "other")
    if kind not in KINDS:
        raise fail(EXIT_BAD_INPUT, f"--island-kind: one of {', '.join(KINDS)}, got {kind!r}")
    try:
        broker = parse_url(url) if url is not None else parse_url(section.url)
        name = island_id or (section and section.island_id) or slug(site.site.name)
        island_topic(broker.city, name, "status")  # checks the id
    except ValueError as exc:
        raise fail(EXIT_BAD_INPUT, str(exc) if url is not None else f"the site file's {_site_key(str(exc))}") from None
    if url is not None or (login is not None and login.given()):
        broker = secured(broker, login, name)
    else:
        broker = _site_credentials(broker, site)
    where, queue = site.location, _queue(site)
    island = Island(name, kind, where.latitude if where else None, where.longitude if where else None)
    district = section.district if section is not None else None
    return Uplink(broker, replace(island, district=district, queue=queue), section.keepalive_s if section else 30)


_SITE_KEYS = {
    "--publish": "centre.broker",
    "--mqtt-ca": "centre.tls.ca",
    "--mqtt-cert": "centre.tls.cert",
    "--mqtt-key": "centre.tls.key",
    "--mqtt-username": "centre.username",
    "--mqtt-password-file": "centre.password_file",
}


def _site_key(message: str) -> str:
    """An uplink's error about an option, said about the site file's key instead."""
    for option, key in _SITE_KEYS.items():
        message = message.replace(option, key)
    return message


def _site_credentials(broker: Any, site: Any) -> Any:
    """``broker`` with the ``centre:`` section's TLS files and login (relative to the site file), checked."""
    from microgrid.uplink.security import credentials

    section = site.centre
    tls = section.tls

    def path(relative: str | None) -> Path | None:
        return None if relative is None else site.resolve(relative)

    try:
        found = credentials(
            broker.tls,
            ca_file=path(tls and tls.ca),
            cert_file=path(tls and tls.cert),
            key_file=path(tls and tls.key),
            username=section.username,
            password_file=path(section.password_file),
        )
    except ValueError as exc:
        raise fail(EXIT_BAD_INPUT, f"the site file's {_site_key(str(exc))}") from None
    return replace(broker, credentials=found)


def _queue(site: Any) -> str | None:
    """The island's outage queue: ``centre.queue``, else ``grid.schedule.queue`` when it is topic-safe."""
    import re

    from microgrid.site.centre import QUEUE_PATTERN

    if site.centre is not None and site.centre.queue is not None:
        return str(site.centre.queue)
    schedule = site.grid.schedule if site.grid is not None else None
    return schedule.queue if schedule is not None and re.match(QUEUE_PATTERN, schedule.queue) else None


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
    publisher = Publisher(
        settings.broker, settings.island, runner.controller.site, outbox, keepalive_s=settings.keepalive_s
    )
    publisher.attach(runner)
    publisher.start()
    try:
        yield publisher
    finally:
        publisher.flush(5.0)
        publisher.close()
        outbox.close()
