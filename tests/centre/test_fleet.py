"""The centre's fleet store: the screen's risk order by hand, duplicates dropped (also after a restart), history;
each on a SQLite file and on a real PostgreSQL database (the ``store`` fixture, tests/centre/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from microgrid.centre import Arrival
from microgrid.centre.fleet import FleetStore, risk_key
from tests.centre.conftest import Store


def status(
    island: str, seq: int, critical_h: float | None, alarms: int = 0, ts: str = "2026-12-05T02:15:00Z"
) -> Arrival:
    autonomy = None if critical_h is None else {"critical_h": critical_h, "critical_essential_h": 0.0}
    payload: dict[str, Any] = {"seq": seq, "island": island, "ts": ts, "autonomy": autonomy, "alarms": ["x"] * alarms}
    return Arrival("kharkiv", island, "status", payload)


def online(island: str, up: bool) -> Arrival:
    return Arrival("kharkiv", island, "online", {"island": island, "online": up})


def test_risk_order_by_hand(store: Store) -> None:
    """Offline first; then the fewest hours of critical autonomy (unknown first); then more alarms; then the id."""
    fleet = FleetStore(store.where)
    for arrival in (
        status("school-3", 1, 40.0),
        status("hospital-7", 1, 5.0),
        status("pumps-2", 1, 5.0, alarms=2),
        status("boiler-1", 1, None),
        status("shelter-9", 1, 100.0),
        online("shelter-9", False),
        online("hospital-7", True),
    ):
        assert fleet.ingest(arrival)
    order = [row["island"] for row in fleet.islands()]
    assert order == ["shelter-9", "boiler-1", "pumps-2", "hospital-7", "school-3"]
    assert risk_key({"island": "a", "online": None, "status": None}) == (1, -1.0, 0, "a")
    fleet.close()


def test_duplicates_are_dropped_also_after_a_restart(store: Store) -> None:
    fleet = FleetStore(store.where)
    assert fleet.ingest(status("h", 1, 10.0)) and fleet.ingest(status("h", 2, 9.0, ts="2026-12-05T02:30:00Z"))
    assert not fleet.ingest(status("h", 2, 9.0)) and not fleet.ingest(status("h", 1, 10.0))
    version = fleet.version
    fleet.close()
    again = FleetStore(store.where)  # the centre restarts; the island replays what it had not seen acknowledged
    assert not again.ingest(status("h", 2, 9.0)) and again.ingest(status("h", 3, 8.0, ts="2026-12-05T02:45:00Z"))
    assert [s["seq"] for s in again.history("h", "2026-12-05T02:20:00Z")] == [2, 3]
    assert again.islands()[0]["status"]["seq"] == 3 and version == 2
    again.close()


def test_seen_time_is_recorded(store: Store) -> None:
    fleet = FleetStore(store.where)
    fleet.ingest(online("h", True), now=datetime(2026, 12, 5, 2, 0, 7, tzinfo=UTC))
    row = fleet.islands()[0]
    assert (row["online"], row["seen_ts"], row["status"], row["alarms"]) == (True, "2026-12-05T02:00:07Z", None, [])
    fleet.close()
