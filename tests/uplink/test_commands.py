"""Commands from the centre: which island takes what (pure), and the whole path over a real broker to a real
controller: the centre declares emergency for one island, it is queued as an operator action, the next cycle
takes it and the island's status shows it; an invalid command is ignored and recorded."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import paho.mqtt.publish as mqtt_publish
import pytest

from microgrid.centre.commands import send_emergency
from microgrid.control.runner import Runner
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.store import Store
from microgrid.uplink import Broker, Island
from microgrid.uplink.commands import command_payload, verdict
from tests.control.conftest import Optimizer, Rig, run_rig
from tests.uplink.conftest import Centre, wait_until
from tests.uplink.test_publish import close, publisher


def raw(**changes: Any) -> bytes:
    return json.dumps(command_payload("c1", True, ["hospital-7", "pumps-2"], "cut") | changes).encode()


@pytest.mark.parametrize(
    ("message", "island", "takes", "why"),
    [
        (raw(), "hospital-7", True, None),
        (raw(), "shelter-9", False, None),
        (raw(islands="all"), "shelter-9", True, None),
        (raw(action="mode"), "hospital-7", False, "action"),
        (raw(on="yes"), "hospital-7", False, "on"),
        (raw(islands=["Bad Id"]), "hospital-7", False, "islands"),
        (raw(islands=[]), "hospital-7", False, "islands"),
        (raw(extra=1), "hospital-7", False, "extra"),
        (b"{not json", "hospital-7", False, "not JSON"),
    ],
)
def test_which_island_takes_what(message: bytes, island: str, takes: bool, why: str | None) -> None:
    command, refused = verdict(message, island)
    assert (command is not None) == takes
    assert (refused is None) if why is None else (refused is not None and why in refused), refused


def test_the_centre_refuses_to_send_an_invalid_command() -> None:
    with pytest.raises(ValueError, match="islands"):
        send_emergency(Broker("127.0.0.1", 1, "kharkiv"), ["Not An Id"], True, "x")


def test_a_district_emergency_reaches_the_controller(
    broker: Any, tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    path = tmp_path / "history.sqlite"
    city = Broker("127.0.0.1", broker.port, "kharkiv")
    centre = Centre(broker.port)

    def pending() -> list[dict[str, Any]]:
        with Store(path, readonly=True) as reader:
            return reader.pending_actions()

    async def body(rig: Rig) -> list[Any]:
        with Store(path, retention_days=None) as store:
            runner = Runner(rig.ctl, store)
            pub = publisher(path, broker.port, Island("hospital-7", "hospital"), tcp_hospital)
            pub.attach(runner)
            pub.start()
            try:
                before = await runner.run_once()
                await asyncio.to_thread(wait_until, pub.listening.is_set, what="listening to commands")
                mqtt_publish.single("kharkiv/commands", b'{"action": "emergency"}', qos=1, port=broker.port)
                send_emergency(city, ["pumps-2"], True, "not for us")
                sent = send_emergency(city, ["hospital-7", "pumps-2"], True, "wide-area cut", command_id="cmd-1")
                await asyncio.to_thread(wait_until, lambda: len(pending()) == 1, what="the queued action")
                assert [(a["action"], a["payload"], a["by"]) for a in pending()] == [
                    ("emergency", {"on": True}, "centre:cmd-1")
                ]
                after = await runner.run_once()
                await asyncio.to_thread(wait_until, lambda: len(centre.of("status")) == 2, what="two statuses")
            finally:
                close(pub)
            return [before, after, sent]

    before, after, sent = run_rig(tcp_hospital, winter, body, optimizer=Optimizer("stub"))
    centre.close()
    assert sent["islands"] == ["hospital-7", "pumps-2"]
    assert not before.emergency.get("active") and after.emergency.get("active")
    statuses = centre.of("status")
    assert [s["emergency"]["active"] for s in statuses] == [False, True]
    assert any("operator emergency by centre:cmd-1" in note for _, note in after.events)
    with sqlite3.connect(path) as conn:
        ignored = conn.execute("SELECT message FROM events WHERE kind = 'centre'").fetchall()
        actions = conn.execute("SELECT by, status FROM actions").fetchall()
    conn.close()
    assert len(ignored) == 1 and "ignored a command" in ignored[0][0]
    assert actions == [("centre:cmd-1", "applied")]
