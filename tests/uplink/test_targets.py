"""Commands by island id, district, outage queue or all (issue 16, item 3): which island takes what (pure), the
old commands (islands only) still valid, the CLI's targets, and a district command through a real broker to real
publishers in two districts; the status carries the island's district and queue."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from microgrid.cli import app
from microgrid.store import Store
from microgrid.uplink import Island
from microgrid.uplink.commands import check, command_payload, targets_of, verdict
from microgrid.uplink.payloads import status_payload
from tests.uplink.conftest import AmqttBroker, wait_until
from tests.uplink.test_payloads import SCHEMAS, cycle, small_site
from tests.uplink.test_publish import close, publisher

HOSPITAL = ("hospital-7", "Shevchenkivskyi", "3.1")
PUMPS = ("pumps-2", "Kyivskyi", "4.2")


def raw(**targets: Any) -> bytes:
    return json.dumps(command_payload("c1", True, targets, "cut")).encode()


@pytest.mark.parametrize(
    ("message", "island", "takes"),
    [
        (raw(islands=["hospital-7"]), HOSPITAL, True),
        (raw(islands=["hospital-7"]), PUMPS, False),
        (raw(districts=["Shevchenkivskyi"]), HOSPITAL, True),
        (raw(districts=["Shevchenkivskyi"]), PUMPS, False),
        (raw(districts=["shevchenkivskyi"]), HOSPITAL, False),  # exact names
        (raw(queues=["3.1"]), HOSPITAL, True),
        (raw(queues=["3.1"]), PUMPS, False),
        (raw(queues=["3.1", "4.2"]), PUMPS, True),
        (raw(islands=["nobody"], queues=["4.2"]), PUMPS, True),  # any target matches
        (raw(islands=["nobody"], districts=["Kyivskyi"]), HOSPITAL, False),
        (raw(islands="all"), PUMPS, True),
        (raw(queues=["3.1"]), ("shelter-9", None, None), False),  # an island without a queue
    ],
)
def test_which_island_takes_a_targeted_command(message: bytes, island: tuple[Any, ...], takes: bool) -> None:
    command, why = verdict(message, *island)
    assert why is None and (command is not None) == takes


@pytest.mark.parametrize(
    ("targets", "why"),
    [
        ({}, "(top level)"),  # no target at all
        ({"districts": []}, "districts"),
        ({"queues": ["3/1"]}, "queues"),  # not topic-safe
        ({"queues": ["3.1", "3.1"]}, "queues"),
        ({"districts": ["Bad\nname"]}, "districts"),
        ({"districts": "Kyivskyi"}, "districts"),  # a list, not a string
        ({"islands": "everyone"}, "islands"),
    ],
)
def test_invalid_targets_are_refused(targets: dict[str, Any], why: str) -> None:
    command, refused = verdict(raw(**targets), *HOSPITAL)
    assert command is None and refused is not None and why in refused, refused


def test_an_old_command_with_islands_only_is_still_valid() -> None:
    old = {"schema": 1, "id": "c0", "ts": "2026-12-05T02:15:00Z", "action": "emergency", "on": False,
           "islands": ["hospital-7"], "reason": ""}  # fmt: skip
    assert check(old, "command.schema.json") is None
    assert verdict(json.dumps(old).encode(), "hospital-7") == (old, None)


def test_targets_of() -> None:
    assert targets_of("all", ["x"]) == {"islands": "all"}
    assert targets_of(None, ["Kyivskyi"], []) == {"districts": ["Kyivskyi"]}
    assert targets_of(["a"], None, ["3.1"]) == {"islands": ["a"], "queues": ["3.1"]}
    with pytest.raises(ValueError, match="no target"):
        targets_of(None, [], None)


@given(st.lists(st.from_regex(r"[0-9]\.[0-9]", fullmatch=True), min_size=1, max_size=4, unique=True), st.data())
def test_a_queue_command_reaches_exactly_its_queues(queues: list[str], data: st.DataObject) -> None:
    mine = data.draw(st.from_regex(r"[0-9]\.[0-9]", fullmatch=True))
    command, why = verdict(raw(queues=queues), "i1", None, mine)
    assert why is None and (command is not None) == (mine in queues)


def test_the_status_carries_district_and_queue() -> None:
    site = small_site()
    with_both = status_payload(
        Island("hospital-7", "hospital", district="Шевченківський", queue="3.1"), site, cycle(), 1
    )
    without = status_payload(Island("shelter-9", "shelter"), site, cycle(), 2)
    assert (with_both["district"], with_both["queue"]) == ("Шевченківський", "3.1")
    assert (without["district"], without["queue"]) == (None, None)
    for payload in (with_both, without):
        SCHEMAS["status"].validate(payload)
    old = {k: v for k, v in without.items() if k not in ("district", "queue")}
    SCHEMAS["status"].validate(old)  # payloads from before the fields: still valid
    assert not SCHEMAS["status"].is_valid(with_both | {"queue": "3/1"})


def test_the_cli_sends_targets_and_refuses_bad_ones() -> None:
    broker = AmqttBroker().start()
    got: list[dict[str, Any]] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="listener")
    client.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", broker.port)
    client.subscribe("kharkiv/commands", qos=1)
    client.loop_start()
    url = f"mqtt://127.0.0.1:{broker.port}/kharkiv"
    runner = CliRunner()
    try:
        assert subscribed.wait(5)
        for args in (["--districts", "Kyivskyi, Slobidskyi", "--queues", "3.1"], ["--all"], ["--islands", "all"]):
            done = runner.invoke(app, ["centre", "emergency", "on", url, *args])
            assert done.exit_code == 0, done.output
        for args, said in (
            ([], "whom"),
            (["--all", "--queues", "3.1"], "stands alone"),
            (["--queues", "3/1"], "queues"),
        ):
            done = runner.invoke(app, ["centre", "emergency", "off", url, *args])
            assert done.exit_code == 2 and said in done.output, done.output
        wait_until(lambda: len(got) == 3, 5, "three commands")
        time.sleep(0.2)
    finally:
        client.disconnect()
        client.loop_stop()
        broker.stop()
    assert got[0]["districts"] == ["Kyivskyi", "Slobidskyi"] and got[0]["queues"] == ["3.1"] and "islands" not in got[0]
    assert got[1]["islands"] == "all" and got[2]["islands"] == "all" and len(got) == 3


def test_a_district_command_reaches_only_that_district(tmp_path: Path) -> None:
    """Two real publishers (their own outboxes and stores) in two districts and queues; a command for one district
    and one for a queue: each island queues exactly the commands meant for it, by centre:<id>."""
    from microgrid.centre.commands import send_emergency
    from microgrid.uplink import Broker

    broker = AmqttBroker().start()
    islands = {i[0]: Island(i[0], "hospital", district=i[1], queue=i[2]) for i in (HOSPITAL, PUMPS)}
    pubs = {name: publisher(tmp_path / f"{name}.sqlite", broker.port, island) for name, island in islands.items()}
    try:
        for pub in pubs.values():
            pub.start()
        wait_until(lambda: all(p.listening.is_set() for p in pubs.values()), 10, "both listening")
        city = Broker("127.0.0.1", broker.port, "kharkiv")
        send_emergency(city, targets_of(None, ["Kyivskyi"]), True, "district cut", command_id="d-1")
        send_emergency(city, targets_of(None, None, ["3.1"]), True, "queue cut", command_id="q-1")

        def by(name: str) -> list[str]:
            with Store(tmp_path / f"{name}.sqlite", readonly=True) as reader:
                return [a["by"] for a in reader.pending_actions()]

        wait_until(lambda: by("pumps-2") == ["centre:d-1"] and by("hospital-7") == ["centre:q-1"], 10, "the commands")
        time.sleep(0.3)  # nothing more arrives
        assert by("pumps-2") == ["centre:d-1"] and by("hospital-7") == ["centre:q-1"]
    finally:
        for pub in pubs.values():
            close(pub)
        broker.stop()


def test_a_command_sent_says_nothing_on_stderr() -> None:
    """paho's one-shot publish logged "Client is not connected" (ERROR, on stderr) after every command sent."""
    broker = AmqttBroker().start()
    try:
        url = f"mqtt://127.0.0.1:{broker.port}/kharkiv"
        sent = subprocess.run(
            [sys.executable, "-m", "microgrid", "centre", "emergency", "on", url, "--islands", "hospital-7"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        broker.stop()
    assert sent.returncode == 0 and "emergency on" in sent.stdout, sent.stderr
    assert sent.stderr == ""
