"""The demo's parts without a broker: the shipped island templates, the seeded city, the light plant model's
energy balance, and the screen's plan of the city (an SVG whose markers sit where the coordinates say)."""

from __future__ import annotations

import math
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st

from microgrid.centre.demo_city import QUEUES, TEMPLATES, city, district_of, load_template, template
from microgrid.centre.demo_plant import ETA, Plant, demand_kw, site_of
from microgrid.centre.fleet import FleetStore
from microgrid.centre.ingest import Arrival
from microgrid.centre.plan import plan_svg, state_of
from microgrid.centre.web import app
from microgrid.errors import ConfigError
from microgrid.logistics.city import KHARKIV, city_fleet
from microgrid.resources import shipped
from microgrid.sim.ports import free_ports
from microgrid.uplink import Island
from microgrid.uplink.payloads import status_payload
from tests.uplink.conftest import wait_until

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def test_every_shipped_template_is_valid_and_a_broken_one_is_refused_naming_each_problem() -> None:
    assert sorted(TEMPLATES) == sorted(
        p.name.removesuffix(".yaml") for p in shipped("models", "centre", "templates").iterdir()
    )
    for kind in TEMPLATES:
        assert template(kind)["kind"] == kind
    broken = dict(template("shelter"))
    broken |= {"scale": [1.5, 0.6], "battery": {**broken["battery"], "soc_min": 0.9, "soc_max": 0.2}}
    with pytest.raises(ConfigError) as caught:
        load_template(broken, "broken.yaml")
    assert "scale: low 1.5 above high 0.6" in str(caught.value) and "soc_min must be below soc_max" in str(caught.value)
    with pytest.raises(ConfigError, match="pv_kwp"):
        load_template({k: v for k, v in template("hospital").items() if k != "pv_kwp"}, "missing.yaml")


def test_the_city_is_seeded_mixed_and_placed_where_the_logistics_city_puts_its_islands() -> None:
    islands = city(24, seed=0)
    assert len(islands) == 24 and len({i.island for i in islands}) == 24
    assert {i.kind for i in islands} == set(TEMPLATES) and {i.queue for i in islands} == set(QUEUES)
    assert [(i.latitude, i.longitude) for i in islands] == [(p.lat, p.lon) for p in city_fleet(24, seed=0).islands]
    assert city(24, seed=0) == islands and city(24, seed=1) != islands
    sizes = {i.capacity_kwh for i in islands if i.kind == "shelter"}
    assert len(sizes) > 1, "islands of one kind differ in size"
    assert all(0 < i.stock_l <= i.tank_l for i in islands)


def test_districts_by_hand() -> None:
    km_lat, km_lon = 1 / 111.2, 1 / (111.2 * math.cos(math.radians(KHARKIV[0])))
    lat, lon = KHARKIV
    assert district_of(lat + 4 * km_lat, lon) == "centre"
    assert district_of(lat + 10 * km_lat, lon + 1 * km_lon) == "north"
    assert district_of(lat, lon + 10 * km_lon) == "east"
    assert district_of(lat - 10 * km_lat, lon) == "south"
    assert district_of(lat + 1 * km_lat, lon - 10 * km_lon) == "west"


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 23),
    hours=st.lists(st.tuples(st.floats(0, 24), st.booleans()), min_size=1, max_size=40),
    emergency=st.booleans(),
)
def test_the_plant_balances_energy_and_keeps_its_limits(
    n: int, hours: list[tuple[float, bool]], emergency: bool
) -> None:
    spec = city(24, seed=3)[n]
    plant = Plant(spec, fails_to_start=n % 5 == 0)
    if emergency:
        plant.mode.command(True, T0)
    dt = 0.25
    for hour, grid_up in hours:
        soc, fuel = plant.soc, plant.fuel_l
        flows = plant.step(hour, grid_up, dt)
        served = sum(demand_kw(spec, hour)[t] for t in flows.served)
        supplied = flows.pv_kw + flows.battery_kw + sum(flows.genset_kw.values()) + flows.grid_kw
        assert supplied == pytest.approx(served, abs=1e-6), "every served kW comes from somewhere"
        assert spec.soc_min - 1e-9 <= plant.soc <= spec.soc_max + 1e-9
        stored = -flows.battery_kw * ETA if flows.battery_kw < 0 else -flows.battery_kw / ETA
        assert plant.soc == pytest.approx(soc + stored * dt / spec.capacity_kwh)
        assert plant.fuel_l <= fuel
        assert (plant.fuel_l < fuel) == bool(flows.genset_kw) or fuel == 0, "a running genset burns"
        if grid_up:
            assert flows.served == tuple(spec.loads_kw) and not flows.genset_kw
        elif "essential" not in flows.served and flows.served:
            assert "comfort" not in flows.served, "comfort is shed before essential"
        if emergency and not grid_up:
            assert "comfort" not in flows.served


def test_a_plant_step_makes_a_schema_valid_status() -> None:
    schema = __import__("json").loads(shipped("models", "centre", "status.schema.json").read_text("utf-8"))
    spec = city(24)[2]
    plant = Plant(spec, fails_to_start=True)
    for k in range(20):
        plant.step(k * 0.5, k < 2, 0.5)
    island = Island(spec.island, spec.kind, spec.latitude, spec.longitude)
    status = status_payload(island, site_of(spec), plant.facts(T0, False), 7)
    jsonschema.validate(status, schema, cls=jsonschema.Draft202012Validator)
    assert status["grid"] == "down" and "device dg1 fault: failed to start" in status["alarms"]


def row(island: str, lat: float | None, lon: float | None, **status: Any) -> dict[str, Any]:
    position = None if lat is None else {"latitude": lat, "longitude": lon}
    base = {"kind": "shelter", "source": "grid", "alarm_count": 0, "emergency": {"active": False}, "position": position}
    return {"island": island, "online": status.pop("online", True), "status": base | status}


def markers(svg: str) -> dict[str, tuple[float, float, float, str]]:
    root = ET.fromstring(svg)
    return {
        c.get("data-island", ""): (
            float(c.get("cx", "")),
            float(c.get("cy", "")),
            float(c.get("r", "")),
            c.get("class", ""),
        )
        for c in root.iter(f"{SVG}circle")
    }


def test_the_plan_puts_one_marker_per_island_proportionally_to_its_coordinates() -> None:
    rows = [
        row("a", 50.0, 36.0),
        row("b", 50.0, 36.2, source="diesel", autonomy={"critical_h": 3.0}),
        row("c", 50.1, 36.0, online=False),
        row("d", 50.05, 36.1, alarm_count=2, emergency={"active": True}),
        row("e", 50.05, 36.1, alarm_count=1, emergency={"active": True}, source="battery"),
        row("nowhere", None, None),
    ]
    svg = plan_svg(rows, width=640, pad=20)
    at = markers(svg)
    assert set(at) == {"a", "b", "c", "d", "e"} and "5 islands on the plan, 1 without a position" in svg
    (ax, ay, _, _), (bx, by, br, bcls), (cx, cy, _, ccls) = at["a"], at["b"], at["c"]
    cos = math.cos(math.radians((50.0 * 2 + 50.1 + 50.05 * 2) / 5))
    assert by == ay and cx == ax, "same latitude, same y; same longitude, same x"
    assert (bx - ax) / (ay - cy) == pytest.approx(0.2 * cos / 0.1, rel=2e-3), (
        "east-west over north-south as on the ground"
    )
    assert bx - ax == pytest.approx(600, abs=0.1), "the widest span fills the width less the padding"
    assert ay > cy, "north is up"
    assert at["d"][:2] == pytest.approx(((ax + bx) / 2, (ay + cy) / 2), abs=0.1)
    assert br == 10 and at["a"][2] == 10 and "diesel" in bcls, "3 h of critical autonomy (or unknown): the largest dot"
    assert "offline" in ccls and "alarm emergency" in at["d"][3] and at["e"][3] == "island battery emergency"
    assert [state_of(r) for r in rows[:5]] == ["grid", "diesel", "offline", "alarm", "battery"]
    assert 'class="hours">3.0 h' in svg


def test_the_screen_serves_the_plan_filtered_by_district_and_queue(tmp_path: Path) -> None:
    fleet = FleetStore(tmp_path / "centre.sqlite")
    for n, (district, queue) in enumerate([("east", "1.1"), ("east", "2.1"), ("west", "1.1")]):
        status = row(f"i{n}", 50.0 + n / 100, 36.2)["status"] | {"seq": 1, "district": district, "queue": queue}
        fleet.ingest(Arrival("kharkiv", f"i{n}", "status", status))
    port = free_ports(1)[0]
    server = uvicorn.Server(uvicorn.Config(app(fleet), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="uvicorn")
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
    assert set(markers(client.get("/plan.svg").text)) == {"i0", "i1", "i2"}
    assert set(markers(client.get("/plan.svg?district=east").text)) == {"i0", "i1"}
    assert set(markers(client.get("/plan.svg?district=east&queue=1.1").text)) == {"i0"}
    response = client.get("/plan.svg?kind=hospital")
    assert response.headers["content-type"].startswith("image/svg+xml") and markers(response.text) == {}
    page = client.get("/").text
    assert 'id="district"' in page and 'id="queue"' in page and "plan.svg?" in page
    client.close()
    server.should_exit = True
    thread.join(5)
    fleet.close()
