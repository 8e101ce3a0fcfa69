"""The situation screen in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``, which
``.ci/run`` installs) driven by Selenium, against the real centre: islands publish real status payloads through a
real broker (amqtt) to the centre's listener and SQLite fleet store, and uvicorn serves the screen on 127.0.0.1.

Skipped, saying why, where Chromium, its driver or Selenium is missing. One browser and one city for the module;
the tests run in file order (the live test changes the city the later ones see). Screenshots are saved to
``$MICROGRID_TEST_ARTIFACTS`` (default: the repository's ``build/test-artifacts/``, ignored by git).

The page's hooks the tests rely on (``microgrid/centre/page.py``): the rows are ``#islands tr`` with the id
``island-<island>``, their first link goes to the island's page, the kind filter is the ``#kind`` select; the
island's page has ``#title`` and its statuses as ``#history tr``, the cycle's time in the first cell.
"""

from __future__ import annotations

import base64
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from microgrid.centre.fleet import FleetStore
from microgrid.centre.listen import Listener
from microgrid.centre.web import app
from microgrid.sim.ports import free_ports
from microgrid.uplink import Broker, CycleFacts, Island
from microgrid.uplink.publish import Publisher
from tests.uplink.conftest import AmqttBroker, wait_until
from tests.uplink.test_payloads import cycle
from tests.uplink.test_publish import close, publisher

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
UPDATE_S = 5.0
"""How long a live change may take to reach the open page [s] (measured: 0.07-0.16 s at load 3-6)."""

HOSPITAL = Island("hospital-7", "hospital", 49.99, 36.23)
ISLANDS = {  # island → hours of critical autonomy of its latest status
    Island("pumps-2", "water-pumping", 50.01, 36.30): 30.0,
    HOSPITAL: 12.5,
    Island("boiler-4", "boiler-house", 49.95, 36.35): 8.0,
    Island("shelter-9", "shelter", 49.98, 36.20): 3.0,
}
HOSPITAL_HOURS_AGO = (25.0, 2.0, 1.0, 0.25)
"""The hospital's statuses, oldest first: the first is older than the island page's 24 h."""


def artefacts() -> Path:
    folder = Path(os.environ.get("MICROGRID_TEST_ARTIFACTS") or ROOT / "build" / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def status(hours_ago: float, critical_h: float, **summary: Any) -> CycleFacts:
    """A cycle that started ``hours_ago`` [h] before now, with ``critical_h`` [h] of critical autonomy."""
    autonomy = {"critical_h": critical_h, "critical_essential_h": critical_h / 2}
    return replace(cycle(autonomy=autonomy, **summary), start=NOW - timedelta(hours=hours_ago))


@dataclass
class City:
    url: str
    fleet: FleetStore
    publishers: dict[str, Publisher]

    def publish(self, island: str, facts: CycleFacts) -> int:
        """Queue one cycle of ``island`` and wait until the centre keeps its status; the status's seq."""
        seq = self.publishers[island].queue(facts)[0]
        wait_until(lambda: self.status_seq(island) == seq, what=f"{island}'s status {seq} at the centre")
        return seq

    def status_seq(self, island: str) -> int | None:
        rows = {r["island"]: r["status"] or {} for r in self.fleet.islands()}
        return rows.get(island, {}).get("seq")


@pytest.fixture(scope="module")
def city(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """Four islands of four kinds through amqtt to the centre (listener, fleet store, uvicorn on a free port).
    Built after the browser (nothing to build where it is skipped); the browser leaves the page at the end."""
    folder = tmp_path_factory.mktemp("city")
    broker = AmqttBroker().start()
    fleet = FleetStore(folder / "centre.sqlite")
    listener = Listener(Broker("127.0.0.1", broker.port, "kharkiv"), fleet, client_id="centre-browser")
    listener.start()
    port = free_ports(1)[0]
    config = uvicorn.Config(
        app(fleet, poll_s=0.1), host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    pubs = {i.island: publisher(folder / f"{i.island}.sqlite", broker.port, i) for i in ISLANDS}
    town = City(f"http://127.0.0.1:{port}", fleet, pubs)
    try:
        assert listener.subscribed.wait(10), "the centre could not subscribe"
        wait_until(lambda: server.started, what="uvicorn")
        for pub in pubs.values():
            pub.start()
        for hours_ago in HOSPITAL_HOURS_AGO:
            town.publish(HOSPITAL.island, status(hours_ago, ISLANDS[HOSPITAL]))
        for island, critical_h in ISLANDS.items():
            if island != HOSPITAL:
                town.publish(island.island, status(0.25, critical_h))
        yield town
    finally:
        browser.get("about:blank")  # closes the page's event stream: uvicorn stops at once
        for pub in pubs.values():
            close(pub)
        server.should_exit = True
        thread.join(10)
        listener.close()
        fleet.close()
        broker.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through Debian's chromedriver (explicit paths: Selenium Manager never downloads one)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (.ci/run installs Debian's chromium and chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra has it)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def rows(driver: Any) -> list[str]:
    """The islands of the screen's rows, top to bottom."""
    ids = driver.execute_script("return Array.from(document.querySelectorAll('#islands tr'), tr => tr.id)")
    return [i.removeprefix("island-") for i in ids]


def history(driver: Any) -> list[str]:
    """The first cell (the cycle's UTC time) of the island page's statuses, top to bottom."""
    script = "return Array.from(document.querySelectorAll('#history tr'), tr => tr.cells[0].textContent)"
    return list(driver.execute_script(script))


def waits(driver: Any, condition: Callable[[], bool], what: str, timeout_s: float = UPDATE_S) -> float:
    """Poll ``condition`` every 50 ms until true; the seconds it took (fails after ``timeout_s``)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            shot = artefacts() / "failed.png"
            driver.save_screenshot(str(shot))
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (the page: {shot})")
        time.sleep(0.05)
    return time.monotonic() - started


def screenshot(driver: Any, name: str) -> Path:
    """The whole page (beyond the window, through the DevTools protocol) as ``name`` in :func:`artefacts`."""
    path = artefacts() / name
    width, height = driver.execute_script("const e = document.documentElement; return [e.scrollWidth, e.scrollHeight]")
    clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "clip": clip})
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000, path
    return path


def text_of(driver: Any, island: str) -> str:
    return str(driver.execute_script("return document.getElementById(arguments[0]).innerText", f"island-{island}"))


def test_the_page_lists_the_islands_most_at_risk_first(browser: Any, city: City) -> None:
    """The fewest hours of critical autonomy first (3, 8, 12.5, 30 h), each row with its figures."""
    browser.get(city.url + "/")
    expected = ["shelter-9", "boiler-4", "hospital-7", "pumps-2"]
    waits(browser, lambda: rows(browser) == expected, f"the rows {expected}")
    shelter = text_of(browser, "shelter-9")
    assert "shelter" in shelter and "3.0" in shelter and "online" in shelter, shelter
    assert "12.5" in text_of(browser, "hospital-7")
    screenshot(browser, "situation-screen.png")


def test_a_new_status_changes_the_open_page_without_a_reload(browser: Any, city: City) -> None:
    """pumps-2 drops to 1.5 h in emergency mode: first row within seconds, the page never reloaded (SSE);
    then boiler-4 says goodbye: offline, first whatever its autonomy."""
    assert rows(browser)[0] == "shelter-9"
    browser.execute_script("window.sameDocument = true")
    started = time.monotonic()
    emergency = {"active": True, "since": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "reason": "wide-area cut"}
    city.publishers["pumps-2"].queue(status(0.0, 1.5, emergency=emergency))
    waits(browser, lambda: rows(browser)[0] == "pumps-2", "pumps-2 first")
    latency_s = time.monotonic() - started
    pumps = text_of(browser, "pumps-2")
    assert "1.5" in pumps and "EMERGENCY" in pumps, pumps
    assert rows(browser) == ["pumps-2", "shelter-9", "boiler-4", "hospital-7"]
    close(city.publishers.pop("boiler-4"))
    waits(browser, lambda: rows(browser)[0] == "boiler-4", "boiler-4 offline, first")
    assert "OFFLINE" in text_of(browser, "boiler-4")
    assert browser.execute_script("return window.sameDocument") is True, "the page was reloaded"
    assert latency_s < UPDATE_S, latency_s  # from the island's cycle to the open page, through the broker
    screenshot(browser, "situation-screen-live.png")


def test_the_kind_filter_shows_only_that_kind(browser: Any, city: City) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(city.url + "/")
    waits(browser, lambda: len(rows(browser)) == 4, "four rows")
    kind = Select(browser.find_element(By.ID, "kind"))
    for shown, islands in (("hospital", ["hospital-7"]), ("water-pumping", ["pumps-2"]), ("other", [])):
        kind.select_by_visible_text(shown)
        waits(browser, lambda islands=islands: rows(browser) == islands, f"only {islands}")
    kind.select_by_value("")
    waits(browser, lambda: len(rows(browser)) == 4, "the four rows again")


def test_the_island_page_shows_its_last_24_h_live(browser: Any, city: City) -> None:
    """Following the hospital's link: its three statuses of the last 24 h, newest first (not the one of 25 h
    ago); a new status appears on the open page."""
    from selenium.webdriver.common.by import By

    browser.get(city.url + "/")
    waits(browser, lambda: "hospital-7" in rows(browser), "the hospital's row")
    browser.find_element(By.CSS_SELECTOR, "#island-hospital-7 a").click()
    waits(browser, lambda: browser.current_url.endswith("/island/hospital-7"), "the island's page")
    iso = [(NOW - timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ") for h in reversed(HOSPITAL_HOURS_AGO)]
    waits(browser, lambda: history(browser) == iso[:3], f"the statuses {iso[:3]}")
    assert "hospital-7" in browser.find_element(By.ID, "title").text
    screenshot(browser, "island-page.png")
    city.publishers["hospital-7"].queue(status(0.0, 11.0))
    waits(browser, lambda: history(browser) == [NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), *iso[:3]], "the new status")


RECORDER = """
window.seen = {emergency: new Set(), maxDown: 0, down: -1, inEmergency: -1, renders: 0};
const record = () => {
  const rows = Array.from(document.querySelectorAll('#islands tr'));
  const has = (tr, text) => Array.from(tr.cells, td => td.textContent.trim()).includes(text);
  const emergency = rows.filter(tr => has(tr, 'EMERGENCY'));
  emergency.forEach(tr => window.seen.emergency.add(tr.id.replace(/^island-/, '')));
  const down = rows.filter(tr => has(tr, 'down')).length;
  Object.assign(window.seen, {maxDown: Math.max(window.seen.maxDown, down), down: down,
                              inEmergency: emergency.length, renders: window.seen.renders + 1});
};
new MutationObserver(record).observe(document.getElementById('islands'), {childList: true});
record();
"""
"""Records, at every render of the rows, the islands ever shown in emergency mode and how many rows show the grid
down (a cell reading exactly ``EMERGENCY`` / ``down``): what the page showed between two looks of the test."""


def seen(driver: Any) -> dict[str, Any]:
    script = "const s = window.seen; return {...s, emergency: Array.from(s.emergency).sort()}"
    return dict(driver.execute_script(script))


def test_the_demo_city_through_the_cut_and_the_district_emergency_on_the_open_page(browser: Any) -> None:
    """``microgrid centre demo``'s 20 islands (simulated, through amqtt): the page, opened before the cut and
    never reloaded, showed every island with the grid down, then the centre's emergency on the commanded district's
    islands and no other, and at the story's end everyone back on the grid and out of emergency mode; the
    district filter then keeps that district's rows and markers on the plan."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from microgrid.centre.demo import start_demo
    from microgrid.centre.demo_scenario import Scenario

    story = Scenario(step_min=30, cut_h=4, emergency_h=5, first_restore_h=7, restore_every_h=0.5, lift_h=11,
                     end_h=12, offline_h=(6.0, 8.0))  # fmt: skip
    demo = start_demo(20, speed=30 * 60 / 0.3, scenario=story)  # a 30-min cycle every 0.3 s: 7.2 s
    try:
        browser.get(demo.url)
        waits(browser, lambda: len(rows(browser)) == 20, "the 20 islands")
        browser.execute_script(RECORDER)
        assert demo.story_h < story.cut_h, f"the page was ready only at {demo.story_h} h, after the cut"
        assert demo.finished.wait(30), "the story ends"
        waits(browser, lambda: seen(browser)["down"] == 0 == seen(browser)["inEmergency"], "the end of the story")
        record = seen(browser)
        district = sorted(i.spec.island for i in demo.islands if i.spec.district == demo.district)
        assert record["maxDown"] == 20, record  # the city-wide cut, every row at once
        assert record["emergency"] == district, (record, demo.district)
        assert 0 < len(district) < 20
        screenshot(browser, "demo-screen.png")
        Select(browser.find_element(By.ID, "district")).select_by_value(demo.district)
        waits(browser, lambda: sorted(rows(browser)) == district, f"only district {demo.district}")
        markers = "return Array.from(document.querySelectorAll('#map [data-island]'), c => c.dataset.island).sort()"
        waits(browser, lambda: browser.execute_script(markers) == district, "only its markers on the plan")
    finally:
        browser.get("about:blank")
        demo.stop()
