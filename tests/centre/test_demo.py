"""``microgrid centre demo`` end to end: the in-process broker (amqtt), the centre and 20 simulated islands with
their real publishers and outboxes, a short accelerated story (30-min cycles, 0.15 s each); then what the
centre's store saw: the city-wide cut, the emergency on the commanded district only, restorations queue by
queue, the island whose link was lost caught up. And the command as a process, stopped by Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import jsonschema
import pytest
from paho.mqtt import publish

from microgrid.centre.demo import Demo, start_demo
from microgrid.centre.demo_city import QUEUES
from microgrid.centre.demo_scenario import Scenario
from microgrid.resources import shipped
from microgrid.uplink import Broker
from tests.uplink.conftest import MosquittoBroker, has_mosquitto, wait_until

STORY = Scenario(step_min=30.0)
SPEED = 30 * 60 / 0.15
"""A 30-min cycle every 0.15 s: the 12 h story in 3.6 s."""


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    started = time.monotonic()
    running = start_demo(20, speed=SPEED, scenario=STORY, port=0)
    try:
        assert time.monotonic() - started < 10, "the demo starts within 10 s"
        assert running.finished.wait(30), "the story ends"
        end = running.start + timedelta(hours=STORY.end_h)
        wait_until(
            lambda: all(len(running.fleet.history(i.spec.island, _iso(end))) > 0 for i in running.islands),
            timeout_s=15,
            what="every island's status at the story's end in the centre's store",
        )
        yield running
    finally:
        running.stop()


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def histories(demo: Demo) -> dict[str, list[dict[str, Any]]]:
    return {i.spec.island: demo.fleet.history(i.spec.island, "") for i in demo.islands}


def test_the_centre_sees_20_schema_valid_islands_with_their_district_and_queue(demo: Demo) -> None:
    rows = demo.fleet.islands()
    assert len(rows) == 20 and all(r["online"] for r in rows)
    assert demo.story_h >= STORY.end_h
    kinds = {r["status"]["kind"] for r in rows}
    assert kinds == {"hospital", "water-pumping", "boiler-house", "shelter"}
    schema = json.loads(shipped("models", "centre", "status.schema.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    for island, statuses in histories(demo).items():
        for status in statuses:
            validator.validate(status)
        spec = next(i.spec for i in demo.islands if i.spec.island == island)
        assert {(s["district"], s["queue"]) for s in statuses} == {(spec.district, spec.queue)}
        assert statuses[0]["position"] == {"latitude": spec.latitude, "longitude": spec.longitude}


def test_the_cut_reaches_every_island_and_the_grid_comes_back_queue_by_queue(demo: Demo) -> None:
    cut = demo.start + timedelta(hours=STORY.cut_h)
    for island, statuses in histories(demo).items():
        queue = statuses[0]["queue"]
        down = [parse(s["ts"]) for s in statuses if s["grid"] == "down"]
        back = demo.start + timedelta(hours=STORY.restore_h(queue))
        assert down, f"{island} saw the cut"
        assert min(down) == cut and max(down) == back - timedelta(minutes=STORY.step_min), (island, queue)
        assert all(s["source"] != "grid" for s in statuses if s["grid"] == "down")
        assert statuses[-1]["grid"] == "up" and statuses[-1]["source"] == "grid"
    restored = {QUEUES.index(s[0]["queue"]): STORY.restore_h(s[0]["queue"]) for s in histories(demo).values()}
    assert [restored[k] for k in sorted(restored)] == sorted(restored.values()), "queue 1.1 first, 3.2 last"
    assert len(set(restored.values())) == len(QUEUES), "six queues, six restorations"


def test_the_district_emergency_goes_through_the_command_path_to_that_district_only(demo: Demo) -> None:
    assert [c["districts"] for c in demo.commands] == [[demo.district], [demo.district]]
    assert [c["on"] for c in demo.commands] == [True, False]
    inside = {i.spec.island for i in demo.islands if i.spec.district == demo.district}
    assert 2 <= len(inside) < 20
    for island, statuses in histories(demo).items():
        emergency = [s for s in statuses if s["emergency"]["active"]]
        if island in inside:
            assert emergency, f"{island} in district {demo.district} entered emergency mode"
            assert all(s["emergency"]["reason"] == "operator command" for s in emergency)
            assert any(a.startswith("emergency mode since") for s in emergency for a in s["alarms"])
            assert not statuses[-1]["emergency"]["active"], "lifted by the second command"
        else:
            assert not emergency, f"{island} is not in district {demo.district}"
    for sim in demo.islands:  # taken as operator actions, recorded by centre:<id>, applied; nothing ignored
        expected = [f"centre:{c['id']}" for c in demo.commands] if sim.spec.island in inside else []
        assert [a.split(":", 2)[0] + ":" + a.split(":", 2)[1] for a in sim.applied] == expected
        assert sim.store.last_event("centre") is None, "no command refused (or a retained status taken for one)"


def test_the_island_that_lost_its_link_caught_up_in_order(demo: Demo) -> None:
    lost = [line for line in demo.log if "link lost" in line]
    island = re.search(r"\((.+)\)", lost[0]).group(1)  # type: ignore[union-attr]
    statuses = demo.fleet.history(island, "")
    steps = [(parse(s["ts"]) - demo.start) / timedelta(minutes=STORY.step_min) for s in statuses]
    assert steps[: int(STORY.end_h * 2) + 1] == list(range(int(STORY.end_h * 2) + 1)), "no cycle missing, in order"
    assert [s["seq"] for s in statuses] == sorted({s["seq"] for s in statuses})


def test_the_screen_draws_one_marker_per_island_and_filters_by_district(demo: Demo) -> None:
    svg = httpx.get(demo.url + "plan.svg", timeout=5).text
    circles = ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}circle")
    assert sorted(c.get("data-island") for c in circles) == sorted(i.spec.island for i in demo.islands)
    inside = ET.fromstring(httpx.get(demo.url + f"plan.svg?district={demo.district}", timeout=5).text)
    in_district = [i.spec.island for i in demo.islands if i.spec.district == demo.district]
    assert sorted(c.get("data-island") for c in inside.iter("{http://www.w3.org/2000/svg}circle")) == sorted(
        in_district
    )


def test_the_command_prints_the_url_serves_the_city_and_stops_on_ctrl_c() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "microgrid", "centre", "demo", "--islands", "20", "--port", "0", "--speed", "6000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", first)
        assert url, first
        wait_until(lambda: len(httpx.get(url.group(1) + "api/islands").json()) == 20, timeout_s=20, what="20 islands")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)  # ≈ 1 s idle; a CI beside other jobs once took > 20 s
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert stdout.rstrip().endswith("stopped") and "Traceback" not in stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(url.group(1), timeout=2)


@pytest.mark.skipif(
    not has_mosquitto(), reason="mosquitto is not installed (.ci/run installs it from Debian's packages)"
)
def test_the_demo_plays_on_a_given_broker_mosquitto() -> None:
    """``--broker``: no broker of its own; the city's name from the URL; the district command works there too; a
    former run's retained status (a higher seq) is cleared first, else the centre would drop this run's."""
    mosquitto = MosquittoBroker().start()
    try:
        former = {"schema": 1, "seq": 10**6, "island": "hospital-00"}
        publish.single("lviv/islands/hospital-00/status", json.dumps(former), qos=1, retain=True, port=mosquitto.port)
        running = start_demo(20, broker=Broker("127.0.0.1", mosquitto.port, "lviv"), speed=SPEED, scenario=STORY)
        try:
            assert running.finished.wait(30)
            lifted = running.start + timedelta(hours=STORY.end_h)
            wait_until(lambda: all(running.fleet.history(i.spec.island, _iso(lifted)) for i in running.islands), 15)
            assert {r["city"] for r in running.fleet.islands()} == {"lviv"}
            seqs = [s["seq"] for s in running.fleet.history("hospital-00", "")]
            assert seqs[0] == 1 and 10**6 not in seqs and len(seqs) > STORY.end_h * 2
            commanded = {
                island
                for island, statuses in histories(running).items()
                if any(s["emergency"]["active"] for s in statuses)
            }
            assert commanded == {i.spec.island for i in running.islands if i.spec.district == running.district}
        finally:
            running.stop()
    finally:
        mosquitto.stop()
