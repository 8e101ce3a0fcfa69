"""Who talks to the Situation Centre's broker: TLS and credentials of an MQTT client (docs/situation-centre.md,
section Security).

* ``mqtts://host:8883/<city>``: TLS 1.2 or newer. The broker's certificate is always verified: signed by
  ``--mqtt-ca`` (or, without it, by one of the system's CAs) and naming the URL's host. There is no switch
  to turn the check off.
* The client's identity, either or both:

  - a certificate and its key (``--mqtt-cert``, ``--mqtt-key``; CN = the island's id, or ``centre``), for a
    broker with ``require_certificate true`` and ``use_identity_as_username true`` (what
    ``microgrid centre broker-config`` writes);
  - a user name and a password read from a file (``--mqtt-username``, ``--mqtt-password-file``: its first
    line), never from the command line, where ``ps`` shows it to every user of the machine.

* Plain ``mqtt://`` (loopback, development) takes no TLS option (an error says so); a password over it is
  allowed and travels in clear.

Nothing heavy at import: :mod:`ssl` loads when a context is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

__all__ = ["Credentials", "apply", "credentials", "publish_kwargs", "read_password", "tls_context"]


@dataclass(frozen=True)
class Credentials:
    """A client's TLS files and login; every file already checked readable (:func:`credentials`)."""

    ca_file: Path | None = None
    """PEM CA certificate(s) that signed the broker's certificate; None: the system's CAs."""
    cert_file: Path | None = None
    """PEM client certificate (its CN: the client's identity at a broker with ``use_identity_as_username``)."""
    key_file: Path | None = None
    """PEM private key of ``cert_file`` (None: the key is in ``cert_file``)."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    """Read from the password file; never printed (``repr`` leaves it out)."""


def _readable(path: Path, option: str) -> Path:
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as exc:
        raise ValueError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
    return path


def read_password(path: Path, option: str = "--mqtt-password-file") -> str:
    """The first line of ``path`` without its line end; ValueError naming ``option`` and the file."""
    _readable(path, option)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{option}: {path} is not UTF-8 text") from None
    if not lines or not lines[0]:
        raise ValueError(f"{option}: {path} is empty (the password is its first line)")
    return lines[0]


def credentials(
    tls: bool,
    *,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    username: str | None = None,
    password_file: Path | None = None,
) -> Credentials | None:
    """Checked credentials for a broker with (``tls``) or without TLS; None when nothing is given.

    Raises ValueError naming the option and the file: a TLS file with plain ``mqtt://``, a key without its
    certificate, a password file without a user name, a file missing or unreadable, a file that is not
    what its option says (the TLS context is built once here to find out).
    """
    if not tls:
        for option, given in (("--mqtt-ca", ca_file), ("--mqtt-cert", cert_file), ("--mqtt-key", key_file)):
            if given is not None:
                raise ValueError(f"{option} needs an mqtts:// broker URL (TLS)")
    if key_file is not None and cert_file is None:
        raise ValueError("--mqtt-key needs --mqtt-cert (the certificate it belongs to)")
    if password_file is not None and not username:
        raise ValueError("--mqtt-password-file needs --mqtt-username")
    if ca_file is None and cert_file is None and username is None:
        return None
    found = Credentials(
        ca_file=ca_file and _readable(ca_file, "--mqtt-ca"),
        cert_file=cert_file and _readable(cert_file, "--mqtt-cert"),
        key_file=key_file and _readable(key_file, "--mqtt-key"),
        username=username,
        password=None if password_file is None else read_password(password_file),
    )
    if tls:
        tls_context(found)
    return found


def tls_context(found: Credentials | None) -> ssl.SSLContext:
    """A client context: TLS 1.2+, the broker's certificate and host name verified (against ``ca_file``, or
    the system's CAs), the client's certificate loaded; ValueError naming the option and the file."""
    import ssl  # noqa: PLC0415 - lazy on purpose (the CLI's start-up)

    found = found or Credentials()
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=found.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"--mqtt-ca: {found.ca_file} holds no usable PEM CA certificate ({exc})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if found.cert_file is not None:
        try:
            context.load_cert_chain(found.cert_file, found.key_file)
        except (OSError, ssl.SSLError) as exc:
            key = found.key_file or found.cert_file
            raise ValueError(
                f"--mqtt-cert/--mqtt-key: {found.cert_file} and {key} are not a PEM certificate and its "
                f"unencrypted private key ({exc})"
            ) from None
    return context


def apply(client: Any, tls: bool, found: Credentials | None) -> None:
    """Set up a paho ``client`` (before it connects): TLS when ``tls``, the login when one is given."""
    if tls:
        client.tls_set_context(tls_context(found))
    if found is not None and found.username:
        client.username_pw_set(found.username, found.password)


def publish_kwargs(tls: bool, found: Credentials | None) -> dict[str, Any]:
    """``tls`` and ``auth`` for :func:`paho.mqtt.publish.single` / ``multiple``."""
    auth = None
    if found is not None and found.username:
        auth = {"username": found.username, "password": found.password}
    return {"tls": tls_context(found) if tls else None, "auth": auth}
