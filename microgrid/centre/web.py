"""The situation screen: a Starlette app over the :class:`~microgrid.centre.fleet.FleetStore`, served by uvicorn.

* ``GET /``: the page; every island a row, most at risk first (:func:`~microgrid.centre.fleet.risk_key`),
  a filter by kind, plain HTML and a few lines of JavaScript shipped here (nothing fetched from elsewhere),
  updated live; ``GET /island/{island}``: one island's statuses of the last 24 h, newest first.
* ``GET /plan.svg?kind=&district=&queue=``: the plan of the city (:mod:`~microgrid.centre.plan`), filtered.
* ``GET /api/islands``: the rows as JSON; ``GET /api/islands/{island}``: one island's latest state and
  its statuses of the last 24 h.
* ``GET /events``: server-sent events; an ``fleet`` event with the rows at once and after every change
  (at most one per ``poll_s``, 0.25 s: the changes in between are coalesced, so a browser re-renders the
  city at most 4 times a second whatever the number of islands).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from microgrid.centre.fleet import FleetStore
from microgrid.centre.page import ISLAND_PAGE, PAGE
from microgrid.centre.plan import matches, plan_svg

__all__ = ["app"]


def _plan_route(fleet: FleetStore) -> Route:
    """``/plan.svg``: the plan of the islands that pass the query's filters (kind, district, queue)."""

    async def plan(request: Request) -> Response:
        q = request.query_params
        rows = [r for r in fleet.islands() if matches(r, q.get("kind", ""), q.get("district", ""), q.get("queue", ""))]
        return Response(plan_svg(rows), media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})

    return Route("/plan.svg", plan)


LOOK_S = 0.025
"""How often an event stream looks for a change [s] (a number compared: nothing is read)."""


def app(fleet: FleetStore, *, poll_s: float = 0.25) -> Starlette:
    """The screen's ASGI app over ``fleet``; live updates: at most one event per ``poll_s`` [s] (a change is sent
    within :data:`LOOK_S` when the last event is older than that, else when it is ``poll_s`` old).

    ``app.state.closing`` (a :class:`threading.Event`): once set, the event streams end (a server stopping
    would otherwise wait for them: they never end by themselves)."""
    closing = threading.Event()

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def islands(request: Request) -> Response:
        return Response(fleet.islands_json(), media_type="application/json")

    async def island(request: Request) -> Response:
        name = request.path_params["island"]
        row = fleet.island(name)
        if row is None:
            return JSONResponse({"error": f"no island {name!r}"}, status_code=404)
        since = (datetime.now(UTC) - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return JSONResponse(row | {"history": fleet.history(name, since)})

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            last, sent_at, clock = -1, -poll_s, asyncio.get_running_loop().time
            while not closing.is_set() and not await request.is_disconnected():
                if fleet.version != last and clock() - sent_at >= poll_s:
                    last, sent_at = fleet.version, clock()  # one JSON per version, shared (FleetStore.islands_json)
                    yield f"event: fleet\ndata: {fleet.islands_json()}\n\n"
                await asyncio.sleep(min(poll_s, LOOK_S))

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def island_page(request: Request) -> Response:
        return HTMLResponse(ISLAND_PAGE)

    routes = [
        Route("/", page),
        Route("/island/{island}", island_page),
        Route("/api/islands", islands),
        _plan_route(fleet),
        Route("/api/islands/{island}", island),
        Route("/events", events),
    ]
    screen = Starlette(routes=routes)
    screen.state.closing = closing
    return screen
