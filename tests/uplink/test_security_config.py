"""Security's parts without a broker: the URL, the client's credentials (every error names the option and the
file), the broker's ACL and configuration as ``broker-config`` writes them, Mosquitto's password hash (checked
against Debian's ``mosquitto_passwd``), the certificates kept across runs, and the CLI's exit 2."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from microgrid.centre.broker import (
    BrokerPlan,
    acl_text,
    conf_text,
    hand_over,
    password_line,
    read_islands,
    write_config,
)
from microgrid.cli import app
from microgrid.uplink import parse_url
from microgrid.uplink.security import credentials, publish_kwargs, tls_context
from tests.test_operate_cli import site_file  # noqa: F401 - fixture

IDS = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True).filter(lambda i: i != "centre")


def test_urls() -> None:
    tls = parse_url("mqtts://broker.example/kharkiv")
    assert (tls.host, tls.port, tls.city, tls.tls, tls.credentials) == ("broker.example", 8883, "kharkiv", True, None)
    assert (parse_url("mqtt://h/kharkiv").port, parse_url("mqtt://h/kharkiv").tls) == (1883, False)
    assert parse_url("mqtts://h:9999/kharkiv").port == 9999
    for bad, said in [("https://h/k", "mqtts://"), ("mqtts://u:secret@h/k", "no user or password")]:
        with pytest.raises(ValueError, match=said) as caught:
            parse_url(bad)
        assert "secret" not in str(caught.value)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("cryptography")
    from microgrid.centre.pki import make_pki

    folder = tmp_path_factory.mktemp("pki")
    make_pki(folder, ["a"], ["localhost"], 1)
    return folder


def test_credentials_errors_name_the_option_and_the_file(pki: Path, tmp_path: Path) -> None:
    ca, crt, key = pki / "ca.crt", pki / "clients" / "a.crt", pki / "clients" / "a.key"
    empty, text = tmp_path / "empty", tmp_path / "text"
    empty.write_text("")
    text.write_text("not a certificate\n")
    cases = [
        (dict(tls=False, ca_file=ca), "--mqtt-ca needs an mqtts://"),
        (dict(tls=False, cert_file=crt, key_file=key), "--mqtt-cert needs an mqtts://"),
        (dict(tls=True, key_file=key), "--mqtt-key needs --mqtt-cert"),
        (dict(tls=True, password_file=empty), "--mqtt-password-file needs --mqtt-username"),
        (dict(tls=True, ca_file=tmp_path / "nope.crt"), f"--mqtt-ca: cannot read {tmp_path / 'nope.crt'}"),
        (dict(tls=True, ca_file=text), f"--mqtt-ca: {text} holds no usable PEM"),
        (dict(tls=True, ca_file=ca, cert_file=crt, key_file=pki / "ca.key"), f"--mqtt-cert/--mqtt-key: {crt}"),
        (dict(tls=True, cert_file=crt, key_file=tmp_path / "gone.key"), f"--mqtt-key: cannot read {tmp_path}"),
        (dict(tls=False, username="a", password_file=empty), f"--mqtt-password-file: {empty} is empty"),
        (dict(tls=False, username="a", password_file=tmp_path), f"--mqtt-password-file: cannot read {tmp_path}"),
    ]
    for kwargs, said in cases:
        with pytest.raises(ValueError) as caught:
            credentials(**kwargs)  # type: ignore[arg-type]
        assert said in str(caught.value), (kwargs, str(caught.value))


def test_credentials_that_work(pki: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\nignored second line\n")
    assert credentials(False) is None
    found = credentials(True, ca_file=pki / "ca.crt", username="a", password_file=secret)
    assert found is not None and found.password == "s3cret" and "s3cret" not in repr(found)
    assert publish_kwargs(False, found) == {"tls": None, "auth": {"username": "a", "password": "s3cret"}}
    both = credentials(
        True, ca_file=pki / "ca.crt", cert_file=pki / "clients" / "a.crt", key_file=pki / "clients" / "a.key"
    )
    context = tls_context(both)
    assert context.check_hostname and context.verify_mode.name == "CERT_REQUIRED"
    assert context.minimum_version.name == "TLSv1_2"


def permissions(acl: str) -> dict[str, dict[str, list[str]]]:
    """user → {"read": [...], "write": [...]} from a Mosquitto ACL file's text."""
    users: dict[str, dict[str, list[str]]] = {}
    user = None
    for line in acl.splitlines():
        if line.startswith("user "):
            user = line.split()[1]
            users[user] = {"read": [], "write": []}
        elif line.startswith("topic "):
            assert user is not None, "a topic line before any user grants it to anonymous clients"
            _, access, topic = line.split()
            users[user][access].append(topic)
        else:
            assert not line or line.startswith("#"), line
    return users


@settings(max_examples=40, deadline=None)
@given(islands=st.lists(IDS, min_size=1, max_size=6, unique=True))
def test_the_acl_lets_each_island_write_only_its_own_topics(islands: list[str]) -> None:
    users = permissions(acl_text(BrokerPlan("kharkiv", tuple(islands))))
    assert set(users) == {"centre", "operator", *islands}
    assert users["centre"] == {
        "read": ["kharkiv/#"],
        "write": ["kharkiv/commands", "kharkiv/schedules/#"],
    }
    assert users["operator"] == {"read": [], "write": ["kharkiv/commands", "kharkiv/schedules/#"]}
    for island in islands:
        assert users[island] == {
            "read": ["kharkiv/commands", "kharkiv/schedules/#"],
            "write": [f"kharkiv/islands/{island}/#"],
        }
    writers = [u for u, grants in users.items() if any("commands" in t or "schedules" in t for t in grants["write"])]
    assert writers == ["centre", "operator"]
    island_readers = [u for u, g in users.items() if any(t == "kharkiv/#" or "/islands" in t for t in g["read"])]
    assert island_readers == ["centre"]


@pytest.mark.parametrize(
    ("islands", "said"),
    [
        ((), "no islands"),
        (("a", "a"), "given twice: a"),
        (("centre",), "centre: the centre's or an operator's identity"),
        (("operator",), "operator: the centre's or an operator's identity"),
        (("a/#",), "island id"),
        (("+",), "island id"),
        (("A",), "island id"),
    ],
)
def test_bad_island_lists(islands: tuple[str, ...], said: str) -> None:
    with pytest.raises(ValueError, match=re.escape(said)):
        BrokerPlan("kharkiv", islands)


def test_the_configuration(tmp_path: Path) -> None:
    plan = BrokerPlan("kharkiv", ("a",), port=18883, bind="127.0.0.1")
    text = conf_text(plan, tmp_path)
    lines = text.splitlines()
    for needed in ["allow_anonymous false", "listener 18883 127.0.0.1", "require_certificate true",
                   "use_identity_as_username true", "use_username_as_clientid true",
                   f"acl_file {tmp_path}/acl", "user mosquitto",
                   f"cafile {tmp_path}/certs/ca.crt", f"keyfile {tmp_path}/certs/server.key"]:  # fmt: skip
        assert needed in lines, needed
    assert "password_file" not in text
    password = conf_text(BrokerPlan("kharkiv", ("a",), auth="password"), tmp_path).splitlines()
    assert f"password_file {tmp_path}/passwd" in password and "require_certificate true" not in password
    assert "use_username_as_clientid true" in password
    with pytest.raises(ValueError, match="spaces"):
        conf_text(plan, tmp_path / "with space")


def test_islands_file(tmp_path: Path) -> None:
    listed = tmp_path / "islands.txt"
    listed.write_text("# the city's islands\nhospital-7\n\npumps-2  # the water works\n")
    assert read_islands(listed) == ["hospital-7", "pumps-2"]
    with pytest.raises(ValueError, match="--islands-file: cannot read"):
        read_islands(tmp_path / "none.txt")


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="Debian's mosquitto_passwd is not installed")
@settings(max_examples=8, deadline=None)
@given(password=st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=40))
def test_password_lines_are_mosquitto_passwd_s(password: str) -> None:
    """A line ``mosquitto_passwd`` wrote, rebuilt from its salt by :func:`password_line`: the same text."""
    import base64
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "passwd"
        subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "alice", password], check=True, capture_output=True)
        theirs = path.read_text().strip()
    salt = base64.b64decode(theirs.split("$")[3])
    assert password_line("alice", password, salt) == theirs


def test_password_files(tmp_path: Path) -> None:
    plan = BrokerPlan("kharkiv", ("a", "b"), auth="password")
    write_config(plan, tmp_path)
    first = {who: (tmp_path / "passwords" / who).read_text() for who in plan.identities}
    assert len(set(first.values())) == 4 and all(len(p.strip()) >= 40 for p in first.values())
    assert stat.S_IMODE((tmp_path / "passwords" / "a").stat().st_mode) == 0o600
    users = [line.split(":")[0] for line in (tmp_path / "passwd").read_text().splitlines()]
    assert users == ["centre", "operator", "a", "b"]
    write_config(BrokerPlan("kharkiv", ("a", "b", "c"), auth="password"), tmp_path)  # one more island
    assert all((tmp_path / "passwords" / who).read_text() == first[who] for who in first)  # kept
    assert (tmp_path / "passwords" / "c").exists()


def test_certificates_are_kept_when_an_island_is_added(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from cryptography import x509

    write_config(BrokerPlan("kharkiv", ("a",)), tmp_path, make_certs=True)
    certs = tmp_path / "certs"
    before = {p.name: p.read_bytes() for p in [certs / "ca.crt", certs / "server.crt", certs / "clients" / "a.crt"]}
    write_config(BrokerPlan("kharkiv", ("a", "c")), tmp_path, make_certs=True)
    assert {n: (certs / ("clients/" if n == "a.crt" else "") / n).read_bytes() for n in before} == before
    ca = x509.load_pem_x509_certificate((certs / "ca.crt").read_bytes())
    new = x509.load_pem_x509_certificate((certs / "clients" / "c.crt").read_bytes())
    new.verify_directly_issued_by(ca)
    assert new.subject.rfc4514_string() == "CN=c"
    assert stat.S_IMODE((certs / "clients" / "c.key").stat().st_mode) == 0o600

    def server_names() -> list[str]:
        server = x509.load_pem_x509_certificate((certs / "server.crt").read_bytes())
        return [str(n.value) for n in server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value]

    assert server_names() == ["localhost", "127.0.0.1"]
    write_config(BrokerPlan("kharkiv", ("a", "c")), tmp_path, make_certs=True, server_names=["broker.example"])
    assert server_names() == ["broker.example"]  # made again for the new names; the CA and clients kept
    assert (certs / "ca.crt").read_bytes() == before["ca.crt"]
    assert (certs / "clients" / "a.crt").read_bytes() == before["a.crt"]
    write_config(BrokerPlan("kharkiv", ("a", "c")), tmp_path, make_certs=True)  # no names given: kept
    assert server_names() == ["broker.example"]


def test_make_certs_without_cryptography(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cryptography`` is not a runtime dependency: without it ``--make-certs`` says what to install (exit 2)
    and writes nothing."""
    monkeypatch.setitem(sys.modules, "cryptography", None)  # import cryptography -> ImportError
    args = ["centre", "broker-config", str(tmp_path / "out"), "--city", "kharkiv", "--islands", "a", "--make-certs"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2, done.output
    assert "--make-certs needs the 'cryptography' package" in done.output + capsys.readouterr().err
    assert not (tmp_path / "out" / "mosquitto.conf").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("emergency", "on", "mqtts://127.0.0.1:1/k", "--islands", "a", "--mqtt-ca", "/no/ca.crt"),
         "--mqtt-ca: cannot read /no/ca.crt"),
        (("emergency", "on", "mqtt://127.0.0.1:1/k", "--islands", "a", "--mqtt-cert", "/no/c.crt"),
         "--mqtt-cert needs an mqtts://"),
        (("serve", "mqtts://127.0.0.1:1/k", "--mqtt-username", "u", "--mqtt-password-file", "/no/pw"),
         "--mqtt-password-file: cannot read /no/pw"),
        (("broker-config", "OUT", "--city", "kharkiv"), "no islands"),
        (("broker-config", "OUT", "--city", "kharkiv", "--islands", "a", "--listen", "8883"), "--listen"),
        (("broker-config", "OUT", "--city", "kharkiv", "--islands", "a", "--auth", "magic"), "--auth"),
    ],
)  # fmt: skip
def test_bad_centre_options_exit_2(
    tmp_path: Path, args: tuple[str, ...], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    done = CliRunner().invoke(app, ["centre", *[str(tmp_path / "out") if a == "OUT" else a for a in args]])
    assert done.exit_code == 2 and said in done.output + capsys.readouterr().err, done.output
    assert not (tmp_path / "out").exists()


def test_run_checks_its_credentials_before_starting(
    site_file: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``run --publish mqtts://`` with a key file that is not there: exit 2 naming the option and the file,
    before any device is touched; a TLS option without ``--publish``: exit 2."""
    url = "mqtts://127.0.0.1:1/kharkiv"
    key = tmp_path / "k"
    for args, said in [
        (["--publish", url, "--mqtt-cert", str(site_file), "--mqtt-key", str(key)], f"--mqtt-key: cannot read {key}"),
        (["--mqtt-ca", str(site_file)], "--mqtt-ca needs --publish"),
    ]:
        done = CliRunner().invoke(app, ["run", str(site_file), "--once", *args])
        assert done.exit_code == 2 and said in done.output + capsys.readouterr().err, done.output


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="only root can give files away")
def test_run_as_root_hands_the_broker_its_files(tmp_path: Path) -> None:
    """Mosquitto started as root drops to its user before reading its key: ``broker-config`` run as root gives
    that user the server's key, the password file and the persistence folder, and nothing else."""
    import pwd

    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no mosquitto user (Debian's package makes it)")
    pytest.importorskip("cryptography")
    plan = BrokerPlan("kharkiv", ("a",), auth="password")
    write_config(plan, tmp_path, make_certs=True)
    said = hand_over(plan, tmp_path)
    assert said is not None and "owned by mosquitto" in said
    owners = {p.relative_to(tmp_path).as_posix(): p.stat().st_uid for p in tmp_path.rglob("*")}
    handed = {"certs/server.key", "passwd", "data"}
    assert {p for p, uid in owners.items() if uid == user.pw_uid} == handed
    assert hand_over(BrokerPlan("kharkiv", ("a",), run_as="root"), tmp_path) is None
    assert "no user 'nobody-here'" in str(hand_over(BrokerPlan("kharkiv", ("a",), run_as="nobody-here"), tmp_path))
