"""The city's Mosquitto configuration (``microgrid centre broker-config``; docs/situation-centre.md, Security).

From the list of island ids, a folder for Mosquitto 2:

* ``mosquitto.conf``: one TLS listener (``certs/ca.crt``, ``certs/server.crt``, ``certs/server.key``), no
  anonymous clients, the ACL file; with ``auth="certificate"`` every client shows a certificate signed by the
  CA (``require_certificate``) and its CN is its user name (``use_identity_as_username``); with
  ``auth="password"`` the TLS listener takes a user name and password (``password_file``, hashed); the client
  id is the user name (``use_username_as_clientid``): no client can push another off, fire its Last Will or
  take its session over by connecting with its client id;
* ``acl``: each island writes only ``<city>/islands/<its id>/#`` and reads ``<city>/commands`` and
  ``<city>/schedules/#``; the centre reads ``<city>/#`` and writes ``<city>/commands`` and ``<city>/schedules/#``;
  the operators (``operator`` by default) write those two and read nothing; nothing else is granted (Mosquitto
  drops a denied publish without telling the client, and delivers nothing on a denied subscription);
* with ``auth="password"``: ``passwd`` (Mosquitto's ``$7$`` PBKDF2-SHA512 lines, as ``mosquitto_passwd``
  writes them) and ``passwords/<id>``, each identity's random password (mode 0600) to copy to its island;
* with ``make_certs``: the CA, the server's and every identity's certificate (:mod:`microgrid.centre.pki`).

Files with secrets that exist (passwords, keys, certificates) are kept, so the command can be run again with
more islands; ``mosquitto.conf``, ``acl`` and ``passwd`` are rewritten.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from microgrid.uplink.topics import island_topic

__all__ = [
    "AUTHS",
    "BrokerPlan",
    "acl_text",
    "conf_text",
    "hand_over",
    "password_line",
    "read_islands",
    "write_config",
]

AUTHS = ("certificate", "password")
PBKDF2_ITERATIONS = 101
"""Mosquitto 2.0's own default: the passwords are 32 random bytes, so a slow hash adds nothing against guessing."""


@dataclass(frozen=True)
class BrokerPlan:
    """What to configure: the city, its islands (ids), the centre's identity, where to listen, how to log in."""

    city: str
    islands: tuple[str, ...]
    centre: str = "centre"
    bind: str = "0.0.0.0"
    port: int = 8883
    auth: Literal["certificate", "password"] = "certificate"
    run_as: str = "mosquitto"
    """Mosquitto's ``user``: started as root, it drops to this user before reading its key and password file."""
    operators: tuple[str, ...] = ("operator",)
    """Who sends commands and schedules besides the centre (``centre emergency``, ``centre schedule``): one
    identity per desk or script. The broker allows one connection per identity (the client id is the user name),
    so a command sent as ``centre`` while ``centre serve`` runs would push the screen's listener off."""

    def __post_init__(self) -> None:
        if not self.islands:
            raise ValueError("no islands: give --islands and/or --islands-file")
        for island in (*self.islands, self.centre, *self.operators):
            island_topic(self.city, island, "status")  # lower-case letters, digits, - and _: no wildcard, no /
        if len(set(self.islands)) != len(self.islands):
            twice = sorted({i for i in self.islands if self.islands.count(i) > 1})
            raise ValueError(f"island ids given twice: {', '.join(twice)}")
        centre = [self.centre, *self.operators]
        if len(set(centre)) != len(centre):
            raise ValueError(f"the centre's and the operators' identities must differ: {', '.join(centre)}")
        if clash := sorted(set(centre) & set(self.islands)):
            raise ValueError(f"{', '.join(clash)}: the centre's or an operator's identity, not an island's id")
        if not re.fullmatch(r"[a-z_][a-z0-9_-]*", self.run_as):
            raise ValueError(f"--run-as: a system user name, got {self.run_as!r}")
        if self.auth not in AUTHS:
            raise ValueError(f"--auth: one of {', '.join(AUTHS)}, got {self.auth!r}")

    @property
    def identities(self) -> list[str]:
        """Everyone with a login: the centre, the operators, then the islands."""
        return [self.centre, *self.operators, *self.islands]


def read_islands(path: Path) -> list[str]:
    """Island ids from a text file: one a line; blank lines and ``#`` comments skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--islands-file: cannot read {path}: {exc}") from None
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def acl_text(plan: BrokerPlan) -> str:
    """Mosquitto's ACL file (module docstring): per user, what it may read and write."""
    city = plan.city
    lines = [
        f"# Situation Centre of {city}: written by `microgrid centre broker-config` (docs/situation-centre.md).",
        "# Nothing is granted but what is listed: Mosquitto drops a denied publish, delivers nothing denied.",
        "",
        "# the centre: reads everything of the city; alone sends commands and schedules",
        f"user {plan.centre}",
        f"topic read {city}/#",
        f"topic write {city}/commands",
        f"topic write {city}/schedules/#",
    ]
    for operator in plan.operators:
        lines += [
            "",
            f"# {operator}: sends commands and schedules (reads nothing)",
            f"user {operator}",
            f"topic write {city}/commands",
            f"topic write {city}/schedules/#",
        ]
    for island in plan.islands:
        lines += [
            "",
            f"user {island}",
            f"topic write {city}/islands/{island}/#",
            f"topic read {city}/commands",
            f"topic read {city}/schedules/#",
        ]
    return "\n".join(lines) + "\n"


def conf_text(plan: BrokerPlan, folder: Path) -> str:
    """``mosquitto.conf`` for files in ``folder`` (absolute paths; ValueError if they hold a space)."""
    where = folder.resolve()
    if re.search(r"\s", str(where)):
        raise ValueError(f"{where}: Mosquitto's configuration cannot name paths with spaces; choose another folder")
    lines = [
        f"# Situation Centre of {plan.city}: written by `microgrid centre broker-config` (docs/situation-centre.md).",
        "# Run: mosquitto -c " + str(where / "mosquitto.conf"),
        f"user {plan.run_as}",
        "per_listener_settings false",
        "allow_anonymous false",
        f"acl_file {where / 'acl'}",
    ]
    if plan.auth == "password":
        lines.append(f"password_file {where / 'passwd'}")
    lines += [
        "persistence true",
        f"persistence_location {where / 'data'}/",
        "",
        f"listener {plan.port} {plan.bind}",
        f"cafile {where / 'certs' / 'ca.crt'}",
        f"certfile {where / 'certs' / 'server.crt'}",
        f"keyfile {where / 'certs' / 'server.key'}",
    ]
    if plan.auth == "certificate":
        lines += ["require_certificate true", "use_identity_as_username true"]
    # The client id is the user name: nobody can take over another's connection or session by its client id
    # (which would push it off, send its Last Will, and hand its queued messages to the taker).
    lines.append("use_username_as_clientid true")
    return "\n".join(lines) + "\n"


def password_line(user: str, password: str, salt: bytes | None = None) -> str:
    """One line of Mosquitto 2's password file: ``user:$7$<iterations>$<salt>$<PBKDF2-SHA512>`` (base64)."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, 64)
    b64 = base64.b64encode
    return f"{user}:$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def _secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _passwords(plan: BrokerPlan, folder: Path) -> list[Path]:
    """``passwords/<id>`` (kept when present, else random) and the hashed ``passwd``; the files written."""
    (folder / "passwords").mkdir(exist_ok=True)
    written, lines = [], []
    for who in plan.identities:
        path = folder / "passwords" / who
        if not path.exists():
            _secret(path, secrets.token_urlsafe(32) + "\n")
            written.append(path)
        lines.append(password_line(who, path.read_text(encoding="utf-8").splitlines()[0]))
    _secret(folder / "passwd", "\n".join(lines) + "\n")
    return [*written, folder / "passwd"]


def hand_over(plan: BrokerPlan, folder: Path) -> str | None:
    """Run as root: give ``plan.run_as`` what Mosquitto reads after dropping to it (the server's key, the
    password file, the persistence folder); what to do by hand when that cannot be done, else None."""
    if os.name != "posix" or os.geteuid() != 0 or plan.run_as == "root":
        return None
    import pwd  # noqa: PLC0415 - POSIX only

    files = [folder / "certs" / "server.key", folder / "data"] + (
        [folder / "passwd"] if plan.auth == "password" else []
    )
    try:
        user = pwd.getpwnam(plan.run_as)
    except KeyError:
        return f"no user {plan.run_as!r} here: give it {', '.join(map(str, files))} where the broker runs"
    for path in files:
        if path.exists():
            os.chown(path, user.pw_uid, user.pw_gid)
    return f"{', '.join(str(f) for f in files if f.exists())}: now owned by {plan.run_as} (Mosquitto reads them as it)"


def write_config(
    plan: BrokerPlan, folder: Path, *, make_certs: bool = False, server_names: list[str] | None = None, days: int = 825
) -> list[Path]:
    """Write the configuration into ``folder`` (module docstring); the files written, in order.
    ``server_names``: the names and addresses the islands reach the broker by (the server certificate's
    SANs; None: ``localhost`` and ``127.0.0.1`` for a new one, an existing one kept); ``days``: the validity of
    the certificates made [days]."""
    text = conf_text(plan, folder)  # checks the folder's path before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    written: list[Path] = []
    if make_certs:
        from microgrid.centre.pki import make_pki  # noqa: PLC0415 - cryptography is optional

        written += make_pki(folder / "certs", plan.identities, server_names, days).written
    (folder / "mosquitto.conf").write_text(text, encoding="utf-8")
    (folder / "acl").write_text(acl_text(plan), encoding="utf-8")
    written += [folder / "mosquitto.conf", folder / "acl"]
    if plan.auth == "password":
        written += _passwords(plan, folder)
    return written
