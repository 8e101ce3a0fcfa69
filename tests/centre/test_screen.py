"""The situation screen end to end: islands publish to a real broker (amqtt), the centre's listener keeps them,
uvicorn serves the page, the JSON API and server-sent events on 127.0.0.1; read with httpx."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from microgrid.centre.fleet import FleetStore
from microgrid.centre.listen import Listener
from microgrid.centre.web import app
from microgrid.sim.ports import free_ports
from microgrid.uplink import Broker, Island
from tests.uplink.conftest import AmqttBroker, wait_until
from tests.uplink.test_payloads import cycle
from tests.uplink.test_publish import close, publisher


def events(response: httpx.Response) -> Iterator[list[dict[str, Any]]]:
    """The ``fleet`` events of a server-sent event stream, as they come."""
    kind = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: ") and kind == "fleet":
            yield json.loads(line.removeprefix("data: "))


def first(stream: Iterator[list[dict[str, Any]]], condition: Callable[[list[dict[str, Any]]], bool]) -> list[Any]:
    for rows in stream:
        if condition(rows):
            return rows
    raise AssertionError("the stream ended")


def test_the_screen_shows_the_city_sorted_by_risk_and_live(tmp_path: Path) -> None:
    # cycles of an hour ago: the island's page shows the last 24 h of the wall clock (a fixed date would age out)
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    broker = AmqttBroker().start()
    fleet = FleetStore(tmp_path / "centre.sqlite")
    listener = Listener(Broker("127.0.0.1", broker.port, "kharkiv"), fleet, client_id="centre-test")
    listener.start()
    port = free_ports(1)[0]
    server = uvicorn.Server(uvicorn.Config(app(fleet, poll_s=0.05), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    hospital = publisher(tmp_path / "h.sqlite", broker.port, Island("hospital-7", "hospital", 49.99, 36.23))
    shelter = publisher(tmp_path / "s.sqlite", broker.port, Island("shelter-9", "shelter"))
    url = f"http://127.0.0.1:{port}"
    try:
        assert listener.subscribed.wait(10)
        wait_until(lambda: server.started, what="uvicorn")
        for pub in (hospital, shelter):
            pub.start()
        hospital.queue(replace(cycle(), start=t0))  # 12.5 h of critical autonomy
        shelter.queue(replace(cycle(autonomy={"critical_h": 3.0, "critical_essential_h": 1.0}), start=t0))
        api = f"{url}/api/islands"
        wait_until(lambda: sum(bool(r["status"]) for r in httpx.get(api).json()) == 2, what="two islands")
        assert [r["island"] for r in httpx.get(api).json()] == ["shelter-9", "hospital-7"]
        page = httpx.get(url + "/")
        assert page.status_code == 200 and "Situation Centre" in page.text and "EventSource('events')" in page.text
        one = httpx.get(f"{api}/hospital-7").json()
        assert one["status"]["kind"] == "hospital" and [h["seq"] for h in one["history"]] == [1]
        assert httpx.get(f"{api}/nowhere").status_code == 404
        detail = httpx.get(f"{url}/island/hospital-7")
        assert detail.status_code == 200 and "../api/islands/" in detail.text and "last 24 h" in detail.text
        assert 'id="kind"' in page.text and "island/'+encodeURIComponent" in page.text
        with httpx.stream("GET", f"{url}/events", timeout=10) as response:
            stream = events(response)
            assert [r["island"] for r in next(stream)] == ["shelter-9", "hospital-7"]
            started = time.monotonic()
            emergency = {"active": True, "since": "2026-12-05T02:30:00Z", "reason": "wide-area cut"}
            hospital.queue(replace(cycle(emergency=emergency), start=t0 + timedelta(minutes=15)))
            rows = first(stream, lambda rows: any((r["status"] or {}).get("emergency", {}).get("active") for r in rows))
            latency_s = time.monotonic() - started
            assert rows[1]["island"] == "hospital-7" and rows[1]["status"]["seq"] == 4
            shelter.close()  # a goodbye: offline, and first on the screen whatever its autonomy
            rows = first(stream, lambda rows: rows[0]["online"] is False)
            assert rows[0]["island"] == "shelter-9"
        assert latency_s < 2.0, latency_s  # from the island's cycle to the screen, through the broker
    finally:
        close(hospital)
        shelter.outbox.close()
        server.should_exit = True
        thread.join(10)
        listener.close()
        fleet.close()
        broker.stop()


def test_the_pages_scripts_parse(tmp_path: Path) -> None:
    """The pages' JavaScript is at least valid syntax (node --check; no browser here: the rendering is untested)."""
    import re
    import shutil
    import subprocess

    import pytest

    from microgrid.centre.page import ISLAND_PAGE, PAGE

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    for n, page in enumerate((PAGE, ISLAND_PAGE)):
        script = re.search(r"<script>(.*)</script>", page, re.S)
        assert script is not None
        path = tmp_path / f"page{n}.js"
        path.write_text(script.group(1), encoding="utf-8")
        done = subprocess.run([node, "--check", str(path)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    broken = tmp_path / "broken.js"
    broken.write_text("function (", encoding="utf-8")
    assert subprocess.run([node, "--check", str(broken)], capture_output=True, check=False).returncode != 0
