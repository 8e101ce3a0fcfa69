"""Tick tables for the estimate phase: a snapshot (device → point → measurement) → an estimate.

:func:`snapshot` is a healthy hospital (bess1 at 60 %, bess2 at 50 %, both idle; gensets stopped
with 1,200 l of diesel; grid up; feeders closed at 90 / 70 / 20 kW); a row changes some readings.
Several rows follow the estimator over cycles (genset hours, frozen devices).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from microgrid.control import Estimator
from microgrid.control.estimate import Snapshot
from microgrid.control.plausibility import genset_empty
from microgrid.site import Site
from microgrid.state import GeneratorState
from microgrid.telemetry.devices import Measurement
from microgrid.telemetry.registers import Quality
from tests.control.conftest import T0

OK, STALE, RANGE, NI, LOST = (
    Quality.OK,
    Quality.STALE,
    Quality.OUT_OF_RANGE,
    Quality.NOT_IMPLEMENTED,
    Quality.COMMS_LOST,
)
ABSENT = object()
"""Expected: the key is not in the estimate's dict (unknown)."""

BASE: dict[str, dict[str, Any]] = {
    "bess1-inverter": {
        "soc_pct": 60.0,
        "battery_power_kw": 0.0,
        "max_charge_power_kw": 125.0,
        "max_discharge_power_kw": 125.0,
        "heartbeat_count": 1,
    },
    "bess2-inverter": {
        "soc_pct": 50.0,
        "battery_power_kw": 0.0,
        "max_charge_power_kw": 200.0,
        "max_discharge_power_kw": 200.0,
        "heartbeat_count": 1,
    },
    "dg1-controller": {"engine_state": 0, "fuel_level_l": 1200.0},
    "dg2-controller": {"engine_state": 0, "fuel_level_l": 1200.0},
    "roof-inverter": {"pv_power_kw": 0.0},
    "grid-meter": {"grid_present": 1, "grid_power_kw": -150.0},
    "feeders": {
        "feeder_1_power_kw": 90.0,
        "feeder_1_closed": 1,
        "feeder_2_power_kw": 70.0,
        "feeder_2_closed": 1,
        "feeder_3_power_kw": 20.0,
        "feeder_3_closed": 1,
    },
}


def m(value: Any, quality: Quality = OK, name: str = "", at: datetime = T0) -> Measurement:
    return Measurement(name, None if quality is LOST else value, None, quality, at)


def snapshot(changes: dict[str, Any] | None = None, *, at: datetime = T0) -> Snapshot:
    """The healthy hospital, with ``changes``: device → point → value, or (value, quality); None drops a point,
    and a device mapped to None is dropped whole; every point of a device mapped to LOST is comms-lost."""
    out: Snapshot = {}
    merged_devices: dict[str, Any] = {**BASE, **(changes or {})}
    for device, points in merged_devices.items():
        if points is None:
            continue
        if points is LOST:
            out[device] = {n: m(None, LOST, n, at) for n in BASE[device]}
            continue
        merged = {**BASE.get(device, {}), **points}
        out[device] = {}
        for name, spec in merged.items():
            if spec is None:
                continue
            value, quality = spec if isinstance(spec, tuple) else (spec, OK)
            out[device][name] = m(value, quality, name, at)
    return out


def _get(est: Any, key: str) -> Any:
    attr, _, item = key.partition(".")
    value = getattr(est, attr)
    return value.get(item, ABSENT) if item else value


# changes → {"attribute.key": expected}
SINGLE_TICKS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "healthy site": (
        {},
        {
            "soc.bess1": 0.60,
            "soc.bess2": 0.50,
            "battery_kw.bess1": 0.0,
            "charge_limit_kw.bess1": 125.0,
            "discharge_limit_kw.bess2": 200.0,
            "generators.dg1": GeneratorState(False, 0.5),  # first seen stopped: min_down_h, may start
            "fuel_stock.diesel": 1200.0,
            "grid_up": True,
            "load_kw.critical": 90.0,
            "tier_connected.comfort": True,
            "health.bess1-inverter": "ok",
            "health.grid-meter": "ok",
        },
    ),
    "stale SOC: used, device degraded": (
        {"bess1-inverter": {"soc_pct": (42.0, STALE)}},
        {"soc.bess1": 0.42, "health.bess1-inverter": "degraded", "health.bess2-inverter": "ok"},
    ),
    "out-of-range SOC: ignored, device degraded": (
        {"bess1-inverter": {"soc_pct": (120.0, RANGE)}},
        {"soc.bess1": ABSENT, "health.bess1-inverter": "degraded"},
    ),
    "comms-lost SOC: ignored, device degraded": (
        {"bess2-inverter": {"soc_pct": (None, LOST)}},
        {"soc.bess2": ABSENT, "battery_kw.bess2": 0.0, "health.bess2-inverter": "degraded"},
    ),
    "not-implemented point: ignored, device ok": (
        {"bess2-inverter": {"max_charge_power_kw": (None, NI)}},
        {"charge_limit_kw.bess2": 200.0, "health.bess2-inverter": "ok"},
    ),
    "text value: ignored": ({"bess1-inverter": {"soc_pct": "n/a"}}, {"soc.bess1": ABSENT}),
    "device lost: every reading comms-lost": (
        {"bess1-inverter": LOST},
        {
            "soc.bess1": ABSENT,
            "battery_kw.bess1": ABSENT,
            "charge_limit_kw.bess1": 125.0,  # the site's limits when the inverter says nothing
            "discharge_limit_kw.bess1": 125.0,
            "health.bess1-inverter": "lost",
        },
    ),
    "device without readings: lost": ({"roof-inverter": {"pv_power_kw": None}}, {"health.roof-inverter": "lost"}),
    "live charge limit below the site's": (
        {"bess1-inverter": {"max_charge_power_kw": 80.0, "max_discharge_power_kw": 22.5}},
        {"charge_limit_kw.bess1": 80.0, "discharge_limit_kw.bess1": 22.5},
    ),
    "live limit above the site's: the site's": (
        {"bess2-inverter": {"max_charge_power_kw": 300.0, "max_discharge_power_kw": 250.0}},
        {"charge_limit_kw.bess2": 200.0, "discharge_limit_kw.bess2": 200.0},
    ),
    "live limit stale: still used": (
        {"bess1-inverter": {"max_discharge_power_kw": (10.0, STALE)}},
        {"discharge_limit_kw.bess1": 10.0, "health.bess1-inverter": "degraded"},
    ),
    "live limit out of range: the site's": (
        {"bess1-inverter": {"max_discharge_power_kw": (90000.0, RANGE)}},
        {"discharge_limit_kw.bess1": 125.0},
    ),
    "battery power sign: positive = discharge": (
        {"bess1-inverter": {"battery_power_kw": -60.0}, "bess2-inverter": {"battery_power_kw": 45.5}},
        {"battery_kw.bess1": -60.0, "battery_kw.bess2": 45.5},
    ),
    "genset first seen running: 0 h (min up time holds)": (
        {"dg1-controller": {"engine_state": 2}},
        {"generators.dg1": GeneratorState(True, 0.0), "generators.dg2": GeneratorState(False, 0.5)},
    ),
    "genset starting (state 1) is not on": (
        {"dg2-controller": {"engine_state": 1}},
        {"generators.dg2": GeneratorState(False, 0.5)},
    ),
    "genset status lost: unknown": (
        {"dg1-controller": LOST},
        {"generators.dg1": ABSENT, "health.dg1-controller": "lost"},
    ),
    "fuel: the lowest tank of that fuel": (
        {"dg1-controller": {"fuel_level_l": 800.0}, "dg2-controller": {"fuel_level_l": 750.0}},
        {"fuel_stock.diesel": 750.0},
    ),
    "fuel: a lost reading is skipped": (
        {"dg1-controller": {"fuel_level_l": 800.0}, "dg2-controller": {"fuel_level_l": (None, LOST)}},
        {"fuel_stock.diesel": 800.0},
    ),
    "fuel: none read, the site's stock": (
        {"dg1-controller": {"fuel_level_l": None}, "dg2-controller": LOST},
        {"fuel_stock.diesel": 1500.0},
    ),
    "grid down": ({"grid-meter": {"grid_present": 0}}, {"grid_up": False}),
    "grid meter lost: unknown (None, not False)": (
        {"grid-meter": LOST},
        {"grid_up": None, "health.grid-meter": "lost"},
    ),
    "grid meter missing from the snapshot: unknown": ({"grid-meter": None}, {"grid_up": None}),
    "grid reading stale: used": ({"grid-meter": {"grid_present": (0, STALE)}}, {"grid_up": False}),
    "grid reading out of range: unknown": ({"grid-meter": {"grid_present": (7, RANGE)}}, {"grid_up": None}),
    "feeder open and its demand": (
        {"feeders": {"feeder_3_closed": 0, "feeder_3_power_kw": 0.0, "feeder_2_power_kw": 71.5}},
        {"tier_connected.comfort": False, "load_kw.comfort": 0.0, "load_kw.essential": 71.5},
    ),
    "inverter in fault: 0 kW both ways whatever its limit registers say, health 'fault' with the code": (
        {"bess1-inverter": {"operating_state": 3, "fault_code": 257}},
        {
            "charge_limit_kw.bess1": 0.0,
            "discharge_limit_kw.bess1": 0.0,
            "discharge_limit_kw.bess2": 200.0,
            "health.bess1-inverter": "fault",
            "faults.bess1-inverter": "battery bess1: inverter in fault (code 257)",
            "soc.bess1": 0.60,
        },
    ),
    "inverter running (state 2) with a fault code: a warning, not a fault": (
        {"bess1-inverter": {"operating_state": 2, "fault_code": 17}},
        {"discharge_limit_kw.bess1": 125.0, "health.bess1-inverter": "ok", "faults.bess1-inverter": ABSENT},
    ),
    "feeder readings lost: unknown demand": (
        {"feeders": {"feeder_1_power_kw": (None, LOST), "feeder_1_closed": (None, LOST)}},
        {"load_kw.critical": ABSENT, "tier_connected.critical": ABSENT, "health.feeders": "degraded"},
    ),
}


@pytest.mark.parametrize(("changes", "expected"), SINGLE_TICKS.values(), ids=SINGLE_TICKS.keys())
def test_single_snapshot_ticks(hospital: Site, changes: dict[str, Any], expected: dict[str, Any]) -> None:
    est = Estimator(hospital)(snapshot(changes), T0)
    assert est.time == T0
    for key, value in expected.items():
        got = _get(est, key)
        if value is ABSENT:
            assert got is ABSENT, key
        elif isinstance(value, float):
            assert got == pytest.approx(value), key
        else:
            assert got == value, key


def test_missing_lists_unknown_assets(hospital: Site) -> None:
    est = Estimator(hospital)(snapshot({"bess2-inverter": LOST, "dg1-controller": LOST}), T0)
    assert est.missing(hospital) == ["battery bess2: SOC unknown", "generator dg1: status unknown"]
    assert Estimator(hospital)(snapshot(), T0).missing(hospital) == []


def test_site_state_from_estimate(hospital: Site) -> None:
    state = Estimator(hospital)(snapshot({"dg2-controller": {"engine_state": 2}}), T0).site_state()
    assert state.soc == pytest.approx({"bess1": 0.6, "bess2": 0.5})
    assert state.generators == {"dg1": GeneratorState(False, 0.5), "dg2": GeneratorState(True, 0.0)}
    assert state.fuel_stock == {"diesel": 1200.0}


# -- across cycles -----------------------------------------------------------------------------

Q = timedelta(minutes=15)

# engine_state per cycle (None: comms lost) → hours in state per cycle
HOURS_TICKS: dict[str, tuple[list[int | None], list[GeneratorState | None]]] = {
    "running: counted from 0 across cycles": (
        [2, 2, 2, 2],
        [GeneratorState(True, 0.0), GeneratorState(True, 0.25), GeneratorState(True, 0.5), GeneratorState(True, 0.75)],
    ),
    "stopped: counted from min_down_h": (
        [0, 0, 0],
        [GeneratorState(False, 0.5), GeneratorState(False, 0.75), GeneratorState(False, 1.0)],
    ),
    "reset on a start and on a stop": (
        [0, 0, 2, 2, 0],
        [
            GeneratorState(False, 0.5),
            GeneratorState(False, 0.75),
            GeneratorState(True, 0.0),
            GeneratorState(True, 0.25),
            GeneratorState(False, 0.0),
        ],
    ),
    "starting (1) is still off: no reset": (
        [0, 1, 2],
        [GeneratorState(False, 0.5), GeneratorState(False, 0.75), GeneratorState(True, 0.0)],
    ),
    "lost in between: first seen again": (
        [2, 2, None, 2, 0, None, 0],
        [
            GeneratorState(True, 0.0),
            GeneratorState(True, 0.25),
            None,
            GeneratorState(True, 0.0),  # conservative: its minimum up time holds again
            GeneratorState(False, 0.0),
            None,
            GeneratorState(False, 0.5),
        ],
    ),
}


@pytest.mark.parametrize(("states", "expected"), HOURS_TICKS.values(), ids=HOURS_TICKS.keys())
def test_genset_hours_ticks(hospital: Site, states: list[int | None], expected: list[GeneratorState | None]) -> None:
    estimator = Estimator(hospital)
    for i, (state, want) in enumerate(zip(states, expected, strict=True)):
        dg1: Any = LOST if state is None else {"engine_state": state}
        est = estimator(snapshot({"dg1-controller": dg1}, at=T0 + i * Q), T0 + i * Q)
        got = est.generators.get("dg1")
        if want is None:
            assert got is None
        else:
            assert got is not None
            assert got.on == want.on, i
            assert got.hours_in_state == pytest.approx(want.hours_in_state), i


# the comfort relay (feeder 3) closed (1) or open (0) per 15-min cycle → hours in that state
RELAY_TICKS: dict[str, tuple[list[int], list[float]]] = {
    "first seen closed: free to open": ([1, 1], [24.0, 24.25]),
    "first seen open: its minimum open time holds": ([0, 0, 0], [0.0, 0.25, 0.5]),
    "reset on every switch": ([1, 0, 0, 1], [24.0, 0.0, 0.25, 0.0]),
}


@pytest.mark.parametrize(("states", "hours"), RELAY_TICKS.values(), ids=RELAY_TICKS.keys())
def test_relay_hours_ticks(hospital: Site, states: list[int], hours: list[float]) -> None:
    estimator = Estimator(hospital)
    got = []
    for i, closed in enumerate(states):
        feeder = {"feeder_3_closed": closed, "feeder_3_power_kw": 20.0 if closed else 0.0}  # open: it draws nothing
        est = estimator(snapshot({"feeders": feeder}, at=T0 + i * Q), T0 + i * Q)
        assert est.tier_connected["comfort"] is bool(closed)
        got.append(est.tier_hours["comfort"])
    assert got == pytest.approx(hours)


def test_genset_hours_follow_the_clock_not_the_cycle_count(hospital: Site) -> None:
    estimator = Estimator(hospital)
    estimator(snapshot({"dg1-controller": {"engine_state": 2}}), T0)
    # 2 h at its 60 kW minimum burn 35.8 l: the (one) tank's level falls; one that did not would be implausible
    later = {"dg1-controller": {"engine_state": 2, "fuel_level_l": 1164.2}, "dg2-controller": {"fuel_level_l": 1164.2}}
    est = estimator(snapshot(later), T0 + timedelta(hours=2))
    assert est.generators["dg1"] == GeneratorState(True, 2.0)
    assert est.implausible == {}


# battery_power_kw per cycle with every other reading unchanged → health per cycle
FROZEN_TICKS: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
    "identical while discharging: frozen from the 2nd cycle": (
        [{"battery_power_kw": 50.0}] * 3,
        ["ok", "frozen", "frozen"],
    ),
    "identical while idle: not frozen (nothing should move)": ([{"battery_power_kw": 0.0}] * 3, ["ok", "ok", "ok"]),
    "identical at 1 kW (the threshold): not frozen": ([{"battery_power_kw": 1.0}] * 2, ["ok", "ok"]),
    "charging and moving: not frozen": (
        [
            {"battery_power_kw": -60.0, "soc_pct": 60.0},
            {"battery_power_kw": -60.0, "soc_pct": 63.5},
            {"battery_power_kw": -60.0, "soc_pct": 67.0},
        ],
        ["ok", "ok", "ok"],
    ),
    "frozen, then moving again: ok": (
        [{"battery_power_kw": 50.0}, {"battery_power_kw": 50.0}, {"battery_power_kw": 50.0, "soc_pct": 58.0}],
        ["ok", "frozen", "ok"],
    ),
    "only the heartbeat echo changes: still frozen": (
        [
            {"battery_power_kw": 50.0, "heartbeat_count": 1},
            {"battery_power_kw": 50.0, "heartbeat_count": 2},
            {"battery_power_kw": 50.0, "heartbeat_count": 3},
        ],
        ["ok", "frozen", "frozen"],
    ),
}


@pytest.mark.parametrize(("readings", "health"), FROZEN_TICKS.values(), ids=FROZEN_TICKS.keys())
def test_frozen_ticks(hospital: Site, readings: list[dict[str, Any]], health: list[str]) -> None:
    estimator = Estimator(hospital, echoes={"bess1-inverter": frozenset({"heartbeat_count"})})
    for i, (reading, want) in enumerate(zip(readings, health, strict=True)):
        est = estimator(snapshot({"bess1-inverter": reading}, at=T0 + i * Q), T0 + i * Q)
        assert est.health["bess1-inverter"] == want, i
        if want == "frozen":  # a frozen device's values are not used
            assert "bess1" not in est.soc
            assert "bess1" not in est.battery_kw
            assert est.charge_limit_kw["bess1"] == 125.0
        else:
            assert est.soc["bess1"] == pytest.approx(reading.get("soc_pct", 60.0) / 100)
        assert est.health["bess2-inverter"] == "ok"


def test_without_echoes_a_changing_heartbeat_hides_a_frozen_device_from_the_whole_device_check(hospital: Site) -> None:
    """Why the controller passes its writable points as echoes (a frozen device still echoes writes); the SOC
    cross-check catches this device anyway once 7.5 kWh went through it (50 kW for 15 min: 12.5 kWh)."""
    estimator = Estimator(hospital)
    health = []
    for i in range(3):
        est = estimator(snapshot({"bess1-inverter": {"battery_power_kw": 50.0, "heartbeat_count": i}}), T0 + i * Q)
        health.append(est.health["bess1-inverter"])
    assert health == ["ok", "implausible", "implausible"]


def test_stale_values_are_left_out_of_the_frozen_comparison(hospital: Site) -> None:
    """Frozen means the device answers with identical values; a device not answering is stale, not frozen."""
    estimator = Estimator(hospital)
    stale = {n: (v, STALE) for n, v in BASE["bess1-inverter"].items()} | {"battery_power_kw": (50.0, STALE)}
    for i in range(3):
        est = estimator(snapshot({"bess1-inverter": stale}), T0 + i * Q)
        assert est.health["bess1-inverter"] == "degraded"
        assert est.soc["bess1"] == pytest.approx(0.6)


# (soc_pct, battery_power_kw) of bess1 per cycle, 15 min apart → (health, SOC believed) per cycle.
# bess1: 250 kWh, η 0.95 each way; the cross-check fires at 3 % = 7.5 kWh through the terminals.
SOC_CHECK_TICKS: dict[str, tuple[list[tuple[float, float]], list[tuple[str, float]]]] = {
    "register stuck while discharging 44 kW: implausible after 11 kWh, SOC 0.60 − 11 / 0.95 / 250": (
        [(60.0, 0.0), (60.0, 44.0)],
        [("ok", 0.60), ("implausible", 0.60 - 11 / 0.95 / 250)],
    ),
    "register stuck while charging 44 kW: SOC 0.60 + 11 · 0.95 / 250": (
        [(60.0, 0.0), (60.0, -44.0)],
        [("ok", 0.60), ("implausible", 0.60 + 11 * 0.95 / 250)],
    ),
    "25 kW for 15 min (6.25 kWh): below the 7.5 kWh of the check, believed": (
        [(60.0, 0.0), (60.0, 25.0)],
        [("ok", 0.60), ("ok", 0.60)],
    ),
    "stuck and idle: nothing moved, nothing to contradict": (
        [(60.0, 0.0), (60.0, 0.0), (60.0, 0.3)],
        [("ok", 0.60), ("ok", 0.60), ("ok", 0.60)],
    ),
    "slow discharge, a 0.5 % step every other cycle: believed": (
        [(60.0, 5.0), (60.0, 6.0), (59.5, 5.0), (59.5, 6.0), (59.0, 5.0)],
        [("ok", 0.60), ("ok", 0.60), ("ok", 0.595), ("ok", 0.595), ("ok", 0.59)],
    ),
    "stuck, then the model keeps integrating, then the register moves again: believed again": (
        [(60.0, 40.0), (60.0, 44.0), (60.0, 40.0), (50.0, 40.0)],
        [
            ("ok", 0.60),
            ("implausible", 0.60 - 11 / 0.95 / 250),
            ("implausible", 0.60 - 21.0 / 0.95 / 250),
            ("ok", 0.50),
        ],
    ),
}


@pytest.mark.parametrize(("readings", "want"), SOC_CHECK_TICKS.values(), ids=SOC_CHECK_TICKS.keys())
def test_soc_cross_check_ticks(
    hospital: Site, readings: list[tuple[float, float]], want: list[tuple[str, float]]
) -> None:
    estimator = Estimator(hospital, echoes={"bess1-inverter": frozenset({"heartbeat_count"})})
    for i, ((soc_pct, kw), (health, soc)) in enumerate(zip(readings, want, strict=True)):
        reading = {"soc_pct": soc_pct, "battery_power_kw": kw, "heartbeat_count": i}
        est = estimator(snapshot({"bess1-inverter": reading}, at=T0 + i * Q), T0 + i * Q)
        assert est.health["bess1-inverter"] == health, i
        assert est.soc["bess1"] == pytest.approx(soc), i
        assert ("bess1-inverter" in est.implausible) is (health == "implausible"), i
        assert estimator.implausible_soc() == ({"bess1": pytest.approx(soc)} if health == "implausible" else {})
        assert est.health["bess2-inverter"] == "ok" and est.soc["bess2"] == 0.50


# The site's balance with every term read: tiers 90 + 70 + 20 = 180 kW, PV 0, gensets 0 (their power read).
GENS_READ = {"dg1-controller": {"generator_power_kw": 0.0}, "dg2-controller": {"generator_power_kw": 0.0}}
MOVING = {"bess1-inverter": {"battery_power_kw": 100.0, "soc_pct": 59.0}, "bess2-inverter": {"battery_power_kw": 80.0}}
"""The grid gone: the batteries carry the 180 kW (balance: export 0)."""

# per cycle: changes on top of GENS_READ → (grid_up, meter health) per cycle
GRID_CHECK_TICKS: dict[str, tuple[list[dict[str, Any]], list[tuple[bool | None, str]]]] = {
    "frozen at 'up, importing 180' while the batteries carry the site: implausible, grid unknown": (
        [{"grid-meter": {"grid_power_kw": -180.0}}, {"grid-meter": {"grid_power_kw": -180.0}, **MOVING}],
        [(True, "ok"), (None, "implausible")],
    ),
    "contradicted once: not believed while frozen, even where it agrees; believed when it moves": (
        [
            {"grid-meter": {"grid_power_kw": -180.0}},
            {"grid-meter": {"grid_power_kw": -180.0}, **MOVING},
            {"grid-meter": {"grid_power_kw": -180.0}},
            {"grid-meter": {"grid_power_kw": -179.0}},
        ],
        [(True, "ok"), (None, "implausible"), (None, "implausible"), (True, "ok")],
    ),
    "the grid-forming bess2 discharges 80 kW against a 0 kW setpoint: implausible (the balance agrees)": (
        [
            {"grid-meter": {"grid_power_kw": -100.0}, "bess2-inverter": {"power_setpoint_kw": 0.0}},
            {
                "grid-meter": {"grid_power_kw": -100.0},
                "bess2-inverter": {"power_setpoint_kw": 0.0, "battery_power_kw": 80.0},
            },
        ],
        [(True, "ok"), (None, "implausible")],
    ),
    "unchanged and consistent (import 180 = the tiers' 180): believed": (
        [{"grid-meter": {"grid_power_kw": -180.0}}] * 3,
        [(True, "ok")] * 3,
    ),
    "within 10 % of the load (18 kW): believed": (
        [{"grid-meter": {"grid_power_kw": -165.0}}] * 2,
        [(True, "ok")] * 2,
    ),
    "contradicted but moving (a live meter; unmetered loads): believed": (
        [{"grid-meter": {"grid_power_kw": -180.0}}, {"grid-meter": {"grid_power_kw": -181.0}, **MOVING}],
        [(True, "ok"), (True, "ok")],
    ),
    "a genset's power unread: no balance, no cross-check": (
        [
            {"grid-meter": {"grid_power_kw": -180.0}, "dg1-controller": {"generator_power_kw": None}},
            {"grid-meter": {"grid_power_kw": -180.0}, "dg1-controller": {"generator_power_kw": None}, **MOVING},
        ],
        [(True, "ok"), (True, "ok")],
    ),
}


@pytest.mark.parametrize(("changes", "want"), GRID_CHECK_TICKS.values(), ids=GRID_CHECK_TICKS.keys())
def test_grid_meter_cross_check_ticks(
    hospital: Site, changes: list[dict[str, Any]], want: list[tuple[bool | None, str]]
) -> None:
    estimator = Estimator(hospital)
    for i, (change, (grid_up, health)) in enumerate(zip(changes, want, strict=True)):
        merged = {d: {**GENS_READ.get(d, {}), **change.get(d, {})} for d in {*GENS_READ, *change}}
        est = estimator(snapshot(merged, at=T0 + i * Q), T0 + i * Q)
        assert (est.grid_up, est.health["grid-meter"]) == (grid_up, health), i
        assert ("grid-meter" in est.implausible) is (health == "implausible"), i


# -- genset, fuel and feeder cross-checks (15-min cycles) ----------------------------------------
# The hospital's gensets: 200 kW, min 60 kW, 0.24 l/kWh + 3.5 l/h running (51.5 l/h at full load); one
# diesel tank (1,200 l in the snapshot) that both controllers read.


def run_cycles(
    site: Site, cycles: list[tuple[dict[str, Any], dict[str, Any]]], echoes: dict[str, frozenset[str]] | None = None
) -> None:
    """Feed one estimator a snapshot per cycle (``changes``), 15 min apart, and check each ``expected``."""
    estimator = Estimator(site, echoes=echoes or {})
    for i, (changes, expected) in enumerate(cycles):
        est = estimator(snapshot(changes, at=T0 + i * Q), T0 + i * Q)
        for key, value in expected.items():
            got = _get(est, key)
            if value is ABSENT:
                assert got is ABSENT, (i, key)
            elif isinstance(value, float):
                assert got == pytest.approx(value), (i, key)
            else:
                assert got == value, (i, key)


def dg1(state: int, kw: float, **more: Any) -> dict[str, Any]:
    return {"dg1-controller": {"engine_state": state, "generator_power_kw": kw, **more}}


# dg1 per cycle → expected per cycle. "Empty" = below 2 % of 200 kW = 4 kW; the allowance is 10 min.
RUNNING_TICKS: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {
    "running at 0 kW at two cycles 15 min apart (> 10 min): implausible, status unknown": [
        (dg1(2, 0.0), {"health.dg1-controller": "ok", "generators.dg1": GeneratorState(True, 0.0)}),
        (dg1(2, 0.0), {"health.dg1-controller": "implausible", "generators.dg1": ABSENT}),
        (dg1(2, 0.0), {"health.dg1-controller": "implausible", "generators.dg1": ABSENT}),
    ],
    "running empty at one cycle, then delivering: a start, believed": [
        (dg1(2, 0.0), {"health.dg1-controller": "ok"}),
        (dg1(2, 120.0), {"health.dg1-controller": "ok", "generators.dg1": GeneratorState(True, 0.25)}),
    ],
    "running empty, then delivering again: believed, first seen running again (its minimum up time holds)": [
        (dg1(2, 0.0), {"health.dg1-controller": "ok"}),
        (dg1(2, 3.9), {"health.dg1-controller": "implausible", "generators.dg1": ABSENT}),
        (dg1(2, 100.0), {"health.dg1-controller": "ok", "generators.dg1": GeneratorState(True, 0.0)}),
    ],
    "stopped while delivering 50 kW: implausible at once": [
        (
            dg1(0, 50.0),
            {
                "health.dg1-controller": "implausible",
                "generators.dg1": ABSENT,
                "generators.dg2": GeneratorState(False, 0.5),
            },
        ),
    ],
    "stopped at 3 kW (a transducer's offset, below 4 kW): believed": [
        (dg1(0, 3.0), {"health.dg1-controller": "ok", "generators.dg1": GeneratorState(False, 0.5)}),
    ],
    "starting (1) at 0 kW for 30 min: not running, nothing to contradict": [
        (dg1(1, 0.0), {"health.dg1-controller": "ok"}),
        (dg1(1, 0.0), {"health.dg1-controller": "ok"}),
        (dg1(1, 0.0), {"health.dg1-controller": "ok", "generators.dg1": GeneratorState(False, 1.0)}),
    ],
    "running empty, then lost, then running empty again: the allowance starts again": [
        (dg1(2, 0.0), {"health.dg1-controller": "ok"}),
        ({"dg1-controller": LOST}, {"health.dg1-controller": "lost", "generators.dg1": ABSENT}),
        (dg1(2, 0.0), {"health.dg1-controller": "ok", "generators.dg1": GeneratorState(True, 0.0)}),
        (dg1(2, 0.0), {"health.dg1-controller": "implausible", "generators.dg1": ABSENT}),
    ],
    "power stale: no judgment": [
        (dg1(2, (0.0, STALE)), {"health.dg1-controller": "degraded"}),
        (dg1(2, (0.0, STALE)), {"health.dg1-controller": "degraded", "generators.dg1": GeneratorState(True, 0.25)}),
    ],
}


@pytest.mark.parametrize("cycles", RUNNING_TICKS.values(), ids=RUNNING_TICKS.keys())
def test_genset_running_cross_check_ticks(hospital: Site, cycles: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    run_cycles(hospital, cycles)


def test_running_empty_is_plausible_for_a_set_allowed_to_idle(hospital: Site) -> None:
    """A set with min_kw 0 asked for 0 kW (hot standby) may run empty; asked for 50 kW it may not."""
    standby = hospital.generators[0].model_copy(update={"min_kw": 0.0})
    assert not genset_empty(standby, 0.0, 0.0)
    assert not genset_empty(standby, 0.0, None)
    assert genset_empty(standby, 0.0, 50.0)
    assert genset_empty(hospital.generators[0], 3.9, None)  # its 60 kW minimum stable load
    assert not genset_empty(hospital.generators[0], 4.0, None)


def burning(i: int, kw: float, level: Any) -> dict[str, Any]:
    """dg1 running at ``kw`` (its hour counter moving: a live controller) reading ``level``; dg2's level unread."""
    return dg1(2, kw, fuel_level_l=level, running_hours_h=100.0 + 0.25 * i) | {"dg2-controller": {"fuel_level_l": None}}


# dg1 at 150 kW burns 0.24 · 150 + 3.5 = 39.5 l/h: 9.875 l a cycle. The check needs max(0.5 h · 51.5 l/h,
# 2 % · 1,200 l) = 25.75 l burnt with no fall: the 3rd cycle after the level's last fall (29.625 l).
FUEL_TICKS: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {
    "level frozen while burning: implausible after 29.6 l, the model's stock 1,200 − burn; believed when it falls": [
        (burning(0, 150.0, 1200.0), {"fuel_stock.diesel": 1200.0, "health.dg1-controller": "ok"}),
        (burning(1, 150.0, 1200.0), {"fuel_stock.diesel": 1200.0, "health.dg1-controller": "ok"}),
        (burning(2, 150.0, 1200.0), {"fuel_stock.diesel": 1200.0, "health.dg1-controller": "ok"}),
        (
            burning(3, 150.0, 1200.0),
            {
                "fuel_stock.diesel": 1200.0 - 3 * 9.875,
                "health.dg1-controller": "implausible",
                "generators.dg1": GeneratorState(True, 0.75),  # the set itself is alive: still counted on
            },
        ),
        (burning(4, 150.0, 1200.0), {"fuel_stock.diesel": 1200.0 - 4 * 9.875}),
        (burning(5, 150.0, 1150.0), {"fuel_stock.diesel": 1150.0, "health.dg1-controller": "ok"}),
    ],
    "creeping up 0.5 l a cycle while burning (no delivery): implausible like a frozen level": [
        (burning(0, 150.0, 1200.0), {"health.dg1-controller": "ok"}),
        (burning(1, 150.0, 1200.5), {"health.dg1-controller": "ok"}),
        (burning(2, 150.0, 1201.0), {"health.dg1-controller": "ok"}),
        (burning(3, 150.0, 1201.5), {"health.dg1-controller": "implausible", "fuel_stock.diesel": 1200.0 - 29.625}),
    ],
    "a delivery (a jump of ≥ 25.75 l) while burning: believed, the check starts again from it": [
        (burning(0, 150.0, 1200.0), {"fuel_stock.diesel": 1200.0}),
        (burning(1, 150.0, 1190.1), {"fuel_stock.diesel": 1190.1}),
        (burning(2, 150.0, 1600.0), {"fuel_stock.diesel": 1600.0, "health.dg1-controller": "ok"}),
        (burning(3, 150.0, 1600.0), {"fuel_stock.diesel": 1600.0, "health.dg1-controller": "ok"}),
        (burning(4, 150.0, 1600.0), {"fuel_stock.diesel": 1600.0, "health.dg1-controller": "ok"}),
    ],
    "falling as burnt: believed": [
        (burning(i, 150.0, 1200.0 - 9.9 * i), {"fuel_stock.diesel": 1200.0 - 9.9 * i, "health.dg1-controller": "ok"})
        for i in range(6)
    ],
    "idle sets, the level never changes: nothing burnt, believed": [
        ({}, {"fuel_stock.diesel": 1200.0, "health.dg1-controller": "ok", "health.dg2-controller": "ok"})
    ]
    * 6,
    "60 kW (17.9 l/h): 4.475 l a cycle, the 6th cycle without a fall is the first past 25.75 l": [
        (burning(i, 60.0, 1200.0), {"health.dg1-controller": "ok" if i < 6 else "implausible"}) for i in range(7)
    ],
}


@pytest.mark.parametrize("cycles", FUEL_TICKS.values(), ids=FUEL_TICKS.keys())
def test_fuel_level_cross_check_ticks(hospital: Site, cycles: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    run_cycles(hospital, cycles)


def test_an_idle_controller_frozen_while_the_other_set_burns_is_caught(hospital: Site) -> None:
    """dg2 burns 39.5 l/h from the one tank and reads it falling; dg1, stopped, reads 1,200 l and nothing of it
    ever changes: at 29.6 l burnt its level is implausible and, the whole image unchanged, its status unknown."""
    cycles = []
    for i in range(4):
        dg2 = {"engine_state": 2, "generator_power_kw": 150.0, "fuel_level_l": 1200.0 - 9.875 * i}
        changes = {"dg1-controller": {"generator_power_kw": 0.0}, "dg2-controller": dg2 | {"running_hours_h": 10 + i}}
        flagged = i == 3
        cycles.append(
            (
                changes,
                {
                    "health.dg1-controller": "implausible" if flagged else "ok",
                    "generators.dg1": ABSENT if flagged else GeneratorState(False, 0.5 + 0.25 * i),
                    "generators.dg2": GeneratorState(True, 0.25 * i),
                    "fuel_stock.diesel": 1200.0 - 9.875 * i,
                    "health.dg2-controller": "ok",
                },
            )
        )
    run_cycles(hospital, cycles)


# Feeders: critical / essential / comfort on feeders 1-3 at 90 / 70 / 20 kW, closed; a relay open at
# more than 5 kW is served, a tier never at 0 kW for 24 h then at 0.0 kW through a closed relay is shed.
RELAY_TICKS_CHECK: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "comfort's relay reads open while it draws 20 kW: implausible, taken as served": (
        {"feeders": {"feeder_3_closed": 0}},
        {"tier_connected.comfort": True, "tier_hours.comfort": 24.0, "health.feeders": "implausible"},
    ),
    "open at 5 kW (not clearly above a meter's zero): believed": (
        {"feeders": {"feeder_3_closed": 0, "feeder_3_power_kw": 5.0}},
        {"tier_connected.comfort": False, "health.feeders": "ok"},
    ),
    "closed at 0 kW on a tier not yet known to be never 0: believed": (
        {"feeders": {"feeder_1_power_kw": 0.0}},
        {"tier_connected.critical": True, "health.feeders": "ok"},
    ),
    "open and its load stale: no judgment": (
        {"feeders": {"feeder_3_closed": 0, "feeder_3_power_kw": (20.0, STALE)}},
        {"tier_connected.comfort": False, "health.feeders": "degraded"},
    ),
}


@pytest.mark.parametrize(("changes", "expected"), RELAY_TICKS_CHECK.values(), ids=RELAY_TICKS_CHECK.keys())
def test_relay_cross_check_ticks(hospital: Site, changes: dict[str, Any], expected: dict[str, Any]) -> None:
    run_cycles(hospital, [(changes, expected)])


# critical's load per reading, at the hours after T0 given → (connected, health) expected
NEVER_ZERO_TICKS: dict[str, tuple[list[tuple[float, float]], list[tuple[bool, str]]]] = {
    "never 0 for 24 h, then 0.0 kW through the closed relay: implausible, taken as shed; believed when it draws": (
        [(0.0, 90.0), (24.0, 88.0), (24.25, 0.0), (24.5, 0.0), (24.75, 85.0)],
        [(True, "ok"), (True, "ok"), (False, "implausible"), (False, "implausible"), (True, "ok")],
    ),
    "never 0 for 23.75 h only: 0.0 kW believed": (
        [(0.0, 90.0), (23.75, 0.0)],
        [(True, "ok"), (True, "ok")],
    ),
    "at 0 kW for 24 h more: the tier's new normal, believed": (
        [(0.0, 90.0), (24.0, 90.0), (24.25, 0.0), (48.0, 0.0), (48.25, 0.0)],
        [(True, "ok"), (True, "ok"), (False, "implausible"), (False, "implausible"), (True, "ok")],
    ),
}


@pytest.mark.parametrize(("readings", "want"), NEVER_ZERO_TICKS.values(), ids=NEVER_ZERO_TICKS.keys())
def test_closed_relay_at_zero_ticks(
    hospital: Site, readings: list[tuple[float, float]], want: list[tuple[bool, str]]
) -> None:
    estimator = Estimator(hospital)
    for (hours, kw), (connected, health) in zip(readings, want, strict=True):
        at = T0 + timedelta(hours=hours)
        est = estimator(snapshot({"feeders": {"feeder_1_power_kw": kw}}, at=at), at)
        assert (est.tier_connected["critical"], est.health["feeders"]) == (connected, health), hours
        assert ("feeders" in est.implausible) is (health == "implausible")


def feeders(
    critical: float = 90.0, essential: float = 70.0, comfort: float = 20.0, import_kw: float = 150.0
) -> dict[str, Any]:
    """Tier readings and the grid import (every other term of the balance read: PV, batteries, gensets at 0)."""
    return GENS_READ | {
        "feeders": {"feeder_1_power_kw": critical, "feeder_2_power_kw": essential, "feeder_3_power_kw": comfort},
        "grid-meter": {"grid_power_kw": -import_kw},
    }


# The balance's tolerance: max(10 kW, 10 % of the 180 kW of tiers) = 18 kW.
TIER_LOAD_TICKS: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {
    "critical's reading stuck at 90 while the import rises 30.5 kW and the others move 0.5 kW: 120 kW used": [
        (feeders(), {"health.feeders": "ok", "load_kw.critical": 90.0}),
        (
            feeders(essential=71.0, comfort=19.5, import_kw=180.5),
            {"health.feeders": "implausible", "load_kw.critical": 120.0, "load_kw.essential": 71.0},
        ),
        (feeders(essential=70.5, comfort=20.5, import_kw=181.0), {"load_kw.critical": 120.0}),
        (
            feeders(critical=119.0, essential=70.0, comfort=21.0, import_kw=180.5),
            {"health.feeders": "ok", "load_kw.critical": 119.0},  # it moves: believed
        ),
    ],
    "stuck, the balance moves 10 kW (within 18 kW): believed": [
        (feeders(), {"health.feeders": "ok"}),
        (feeders(essential=71.0, comfort=19.5, import_kw=160.5), {"health.feeders": "ok", "load_kw.critical": 90.0}),
    ],
    "the whole feeder device stuck, the import rises 30 kW: every closed tier implausible, 10 kW more each": [
        (feeders(), {"health.feeders": "ok"}),
        (
            feeders(import_kw=180.0),
            {
                "health.feeders": "implausible",
                "load_kw.critical": 100.0,
                "load_kw.essential": 80.0,
                "load_kw.comfort": 30.0,
            },
        ),
    ],
    "a genset's power unread: no balance, no check": [
        (feeders(), {"health.feeders": "ok"}),
        (
            feeders(import_kw=180.0) | {"dg1-controller": {"generator_power_kw": None}},
            {"health.feeders": "ok", "load_kw.critical": 90.0},
        ),
    ],
    "comfort open at 0 kW all along: an unchanged reading of an open tier is not judged": [
        (
            feeders(comfort=0.0)
            | {
                "feeders": {
                    "feeder_3_closed": 0,
                    "feeder_1_power_kw": 90.0,
                    "feeder_2_power_kw": 70.0,
                    "feeder_3_power_kw": 0.0,
                }
            },
            {"health.feeders": "ok"},
        ),
        (
            feeders(comfort=0.0)
            | {
                "feeders": {
                    "feeder_3_closed": 0,
                    "feeder_1_power_kw": 91.0,
                    "feeder_2_power_kw": 99.0,
                    "feeder_3_power_kw": 0.0,
                },
                "grid-meter": {"grid_power_kw": -190.0},
            },
            {"health.feeders": "ok", "load_kw.comfort": 0.0},
        ),
    ],
}


@pytest.mark.parametrize("cycles", TIER_LOAD_TICKS.values(), ids=TIER_LOAD_TICKS.keys())
def test_tier_load_cross_check_ticks(hospital: Site, cycles: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    run_cycles(hospital, cycles)
