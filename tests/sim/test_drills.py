"""Drills (issue 12, item 8): the drill file's errors, the unsafe-write check on hand-made truth rows, the
plant-level faults, and short closed-loop drills of the shipped library (real controller, real HiGHS solves at
gap 0.02 / 2 s, the simulator over loopback TCP) through the library and the ``microgrid drill`` command.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from microgrid.cli import app
from microgrid.errors import ConfigError
from microgrid.planning.drills import library, read_drill, run_drill
from microgrid.profiles import Profiles
from microgrid.sim.physics import SitePlant
from microgrid.sim.truth import TruthRow, WriteRecord, truth, unsafe_write
from microgrid.site import Site
from tests.conftest import HOSPITAL, ROOT, WINTER

DRILLS = ROOT / "models" / "drills"
T = datetime(2026, 1, 15, 0, 0, tzinfo=UTC)


def write_drill(folder: Path, filename: str = "d.yaml", **fields: Any) -> Path:
    """A drill file in ``folder`` against the shipped hospital, with ``fields`` (None deletes a key)."""
    raw: dict[str, Any] = {
        "name": "tiny",
        "site": str(HOSPITAL),
        "profiles": str(WINTER),
        "duration": "00:30",
        "events": [{"at": "00:00", "grid": "down"}],
    }
    raw = {k: v for k, v in (raw | fields).items() if v is not None}
    path = folder / filename
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        read_drill(path)
    return caught.value.problems


# -- the drill file ------------------------------------------------------------------------------


def test_every_shipped_drill_reads() -> None:
    names = [read_drill(p).drill.name for p in library()]
    assert len(names) >= 12 and len(set(names)) == len(names)
    assert {p.stem for p in library()} == set(names)  # file named after the drill


def test_unknown_keys_and_bad_values_are_named_by_key_path(tmp_path: Path) -> None:
    path = write_drill(
        tmp_path,
        criteria={"critical_unserved_kwh": -1, "unsafe_write": 0},
        events=[{"at": "00:00", "grid": "sideways"}, {"at": "25:99", "trip": "bess1"}],
        control={"mip_gap": 2},
    )
    found = problems(path)
    assert any(p.startswith("criteria.critical_unserved_kwh:") for p in found), found
    assert "criteria.unsafe_write: unknown key" in found
    assert any(p.startswith("events[0].grid:") for p in found), found
    assert any(p.startswith("events[1].at:") and "25:99" in p for p in found), found
    assert any(p.startswith("control.mip_gap:") for p in found), found


def test_an_event_does_exactly_one_thing(tmp_path: Path) -> None:
    path = write_drill(tmp_path, events=[{"at": 5, "grid": "down", "trip": "bess1"}, {"at": 10}])
    found = problems(path)
    assert any(p.startswith("events[0].at: an event does exactly one of") and "'grid', 'trip'" in p for p in found)
    assert any(p.startswith("events[1].at: an event does exactly one of") and "none" in p for p in found)


def test_ids_are_checked_against_the_site(tmp_path: Path) -> None:
    events = [
        {"at": "00:00", "fault": {"device": "bess3-inverter", "silent": True}},
        {"at": "00:10", "trip": "dg1"},
        {"at": "00:20", "genset_fails_to_start": "bess1"},
    ]
    path = write_drill(tmp_path, events=events, initial={"soc": {"bess7": 0.5}}, start="00:10")
    found = problems(path)
    assert any(p.startswith("events[0].fault.device: unknown device 'bess3-inverter'") for p in found), found
    assert any(p.startswith("events[1].trip: unknown id 'dg1'") for p in found), found
    assert any(p.startswith("events[2].genset_fails_to_start: unknown id 'bess1'") for p in found), found
    assert any(p.startswith("initial.soc.bess7: unknown id") for p in found), found
    assert any(p.startswith("start: must be a whole number of the site's intervals") for p in found), found


def test_expect_fail_needs_its_reason_and_events_fit_the_duration(tmp_path: Path) -> None:
    path = write_drill(tmp_path, expect="fail", events=[{"at": "01:00", "grid": "up"}])
    assert any(p.startswith("expect_reason: required with expect: fail") for p in problems(path))
    path = write_drill(tmp_path, events=[{"at": "01:00", "grid": "up"}])
    assert any(p.startswith("events: events [0] come after the drill's duration") for p in problems(path))


def test_a_missing_site_file_is_named(tmp_path: Path) -> None:
    found = problems(write_drill(tmp_path, site="nowhere.yaml"))
    assert len(found) == 1 and found[0].startswith("site: ") and "nowhere.yaml" in found[0]


def test_cli_bad_drill_file_exits_2_naming_the_key(tmp_path: Path) -> None:
    bad = write_drill(tmp_path, criteria={"unsafe_writes": "none"})
    result = CliRunner().invoke(app, ["drill", str(bad)])
    assert result.exit_code == 2, result.output
    assert "criteria.unsafe_writes" in result.output
    assert CliRunner().invoke(app, ["drill"]).exit_code == 2  # nothing to run


# -- unsafe writes against hand-made truth ---------------------------------------------------------


def row(**fields: Any) -> TruthRow:
    """The hospital islanded at night: both batteries mid-band, gensets off, 180 kW of demand, no PV."""
    base: dict[str, Any] = {
        "time": T,
        "soc": {"bess1": 0.5, "bess2": 0.5},
        "battery_kw": {"bess1": 0.0, "bess2": 180.0},
        "tripped": {"bess1": False, "bess2": False},
        "genset_running": {"dg1": False, "dg2": False},
        "genset_starting": {"dg1": False, "dg2": False},
        "genset_kw": {"dg1": 0.0, "dg2": 0.0},
        "fuel": {"diesel": 1500.0},
        "grid_up": False,
        "grid_kw": 0.0,
        "pv_available_kw": 0.0,
        "demand_kw": {"critical": 90.0, "essential": 70.0, "comfort": 20.0},
        "served_kw": {"critical": 90.0, "essential": 70.0, "comfort": 20.0},
        "relay_closed": {"critical": True, "essential": True, "comfort": True},
    }
    return TruthRow(**(base | fields))


def write(device_class: str, point: str, value: float, asset: str) -> WriteRecord:
    return WriteRecord(T, f"{asset}-device", device_class, point, value, asset)


def battery(kw: float, asset: str = "bess1") -> WriteRecord:
    return write("battery_inverter", "power_setpoint_kw", kw, asset)


@pytest.mark.parametrize(
    ("written", "truth_fields", "why"),
    [
        (battery(50.0), {"soc": {"bess1": 0.09, "bess2": 0.5}}, "bess1: discharge 50 kW at a true SOC of 0.090"),
        (battery(50.0), {"soc": {"bess1": 0.10, "bess2": 0.5}}, None),  # at the floor, within the tolerance
        (battery(0.0), {"soc": {"bess1": 0.0, "bess2": 0.5}}, None),
        (battery(-40.0), {"soc": {"bess1": 0.96, "bess2": 0.5}, "grid_up": True}, "bess1: charge 40 kW at a true SOC"),
        (battery(130.0), {}, "bess1: 130 kW beyond its limits (-125, +125)"),
        (battery(-50.0), {}, "bess1: charge 50 kW from a dead grid (PV and gensets spare 0.0 kW)"),
        (battery(-50.0), {"grid_up": True}, None),
        (battery(-15.0), {"genset_running": {"dg1": True, "dg2": False}}, None),  # 200 kW running: 20 spare
        (battery(-35.0), {"genset_running": {"dg1": True, "dg2": False}}, "bess1: charge 35 kW from a dead grid"),
        (battery(-28.0), {"genset_running": {"dg1": True, "dg2": False}}, None),  # 8 kW over: forecast error
        (battery(-15.0), {"genset_starting": {"dg1": True, "dg2": False}}, None),  # cranking, able to start
        (battery(-50.0, "bess2"), {}, None),  # the grid-forming battery carries the balance islanded
        (
            battery(-50.0),
            {"pv_available_kw": 150.0, "relay_closed": {"critical": True, "essential": False, "comfort": False}},
            None,
        ),
        (write("genset_controller", "power_setpoint_kw", 250.0, "dg1"), {}, "dg1: 250 kW outside [0, 200]"),
        (write("genset_controller", "power_setpoint_kw", 150.0, "dg1"), {}, None),
        (write("load_feeder", "feeder_1_command", 0, "critical"), {}, "the relay of critical"),
        (write("load_feeder", "feeder_3_command", 0, "comfort"), {}, None),
        (write("load_feeder", "feeder_1_command", 1, "critical"), {}, None),
        (write("pv_inverter", "power_limit_pct", 120.0, "roof"), {}, "roof: PV limit 120 % outside [0, 100]"),
    ],
)
def test_unsafe_write(hospital: Site, written: WriteRecord, truth_fields: dict[str, Any], why: str | None) -> None:
    got = unsafe_write(hospital, written, row(**truth_fields))
    if why is None:
        assert got is None
    else:
        assert got is not None and got.startswith(why), got


# -- plant-level faults ----------------------------------------------------------------------------


def test_plant_faults(hospital: Site, winter: Profiles) -> None:
    plant = SitePlant(hospital, winter, start=winter.index[0] + timedelta(hours=4))  # 04:00 local: an outage
    assert plant.clock == winter.index[16] and not plant.grid_up
    plant.force_grid(True)
    assert plant.grid_up
    plant.force_grid(None)
    assert not plant.grid_up
    plant.trip_battery("bess1")
    plant.batteries["bess1"].command(100.0)
    plant.fail_genset_start("dg1")
    for g in ("dg1", "dg2"):
        plant.gensets[g].command(True, 100.0)
    plant.advance(120)
    assert plant.batteries["bess1"].power_kw == 0.0 and plant.batteries["bess1"].limits_kw(1.0) == (0.0, 0.0)
    assert not plant.gensets["dg1"].running and plant.gensets["dg2"].running
    row_now = truth(plant)
    assert row_now.tripped == {"bess1": True, "bess2": False} and row_now.genset_running["dg2"]
    assert row_now.demand_kw == pytest.approx(row_now.served_kw)  # bess2 and dg2 carry it all
    plant.trip_battery("bess1", tripped=False)
    plant.fail_genset_start("dg1", failing=False)
    plant.batteries["bess1"].command(100.0)  # without an adapter the plant's own 60 s revert timer ran out
    plant.advance(60)
    assert plant.batteries["bess1"].power_kw == pytest.approx(100.0) and plant.gensets["dg1"].running


# -- closed-loop drills (real solves, loopback TCP) ------------------------------------------------


def run(name: str, hours: float, horizon: timedelta | None = None) -> Any:
    """The shipped drill ``name`` for ``hours``, planning over ``horizon`` (None: the site's, 24 h)."""
    loaded = read_drill(DRILLS / f"{name}.yaml")
    if horizon is not None:
        control = loaded.site.control.model_copy(update={"horizon": horizon})
        loaded = dataclasses.replace(loaded, site=loaded.site.model_copy(update={"control": control}))
    return run_drill(loaded, duration=timedelta(hours=hours))


@pytest.mark.parametrize(
    ("name", "hours"),
    [
        ("bess1-soc-frozen-idle-outage", 1.0),
        ("grid-meter-frozen-up", 1.0),
        ("bess1-frozen-moving", 1.25),
        ("override-partial-during-outage", 1.0),
    ],
)
def test_the_scenarios_of_issue_12_pass(name: str, hours: float) -> None:
    """The four rows of issue 12's table, shortened: no critical kWh lost, no unsafe write, every cycle recorded."""
    result = run(name, hours)
    m = result.measures
    assert result.passed, [c for c in result.criteria if not c.ok]
    assert m.cycles_run == m.cycles_recorded == round(hours * 4)
    assert m.writes > 0 and m.unsafe == []
    assert result.truth and all(r.grid_up is False for r in result.truth[-4:])  # the outage is real
    assert m.critical_unserved_kwh == 0.0


def test_the_controllers_own_faults_clock_steps_a_full_store_and_kill_9() -> None:
    """The controller's wall clock stepped back and forward, its disk full for 45 min, and a kill -9 with a
    restart on the same store: no critical kWh lost, no unsafe write, no cycle missed, no record lost (the
    full store's records wait in memory; the restart's cycle replaces its interval's record).

    The plans look 12 h ahead, not the hospital's 24 h (``microgrid drill`` keeps 24 h): these faults are the
    controller's own, not its plan's, and what is checked are invariants, not the optimum; the emergency solves,
    at the 2 s limit over 24 h, take about half as long. (The sensor drills above keep 24 h: over 12 h,
    bess1-frozen-moving's fault was never followed by a fallback.)"""
    for name, hours in (("clock-steps", 2.0), ("store-full", 1.5), ("kill-9-restart", 1.25)):
        result = run(name, hours, horizon=timedelta(hours=12))
        m = result.measures
        assert result.passed, (name, [c for c in result.criteria if not c.ok])
        assert m.critical_unserved_kwh == 0.0 and m.unsafe == [] and m.records_lost == m.cycles_missed == 0, name
        assert m.cycles_recorded == round(hours * 4), name


def test_a_drill_fails_when_its_criterion_is_broken(tmp_path: Path) -> None:
    """The operator opens the essential tier's relay: its kWh behind the open relay break a 0 kWh criterion."""
    events = [{"at": "00:00", "operator": {"tier_connected": {"essential": False}}}]
    path = write_drill(tmp_path, events=events, criteria={"essential_unserved_kwh": 0}, duration="00:45")
    result = run_drill(read_drill(path))
    assert not result.passed and result.verdict == "FAIL"
    failed = [c for c in result.criteria if not c.ok]
    assert [c.name for c in failed] == ["essential unserved"]
    assert result.measures.essential_unserved_kwh > 5.0  # ~70 kW for half an hour behind the open relay
    assert result.measures.operator_unexpected == []  # applied, as expected


def test_cli_runs_drills_prints_the_verdicts_and_exits_by_them(tmp_path: Path) -> None:
    events = [{"at": "00:00", "operator": {"tier_connected": {"essential": False}}}]
    good = write_drill(tmp_path, "good.yaml", name="good", duration="00:15")
    bad = write_drill(tmp_path, "bad.yaml", name="bad", events=events, criteria={"essential_unserved_kwh": 0})
    known = write_drill(
        tmp_path, "known.yaml", name="known", events=events, criteria={"essential_unserved_kwh": 0}, expect="fail"
    )
    known.write_text(known.read_text() + "expect_reason: the operator's choice\n")
    result = CliRunner().invoke(app, ["drill", str(good), "--json", "--hours", "0.25", "--truth", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["verdict"] == "PASS"
    log = (tmp_path / "good.truth.csv").read_text().splitlines()
    assert len(log) == 1 + 30 and "soc.bess1" in log[0] and "served_kw.critical" in log[0]  # 15 min in 30 s steps
    result = CliRunner().invoke(app, ["drill", str(good), str(bad), "--hours", "0.25"])
    assert result.exit_code == 1, result.output
    assert "PASS" in result.output and "FAIL" in result.output and "essential unserved" in result.output
    result = CliRunner().invoke(app, ["drill", str(known), "--hours", "0.25"])
    assert result.exit_code == 0 and "XFAIL" in result.output, result.output


def test_measures_are_plain_data() -> None:
    """The JSON summary holds only JSON types (``--json``)."""
    from microgrid.planning.drills import Measures

    assert dataclasses.asdict(Measures())["unsafe"] == []


def test_every_accepted_write_is_held_against_the_truth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine checks each write the devices logged, with the plant's truth at that moment: a checker that
    calls every write unsafe makes them all count, and the truth it got is the plant's at the write's time."""
    from microgrid.planning.drills import engine

    seen: list[tuple[WriteRecord, TruthRow]] = []

    def everything(site: Site, written: WriteRecord, now: TruthRow) -> str:
        seen.append((written, now))
        return "test"

    monkeypatch.setattr(engine, "unsafe_write", everything)
    result = run_drill(read_drill(write_drill(tmp_path, duration="00:15")))
    assert not result.passed
    assert len(result.measures.unsafe) == result.measures.writes == len(seen) > 30  # a cycle and 30 keep-alives
    assert all(w.time == now.time for w, now in seen)
    points = {(w.device, w.point) for w, _ in seen}
    assert ("bess1-inverter", "power_setpoint_kw") in points and ("feeders", "feeder_1_command") in points


def test_a_genset_that_never_starts_is_seen_and_replaced() -> None:
    """dg1 cranks and never runs (issue 12's drills found it unseen: bess2, forming the grid, ran an hour below
    its floor). Seen within a keep-alive (microgrid.control.starts), dg2 is asked to run at once and dg1 is left
    out of plans; the hospital's ride-through reserve started the set early enough that bess2 never dips. (With
    the cut planned to last 4 h, ``unannounced_cut_h``'s default, dg1 is first asked at 23:00, not at 22:00: the
    keep-alive two minutes later sees it has not started, and the fault shows in the 23:15 cycle; the drill's
    short 1.5 h.)"""
    result = run("genset-fails-to-start", 1.5)
    assert result.measures.critical_unserved_kwh == 0.0 and result.measures.unsafe == []
    assert result.measures.below_floor_min == 0 and result.measures.lowest_soc["bess2"] >= 0.15
    assert any("'dg1-controller': 'fault'" in line for line in result.measures.timeline)  # the failed start seen
    assert result.verdict == "PASS"
