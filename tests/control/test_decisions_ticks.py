"""Tick tables for the rule-based dispatch (``rules``) and for reading a plan row (``from_plan_row``).

The hospital: bess1 250 kWh, ±125 kW, band [0.10, 0.95]; bess2 400 kWh, ±200 kW, band
[0.15, 0.95]; dg1/dg2 [60, 200] kW; tiers critical (1) < essential (2) < comfort (3).
:func:`at_position` puts both batteries at the same position ``p`` of their bands, so the
energy-weighted position the rules use is exactly ``p``.

Net load shared by discharge limits (grid not up): with demand 200 kW and both gensets off,
bess1 gets 200 · 125 / 325 = 76.923 kW and bess2 200 · 200 / 325 = 123.077 kW; with both gensets
requested (2 × 200 kW), −200 kW is shared likewise (−76.923 / −123.077).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from microgrid.control import Decision, rules
from microgrid.control.decisions import from_plan_row
from microgrid.site import Site
from microgrid.state import GeneratorState
from tests.control.conftest import at_position, estimate

RUNNING = GeneratorState(True, 2.0)
STOPPED = GeneratorState(False, 24.0)
LOAD = {"critical": 100.0, "essential": 80.0, "comfort": 20.0}
ALL = {"critical": True, "essential": True, "comfort": True}
OFF = {"dg1": False, "dg2": False}
ON = {"dg1": True, "dg2": True}


@dataclass(frozen=True)
class Tick:
    """(estimate fields, previous decision) → the rules' battery kW, genset run requests and kW, tiers."""

    est: dict[str, Any] = field(default_factory=dict)
    previous: Decision | None = None
    site: str = "hospital"
    """``hospital``, ``no-gensets`` (the hospital without gensets) or ``reordered`` (tiers listed backwards)."""
    battery: dict[str, float] | None = None
    generator_on: dict[str, bool] | None = None
    generator_kw: dict[str, float] | None = None
    tiers: dict[str, bool] | None = None


RULE_TICKS = {
    # -- grid up -----------------------------------------------------------------------------
    "grid up: charge at the site's limits": Tick(
        est={"soc": at_position(0.5), "load_kw": LOAD},
        battery={"bess1": -125.0, "bess2": -200.0},
        generator_on=OFF,
        generator_kw={"dg1": 0.0, "dg2": 0.0},
        tiers=ALL,
    ),
    "grid up: charge at the live limit": Tick(
        est={"soc": at_position(0.5), "charge_limit_kw": {"bess1": 40.0, "bess2": 200.0}},
        battery={"bess1": -40.0, "bess2": -200.0},
    ),
    "grid up: no charge at soc_max": Tick(
        est={"soc": {"bess1": 0.5, "bess2": 0.95}},
        battery={"bess1": -125.0, "bess2": 0.0},
    ),
    "grid up: no charge above soc_max": Tick(
        est={"soc": {"bess1": 0.97, "bess2": 0.949}},
        battery={"bess1": 0.0, "bess2": -200.0},
    ),
    "grid up: unknown SOC, no charge": Tick(
        est={"soc": {"bess2": 0.5}},
        battery={"bess1": 0.0, "bess2": -200.0},
    ),
    "grid up: gensets stop even at the floor": Tick(
        est={"soc": at_position(0.02), "generators": {"dg1": RUNNING, "dg2": RUNNING}},
        generator_on=OFF,
        generator_kw={"dg1": 0.0, "dg2": 0.0},
        tiers=ALL,
    ),
    "grid up: shed tiers come back": Tick(
        est={"soc": at_position(0.0)},
        previous=Decision(tier_connected={"critical": True, "essential": False, "comfort": False}),
        site="no-gensets",
        tiers=ALL,
    ),
    # -- grid down: batteries share the net load ------------------------------------------------
    "grid down: net load shared by discharge limits": Tick(
        est={"soc": at_position(0.5), "grid_up": False, "load_kw": LOAD},
        battery={"bess1": 200 * 125 / 325, "bess2": 200 * 200 / 325},
        generator_on=OFF,
        tiers=ALL,
    ),
    "grid down: shared by live discharge limits": Tick(  # 100 : 100
        est={
            "soc": at_position(0.5),
            "grid_up": False,
            "load_kw": LOAD,
            "discharge_limit_kw": {"bess1": 100.0, "bess2": 100.0},
        },
        battery={"bess1": 100.0, "bess2": 100.0},
    ),
    "grid down: only batteries of known SOC share": Tick(
        est={"soc": {"bess2": 0.55}, "grid_up": False, "load_kw": LOAD},  # bess2 alone at position 0.5
        battery={"bess1": 0.0, "bess2": 200.0},
        generator_on=OFF,
    ),
    "grid down: genset surplus absorbed likewise": Tick(  # 200 - 2 × 200 = -200
        est={
            "soc": at_position(0.2),
            "grid_up": False,
            "load_kw": LOAD,
            "generators": {"dg1": RUNNING, "dg2": RUNNING},
        },
        battery={"bess1": -200 * 125 / 325, "bess2": -200 * 200 / 325},
        generator_on=ON,
        generator_kw={"dg1": 200.0, "dg2": 200.0},
    ),
    "grid down: gensets still starting deliver nothing yet": Tick(  # started now: batteries carry 200
        est={"soc": at_position(0.2), "grid_up": False, "load_kw": LOAD},
        battery={"bess1": 200 * 125 / 325, "bess2": 200 * 200 / 325},
        generator_on=ON,
        generator_kw={"dg1": 200.0, "dg2": 200.0},
    ),
    # -- gensets: start below 25 % of the band, run on until 70 % -------------------------------
    "gensets start below 25 %": Tick(
        est={"soc": at_position(0.24), "grid_up": False}, generator_on=ON, generator_kw={"dg1": 200.0, "dg2": 200.0}
    ),
    "gensets stay off at 26 %": Tick(est={"soc": at_position(0.26), "grid_up": False}, generator_on=OFF),
    "running gensets run on at 69 %": Tick(
        est={"soc": at_position(0.69), "grid_up": False, "generators": {"dg1": RUNNING, "dg2": RUNNING}},
        generator_on=ON,
    ),
    "running gensets stop at 71 %": Tick(
        est={"soc": at_position(0.71), "grid_up": False, "generators": {"dg1": RUNNING, "dg2": RUNNING}},
        generator_on=OFF,
        generator_kw={"dg1": 0.0, "dg2": 0.0},
    ),
    "hysteresis per genset": Tick(  # only the running one runs on at 50 %
        est={"soc": at_position(0.5), "grid_up": False, "generators": {"dg1": RUNNING, "dg2": STOPPED}},
        generator_on={"dg1": True, "dg2": False},
        generator_kw={"dg1": 200.0, "dg2": 0.0},
    ),
    "genset of unknown status counts as stopped": Tick(
        est={"soc": at_position(0.5), "grid_up": False, "generators": {"dg2": RUNNING}},
        generator_on={"dg1": False, "dg2": True},
    ),
    "grid unknown counts as not up": Tick(  # gensets asked to start; until they run the batteries carry 200
        est={"soc": at_position(0.1), "grid_up": None, "load_kw": LOAD},
        generator_on=ON,
        battery={"bess1": 200 * 125 / 325, "bess2": 200 * 200 / 325},
    ),
    "unknown batteries and no grid: gensets run, batteries idle": Tick(
        est={"soc": {}, "grid_up": False, "load_kw": LOAD},
        generator_on=ON,
        generator_kw={"dg1": 200.0, "dg2": 200.0},
        battery={"bess1": 0.0, "bess2": 0.0},
        tiers=ALL,
    ),
    # -- tiers: shed only with the grid not up, no genset running and the batteries at the floor --
    "no gensets, batteries at the floor: least important tier shed": Tick(
        est={"soc": at_position(0.03), "grid_up": False, "load_kw": LOAD},
        site="no-gensets",
        tiers={"critical": True, "essential": True, "comfort": False},
    ),
    "one tier per cycle: the next one": Tick(
        est={"soc": at_position(0.03), "grid_up": False},
        previous=Decision(tier_connected={"critical": True, "essential": True, "comfort": False}),
        site="no-gensets",
        tiers={"critical": True, "essential": False, "comfort": False},
    ),
    "never the most important tier": Tick(
        est={"soc": at_position(0.0), "grid_up": False},
        previous=Decision(tier_connected={"critical": True, "essential": False, "comfort": False}),
        site="no-gensets",
        tiers={"critical": True, "essential": False, "comfort": False},
    ),
    "by priority, not by listing order": Tick(
        est={"soc": at_position(0.03), "grid_up": False},
        site="reordered",
        tiers={"critical": True, "essential": True, "comfort": False},
    ),
    "batteries above the floor: every tier connected again": Tick(
        est={"soc": at_position(0.06), "grid_up": False},
        previous=Decision(tier_connected={"critical": True, "essential": False, "comfort": False}),
        site="no-gensets",
        tiers=ALL,
    ),
    "gensets running: no shedding at the floor": Tick(
        est={"soc": at_position(0.03), "grid_up": False, "generators": {"dg1": RUNNING, "dg2": STOPPED}},
        generator_on=ON,
        tiers=ALL,
    ),
    "gensets requested but none running: shed (docstring: no genset is running)": Tick(
        est={"soc": at_position(0.03), "grid_up": False},
        generator_on=ON,
        tiers={"critical": True, "essential": True, "comfort": False},
    ),
    "batteries unknown: no shedding": Tick(
        est={"soc": {}, "grid_up": False}, site="no-gensets", battery={"bess1": 0.0, "bess2": 0.0}, tiers=ALL
    ),
}


def _site(hospital: Site, which: str) -> Site:
    if which == "no-gensets":
        return hospital.model_copy(update={"generators": ()})
    if which == "reordered":
        return hospital.model_copy(update={"generators": (), "loads": tuple(reversed(hospital.loads))})
    return hospital


@pytest.mark.parametrize("tick", RULE_TICKS.values(), ids=RULE_TICKS.keys())
def test_rule_ticks(hospital: Site, tick: Tick) -> None:
    site = _site(hospital, tick.site)
    out = rules(site, estimate(hospital, **tick.est), tick.previous, "because")
    assert (out.source, out.reason) == ("rules", "because")
    assert out.pv_limit_kw == {"roof": None}  # the rules never curtail PV
    if tick.battery is not None:
        assert out.battery_kw == pytest.approx(tick.battery, abs=1e-6)
    if tick.generator_on is not None:
        assert out.generator_on == tick.generator_on
    if tick.generator_kw is not None:
        assert out.generator_kw == pytest.approx(tick.generator_kw)
    if tick.tiers is not None:
        assert out.tier_connected == tick.tiers


def test_shedding_sequence_over_cycles(hospital: Site) -> None:
    """Fed its own output back, the rules shed comfort, then essential, then hold; reconnect all at once."""
    site = _site(hospital, "no-gensets")
    floor = estimate(hospital, soc=at_position(0.0), grid_up=False)
    seen, previous = [], None
    for _ in range(4):
        previous = rules(site, floor, previous, "outage")
        seen.append(tuple(t for t, c in previous.tier_connected.items() if not c))
    assert seen == [("comfort",), ("essential", "comfort"), ("essential", "comfort"), ("essential", "comfort")]
    back = rules(site, estimate(hospital, soc=at_position(0.0), grid_up=True), previous, "grid back")
    assert all(back.tier_connected.values())


# -- from_plan_row -----------------------------------------------------------------------------


def _row(**values: float) -> pd.Series:
    """A plan row of the hospital: zeros except ``values`` (keys with '.' written as '__')."""
    cols = [f"battery.{b}.{k}" for b in ("bess1", "bess2") for k in ("charge_kw", "discharge_kw", "soc")]
    cols += [f"generator.{g}.{k}" for g in ("dg1", "dg2") for k in ("kw", "on", "fuel")]
    cols += ["pv.roof.kw", "grid.import_kw", "grid.export_kw"]
    cols += [f"load.{t}.{k}" for t in ("critical", "essential", "comfort") for k in ("served_kw", "shed_kw")]
    row = pd.Series(0.0, index=cols)
    for key, value in values.items():
        row[key.replace("__", ".")] = value
    return row


PLAN_TICKS: dict[str, tuple[pd.Series, dict[str, float], float, dict[str, Any]]] = {
    # (row, demand, available PV) → expected fields
    "battery discharge minus charge": (
        _row(battery__bess1__discharge_kw=50.0, battery__bess2__charge_kw=30.0),
        LOAD,
        0.0,
        {"battery_kw": {"bess1": 50.0, "bess2": -30.0}},
    ),
    "genset on and its power": (
        _row(generator__dg1__on=1.0, generator__dg1__kw=120.0),
        LOAD,
        0.0,
        {"generator_on": {"dg1": True, "dg2": False}, "generator_kw": {"dg1": 120.0, "dg2": 0.0}},
    ),
    "tier shed ≥ 99 %: disconnected": (  # comfort 19.9 of 20 = 99.5 %
        _row(load__comfort__shed_kw=19.9, load__essential__shed_kw=80.0),
        LOAD,
        0.0,
        {"tier_connected": {"critical": True, "essential": False, "comfort": False}},
    ),
    "tier shed < 99 %: stays connected": (  # comfort 19.7 of 20 = 98.5 %; essential 40 of 80
        _row(load__comfort__shed_kw=19.7, load__essential__shed_kw=40.0),
        LOAD,
        0.0,
        {"tier_connected": ALL},
    ),
    "tier without demand: connected": (
        _row(),
        {"critical": 100.0, "essential": 0.0, "comfort": 0.0},
        0.0,
        {"tier_connected": ALL},
    ),
    "tier missing from the demand: connected": (_row(), {}, 0.0, {"tier_connected": ALL}),
    "PV not curtailed: no limit": (_row(pv__roof__kw=100.0), LOAD, 100.0, {"pv_limit_kw": {"roof": None}}),
    "PV within 0.5 kW of the available: no limit": (
        _row(pv__roof__kw=99.6),
        LOAD,
        100.0,
        {"pv_limit_kw": {"roof": None}},
    ),
    "PV curtailed: limited to the plan": (_row(pv__roof__kw=99.4), LOAD, 100.0, {"pv_limit_kw": {"roof": 99.4}}),
    "PV curtailed to 0": (_row(pv__roof__kw=0.0), LOAD, 60.0, {"pv_limit_kw": {"roof": 0.0}}),
    "no PV available: no limit": (_row(pv__roof__kw=0.0), LOAD, 0.0, {"pv_limit_kw": {"roof": None}}),
}


@pytest.mark.parametrize(("row", "demand", "pv", "expected"), PLAN_TICKS.values(), ids=PLAN_TICKS.keys())
def test_plan_row_ticks(
    hospital: Site, row: pd.Series, demand: dict[str, float], pv: float, expected: dict[str, Any]
) -> None:
    out = from_plan_row(hospital, row, demand, {"roof": pv})
    assert out.source == "plan"
    for name, value in expected.items():
        got = getattr(out, name)
        assert got == (pytest.approx(value) if name.endswith("_kw") and name != "pv_limit_kw" else value), name


def test_plan_row_shed_boundary(hospital: Site) -> None:
    """Exactly 99 % shed disconnects (≥), a hair below does not."""
    demand = {"critical": 100.0, "essential": 100.0, "comfort": 100.0}
    out = from_plan_row(hospital, _row(load__comfort__shed_kw=99.0, load__essential__shed_kw=98.99), demand, {})
    assert out.tier_connected == {"critical": True, "essential": True, "comfort": False}


# -- the previous plan is replayed only on the state it expected (issue 12) ----------------------

MATCH_TICKS: dict[str, tuple[dict[str, Any], bool]] = {
    "as planned": ({}, True),
    "SOC 4 % off the plan": ({"soc": {"bess1": 0.64, "bess2": 0.50}}, True),
    "SOC 6 % off the plan (a frozen register, a battery that did not follow)": (
        {"soc": {"bess1": 0.66, "bess2": 0.50}},
        False,
    ),
    "a battery's SOC unknown": ({"soc": {"bess2": 0.50}}, False),
    "a genset the plan has running is stopped": ({"generators": {"dg1": GeneratorState(False, 1.0)}}, False),
    "the grid down where the plan has it up": ({"grid_up": False}, False),
    "the grid unknown": ({"grid_up": None}, False),
}


@pytest.mark.parametrize(("fields", "matches"), MATCH_TICKS.values(), ids=MATCH_TICKS.keys())
def test_state_matches_ticks(hospital: Site, fields: dict[str, Any], matches: bool) -> None:
    """A previous plan whose step 0 ended with bess1 at 60 %, bess2 at 50 %, dg1 running, dg2 stopped, the
    grid up in step 1; the state now as ``fields`` say (else exactly that)."""
    from microgrid.control.decisions import state_matches
    from microgrid.dispatch import DispatchInputs
    from microgrid.profiles import read_profiles
    from microgrid.state import SiteState
    from tests.conftest import WINTER
    from tests.control.conftest import synthetic_plan

    profiles = read_profiles(WINTER, hospital)
    state = SiteState(soc={"bess1": 0.60, "bess2": 0.50}, generators={}, fuel_stock={})
    plan = synthetic_plan(
        DispatchInputs(hospital, profiles, state, 0.01, 1.0), {"generator.dg1.on": 1, "generator.dg1.kw": 100.0}
    )
    base = {"generators": {"dg1": GeneratorState(True, 1.0), "dg2": GeneratorState(False, 5.0)}}
    est = estimate(hospital, **(base | {"soc": {"bess1": 0.60, "bess2": 0.50}, "grid_up": True} | fields))
    assert state_matches(plan, 1, est) is matches


OVERRIDE_TICKS: dict[str, tuple[dict[str, dict[str, Any]], list[str]]] = {
    "within limits": ({"battery_kw": {"bess1": -125.0}, "generator_kw": {"dg1": 0.0, "dg2": 60.0}}, []),
    "tiers below the top may be switched": ({"tier_connected": {"comfort": False, "essential": True}}, []),
    "beyond a battery's limit": (
        {"battery_kw": {"bess2": 201.0}},
        ["bess2: 201 kW is outside its limits (-200 … 200 kW)"],
    ),
    "a genset below its minimum": (
        {"generator_kw": {"dg1": 30.0}},
        ["dg1: 30 kW is outside its limits (0 (stop) or 60 … 200 kW)"],
    ),
    "not finite": ({"battery_kw": {"bess1": float("inf")}}, ["bess1: a finite number of kW, got inf"]),
    "an unknown asset": (
        {"battery_kw": {"bess3": 1.0}},
        ["battery_kw: no such asset 'bess3' (the site has bess1, bess2)"],
    ),
    "the top tier off": (
        {"tier_connected": {"critical": False}},
        ["tier critical: the most important tier is never switched off"],
    ),
}


@pytest.mark.parametrize(("payload", "problems"), OVERRIDE_TICKS.values(), ids=OVERRIDE_TICKS.keys())
def test_override_problems_ticks(hospital: Site, payload: dict[str, dict[str, Any]], problems: list[str]) -> None:
    from microgrid.control.decisions import asset_limits, override_problems

    assert override_problems(payload, asset_limits(hospital)) == problems
