"""The plan of the city on the situation screen: one inline SVG drawn from the islands' coordinates.

No map tiles (they cannot be fetched offline): the islands' positions (WGS84 degrees) are projected
equirectangularly about their mean latitude, x = longitude × cos(mean latitude), y = −latitude, and
scaled alike on both axes to fit ``width`` pixels with ``pad`` around, so distances on the plan are
proportional to distances on the ground (to well under 1 % across a city).

Each island is one ``<circle>`` with ``data-island``, coloured by its state (:func:`state_of`: offline,
alarm, or what carries it: grid, battery, diesel, pv, none), ringed when in emergency mode, and sized
by risk (:func:`radius_px`: the fewer hours of critical autonomy, the larger); islands with less than
24 h are labelled with their hours. Islands without a position are counted in the caption.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from html import escape
from typing import Any

__all__ = ["COLOURS", "matches", "plan_svg", "radius_px", "state_of"]

COLOURS = {
    "grid": "#3a3",
    "battery": "#39f",
    "diesel": "#f90",
    "pv": "#dd3",
    "none": "#a0a",
    "unknown": "#999",
    "offline": "#666",
    "alarm": "#f33",
}
"""State → fill colour."""


def state_of(row: dict[str, Any]) -> str:
    """``offline`` (its Last Will or a clean stop), else ``alarm`` (an alarm besides emergency mode itself),
    else what carries it (``status.source``); ``unknown`` without a status."""
    status = row.get("status") or {}
    if row.get("online") is False:
        return "offline"
    emergency = 1 if (status.get("emergency") or {}).get("active") else 0
    if int(status.get("alarm_count") or 0) > emergency:
        return "alarm"
    source = status.get("source") or "unknown"
    return source if source in COLOURS else "unknown"


def radius_px(row: dict[str, Any]) -> float:
    """The marker's radius [px]: 10 under 6 h of critical autonomy (or unknown), 7 under 24 h, else 5."""
    hours = ((row.get("status") or {}).get("autonomy") or {}).get("critical_h")
    if hours is None or hours < 6:
        return 10.0
    return 7.0 if hours < 24 else 5.0


def matches(row: dict[str, Any], kind: str = "", district: str = "", queue: str = "") -> bool:
    """True when the island passes the screen's filters (an empty filter passes every island)."""
    status = row.get("status") or {}
    return all(
        not wanted or status.get(key) == wanted
        for key, wanted in (("kind", kind), ("district", district), ("queue", queue))
    )


def _placed(rows: Iterable[dict[str, Any]]) -> list[tuple[dict[str, Any], float, float]]:
    out = []
    for row in rows:
        position = (row.get("status") or {}).get("position") or {}
        if position.get("latitude") is not None and position.get("longitude") is not None:
            out.append((row, float(position["latitude"]), float(position["longitude"])))
    return out


def _marker(row: dict[str, Any], x: float, y: float) -> str:
    status = row.get("status") or {}
    state, r, island = state_of(row), radius_px(row), escape(row["island"])
    emergency = bool((status.get("emergency") or {}).get("active"))
    hours = (status.get("autonomy") or {}).get("critical_h")
    where = f"{status.get('district') or '–'}, queue {status.get('queue') or '–'}"
    tip = f"{row['island']} ({status.get('kind', '?')}, {where})"
    tip += f": {state}" + (", EMERGENCY" if emergency else "") + ("" if hours is None else f", {hours:.1f} h critical")
    ring = ' stroke="#fff" stroke-width="3" stroke-dasharray="4 2"' if emergency else ' stroke="#000" stroke-width="1"'
    out = (
        f'<circle class="island {state}{" emergency" if emergency else ""}" data-island="{island}" '
        f'cx="{x:.1f}" cy="{y:.1f}" r="{r:g}" fill="{COLOURS[state]}"{ring}><title>{escape(tip)}</title></circle>'
    )
    if hours is not None and hours < 24:
        out += f'<text x="{x + r + 2:.1f}" y="{y + 4:.1f}" class="hours">{hours:.1f} h</text>'
    return out


def plan_svg(rows: Iterable[dict[str, Any]], *, width: int = 640, pad: int = 24) -> str:
    """The plan of ``rows`` (:meth:`~microgrid.centre.fleet.FleetStore.islands` rows) as an ``<svg>`` element."""
    rows = list(rows)
    placed = _placed(rows)
    if placed:
        cos = math.cos(math.radians(sum(lat for _, lat, _ in placed) / len(placed)))
        xs, ys = [lon * cos for _, _, lon in placed], [-lat for _, lat, _ in placed]
        span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
        scale = (width - 2 * pad) / span
        height = round((max(ys) - min(ys)) * scale + 2 * pad)
        at = [
            (row, pad + (x - min(xs)) * scale, pad + (y - min(ys)) * scale)
            for (row, _, _), x, y in zip(placed, xs, ys, strict=True)
        ]
        markers = [_marker(row, x, y) for row, x, y in reversed(at)]  # the most at risk (first rows) drawn on top
    else:
        height, markers = 2 * pad, []
    caption = f"{len(placed)} islands on the plan" + (
        f", {len(rows) - len(placed)} without a position" if len(rows) > len(placed) else ""
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="plan" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(caption)}">'
        f'<rect width="{width}" height="{height}" fill="#1b1b1b"/>'
        f"<style>.hours{{font:11px sans-serif;fill:#eee}}</style><title>{escape(caption)}</title>"
        + "".join(markers)
        + "</svg>"
    )
