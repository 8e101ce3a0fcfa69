"""The Situation Centre's topic schema and the ``--publish`` URL (docs/situation-centre.md).

Topics, one island (``<city>`` and ``<island>``: lower-case letters, digits, ``-`` and ``_``)::

    <city>/islands/<island>/status   retained, QoS 1   the island now (models/centre/status.schema.json)
    <city>/islands/<island>/alarms   retained, QoS 1   its active alarms (alarms.schema.json)
    <city>/islands/<island>/cycle    QoS 1             each control cycle (cycle.schema.json)
    <city>/islands/<island>/online   retained, QoS 1   true on connect, false as the Last Will (online.schema.json)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from microgrid.uplink.security import Credentials

__all__ = ["KINDS", "SEQUENCED", "Broker", "island_topic", "parse_url", "slug"]

KINDS = ("hospital", "water-pumping", "boiler-house", "shelter", "other")
"""What an island is (the ``kind`` of its status)."""
SEQUENCED = ("status", "alarms", "cycle")
"""The messages that go through the outbox and carry a ``seq``; ``online`` is the connection's own."""
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Broker:
    """Where to publish: ``mqtt://host:port/<city>`` (port 1883 by default) or ``mqtts://host:port/<city>`` (TLS,
    port 8883 by default), and how to log in (:mod:`microgrid.uplink.security`)."""

    host: str
    port: int
    city: str
    tls: bool = False
    """``mqtts://``: TLS, the broker's certificate verified."""
    credentials: Credentials | None = field(default=None, compare=False)
    """The client's certificate and/or login (None: anonymous)."""


def _checked(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{what}: lower-case letters, digits, '-' and '_' (at most 64), got {name!r}")
    return name


def slug(text: str) -> str:
    """A topic-safe name from free text (a site's name): ``"Hospital No. 3"`` → ``"hospital-no-3"``."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64]
    return out or "island"


def parse_url(url: str) -> Broker:
    """``mqtt[s]://host[:port]/<city>`` → :class:`Broker` (no credentials); ValueError says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"--publish: mqtt://host:port/<city> or mqtts://host:port/<city> (TLS), got {url!r}")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError(f"--publish: a port in 1..65535, got {url!r}") from None
    if not parts.hostname:
        raise ValueError(f"--publish: a host is missing in {url!r}")
    if parts.username is not None or parts.password is not None:  # a password in argv: `ps` shows it to everyone
        raise ValueError("--publish: no user or password in the URL (--mqtt-username, --mqtt-password-file)")
    return Broker(parts.hostname, port, _checked(parts.path.strip("/"), "--publish: the city"), tls)


def island_topic(city: str, island: str, kind: str) -> str:
    """``<city>/islands/<island>/<kind>``, the names checked."""
    return f"{_checked(city, 'city')}/islands/{_checked(island, 'island id')}/{kind}"
