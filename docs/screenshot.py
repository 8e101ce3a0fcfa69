"""Remake ``docs/img/situation-screen.png``: the situation screen of ``microgrid centre demo``'s city during the
cut, in headless Chromium (README, Situation Centre).

    python docs/screenshot.py [--islands 24] [--at-h 5.0] [--speed 600] [--out docs/img/situation-screen.png]

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them), ``selenium`` and ``amqtt`` (the
dev extra). The city is the demo's (:func:`microgrid.centre.demo.start_demo`: the in-process broker, the centre,
simulated islands with their real publishers); the page is saved once the story reached ``--at-h`` simulated
hours (default 5 h: the city-wide cut since 1 h, the first queue just back, one district in emergency mode by the
centre's command since 3 h, one island's link lost since 4 h). ``--speed`` simulated seconds per real second:
at 600 a 10-min cycle a second, so the page is taken within a cycle or two of the moment.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from microgrid.centre.demo import start_demo

OUT = Path(__file__).resolve().parent / "img" / "situation-screen.png"
WIDTH_PX = 1500


def open_screen(url: str, islands: int, width_px: int = WIDTH_PX) -> webdriver.Chrome:
    """Headless Chromium on ``url`` (Debian's, explicit paths), once the screen shows ``islands`` rows."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width_px},900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.get(url)
    deadline = time.monotonic() + 20
    while driver.execute_script("return document.querySelectorAll('#islands tr').length") < islands:
        if time.monotonic() > deadline:
            driver.quit()
            raise RuntimeError("the screen did not show every island")
        time.sleep(0.1)
    return driver


def capture(driver: webdriver.Chrome, out: Path, width_px: int = WIDTH_PX) -> None:
    """Save the whole page to ``out`` (the window grown until the page fits; its height may change meanwhile)."""
    for _ in range(10):
        inner, full = driver.execute_script("return [window.innerHeight, document.documentElement.scrollHeight]")
        if inner >= full:
            break
        driver.set_window_size(width_px, min(driver.get_window_size()["height"] + full - inner, 5000))
        time.sleep(0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(out)):
        raise RuntimeError(f"Chromium could not save {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--islands", type=int, default=24)
    parser.add_argument("--at-h", type=float, default=5.0, help="the story's simulated hours at the shot")
    parser.add_argument("--speed", type=float, default=600.0, help="simulated seconds per real second")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    demo = start_demo(args.islands, speed=args.speed)
    try:
        driver = open_screen(demo.url, args.islands)  # open before the moment: the page follows it live
        try:
            deadline = time.monotonic() + args.at_h * 3600 / args.speed + 60
            while demo.story_h < args.at_h:
                if time.monotonic() > deadline:
                    raise RuntimeError("the demo's story did not reach the moment")
                time.sleep(0.02)
            time.sleep(0.5)  # the cycle's statuses through the broker, the page's update and its plan
            taken_h = demo.story_h
            capture(driver, args.out)
        finally:
            driver.quit()
    finally:
        demo.stop()
    print(f"{args.out}: {args.out.stat().st_size:,} bytes, {args.islands} islands, the story at {taken_h:.2f} h:")
    print("\n".join(line for line in demo.log if float(line.split(" h:")[0]) <= taken_h))


if __name__ == "__main__":
    main()
