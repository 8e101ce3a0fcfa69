"""The Situation Centre's payloads: hand-solvable figures, and every message valid against its shipped JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microgrid.centre import SeqFilter, parse_topic
from microgrid.resources import shipped
from microgrid.site import Site, site_from_dict
from microgrid.uplink import CycleFacts, Island, island_topic, parse_url, slug
from microgrid.uplink.payloads import (
    alarms_payload,
    cycle_payload,
    fuel_outlook,
    online_payload,
    status_payload,
    supply_source,
)

T0 = datetime(2026, 12, 5, 2, 15, tzinfo=UTC)
ISLAND = Island("hospital-7", "hospital", 49.99, 36.23)


def validator(kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads(shipped("models", "centre", f"{kind}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


SCHEMAS = {kind: validator(kind) for kind in ("status", "alarms", "cycle", "online")}


def small_site() -> Site:
    """One battery, two gensets on diesel (one on gas, never running), one tier: hours-to-dry by hand."""
    return site_from_dict(
        {
            "site": {"name": "Shelter 12"},
            "batteries": [
                {"id": "b1", "capacity_kwh": 100, "soc_min": 0.1, "soc_max": 0.9, "max_charge_kw": 50,
                 "max_discharge_kw": 50, "charge_efficiency": 0.95, "discharge_efficiency": 0.95,
                 "initial_soc": 0.5}
            ],
            "generators": [
                {"id": "g1", "fuel": "diesel", "max_kw": 100, "min_kw": 20, "fuel_per_kwh": 0.3,
                 "fuel_per_hour_running": 2.0},
                {"id": "g2", "fuel": "diesel", "max_kw": 100, "min_kw": 20, "fuel_per_kwh": 0.25,
                 "fuel_per_hour_running": 1.0},
                {"id": "g3", "fuel": "gas", "max_kw": 50, "min_kw": 10, "fuel_per_kwh": 0.4,
                 "fuel_per_hour_running": 1.0},
            ],
            "fuels": {"diesel": {"unit": "l", "price_per_unit": 60, "stock": 500},
                      "gas": {"unit": "m3", "price_per_unit": 20}},
            "loads": [{"id": "critical", "priority": 1, "value_of_lost_load_per_kwh": 1000}],
        }
    )  # fmt: skip


def cycle(*, grid_up: bool | None = False, on: tuple[str, ...] = (), gen_kw: dict[str, float] | None = None,
          stock: float | None = 340.0, battery_kw: float | None = 0.0, pv_kw: float | None = 0.0,
          **summary: Any) -> CycleFacts:  # fmt: skip
    state = {
        "grid_up": grid_up,
        "soc": {"b1": 0.5},
        "generators": {g: {"on": g in on, "hours_in_state": 1.0} for g in ("g1", "g2", "g3")},
        "fuel_stock": {"diesel": stock, "gas": None},
        "load_kw": {"critical": 40.0},
    }
    base = {"source": "plan", "reason": "", "health": {"bms": "ok"}, "state": state,
            "autonomy": {"critical_h": 12.5, "critical_essential_h": 6.0},
            "plan": {"status": "optimal", "solve_seconds": 0.4}}  # fmt: skip
    return CycleFacts(T0, "auto", base | summary, {"read": 0.05, "solve": 0.4}, battery_kw, gen_kw or {}, pv_kw)


def test_hours_to_dry_by_hand() -> None:
    """g1 at 50 kW burns 0.3·50 + 2 = 17 l/h, g2 at 40 kW 0.25·40 + 1 = 11 l/h: 28 l/h; 340 l last 340/28 h.
    g3 is stopped: gas burns nothing, its stock is unknown: no hours-to-dry."""
    fuel = fuel_outlook(small_site(), cycle(on=("g1", "g2"), gen_kw={"g1": 50.0, "g2": 40.0, "g3": 30.0}))
    assert fuel["diesel"] == {"unit": "l", "stock": 340.0, "burn_per_h": 28.0, "hours_to_dry": round(340 / 28, 2)}
    assert fuel["gas"] == {"unit": "m3", "stock": None, "burn_per_h": 0.0, "hours_to_dry": None}


def test_hours_to_dry_when_nothing_burns_or_the_power_is_unread() -> None:
    """Stopped gensets burn nothing (no hours-to-dry); a running genset whose power was not read burns its idle rate."""
    assert fuel_outlook(small_site(), cycle(on=()))["diesel"]["hours_to_dry"] is None
    idle = fuel_outlook(small_site(), cycle(on=("g1",), gen_kw={"g1": None}))["diesel"]  # type: ignore[dict-item]
    assert idle["burn_per_h"] == 2.0 and idle["hours_to_dry"] == 170.0


@pytest.mark.parametrize(
    ("grid_up", "on", "battery_kw", "pv_kw", "expected"),
    [
        (True, ("g1",), 30.0, 10.0, "grid"),
        (False, ("g1",), 30.0, 10.0, "diesel"),
        (False, (), 30.0, 10.0, "battery"),
        (False, (), -5.0, 10.0, "pv"),
        (False, (), 0.0, 0.0, "none"),
        (None, (), None, None, "unknown"),
    ],
)
def test_what_carries_the_island(
    grid_up: bool | None, on: tuple[str, ...], battery_kw: float | None, pv_kw: float | None, expected: str
) -> None:
    assert supply_source(cycle(grid_up=grid_up, on=on, battery_kw=battery_kw, pv_kw=pv_kw)) == expected


def test_status_carries_the_summary_and_validates() -> None:
    emergency = {"active": True, "since": "2026-12-05T01:00:00+00:00", "reason": "wide-area cut announced"}
    facts = cycle(on=("g1",), gen_kw={"g1": 50.0}, emergency=emergency, health={"bms": "lost"})
    status = status_payload(ISLAND, small_site(), facts, 42)
    SCHEMAS["status"].validate(status)
    assert (status["seq"], status["island"], status["kind"], status["ts"]) == (
        42,
        "hospital-7",
        "hospital",
        "2026-12-05T02:15:00Z",
    )
    assert status["position"] == {"latitude": 49.99, "longitude": 36.23}
    assert (status["grid"], status["source"], status["setpoint_source"]) == ("down", "diesel", "plan")
    assert status["emergency"] == emergency
    assert status["soc_pct"] == {"b1": 50.0}
    assert status["autonomy"] == {"critical_h": 12.5, "critical_essential_h": 6.0}
    assert status["fuel"]["diesel"]["hours_to_dry"] == 20.0  # 340 l at 17 l/h
    assert status["alarms"][0].startswith("emergency mode since") and "device bms lost" in status["alarms"]
    assert status["alarm_count"] == 2
    alarms = alarms_payload(ISLAND, facts, 43)
    SCHEMAS["alarms"].validate(alarms)
    assert alarms["alarms"] == status["alarms"]


def test_other_messages_validate() -> None:
    facts = cycle()
    message = cycle_payload(ISLAND, facts, 7)
    SCHEMAS["cycle"].validate(message)
    assert message["phases_ms"] == {"read": 50.0, "solve": 400.0} and message["plan_status"] == "optimal"
    for online in (True, False):
        SCHEMAS["online"].validate(online_payload(ISLAND, online, T0))


def test_the_schemas_refuse_what_they_should() -> None:
    """Every schema can fail: a wrong kind, a missing seq, a SOC above 100 %, an unknown field."""
    good = status_payload(ISLAND, small_site(), cycle(), 1)
    for bad in (good | {"kind": "castle"}, {k: v for k, v in good.items() if k != "seq"},
                good | {"soc_pct": {"b1": 101.0}}, good | {"colour": "red"}, good | {"seq": 0}):  # fmt: skip
        with pytest.raises(jsonschema.ValidationError):
            SCHEMAS["status"].validate(bad)
    with pytest.raises(jsonschema.ValidationError):
        SCHEMAS["online"].validate(online_payload(ISLAND, True, T0) | {"online": "yes"})
    with pytest.raises(jsonschema.ValidationError):
        SCHEMAS["cycle"].validate(cycle_payload(Island("Bad Id"), cycle(), 1))


@settings(max_examples=60, deadline=None)
@given(
    grid_up=st.sampled_from([True, False, None]),
    on=st.sets(st.sampled_from(["g1", "g2", "g3"])).map(tuple),
    kw=st.floats(0, 100),
    stock=st.none() | st.floats(0, 1e6),
    soc=st.floats(0, 1),
    autonomy_h=st.floats(0, 1e9) | st.just(float("inf")),
    kind=st.sampled_from(["hospital", "water-pumping", "boiler-house", "shelter", "other"]),
)
def test_any_status_validates_and_is_json(
    *,
    grid_up: bool | None,
    on: tuple[str, ...],
    kw: float,
    stock: float | None,
    soc: float,
    autonomy_h: float,
    kind: str,
) -> None:
    """Whatever the state: the status is strict JSON (no NaN/inf), valid, and hours-to-dry = stock / burn."""
    facts = cycle(grid_up=grid_up, on=on, gen_kw={"g1": kw, "g2": kw}, stock=stock,
                  autonomy={"critical_h": autonomy_h, "critical_essential_h": 0.0})  # fmt: skip
    facts.summary["state"]["soc"]["b1"] = soc
    status = json.loads(json.dumps(status_payload(Island("i1", kind), small_site(), facts, 1), allow_nan=False))
    SCHEMAS["status"].validate(status)
    diesel = status["fuel"]["diesel"]
    burn = sum(g.fuel_per_hour(kw, True) for g in small_site().generators if g.id in on and g.fuel == "diesel")
    assert diesel["burn_per_h"] == pytest.approx(burn, abs=1e-3)
    if stock is None or burn == 0:
        assert diesel["hours_to_dry"] is None
    else:
        assert diesel["hours_to_dry"] == pytest.approx(stock / burn, abs=0.01)


def test_topics_and_urls() -> None:
    assert island_topic("kharkiv", "hospital-7", "status") == "kharkiv/islands/hospital-7/status"
    assert parse_url("mqtt://127.0.0.1:1884/kharkiv") == parse_url("mqtt://127.0.0.1:1884/kharkiv/")
    assert parse_url("mqtt://broker/kharkiv").port == 1883
    for bad in ("http://h/kharkiv", "mqtt://h:1884/", "mqtt://h:1884/Khar kiv", "mqtt:///kharkiv", "mqtt://h:99999/k"):
        with pytest.raises(ValueError, match="--publish"):
            parse_url(bad)
    with pytest.raises(ValueError, match="island id"):
        island_topic("kharkiv", "a/#", "status")
    assert slug("Hospital No. 7 energy island") == "hospital-no-7-energy-island" and slug("!!") == "island"


def test_the_centre_keeps_the_first_arrival_of_each_seq() -> None:
    """Duplicates and older messages are dropped per island and kind; a retained older ``alarms`` still counts."""
    seen = SeqFilter()

    def arrive(island: str, kind: str, seq: int) -> bool:
        arrival = parse_topic(f"kharkiv/islands/{island}/{kind}", json.dumps({"seq": seq}).encode())
        assert arrival is not None
        return seen.accept(arrival)

    assert [arrive("a", "status", s) for s in (5, 5, 4, 8)] == [True, False, False, True]
    assert arrive("a", "alarms", 2) and not arrive("a", "alarms", 2)
    assert arrive("b", "status", 1)
    assert parse_topic("kharkiv/islands/a/online", b'{"online": false}') is not None
    assert parse_topic("kharkiv/other/a/status", b"{}") is None
    assert parse_topic("kharkiv/islands/a/status", b"\xff") is None
