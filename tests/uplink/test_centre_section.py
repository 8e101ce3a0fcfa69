"""The site file's ``centre:`` section (issue 16, item 1): validated like the other sections (errors naming the key),
read into the uplink's settings (``--publish`` and its options override it), and ``microgrid run SITE`` publishing
because the section is there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from microgrid.cli.uplink import MqttLogin, publish_options
from microgrid.errors import ConfigError
from microgrid.site import site_from_dict
from tests.conftest import WINTER
from tests.test_operate_cli import _cli, simulator, site_file  # noqa: F401 - fixtures
from tests.uplink.conftest import AmqttBroker, Centre, wait_until
from tests.uplink.test_payloads import SCHEMAS

SECTION = {"broker": "mqtt://centre.example:1883/kharkiv", "island_id": "hospital-7", "kind": "hospital",
           "district": "Шевченківський", "queue": "3.1"}  # fmt: skip


def raw(centre: dict[str, Any] | None = None, queue: str | None = "3.1") -> dict[str, Any]:
    site: dict[str, Any] = {
        "site": {"name": "Hospital No. 7"},
        "loads": [{"id": "critical", "priority": 1, "value_of_lost_load_per_kwh": 1000}],
        "grid": {"max_import_kw": 100},
    }
    if queue is not None:
        site["grid"]["schedule"] = {"queue": queue, "source": "schedules"}
    return site | ({"centre": centre} if centre is not None else {})


def test_a_full_section_is_read() -> None:
    section = SECTION | {"broker": "mqtts://centre.example", "city": "kharkiv", "keepalive_s": 10,
                         "tls": {"ca": "pki/ca.crt", "cert": "pki/h7.crt", "key": "pki/h7.key"},
                         "username": "hospital-7", "password_file": "secrets/mqtt"}  # fmt: skip
    centre = site_from_dict(raw(section)).centre
    assert centre is not None and centre.url == "mqtts://centre.example/kharkiv"
    assert (centre.island_id, centre.kind, centre.district, centre.queue) == ("hospital-7", "hospital",
                                                                              "Шевченківський", "3.1")  # fmt: skip
    assert centre.tls is not None and centre.tls.key == "pki/h7.key" and centre.keepalive_s == 10
    assert site_from_dict(raw()).centre is None


@pytest.mark.parametrize(
    ("change", "queue", "said"),
    [
        ({"brokr": "x"}, "3.1", "centre.brokr: unknown key"),
        ({"broker": "http://centre/kharkiv"}, "3.1", "centre.broker: mqtt://"),
        ({"broker": "mqtt://centre:99999/kharkiv"}, "3.1", "centre.broker: a port"),
        ({"broker": "mqtt://user:pw@centre/kharkiv"}, "3.1", "centre.broker: no user or password"),
        ({"broker": "mqtt://centre"}, "3.1", "centre.city: required"),
        ({"broker": "mqtt://centre/Kharkiv"}, "3.1", "centre.broker: the city"),
        ({"city": "lviv"}, "3.1", "centre.city: the broker URL names the city 'kharkiv'"),
        ({"island_id": "Hospital 7"}, "3.1", "centre.island_id"),
        ({"kind": "castle"}, "3.1", "centre.kind"),
        ({"district": "a/b"}, "3.1", "centre.district"),
        ({"queue": "3/1"}, None, "centre.queue"),
        ({"queue": "4.2"}, "3.1", "centre.queue: must be grid.schedule.queue ('3.1')"),
        ({"queue": None}, "3 / 1", "centre.queue: required: grid.schedule.queue '3 / 1' is not topic-safe"),
        ({"tls": {"ca": "ca.crt"}}, "3.1", "centre.tls: needs an mqtts://"),
        ({"broker": "mqtts://c/kharkiv", "tls": {"key": "k.pem"}}, "3.1", "centre.tls.key: needs tls.cert"),
        ({"broker": "mqtts://c/kharkiv", "tls": {"pem": "k.pem"}}, "3.1", "centre.tls.pem: unknown key"),
        ({"password_file": "pw"}, "3.1", "centre.password_file: needs username"),
        ({"keepalive_s": 1}, "3.1", "centre.keepalive_s"),
    ],
)
def test_a_bad_section_is_refused_naming_the_key(change: dict[str, Any], queue: str | None, said: str) -> None:
    section = {k: v for k, v in (SECTION | change).items() if v is not None}
    with pytest.raises(ConfigError) as error:
        site_from_dict(raw(section, queue), "site.yaml")
    assert said in str(error.value) and "site.yaml" in str(error.value), str(error.value)


def test_the_uplink_from_the_section_and_what_overrides_it(tmp_path: Path) -> None:
    site = site_from_dict(raw(SECTION)).with_base_dir(tmp_path)
    uplink = publish_options(None, None, None, site)
    assert uplink is not None
    assert (uplink.broker.host, uplink.broker.port, uplink.broker.city) == ("centre.example", 1883, "kharkiv")
    island = uplink.island
    assert (island.island, island.kind, island.district, island.queue) == ("hospital-7", "hospital",
                                                                           "Шевченківський", "3.1")  # fmt: skip
    over = publish_options("mqtt://other:1884/lviv", "h-9", "shelter", site)
    assert over is not None and (over.broker.host, over.broker.port, over.broker.city) == ("other", 1884, "lviv")
    assert (over.island.island, over.island.kind, over.island.district, over.island.queue) == (
        "h-9", "shelter", "Шевченківський", "3.1")  # fmt: skip
    bare = publish_options(None, None, None, site_from_dict(raw({"broker": "mqtt://c/kharkiv"})))
    assert bare is not None and (bare.island.island, bare.island.kind, bare.island.queue) == (
        "hospital-no-7", "other", "3.1")  # the queue from grid.schedule  # fmt: skip
    assert publish_options(None, None, None, site_from_dict(raw())) is None
    with pytest.raises(typer.Exit):
        publish_options(None, None, "hospital", site_from_dict(raw()))  # --island-kind without a broker


def test_the_sections_credentials_are_checked_naming_the_key(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    section = SECTION | {"broker": "mqtts://c/kharkiv", "username": "hospital-7", "password_file": "secrets/pw"}
    site = site_from_dict(raw(section)).with_base_dir(tmp_path)
    with pytest.raises(typer.Exit):
        publish_options(None, None, None, site)  # the password file is missing
    assert "the site file's centre.password_file: cannot read" in capfd.readouterr().err
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pw").write_text("s3cret\n", encoding="utf-8")
    uplink = publish_options(None, None, None, site)
    assert uplink is not None and uplink.broker.tls and uplink.broker.credentials.password == "s3cret"
    login = MqttLogin(username="other", password_file=tmp_path / "secrets" / "pw")
    over = publish_options(None, None, None, site, login)  # the --mqtt-* options replace the section's
    assert over is not None and over.broker.credentials.username == "other"


def _with_section(base: Path, folder: Path, section: dict[str, Any]) -> Path:
    site = yaml.safe_load(base.read_text(encoding="utf-8"))
    path = folder / "hospital-centre.yaml"
    path.write_text(yaml.safe_dump(site | {"centre": section}, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.slow
def test_run_publishes_because_the_section_is_there(site_file: Path, simulator: object, tmp_path: Path) -> None:  # noqa: F811
    broker = AmqttBroker().start()
    centre = Centre(broker.port)
    try:
        section = SECTION | {"broker": f"mqtt://127.0.0.1:{broker.port}", "city": "kharkiv"}
        done = _cli("run", _with_section(site_file, tmp_path, section), "--profiles", WINTER, "--once", "--store",
                    tmp_path / "history.sqlite")  # fmt: skip
        assert done.returncode == 0, done.stderr
        wait_until(lambda: bool(centre.of("status")), what="the status")
        status = centre.of("status")[-1]
        SCHEMAS["status"].validate(status)
        assert (status["island"], status["kind"], status["district"], status["queue"]) == (
            "hospital-7", "hospital", "Шевченківський", "3.1")  # fmt: skip
    finally:
        centre.close()
        broker.stop()


def test_the_documented_examples_are_valid() -> None:
    """The ``centre:`` examples of docs/situation-centre.md and of the shipped hospital (commented out) validate."""
    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "situation-centre.md").read_text(encoding="utf-8")
    after = doc[doc.index("## The site file's `centre:` section") :]
    block = after[after.index("```yaml\n") + 8 : after.index("```\n", after.index("```yaml\n") + 8)]
    hospital = (root / "models" / "sites" / "hospital.yaml").read_text(encoding="utf-8")
    commented = "\n".join(line[2:] for line in hospital[hospital.index("# centre:") :].splitlines())
    for example in (block, commented):
        centre = site_from_dict(raw() | yaml.safe_load(example)).centre
        assert centre is not None and centre.url.endswith("/kharkiv") and centre.kind == "hospital"


def test_the_sections_names_follow_the_schemas() -> None:
    """The site file accepts exactly the kinds, districts and queues the payloads' schemas do."""
    from typing import get_args

    from microgrid.resources import shipped
    from microgrid.site.centre import DISTRICT_PATTERN, QUEUE_PATTERN, CentreLink
    from microgrid.uplink import KINDS

    def schema(name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(shipped("models", "centre", name).read_text(encoding="utf-8"))
        return loaded

    command, status, sent = schema("command.schema.json"), schema("status.schema.json"), schema("schedule.schema.json")
    assert command["$defs"]["district"]["pattern"] == status["properties"]["district"]["pattern"] == DISTRICT_PATTERN
    assert command["$defs"]["queue"]["pattern"] == status["properties"]["queue"]["pattern"] == QUEUE_PATTERN
    assert sent["properties"]["queue"]["pattern"] == QUEUE_PATTERN
    kind = CentreLink.model_fields["kind"].annotation
    assert get_args(kind) == KINDS == tuple(status["properties"]["kind"]["enum"])
