"""Remake ``docs/img/situation-screen.png``: the situation screen of a city of 24 islands during a cut, in headless
Chromium (README, Situation Centre).

    python docs/screenshot.py [--islands 24] [--seed 0] [--out docs/img/situation-screen.png]

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and ``selenium`` (the dev extra).
The city is seeded, not simulated: for each island one valid status (built by
:func:`microgrid.uplink.payloads.status_payload`, checked against ``models/centre/status.schema.json``), its
alarms and its online flag are ingested into a real fleet store the way the centre's listener does, and the real
screen (Starlette on uvicorn, 127.0.0.1) serves them. Queues 1.x have the grid back, 2.x and 3.x are cut; the
hospitals are in emergency mode; two islands are offline. (``microgrid centre demo``, a city of simulated
controllers through a broker, can replace the seeding once it exists.)
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import threading
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from microgrid.centre.fleet import FleetStore
from microgrid.centre.ingest import Arrival
from microgrid.centre.web import app
from microgrid.resources import shipped
from microgrid.sim.ports import free_ports
from microgrid.site import Site, site_from_dict
from microgrid.uplink import CycleFacts, Island
from microgrid.uplink.payloads import alarms_payload, online_payload, status_payload

CITY, CENTRE = "kharkiv", (50.0, 36.23)
KINDS = ("hospital", "water-pumping", "boiler-house", "shelter")
PREFIX = {"hospital": "hospital", "water-pumping": "pumps", "boiler-house": "boiler", "shelter": "shelter"}
DISTRICTS = ("Shevchenkivskyi", "Kyivskyi", "Saltivskyi", "Nemyshlianskyi", "Industrialnyi", "Osnovianskyi")
QUEUES = ("1.1", "1.2", "2.1", "2.2", "3.1", "3.2")
OUT = Path(__file__).resolve().parent / "img" / "situation-screen.png"


def site(kind: str) -> Site:
    """One battery, one diesel genset and one tier: the hours-to-dry come from the genset's burn."""
    gen_kw = 200 if kind == "hospital" else 60
    return site_from_dict(
        {
            "site": {"name": kind},
            "batteries": [{"id": "b1", "capacity_kwh": 2 * gen_kw, "soc_min": 0.1, "soc_max": 0.9,
                           "max_charge_kw": gen_kw, "max_discharge_kw": gen_kw, "charge_efficiency": 0.95,
                           "discharge_efficiency": 0.95, "initial_soc": 0.5}],
            "generators": [{"id": "g1", "fuel": "diesel", "max_kw": gen_kw, "min_kw": gen_kw / 5,
                            "fuel_per_kwh": 0.25, "fuel_per_hour_running": 2.0}],
            "fuels": {"diesel": {"unit": "l", "price_per_unit": 60, "stock": 1000}},
            "loads": [{"id": "critical", "priority": 1, "value_of_lost_load_per_kwh": 1000}],
        }
    )  # fmt: skip


def island(n: int, rng: random.Random) -> tuple[Island, str]:
    """The ``n``-th island (every sixth a hospital) and its outage queue, placed at random within 11 km."""
    kind = "hospital" if n % 6 == 0 else KINDS[1 + n % 3]
    r_km, angle = 11 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    lat = CENTRE[0] + r_km * math.sin(angle) / 111.2
    lon = CENTRE[1] + r_km * math.cos(angle) / (111.2 * math.cos(math.radians(CENTRE[0])))
    district = DISTRICTS[int(angle / (2 * math.pi) * len(DISTRICTS)) % len(DISTRICTS)]
    queue = QUEUES[(n + n // len(QUEUES)) % len(QUEUES)]
    where = {"district": district, "queue": queue} if "queue" in {f.name for f in fields(Island)} else {}
    return Island(f"{PREFIX[kind]}-{n + 1}", kind, round(lat, 5), round(lon, 5), **where), queue


def facts(isl: Island, queue: str, now: datetime, rng: random.Random) -> CycleFacts:
    """The island's last cycle: on the grid (queues 1.x), else on diesel or on battery, with seeded figures."""
    grid_up = queue.startswith("1.")
    diesel = not grid_up and rng.random() < 0.6
    critical_h = rng.uniform(20, 120) if grid_up else rng.uniform(1.5, 40)
    emergency = {"active": isl.kind == "hospital" and not grid_up, "since": _iso(now - timedelta(hours=3)),
                 "reason": "wide-area cut, district emergency"}  # fmt: skip
    summary = {
        "source": "rules" if rng.random() < 0.08 else "plan",
        "reason": "plan timed out" if rng.random() < 0.5 else "",
        "health": {"bms": "stale"} if rng.random() < 0.1 else {"bms": "ok"},
        "state": {
            "grid_up": grid_up,
            "soc": {"b1": rng.uniform(0.2, 0.9)},
            "generators": {"g1": {"on": diesel, "hours_in_state": rng.uniform(0.5, 5)}},
            "fuel_stock": {"diesel": round(rng.uniform(80, 900))},
            "load_kw": {"critical": 40.0},
        },
        "autonomy": {"critical_h": critical_h, "critical_essential_h": critical_h / 2},
        "plan": {"status": "optimal", "solve_seconds": 0.4},
        "emergency": emergency,
    }
    gen_kw = {"g1": rng.uniform(20, 50) if diesel else 0.0}
    battery_kw = 0.0 if grid_up or diesel else rng.uniform(5, 40)
    return CycleFacts(now - timedelta(minutes=rng.randint(0, 14)), "auto", summary, {}, battery_kw, gen_kw, 0.0)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed_city(fleet: FleetStore, islands: int, seed: int) -> None:
    """Ingest ``islands`` islands' online flag, alarms and status (schema-checked) into ``fleet``."""
    schema = json.loads(shipped("models", "centre", "status.schema.json").read_text(encoding="utf-8"))
    check = jsonschema.Draft202012Validator(schema)
    rng, now = random.Random(seed), datetime.now(UTC).replace(second=0, microsecond=0)
    for n in range(islands):
        isl, queue = island(n, rng)
        cycle = facts(isl, queue, now, rng)
        status = status_payload(isl, site(isl.kind), cycle, seq=2)
        check.validate(status)
        online = n % 11 != 5  # two of 24 offline
        fleet.ingest(Arrival(CITY, isl.island, "online", online_payload(isl, online, now)))
        fleet.ingest(Arrival(CITY, isl.island, "alarms", alarms_payload(isl, cycle, seq=1)))
        fleet.ingest(Arrival(CITY, isl.island, "status", status))


def shoot(url: str, out: Path, islands: int, width_px: int = 1500) -> None:
    """Open ``url`` in headless Chromium, wait for ``islands`` rows, save the whole page to ``out``."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width_px},900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.get(url)
        deadline = time.monotonic() + 20
        while driver.execute_script("return document.querySelectorAll('#islands tr').length") < islands:
            assert time.monotonic() < deadline, "the screen did not show every island"
            time.sleep(0.1)
        time.sleep(1.0)  # the plan of the city is fetched after the rows
        for _ in range(10):  # grow the window until the whole page fits (its height may change meanwhile)
            inner, full = driver.execute_script("return [window.innerHeight, document.documentElement.scrollHeight]")
            if inner >= full:
                break
            driver.set_window_size(width_px, min(driver.get_window_size()["height"] + full - inner, 5000))
            time.sleep(0.3)
        out.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(out)), out
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--islands", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        fleet = FleetStore(Path(folder) / "centre.sqlite")
        seed_city(fleet, args.islands, args.seed)
        port = free_ports(1)[0]
        server = uvicorn.Server(uvicorn.Config(app(fleet), host="127.0.0.1", port=port, log_level="warning"))
        server.config.timeout_graceful_shutdown = 1
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            while not server.started:
                time.sleep(0.05)
            shoot(f"http://127.0.0.1:{port}/", args.out, args.islands)
        finally:
            server.should_exit = True
            thread.join(10)
            fleet.close()
    print(f"{args.out}: {args.out.stat().st_size:,} bytes, {args.islands} islands")


if __name__ == "__main__":
    main()
