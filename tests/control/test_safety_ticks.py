"""Tick tables for the safety layer: (estimate, decision in, last decision) → (decision out, notes).

The hospital: bess1 ±125 kW, SOC band [0.10, 0.95]; bess2 ±200 kW, [0.15, 0.95]; dg1/dg2
[60, 200] kW; roof PV 150 kWp; tiers critical (1) < essential (2) < comfort (3). Every expected
number is computed by hand in the row's comment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from microgrid.control import Decision, SafetyConfig, check
from microgrid.control.decisions import live_limits_kw
from microgrid.site import Site
from microgrid.state import GeneratorState
from tests.control.conftest import estimate

RUNNING = GeneratorState(True, 2.0)
STOPPED = GeneratorState(False, 24.0)


@dataclass(frozen=True)
class Tick:
    """One row: what the estimate says, what came in, what was written last → what must come out."""

    est: dict[str, Any] = field(default_factory=dict)
    decision: Decision = field(default_factory=Decision)
    last: Decision | None = None
    ramp: float = 1.0
    battery: dict[str, float] | None = None
    generator_kw: dict[str, float] | None = None
    generator_on: dict[str, bool] | None = None
    pv: dict[str, float | None] | None = None
    tiers: dict[str, bool] | None = None
    notes: tuple[str, ...] = ()
    """Substrings, one per expected note, in order; () = no note at all."""


BATTERY_TICKS = {
    "within limits: unchanged": Tick(
        decision=Decision(battery_kw={"bess1": 50.0, "bess2": -100.0}),
        battery={"bess1": 50.0, "bess2": -100.0},
    ),
    "missing battery in the decision: 0 kW": Tick(
        decision=Decision(battery_kw={"bess1": 20.0}),
        battery={"bess1": 20.0, "bess2": 0.0},
    ),
    "site limits": Tick(  # ±125 / ±200
        decision=Decision(battery_kw={"bess1": 500.0, "bess2": -1000.0}),
        battery={"bess1": 125.0, "bess2": -200.0},
        notes=("battery bess1: 500.0 kW clamped to 125.0 kW", "battery bess2: -1000.0 kW clamped to -200.0 kW"),
    ),
    "live discharge limit below the site's": Tick(  # inverter says 40 kW, site 125 kW
        est={"discharge_limit_kw": {"bess1": 40.0, "bess2": 200.0}},
        decision=Decision(battery_kw={"bess1": 100.0, "bess2": 150.0}),
        battery={"bess1": 40.0, "bess2": 150.0},
        notes=("battery bess1: 100.0 kW clamped to 40.0 kW",),
    ),
    "live charge limit below the site's": Tick(  # inverter says 80 kW, site 200 kW
        est={"charge_limit_kw": {"bess1": 125.0, "bess2": 80.0}},
        decision=Decision(battery_kw={"bess1": -125.0, "bess2": -150.0}),
        battery={"bess1": -125.0, "bess2": -80.0},
        notes=("battery bess2: -150.0 kW clamped to -80.0 kW",),
    ),
    "live limit 0: held idle": Tick(
        est={"charge_limit_kw": {"bess1": 0.0, "bess2": 200.0}, "discharge_limit_kw": {"bess1": 0.0, "bess2": 200.0}},
        decision=Decision(battery_kw={"bess1": -30.0, "bess2": 0.0}),
        battery={"bess1": 0.0, "bess2": 0.0},
        notes=("battery bess1: -30.0 kW clamped to",),  # (to -0.0: the charge limit is -0.0)
    ),
    "estimate's limits above the site's: the site's": Tick(  # the estimator caps them; check does too
        est={"charge_limit_kw": {"bess1": 900.0, "bess2": 900.0}, "discharge_limit_kw": {"bess1": 900.0}},
        decision=Decision(battery_kw={"bess1": 300.0, "bess2": -300.0}),
        battery={"bess1": 125.0, "bess2": -200.0},
        notes=("battery bess1: 300.0 kW clamped to 125.0 kW", "battery bess2: -300.0 kW clamped to -200.0 kW"),
    ),
    "negative or NaN live limit: 0, never a forced discharge": Tick(
        est={"charge_limit_kw": {"bess1": -5.0, "bess2": float("nan")}},
        decision=Decision(battery_kw={"bess1": -50.0, "bess2": -50.0}),
        battery={"bess1": 0.0, "bess2": 0.0},
        notes=("battery bess1: -50.0 kW clamped to", "battery bess2: -50.0 kW clamped to"),
    ),
    "SOC at soc_min: no discharge, charge allowed": Tick(
        est={"soc": {"bess1": 0.10, "bess2": 0.15}},
        decision=Decision(battery_kw={"bess1": 50.0, "bess2": -50.0}),
        battery={"bess1": 0.0, "bess2": -50.0},
        notes=("battery bess1: 50.0 kW clamped to 0.0 kW",),
    ),
    "SOC below soc_min: no discharge": Tick(
        est={"soc": {"bess1": 0.05, "bess2": 0.149}},
        decision=Decision(battery_kw={"bess1": 30.0, "bess2": 0.5}),
        battery={"bess1": 0.0, "bess2": 0.0},
        notes=("bess1: 30.0 kW clamped to 0.0", "bess2: 0.5 kW clamped to 0.0"),
    ),
    "SOC just above soc_min: only what keeps it above for the interval": Tick(
        # 0.0001 × 250 kWh × ηd 0.95 / 0.25 h = 0.095 kW
        est={"soc": {"bess1": 0.1001, "bess2": 0.5}},
        decision=Decision(battery_kw={"bess1": 30.0, "bess2": 0.0}),
        battery={"bess1": 0.095, "bess2": 0.0},
        notes=("battery bess1: 30.0 kW clamped to 0.1 kW",),
    ),
    "SOC 1 % under soc_max: charge limited to the room over the interval": Tick(
        # (0.95 − 0.94) × 400 kWh / (ηc 0.96 × 0.25 h) = 16.67 kW; bess1 has 10 % of room: 100 kW is fine
        est={"soc": {"bess1": 0.85, "bess2": 0.94}},
        decision=Decision(battery_kw={"bess1": -100.0, "bess2": -100.0}),
        battery={"bess1": -100.0, "bess2": -16.666666666666668},
        notes=("battery bess2: -100.0 kW clamped to -16.7 kW",),
    ),
    "SOC at soc_max: no charge, discharge allowed": Tick(
        est={"soc": {"bess1": 0.95, "bess2": 0.95}},
        decision=Decision(battery_kw={"bess1": 100.0, "bess2": -100.0}),
        battery={"bess1": 100.0, "bess2": 0.0},
        notes=("battery bess2: -100.0 kW clamped to 0.0 kW",),
    ),
    "SOC above soc_max: no charge": Tick(
        est={"soc": {"bess1": 0.99, "bess2": 0.5}},
        decision=Decision(battery_kw={"bess1": -10.0, "bess2": -10.0}),
        battery={"bess1": 0.0, "bess2": -10.0},
        notes=("battery bess1: -10.0 kW clamped to 0.0 kW",),
    ),
    "unknown SOC: 0 kW either way": Tick(
        est={"soc": {"bess2": 0.5}},
        decision=Decision(battery_kw={"bess1": 80.0, "bess2": -80.0}),
        battery={"bess1": 0.0, "bess2": -80.0},
        notes=("battery bess1: 80.0 kW clamped to 0.0 kW",),
    ),
    "unknown SOC: charging refused too": Tick(
        est={"soc": {}},
        decision=Decision(battery_kw={"bess1": -80.0, "bess2": -1.0}),
        battery={"bess1": 0.0, "bess2": 0.0},
        notes=("bess1", "bess2"),
    ),
    # ramp 0.5: bess1 may move 0.5 × 125 = 62.5 kW per cycle, bess2 0.5 × 200 = 100 kW
    "ramp from idle": Tick(
        ramp=0.5,
        decision=Decision(battery_kw={"bess1": 125.0, "bess2": -200.0}),
        last=Decision(battery_kw={"bess1": 0.0, "bess2": 0.0}),
        battery={"bess1": 62.5, "bess2": -100.0},
        notes=("battery bess1: 125.0 kW clamped to 62.5 kW", "battery bess2: -200.0 kW clamped to -100.0 kW"),
    ),
    "ramp: charge to discharge": Tick(  # bess1: -100 + 62.5 = -37.5; bess2: 50 - 100 = -50
        ramp=0.5,
        decision=Decision(battery_kw={"bess1": 100.0, "bess2": -200.0}),
        last=Decision(battery_kw={"bess1": -100.0, "bess2": 50.0}),
        battery={"bess1": -37.5, "bess2": -50.0},
        notes=("bess1: 100.0 kW clamped to -37.5 kW", "bess2: -200.0 kW clamped to -50.0 kW"),
    ),
    "ramp: a step within the rate passes": Tick(  # |60 - 20| = 40 ≤ 62.5; |-150 - -60| = 90 ≤ 100
        ramp=0.5,
        decision=Decision(battery_kw={"bess1": 60.0, "bess2": -150.0}),
        last=Decision(battery_kw={"bess1": 20.0, "bess2": -60.0}),
        battery={"bess1": 60.0, "bess2": -150.0},
    ),
    "ramp: default 1.0 allows a full swing of the rated power": Tick(  # -125 + 125 = 0; 200 - 200 = 0
        decision=Decision(battery_kw={"bess1": 125.0, "bess2": -200.0}),
        last=Decision(battery_kw={"bess1": -125.0, "bess2": 200.0}),
        battery={"bess1": 0.0, "bess2": 0.0},
        notes=("bess1: 125.0 kW clamped to 0.0 kW", "bess2: -200.0 kW clamped to 0.0 kW"),
    ),
    "ramp: no last setpoint for a battery, no ramp": Tick(
        ramp=0.5,
        decision=Decision(battery_kw={"bess1": 125.0, "bess2": 200.0}),
        last=Decision(battery_kw={"bess2": 0.0}),
        battery={"bess1": 125.0, "bess2": 100.0},
        notes=("bess2: 200.0 kW clamped to 100.0 kW",),
    ),
    "live limits win over the ramp: SOC at floor": Tick(  # ramp would keep ≥ 100 - 62.5 = 37.5; floor says 0
        ramp=0.5,
        est={"soc": {"bess1": 0.10, "bess2": 0.5}},
        decision=Decision(battery_kw={"bess1": 100.0, "bess2": 0.0}),
        last=Decision(battery_kw={"bess1": 100.0, "bess2": 0.0}),
        battery={"bess1": 0.0, "bess2": 0.0},
        notes=("battery bess1: 100.0 kW clamped to 0.0 kW",),
    ),
    "live limits win over the ramp: derated inverter": Tick(  # ramp: ≥ 37.5 from last 100; live limit 10
        ramp=0.5,
        est={"discharge_limit_kw": {"bess1": 10.0, "bess2": 200.0}},
        decision=Decision(battery_kw={"bess1": 0.0, "bess2": 0.0}),
        last=Decision(battery_kw={"bess1": 100.0, "bess2": 0.0}),
        battery={"bess1": 10.0, "bess2": 0.0},
        notes=("battery bess1: 0.0 kW clamped to 10.0 kW",),
    ),
    "live limits win over the ramp: unknown SOC": Tick(  # ramp from -200 allows ≤ -100; unknown SOC → 0
        ramp=0.5,
        est={"soc": {"bess1": 0.5}},
        decision=Decision(battery_kw={"bess1": 0.0, "bess2": -200.0}),
        last=Decision(battery_kw={"bess1": 0.0, "bess2": -200.0}),
        battery={"bess1": 0.0, "bess2": 0.0},
        notes=("battery bess2: -200.0 kW clamped to 0.0 kW",),
    ),
}

GENERATOR_TICKS = {
    "starting: its planned setpoint, applied once on line; run request kept": Tick(
        decision=Decision(generator_on={"dg1": True, "dg2": True}, generator_kw={"dg1": 150.0, "dg2": 20.0}),
        generator_on={"dg1": True, "dg2": True},
        generator_kw={"dg1": 150.0, "dg2": 60.0},
        notes=("generator dg2: 20.0 kW → 60.0 kW (outside [min_kw, max_kw])",),
    ),
    "not asked to run: power 0 whatever the plan's kW": Tick(
        est={"generators": {"dg2": RUNNING}},
        decision=Decision(generator_on={"dg1": False, "dg2": True}, generator_kw={"dg1": 100.0, "dg2": 100.0}),
        generator_on={"dg1": False, "dg2": True},
        generator_kw={"dg1": 0.0, "dg2": 100.0},
        notes=("generator dg1: 100.0 kW → 0.0 kW (not asked to run)",),
    ),
    "running: clamped to [min_kw, max_kw]": Tick(
        est={"generators": {"dg1": RUNNING, "dg2": RUNNING}},
        decision=Decision(generator_on={"dg1": True, "dg2": True}, generator_kw={"dg1": 30.0, "dg2": 500.0}),
        generator_kw={"dg1": 60.0, "dg2": 200.0},
        notes=("dg1: 30.0 kW → 60.0 kW (outside [min_kw, max_kw])", "dg2: 500.0 kW → 200.0 kW"),
    ),
    "running: inside the band passes": Tick(
        est={"generators": {"dg1": RUNNING, "dg2": RUNNING}},
        decision=Decision(generator_on={"dg1": True, "dg2": True}, generator_kw={"dg1": 120.0, "dg2": 60.0}),
        generator_kw={"dg1": 120.0, "dg2": 60.0},
    ),
    "running but told to stop: 0 kW": Tick(
        est={"generators": {"dg1": RUNNING, "dg2": STOPPED}},
        decision=Decision(generator_on={"dg1": False, "dg2": False}, generator_kw={"dg1": 0.0, "dg2": 0.0}),
        generator_on={"dg1": False, "dg2": False},
        generator_kw={"dg1": 0.0, "dg2": 0.0},
    ),
}

PV_AND_TIER_TICKS = {
    "PV limit clamped to [0, peak]": Tick(
        decision=Decision(pv_limit_kw={"roof": -20.0}),
        pv={"roof": 0.0},
        notes=("pv roof: limit -20.0 kW → 0.0 kW",),
    ),
    "PV limit above peak": Tick(
        decision=Decision(pv_limit_kw={"roof": 400.0}),
        pv={"roof": 150.0},
        notes=("pv roof: limit 400.0 kW → 150.0 kW",),
    ),
    "PV limit inside passes": Tick(decision=Decision(pv_limit_kw={"roof": 75.0}), pv={"roof": 75.0}),
    "PV no limit stays no limit": Tick(decision=Decision(pv_limit_kw={"roof": None}), pv={"roof": None}),
    "PV limit of an unknown array dropped": Tick(
        decision=Decision(pv_limit_kw={"roof": 10.0, "carport": 5.0}), pv={"roof": 10.0}
    ),
    "most important tier never disconnected": Tick(
        decision=Decision(tier_connected={"critical": False, "essential": False, "comfort": False}),
        tiers={"critical": True, "essential": False, "comfort": False},
        notes=("tier critical: never disconnected by the controller",),
    ),
    "most important tier connected even when the decision omits it": Tick(
        decision=Decision(tier_connected={"comfort": False}),
        tiers={"critical": True, "comfort": False},
    ),
    "other tiers as decided": Tick(
        decision=Decision(tier_connected={"critical": True, "essential": True, "comfort": False}),
        tiers={"critical": True, "essential": True, "comfort": False},
    ),
}


def _run(site: Site, tick: Tick) -> tuple[Decision, list[str]]:
    est = estimate(site, **tick.est)
    return check(site, tick.decision, est, tick.last, SafetyConfig(ramp_fraction=tick.ramp))


def _assert_tick(site: Site, tick: Tick) -> None:
    out, notes = _run(site, tick)
    if tick.battery is not None:
        assert out.battery_kw == pytest.approx(tick.battery, abs=1e-9)
    if tick.generator_kw is not None:
        assert out.generator_kw == pytest.approx(tick.generator_kw, abs=1e-9)
    if tick.generator_on is not None:
        assert out.generator_on == tick.generator_on
    if tick.pv is not None:
        assert out.pv_limit_kw == tick.pv
    if tick.tiers is not None:
        assert out.tier_connected == tick.tiers
    assert len(notes) == len(tick.notes), notes
    for note, expected in zip(notes, tick.notes, strict=True):
        assert expected in note


@pytest.mark.parametrize("tick", BATTERY_TICKS.values(), ids=BATTERY_TICKS.keys())
def test_battery_ticks(hospital: Site, tick: Tick) -> None:
    _assert_tick(hospital, tick)


@pytest.mark.parametrize("tick", GENERATOR_TICKS.values(), ids=GENERATOR_TICKS.keys())
def test_generator_ticks(hospital: Site, tick: Tick) -> None:
    _assert_tick(hospital, tick)


@pytest.mark.parametrize("tick", PV_AND_TIER_TICKS.values(), ids=PV_AND_TIER_TICKS.keys())
def test_pv_and_tier_ticks(hospital: Site, tick: Tick) -> None:
    _assert_tick(hospital, tick)


def test_check_keeps_source_reason_and_does_not_mutate(hospital: Site) -> None:
    decision = Decision(battery_kw={"bess1": 500.0}, source="manual", reason="operator")
    out, _ = check(hospital, decision, estimate(hospital), None)
    assert (out.source, out.reason) == ("manual", "operator")
    assert decision.battery_kw == {"bess1": 500.0}


def test_non_finite_setpoints_become_safe(hospital: Site) -> None:
    """A NaN from a broken plan must not pass (NaN slips through min/max): held at 0 / no curtailment."""
    nan = float("nan")
    est = estimate(hospital, generators={"dg1": RUNNING, "dg2": RUNNING})
    decision = Decision(
        battery_kw={"bess1": nan, "bess2": float("inf")},
        generator_on={"dg1": True, "dg2": True},
        generator_kw={"dg1": nan, "dg2": float("-inf")},
        pv_limit_kw={"roof": nan},
    )
    out, notes = check(hospital, decision, est, Decision(battery_kw={"bess1": nan, "bess2": 0.0}))
    assert out.battery_kw == {"bess1": 0.0, "bess2": 200.0}
    assert out.generator_kw == {"dg1": 60.0, "dg2": 60.0}
    assert out.pv_limit_kw == {"roof": None}
    assert notes


@pytest.mark.parametrize(
    ("reported_charge_kw", "reported_discharge_kw", "expected"),
    [
        (None, None, (125.0, 125.0)),  # none reported: the site's (bess1: 125 kW either way)
        (40.0, 60.0, (40.0, 60.0)),  # derated by the inverter (cold, BMS)
        (500.0, 900.0, (125.0, 125.0)),  # never beyond the site file's
        (-5.0, float("nan"), (0.0, 0.0)),  # never below 0; a NaN counts as 0
    ],
)
def test_live_limits_are_the_inverters_within_the_sites(
    hospital: Site, reported_charge_kw: float | None, reported_discharge_kw: float | None, expected: tuple[float, float]
) -> None:
    """One rule for the safety layer and the rules' battery dispatch (issue 13)."""
    charge = {} if reported_charge_kw is None else {"bess1": reported_charge_kw}
    discharge = {} if reported_discharge_kw is None else {"bess1": reported_discharge_kw}
    est = estimate(hospital, charge_limit_kw=charge, discharge_limit_kw=discharge)
    assert live_limits_kw(hospital.batteries[0], est) == expected


@pytest.mark.parametrize(
    ("grid_up", "asked", "pv_kw", "expected"),
    [
        (False, {}, 0.0, 0.0),  # islanded, nothing spare: bess1 would charge from bess2 (the grid-former)
        (False, {"dg1": True}, 0.0, -20.0),  # dg1 (200 kW, running) against 180 kW of load: 20 kW spare
        (False, {"dg1": True}, 40.0, -50.0),  # with 40 kW of PV, 60 kW spare: the charge fits
        (False, {"dg1": False}, 40.0, 0.0),  # dg1 asked but still starting (it may never run): nothing spare
        (True, {}, 0.0, -50.0),  # grid up: the grid feeds it
    ],
)
def test_islanded_a_battery_charges_only_from_what_pv_and_gensets_spare(
    hospital: Site, grid_up: bool, asked: dict[str, bool], pv_kw: float, expected: float
) -> None:
    """Issue 12's partial override (bess1 = −50 kW during an outage) must not drain bess2, which forms the grid;
    nor may a genset asked to run count before it is confirmed running (``asked``: genset → running now; the
    drill genset-fails-to-start)."""
    est = estimate(
        hospital,
        grid_up=grid_up,
        load_kw={"critical": 100.0, "essential": 60.0, "comfort": 20.0},
        pv_kw={"roof": pv_kw},
        soc={"bess1": 0.5, "bess2": 0.5},
        generators={g.id: GeneratorState(asked.get(g.id, False), 1.0) for g in hospital.generators},
    )
    decision = Decision(
        battery_kw={"bess1": -50.0, "bess2": 0.0},
        generator_on={g.id: g.id in asked for g in hospital.generators},
        generator_kw={g.id: (g.max_kw if g.id in asked else 0.0) for g in hospital.generators},
        pv_limit_kw={},
        tier_connected={},
        source="manual",
        reason="operator",
    )
    safe, _ = check(hospital, decision, est, None)
    assert safe.battery_kw["bess1"] == pytest.approx(expected)
