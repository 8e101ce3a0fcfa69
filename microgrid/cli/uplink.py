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
        help="With mqtts://: this client's certificate (PEM; its CN is the identity: the island id, or centre).",
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
    str,
    typer.Option("--island-kind", help="With --publish: hospital, water-pumping, boiler-house, shelter or other."),
]


@dataclass(frozen=True)
class Uplink:
    """``--publish``'s settings: the broker (:class:`microgrid.uplink.Broker`) and the island (``Island``)."""

    broker: Any
    island: Any


def publish_options(
    url: str | None, island_id: str | None, kind: str, site: Any, login: MqttLogin | None = None
) -> Uplink | None:
    """The uplink's settings, None without ``--publish``; exit 2 on bad input."""
    if url is None:
        if (option := "--island-id" if island_id is not None else login and login.given()) is not None:
            raise fail(EXIT_BAD_INPUT, f"{option} needs --publish mqtt[s]://HOST:PORT/CITY")
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
    broker = secured(broker, login, name)
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
