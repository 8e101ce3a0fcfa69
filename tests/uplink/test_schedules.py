"""The day's outage schedule per queue from the centre (issue 16, item 3): what an island does with a schedule
message (pure, real files), ``microgrid centre schedule`` (a bad file: exit 2 naming the line), and the whole path
over a real broker to a real controller: the island in queue 3.1 keeps it where its controller reads its schedule
and its next cycle plans with it; the island in 4.2 does not; an invalid one is ignored and recorded, the schedule
already stored stays."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import paho.mqtt.publish as mqtt_publish
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from microgrid.centre.commands import send_schedule
from microgrid.cli import app
from microgrid.control.runner import Runner
from microgrid.forecast.schedule import read_schedule
from microgrid.profiles import Profiles
from microgrid.site import OutageScheduleConfig, Site, site_from_dict
from microgrid.store import Store
from microgrid.uplink import Broker, Island
from microgrid.uplink.schedules import Taken, schedule_payload, take_schedule
from tests.control.conftest import Optimizer, Rig, run_rig
from tests.uplink.conftest import AmqttBroker, wait_until
from tests.uplink.test_publish import close, publisher

HEADER = "queue,date,start,end,status\n"
ON = "# published_at: 2026-01-14T18:00:00+02:00\n" + HEADER + "{q},2026-01-15,00:00,24:00,on\n"
"""The island's own schedule at start: its queue on all day on 15 January (local time)."""
CUT = "# published_at: 2026-01-14T20:00:00+02:00\n" + HEADER + "3.1,2026-01-15,00:00,06:00,off\n"
"""The centre's update: queue 3.1 off from midnight to 06:00 (15-min steps 0-23 of the sample day)."""
JSON_CUT = '{"queues": {"3.1": {"2026-01-15": [{"start": "00:00", "end": "06:00", "status": "off"}]}}}'
BAD = HEADER + "3.1,2026-01-15,00:00,06:00,off\n3.1,2026-01-15,06:00,07:00,of\n"


def site(folder: Path, queue: str = "3.1", source: str = "schedules") -> Site:
    raw = {
        "site": {"name": "Shelter 12"},
        "loads": [{"id": "critical", "priority": 1, "value_of_lost_load_per_kwh": 1000}],
        "grid": {"max_import_kw": 100, "schedule": {"queue": queue, "source": source}},
    }
    return site_from_dict(raw).with_base_dir(folder)


def message(text: str, queue: str = "3.1", fmt: str = "csv", **changes: Any) -> bytes:
    path = Path(f"/nonexistent/s.{fmt}")
    payload = {"schema": 1, "id": "s1", "ts": "2026-01-14T18:05:00Z", "queue": queue, "by": "operator on duty",
               "format": path.suffix[1:], "text": text}  # fmt: skip
    return json.dumps(payload | changes).encode()


def test_an_island_keeps_a_valid_schedule_once_in_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "schedules"
    folder.mkdir()
    (folder / "own.csv").write_text(ON.format(q="3.1"), encoding="utf-8")
    taken = take_schedule(message(CUT), site(tmp_path), "3.1")
    assert not taken.refused and taken.stored == folder / "centre-3.1-s1.csv"
    assert taken.note is not None and "from operator on duty" in taken.note and "1 slot(s)" in taken.note
    merged = read_schedule(folder, "3.1", "Europe/Kyiv")  # as the controller reads it: the update overlays
    assert [s.status for s in merged.slots] == ["off", "on"]
    assert take_schedule(message(CUT), site(tmp_path), "3.1") == Taken(None, None)  # the same again


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (message(BAD), "line 3, column 'status'"),
        (message(HEADER + "4.2,2026-01-15,00:00,06:00,off\n"), "no slots for queue '3.1'"),
        (message('{"queues": {"3.1": {}}, "extra": 1}', fmt="json"), "extra"),
        (message(CUT, fmt="xml"), "format"),
        (message(CUT, by=""), "by"),
        (b"{not json", "not JSON"),
    ],
)
def test_an_invalid_schedule_is_refused_and_the_stored_one_stays(tmp_path: Path, raw: bytes, said: str) -> None:
    folder = tmp_path / "schedules"
    folder.mkdir()
    (folder / "own.csv").write_text(ON.format(q="3.1"), encoding="utf-8")
    taken = take_schedule(raw, site(tmp_path), "3.1")
    assert taken.refused and taken.stored is None and taken.note is not None and said in taken.note, taken.note
    assert sorted(p.name for p in folder.iterdir()) == ["own.csv"]


def test_a_voided_schedule_is_kept_too(tmp_path: Path) -> None:
    """The company voided the schedules (an emergency cut): a file without slots that says so is a schedule."""
    taken = take_schedule(message("# voided: true\n" + HEADER), site(tmp_path), "3.1")
    assert not taken.refused and taken.note is not None and "no slots (voided)" in taken.note
    assert taken.stored is not None and read_schedule(taken.stored.parent, "3.1", "Europe/Kyiv").voided


def test_another_queues_schedule_is_not_taken(tmp_path: Path) -> None:
    assert take_schedule(message(CUT), site(tmp_path, "4.2"), "4.2") == Taken(None, None)
    assert not (tmp_path / "schedules").exists()


def test_a_file_source_is_replaced_whole_when_of_the_same_format(tmp_path: Path) -> None:
    own = tmp_path / "own.csv"
    own.write_text(ON.format(q="3.1"), encoding="utf-8")
    refused = take_schedule(message(JSON_CUT, fmt="json"), site(tmp_path, source="own.csv"), "3.1")
    assert refused.refused and refused.note is not None and "is not JSON" in refused.note
    assert own.read_text(encoding="utf-8") == ON.format(q="3.1")
    taken = take_schedule(message(CUT), site(tmp_path, source="own.csv"), "3.1")
    assert taken.stored == own and own.read_text(encoding="utf-8") == CUT
    assert [p.name for p in tmp_path.iterdir()] == ["own.csv"]  # no temporary file left


def test_a_site_without_a_schedule_refuses_and_a_missing_folder_is_made(tmp_path: Path) -> None:
    bare = site_from_dict(
        {"site": {"name": "x"}, "loads": [{"id": "c", "priority": 1, "value_of_lost_load_per_kwh": 1}]}
    )
    refused = take_schedule(message(CUT), bare, "3.1")
    assert refused.refused and refused.note is not None and "no grid.schedule" in refused.note
    taken = take_schedule(message(CUT), site(tmp_path, source="new/folder"), "3.1")
    assert taken.stored == tmp_path / "new" / "folder" / "centre-3.1-s1.csv"


def test_the_cli_refuses_a_bad_file_naming_the_line_and_sends_a_good_one_retained(tmp_path: Path) -> None:
    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad.write_text(BAD, encoding="utf-8")
    good.write_text(CUT, encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(app, ["centre", "schedule", "mqtt://127.0.0.1:1/kharkiv", str(bad), "--queue", "3.1"])
    assert done.exit_code == 2 and "line 3, column 'status'" in done.output and "bad.csv" in done.output, done.output
    done = runner.invoke(app, ["centre", "schedule", "mqtt://127.0.0.1:1/kharkiv", str(good), "--queue", "3/1"])
    assert done.exit_code == 2 and "queue" in done.output, done.output
    broker = AmqttBroker().start()
    try:
        url = f"mqtt://127.0.0.1:{broker.port}/kharkiv"
        done = runner.invoke(app, ["centre", "schedule", url, str(good), "--queue", "3.1", "--by", "duty officer"])
        assert done.exit_code == 0 and "1 slot(s)" in done.output, done.output
        got: list[tuple[str, dict[str, Any], bool]] = []
        arrived = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="late")  # subscribes after it was sent

        def on_message(c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
            got.append((m.topic, json.loads(m.payload), bool(m.retain)))
            arrived.set()

        client.on_message = on_message
        client.connect("127.0.0.1", broker.port)
        client.subscribe("kharkiv/schedules/3.1", qos=1)
        client.loop_start()
        assert arrived.wait(5), "the retained schedule"
        client.disconnect()
        client.loop_stop()
    finally:
        broker.stop()
    topic, sent, retained = got[0]
    assert topic == "kharkiv/schedules/3.1" and retained and sent["text"] == CUT and sent["by"] == "duty officer"
    assert sent == schedule_payload("3.1", good, "duty officer", ts=None) | {"ts": sent["ts"]}


def _events(path: Path) -> list[str]:
    with Store(path, readonly=True) as reader:
        frame = reader.events(kind="centre")
    return list(frame["message"])


def test_the_island_in_the_queue_plans_with_the_centres_schedule(
    broker: Any, tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    """A real controller on the simulated hospital in queue 3.1 (its schedule: a folder), a second island in 4.2:
    the centre sends an invalid schedule for 3.1 (ignored, recorded), then a valid one (kept, recorded with who sent
    it); the controller's next cycle plans the grid off from step 1 to 06:00; the island in 4.2 keeps its own."""
    folders = {q: tmp_path / f"queue-{q}" for q in ("3.1", "4.2")}
    for q, folder in folders.items():
        folder.mkdir()
        (folder / "own.csv").write_text(ON.format(q=q), encoding="utf-8")

    def on(queue: str) -> Site:
        assert tcp_hospital.grid is not None and tcp_hospital.grid.schedule is not None
        schedule = OutageScheduleConfig(queue=queue, source=str(folders[queue]))
        grid = tcp_hospital.grid.model_copy(update={"schedule": schedule})
        return tcp_hospital.model_copy(update={"grid": grid})

    hospital, other = on("3.1"), on("4.2")
    city = Broker("127.0.0.1", broker.port, "kharkiv")
    cut = tmp_path / "cut.csv"
    cut.write_text(CUT, encoding="utf-8")
    paths = {q: tmp_path / f"{q}.sqlite" for q in folders}
    optimizer = Optimizer("stub")

    async def body(rig: Rig) -> list[Any]:
        with Store(paths["3.1"], retention_days=None) as store:
            runner = Runner(rig.ctl, store)
            pubs = [
                publisher(paths["3.1"], broker.port, Island("hospital-7", "hospital", queue="3.1"), hospital),
                publisher(paths["4.2"], broker.port, Island("pumps-2", "water-pumping", queue="4.2"), other),
            ]
            pubs[0].attach(runner)
            for pub in pubs:
                pub.start()
            try:
                before = await runner.run_once()
                await asyncio.to_thread(wait_until, lambda: all(p.listening.is_set() for p in pubs), 10, "listening")
                mqtt_publish.single("kharkiv/schedules/3.1", message(BAD), qos=1, retain=True, port=broker.port)
                await asyncio.to_thread(wait_until, lambda: len(_events(paths["3.1"])) == 1, 10, "the refusal")
                sent, _ = send_schedule(city, "3.1", cut, by="duty officer")
                await asyncio.to_thread(wait_until, lambda: len(_events(paths["3.1"])) == 2, 10, "the schedule")
                after = await runner.run_once()
            finally:
                for pub in pubs:
                    close(pub)
            return [before, after, sent]

    before, after, sent = run_rig(hospital, winter, body, optimizer=optimizer)
    assert before.outlook.scheduled_now == "on" and after.outlook.scheduled_now == "off"
    first, second = (inputs.profiles.grid_available.to_numpy() for inputs in optimizer.inputs[-2:])
    assert first[:24].tolist() == [1.0] * 24
    assert second[1:24].tolist() == [0.0] * 23 and second[24:30].tolist() == [1.0] * 6  # off until 06:00, then on
    refusal, took = _events(paths["3.1"])
    assert "ignored the outage schedule s1 for queue 3.1" in refusal and "line 3, column 'status'" in refusal
    assert f"took the outage schedule {sent['id']} for queue 3.1 from duty officer" in took
    assert sorted(p.name for p in folders["3.1"].iterdir()) == ["centre-3.1-" + sent["id"] + ".csv", "own.csv"]
    assert sorted(p.name for p in folders["4.2"].iterdir()) == ["own.csv"]
    assert not Path(paths["4.2"]).exists() or _events(paths["4.2"]) == []
