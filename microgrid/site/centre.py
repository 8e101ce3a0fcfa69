"""The site file's ``centre:`` section (an extension of ``shared/spec/site-and-profiles.md``): how ``microgrid run``
publishes the island to the city's Situation Centre (docs/situation-centre.md), without ``--publish`` options.

::

    centre:
      broker: mqtts://centre.kharkiv.example:8883/kharkiv   # the city in the URL's path, or in `city`
      island_id: hospital-7          # default: the site's name made topic-safe
      kind: hospital                 # hospital, water-pumping, boiler-house, shelter, other
      district: Shevchenkivskyi      # the centre's commands by district reach the island
      queue: "3.1"                   # the outage queue; default grid.schedule.queue
      tls: {ca: pki/ca.crt, cert: pki/hospital-7.crt, key: pki/hospital-7.key}   # relative to the site file
      username: hospital-7           # a broker login; the password is the first line of password_file
      password_file: secrets/mqtt-password

Only the form is checked here (the site model imports no MQTT code): the URL's scheme, host, port and city, the
names' patterns (they become MQTT topics). The CLI reads the credential files when ``run`` starts.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator, model_validator

from microgrid.site.values import Frozen, problem

__all__ = ["CITY_PATTERN", "DISTRICT_PATTERN", "QUEUE_PATTERN", "CentreLink", "CentreTls", "centre_problems"]

CITY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""A city and an island id: lower-case letters, digits, ``-``, ``_`` (topic-safe; as :mod:`microgrid.uplink.topics`)."""
QUEUE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
"""An outage queue (``3.1``): letters, digits, ``.``, ``_``, ``-`` (topic-safe; as command.schema.json)."""
DISTRICT_PATTERN = r"^\w[\w .'’-]{0,63}$"
"""A district: letters of any script, digits, spaces, ``. _ ' ’ -`` (as command.schema.json)."""

Name = Annotated[str, StringConstraints(strict=True, pattern=CITY_PATTERN)]
RelPath = Annotated[str, StringConstraints(strict=True, min_length=1)]
"""A path relative to the site file."""


class CentreTls(Frozen):
    """TLS to the broker (``mqtts://``): the CA that signed the broker's certificate (absent: the system's CAs),
    the island's own certificate and key (absent: no client certificate). Paths relative to the site file."""

    ca: RelPath | None = None
    cert: RelPath | None = None
    key: RelPath | None = None


class CentreLink(Frozen):
    """The ``centre`` section: the broker, the island's id, kind, district and outage queue, its credentials."""

    broker: Annotated[str, StringConstraints(strict=True, min_length=1)]
    city: Name | None = None
    island_id: Name | None = None
    kind: Literal["hospital", "water-pumping", "boiler-house", "shelter", "other"] = "other"
    district: Annotated[str, StringConstraints(strict=True, pattern=DISTRICT_PATTERN)] | None = None
    queue: Annotated[str, StringConstraints(strict=True, pattern=QUEUE_PATTERN)] | None = None
    tls: CentreTls | None = None
    username: Annotated[str, StringConstraints(strict=True, min_length=1)] | None = None
    password_file: RelPath | None = None
    keepalive_s: Annotated[int, Field(strict=True, ge=2, le=3600)] = 30
    """MQTT keep-alive [s]: the broker marks the island offline after 1.5 × this of silence."""

    @field_validator("broker")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"mqtt://host:port/<city> or mqtts://host:port/<city> (TLS), got {value!r}")
        try:
            parts.port  # noqa: B018 - urllib checks the port when it is read
        except ValueError:
            raise ValueError(f"a port in 1..65535, got {value!r}") from None
        if not parts.hostname:
            raise ValueError(f"a host is missing in {value!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("no user or password in the URL (username, password_file)")
        return value

    @model_validator(mode="after")
    def _city_once(self) -> CentreLink:
        in_url = urlsplit(self.broker).path.strip("/")
        if not in_url and self.city is None:
            raise problem("city", "required: the city, here or as the broker URL's path (mqtt://host:1883/kharkiv)")
        if in_url and self.city is not None and in_url != self.city:
            raise problem("city", f"the broker URL names the city {in_url!r}, got {self.city!r}")
        if in_url and not _matches(CITY_PATTERN, in_url):
            raise problem("broker", f"the city: lower-case letters, digits, '-' and '_' (at most 64), got {in_url!r}")
        if urlsplit(self.broker).scheme == "mqtt" and self.tls is not None:
            raise problem("tls", "needs an mqtts:// broker URL")
        if self.password_file is not None and self.username is None:
            raise problem("password_file", "needs username")
        if self.tls is not None and self.tls.key is not None and self.tls.cert is None:
            raise problem("tls.key", "needs tls.cert (the certificate it belongs to)")
        return self

    @property
    def url(self) -> str:
        """The broker's URL with the city as its path (``mqtt[s]://host:port/<city>``, what ``--publish`` takes)."""
        parts = urlsplit(self.broker)
        return f"{parts.scheme}://{parts.netloc}/{self.city or parts.path.strip('/')}"


def _matches(pattern: str, text: str) -> bool:
    return re.match(pattern, text) is not None


def centre_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``centre`` section against ``grid.schedule``: one outage queue (``centre.queue``, when both name one,
    is ``grid.schedule.queue``; without ``centre.queue`` the schedule's queue must be topic-safe)."""
    centre, grid = data.get("centre"), data.get("grid")
    schedule = grid.get("schedule") if isinstance(grid, dict) else None
    theirs = schedule.get("queue") if isinstance(schedule, dict) else None
    if not isinstance(centre, dict) or not isinstance(theirs, str):
        return []
    mine = centre.get("queue")
    if mine is None and not _matches(QUEUE_PATTERN, theirs):
        return [
            ("centre.queue", f"required: grid.schedule.queue {theirs!r} is not topic-safe (letters, digits, . _ -)")
        ]
    if isinstance(mine, str) and mine != theirs:
        return [("centre.queue", f"must be grid.schedule.queue ({theirs!r}) when both are given, got {mine!r}")]
    return []
