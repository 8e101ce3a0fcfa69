"""``microgrid centre demo``: a simulated city of islands on the situation screen (docs/situation-centre.md, Demo).

Light at import (typer only): the broker, the centre, uvicorn and paho load inside the command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from microgrid.cli.centre import centre_app
from microgrid.cli.common import EXIT_BAD_INPUT, fail, out

if TYPE_CHECKING:
    from microgrid.centre.demo import Demo

__all__ = ["demo"]


@centre_app.command("demo")
def demo(
    islands: Annotated[int, typer.Option("--islands", min=20, max=200, help="How many simulated islands.")] = 24,
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker", metavar="mqtt://HOST:PORT/CITY", help="Use this broker (default: one in process, amqtt)."
        ),
    ] = None,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="The screen's port (0: a free one).")] = 8080,
    host: Annotated[str, typer.Option("--host", help="The screen's address.")] = "127.0.0.1",
    speed: Annotated[
        float,
        typer.Option("--speed", min=1.0, help="Simulated seconds per real second (600: a 10-min cycle a second)."),
    ] = 600.0,
    duration: Annotated[
        float, typer.Option("--duration", min=0.0, help="Stop after this many seconds (0: at Ctrl-C).")
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="The city's seed (sizes, fuel, queues).")] = 0,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the screen in the default browser.")] = False,
) -> None:
    """Start a broker (unless --broker), the centre and N simulated islands (hospitals, water-pumping
    stations, boiler houses, shelters from models/centre/templates), and play a city-wide cut with
    restorations queue by queue and a district emergency commanded midway, accelerated. The islands
    are a light plant model each, not the MILP controller. Ctrl-C stops."""
    import logging
    import webbrowser

    from microgrid.centre.demo import start_demo
    from microgrid.uplink import parse_url

    try:
        given = parse_url(broker) if broker is not None else None
    except ValueError as exc:
        raise fail(EXIT_BAD_INPUT, f"--broker: {str(exc).replace('--publish: ', '')}") from None
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # paho 2's one-shot publish (the centre's commands) logs a harmless "Client is not connected" once it is done
    logging.getLogger("paho.mqtt.client").setLevel(logging.CRITICAL)
    try:
        running = start_demo(islands, broker=given, host=host, port=port, speed=speed, seed=seed)
    except (RuntimeError, OSError) as exc:
        raise fail(EXIT_BAD_INPUT, f"cannot start the demo: {exc}") from None
    _announce(running, speed)
    if open_browser:
        webbrowser.open(running.url)
    try:
        _until_asked_to_stop(duration)
    finally:
        running.stop()
        for line in running.log:
            out.print(line, markup=False)
        out.print("stopped", markup=False)


def _until_asked_to_stop(duration_s: float | None) -> None:
    """Return after ``duration_s`` [s] (None or 0: never) or at SIGINT (Ctrl-C) / SIGTERM. Handlers of our own:
    a demo started where SIGINT is ignored (a background job of a script, a CI runner) still stops on it."""
    import signal
    import threading
    import time

    asked = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: asked.set())
    deadline = time.monotonic() + duration_s if duration_s else None
    while not asked.is_set() and (deadline is None or time.monotonic() < deadline):
        asked.wait(0.2)


def _announce(running: Demo, speed: float) -> None:
    """The screen's URL and what the story will show, when."""
    story = running.scenario
    out.print(
        f"the situation screen: {running.url} ({len(running.islands)} islands of {running.broker.city})", markup=False
    )
    out.print(
        f"the story, {story.end_h:g} simulated hours at {speed:g}x ({story.end_h * 3600 / speed:.0f} s): the grid "
        f"goes at {story.cut_h:g} h, district {running.district} in emergency at {story.emergency_h:g} h, restorations "
        f"queue by queue from {story.first_restore_h:g} h; Ctrl-C to stop",
        markup=False,
    )
