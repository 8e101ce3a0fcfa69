"""The controller against the simulated hospital over real Modbus TCP: one test per fallback and mode.

Time moves only when a test says so (``speed=None``); the rig steps the plant in 30 s chunks
with the controller's keep-alive in between (devices revert after 60 s without one). Solves are
real (gap 0.02, 2 s limit) where the plan itself matters; elsewhere a scripted optimizer returns
a synthetic plan whose row r asks bess1 for 10 + r kW and bess2 for −(20 + r) kW, so the row a
fallback used shows in the setpoints the plant received.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta

import pytest

from microgrid.control import Decision, Mode, rules
from microgrid.control.cycle import CycleReport
from microgrid.control.recording import summary
from microgrid.dispatch import DispatchInputs
from microgrid.errors import InfeasibleError
from microgrid.plans import Plan
from microgrid.profiles import Profiles
from microgrid.sim.server import Fault
from microgrid.site import Site
from microgrid.state import GeneratorState, SiteState
from tests.control.conftest import Optimizer, Rig, fast, run_rig, synthetic_plan

PHASES = ["read", "estimate", "forecast", "solve", "setpoints", "check", "write"]


def live_writes_ok(report: CycleReport, *, dead: tuple[str, ...] = ()) -> None:
    """Nothing refused and every read-back matched, for every device not in ``dead``."""
    for device_id, result in report.writes.items():
        if device_id not in dead:
            assert result.ok, (device_id, result)


def battery_setpoints(rig: Rig) -> dict[str, float]:
    return {b: p.setpoint_kw for b, p in rig.sim.plant.batteries.items()}


# -- auto mode: plan, previous plan, rules, autonomous --------------------------------------------


def test_normal_cycle_is_a_plan(tcp_hospital: Site, winter: Profiles) -> None:
    async def body(rig: Rig) -> None:
        report = await rig.cycle()
        assert (report.source, report.mode) == ("plan", Mode.AUTO)
        assert report.plan is not None
        assert report.reason == report.plan.status.value in ("optimal", "time_limit_feasible")
        assert report.start == rig.now()
        assert list(report.phases_s) == PHASES
        assert report.events == []
        live_writes_ok(report)
        assert report.decision is not None
        assert battery_setpoints(rig) == pytest.approx(report.decision.battery_kw, abs=1e-3)
        assert all(rig.adapter(d).remote for d in report.writes)  # every written device follows us
        line = json.loads(report.log_line())
        assert (line["source"], line["refused"]) == ("plan", 0)

    run_rig(tcp_hospital, winter, body)


def test_infeasible_without_a_previous_plan_uses_the_rules(tcp_hospital: Site, winter: Profiles) -> None:
    optimizer = Optimizer(InfeasibleError("no feasible plan (test)"))

    async def body(rig: Rig) -> None:
        report = await rig.cycle()
        assert report.source == "rules"
        assert report.reason == "no plan: no feasible plan (test)"
        assert report.plan is None
        live_writes_ok(report)
        # grid up at midnight, both batteries inside their bands: the rules charge at the live limits
        assert battery_setpoints(rig) == pytest.approx({"bess1": -125.0, "bess2": -200.0})
        assert not any(g.run_requested for g in rig.sim.plant.gensets.values())

    run_rig(tcp_hospital, winter, body, optimizer=optimizer)
    assert optimizer.calls == 2  # once more without locks (still infeasible here), then the rules
    assert optimizer.inputs[0].feeders is not None and optimizer.inputs[1].feeders is None


def test_an_infeasible_plan_is_planned_again_without_locks(tcp_hospital: Site, winter: Profiles) -> None:
    """The first solve of a cycle infeasible: the same cycle plans again with every genset past its minimum
    up and down time and every tier sheddable in part (``microgrid.control.locks.without_locks``); that
    plan is the cycle's, not the rules, and the event says why."""
    optimizer = Optimizer(InfeasibleError("no feasible plan (test)"), "real")

    async def body(rig: Rig) -> None:
        rig.sim.plant.grid_forced = False
        report = await rig.cycle()
        assert report.source == "plan" and not report.reason.startswith("no plan")  # optimal, or the time limit
        notes = [m for kind, m in report.events if kind == "dispatch"]
        assert notes == [
            "no plan: no feasible plan (test): planning again without locks (every genset free to start or "
            "stop now, every tier sheddable in part)"
        ]
        relaxed = optimizer.inputs[1]
        assert relaxed.feeders is None and optimizer.inputs[0].feeders is not None
        for gen in rig.ctl.site.generators:
            assert relaxed.state.generators[gen.id].hours_in_state >= max(gen.min_up_h, gen.min_down_h)
        assert report.plan is not None and report.plan.state is relaxed.state
        await rig.step()
        assert rig.sim.plant.totals.unserved_kwh["critical"] == 0.0

    run_rig(tcp_hospital, winter, body, optimizer=optimizer)
    assert optimizer.calls == 2


def test_infeasible_with_a_previous_plan_uses_it_shifted(tcp_hospital: Site, winter: Profiles) -> None:
    optimizer = Optimizer("stub", InfeasibleError("no feasible plan (test)"))

    async def body(rig: Rig) -> None:
        first = await rig.cycle()
        assert first.source == "plan"
        assert battery_setpoints(rig) == pytest.approx({"bess1": 10.0, "bess2": -20.0})  # row 0
        for row in (1, 2):
            await rig.step()
            report = await rig.cycle()
            assert (report.source, report.reason) == ("previous_plan", "no plan: no feasible plan (test)")
            live_writes_ok(report)
            assert battery_setpoints(rig) == pytest.approx({"bess1": 10.0 + row, "bess2": -20.0 - row})

    run_rig(tcp_hospital, winter, body, optimizer=optimizer)
    assert optimizer.calls == 5  # the first plan, then twice (as is, without locks) in each of two cycles


def test_previous_plan_expires_after_half_the_horizon(tcp_hospital: Site, winter: Profiles) -> None:
    """A 20 h horizon, so that both rows looked at (10:00, 10:15 local) have the grid up, as now."""
    site = fast(tcp_hospital, horizon=timedelta(hours=20))
    optimizer = Optimizer("stub", InfeasibleError("no feasible plan (test)"))

    async def body(rig: Rig) -> None:
        await rig.cycle()
        rig.offset = timedelta(hours=10)  # exactly half the horizon: still used (row 40)
        report = await rig.cycle()
        assert report.source == "previous_plan"
        assert report.decision is not None
        assert report.decision.battery_kw["bess1"] == pytest.approx(10.0 + 40)
        rig.offset = timedelta(hours=10, minutes=15)  # older: no longer trusted
        report = await rig.cycle()
        assert (report.source, report.reason) == ("rules", "no plan: no feasible plan (test)")
        live_writes_ok(report)

    run_rig(site, winter, body, optimizer=optimizer)


def test_solve_past_its_budget_falls_back_within_the_cycle(tcp_hospital: Site, winter: Profiles) -> None:
    release = threading.Event()

    def slow(inputs: DispatchInputs) -> Plan:
        release.wait(30)  # far longer than the budget; released by the test
        return synthetic_plan(inputs)

    optimizer = Optimizer("stub", slow, "stub")

    async def body(rig: Rig) -> None:
        assert (await rig.cycle()).source == "plan"
        await rig.step()
        started = time.perf_counter()
        report = await rig.cycle()
        wall = time.perf_counter() - started
        assert wall < 0.5 + 2.0
        assert report.phases_s["solve"] == pytest.approx(0.5, abs=0.25)
        assert (report.source, report.reason) == ("previous_plan", "solve exceeded its wall-clock budget of 0.5 s")
        live_writes_ok(report)
        assert battery_setpoints(rig) == pytest.approx({"bess1": 11.0, "bess2": -21.0})

        await rig.step()
        report = await rig.cycle()  # the first solve still runs: no second one
        assert (report.source, report.reason) == ("previous_plan", "the previous solve is still running")
        assert optimizer.calls == 2
        assert battery_setpoints(rig) == pytest.approx({"bess1": 12.0, "bess2": -22.0})

        release.set()
        solving = rig.ctl._solving
        assert solving is not None
        await asyncio.wait_for(asyncio.shield(solving), timeout=5)
        await rig.step()
        report = await rig.cycle()  # done: the next cycle solves again
        assert report.source == "plan"
        assert optimizer.calls == 3

    try:
        run_rig(tcp_hospital, winter, body, optimizer=optimizer, solve_budget_s=0.5)
    finally:
        release.set()


def test_dead_battery_inverter_is_held_at_zero(tcp_hospital: Site, winter: Profiles) -> None:
    optimizer = Optimizer("stub")

    async def body(rig: Rig) -> None:
        assert (await rig.cycle()).source == "plan"
        rig.sim.faults["bess1-inverter"] = Fault(silent=True)
        # no keep-alive while stepping: each write to the dead inverter costs a timeout per point
        await rig.step(keepalive=False)
        started = time.perf_counter()
        report = await rig.cycle()
        assert time.perf_counter() - started < 5.0
        est = report.estimate
        assert est is not None
        assert est.health["bess1-inverter"] == "lost"
        assert "bess1" not in est.soc
        assert report.reason == "state incomplete: battery bess1: SOC unknown"
        assert optimizer.calls == 1  # no solve on an incomplete state
        # a battery whose SOC is unknown does not match the previous plan: not replayed (issue 12), the rules
        assert report.source == "rules"
        assert report.decision is not None
        assert report.decision.battery_kw["bess1"] == 0.0  # held at 0 kW by the safety layer (SOC unknown)
        assert report.planned_writes["bess1-inverter"]["power_setpoint_kw"] == 0.0
        assert report.writes["bess1-inverter"].refused  # it does not answer
        live_writes_ok(report, dead=("bess1-inverter",))
        assert rig.sim.plant.batteries["bess2"].setpoint_kw == pytest.approx(-200.0)  # grid up: the rules charge

    run_rig(tcp_hospital, winter, body, optimizer=optimizer)


def test_dead_battery_inverter_without_a_previous_plan_uses_the_rules(tcp_hospital: Site, winter: Profiles) -> None:
    optimizer = Optimizer("stub")

    async def body(rig: Rig) -> None:
        rig.sim.faults["bess1-inverter"] = Fault(silent=True)
        report = await rig.cycle()
        assert (report.source, report.reason) == ("rules", "state incomplete: battery bess1: SOC unknown")
        assert report.decision is not None
        assert report.decision.battery_kw == {"bess1": 0.0, "bess2": -200.0}  # grid up: bess2 charges, bess1 idle
        live_writes_ok(report, dead=("bess1-inverter",))
        assert rig.sim.plant.batteries["bess2"].setpoint_kw == pytest.approx(-200.0)

    run_rig(tcp_hospital, winter, body, optimizer=optimizer)
    assert optimizer.calls == 0


def test_every_device_offline_is_autonomous(tcp_hospital: Site, winter: Profiles) -> None:
    async def body(rig: Rig) -> None:
        await rig.cycle()
        assert all(rig.adapter(d).remote for d in ("bess1-inverter", "bess2-inverter", "feeders"))
        for device_id in rig.sim.served:
            await rig.sim.take_offline(device_id)
        await rig.step(keepalive=False)
        report = await rig.cycle()
        assert report.source == "autonomous"
        assert report.decision is None
        assert report.writes == {}
        assert report.planned_writes == {}
        assert report.estimate is not None
        assert set(report.estimate.health.values()) == {"lost"}
        assert report.reason.startswith("state incomplete")  # the first reason found is kept
        assert report.events == [("fallback", f"autonomous: {report.reason}")]
        # the devices come back: an autonomous controller keeps nothing alive, so they revert
        for device_id in rig.sim.served:
            await rig.sim.bring_online(device_id)
        assert await rig.ctl.keepalive() == {}
        await rig.step(90)
        assert not any(rig.adapter(d).remote for d in rig.sim.served)
        assert battery_setpoints(rig) == {"bess1": 0.0, "bess2": 0.0}

    run_rig(tcp_hospital, winter, body, optimizer=Optimizer("stub"))


def test_grid_outage_mid_run(tcp_hospital: Site, winter: Profiles) -> None:
    """Without an outage schedule an unannounced drop is an ordinary outage (with one, it is an
    emergency: tests/control/test_emergency_run.py)."""
    assert tcp_hospital.grid is not None
    tcp_hospital = tcp_hospital.model_copy(update={"grid": tcp_hospital.grid.model_copy(update={"schedule": None})})
    optimizer = Optimizer("real", "real", InfeasibleError("no feasible plan (test)"))

    async def body(rig: Rig) -> None:
        first = await rig.cycle()
        assert first.estimate is not None
        assert first.estimate.grid_up is True
        assert first.source == "plan"
        rig.sim.plant.grid_forced = False  # the grid goes at 00:05, off the reference's schedule
        await rig.step(300)
        assert rig.sim.plant.grid_kw == 0.0
        await rig.step(600)
        report = await rig.cycle()
        assert report.estimate is not None
        assert report.estimate.grid_up is False
        assert report.source == "plan"
        assert report.plan is not None
        assert report.plan.frame["grid.import_kw"].iloc[:4].max() == pytest.approx(0.0, abs=1e-6)  # 1 h assumed
        live_writes_ok(report)
        await rig.step()
        assert rig.sim.plant.grid_kw == 0.0
        assert sum(rig.sim.plant.totals.unserved_kwh.values()) == 0.0

        # the solve fails during the outage: the previous plan (made with the grid down) still fits
        report = await rig.cycle()
        assert report.source == "previous_plan"

        # the solve fails and the last plan was made with the grid up: it disagrees with now → the rules
        rig.ctl.last_plan = first.plan  # its row 3 (00:45) expects the grid up
        await rig.step()
        previous = rig.ctl.last_decision
        report = await rig.cycle()
        est = report.estimate
        assert est is not None
        assert est.grid_up is False
        assert report.source == "rules"
        # the rules' grid-down branch: the batteries share demand minus the gensets already running
        raw = rules(tcp_hospital, est, previous, "")
        running = sum(g.max_kw for g in tcp_hospital.generators if raw.generator_on[g.id] and est.generators[g.id].on)
        assert sum(raw.battery_kw.values()) == pytest.approx(sum(est.load_kw.values()) - running)
        live_writes_ok(report)
        await rig.step()
        assert rig.sim.plant.grid_kw == 0.0
        assert sum(rig.sim.plant.totals.unserved_kwh.values()) == 0.0
        live_writes_ok(report)

    run_rig(tcp_hospital, winter, body, optimizer=optimizer)


def test_a_grid_meter_frozen_at_up_is_contradicted_by_the_balance_when_the_grid_goes(
    tcp_hospital: Site, winter: Profiles
) -> None:
    """The meter freezes (its registers hold the last refresh: grid present, importing), then the grid goes.

    It froze at 0 kW (the batteries carried the site at the first cycle), so the site's balance agrees
    with it; the grid-forming battery bess2 does not: it discharges the whole load against its
    setpoint. The meter is implausible, the grid unknown (down now for the plan): no plan draws on the
    dead grid, and no critical load is lost.
    """
    optimizer = Optimizer("real")

    async def body(rig: Rig) -> None:
        first = await rig.cycle()
        assert first.estimate is not None and first.estimate.grid_up is True
        rig.sim.faults["grid-meter"] = Fault(frozen=True)
        await rig.step(60)
        rig.sim.plant.grid_forced = False
        await rig.step(840)
        report = await rig.cycle()
        est = report.estimate
        assert est is not None and est.grid_up is None
        assert est.health["grid-meter"] == "implausible" and "grid meter frozen" in est.implausible["grid-meter"]
        for _ in range(3):
            assert report.estimate is not None and report.estimate.grid_up is None
            assert report.plan is not None and report.source == "plan"
            assert report.plan.frame["grid.import_kw"].iloc[0] == pytest.approx(0.0, abs=1e-6)  # none from a dead grid
            await rig.step()
            report = await rig.cycle()
        assert rig.sim.plant.totals.unserved_kwh["critical"] == 0.0

    run_rig(tcp_hospital, winter, body, optimizer=optimizer)


def test_frozen_battery_inverter(tcp_hospital: Site, winter: Profiles) -> None:
    optimizer = Optimizer("stub")

    async def body(rig: Rig) -> None:
        await rig.cycle()  # bess1 told to discharge 10 kW
        await rig.step()
        rig.sim.faults["bess1-inverter"] = Fault(frozen=True)
        report = await rig.cycle()  # the registers hold their last refresh: not identical to the last cycle yet
        assert report.estimate is not None
        assert report.estimate.health["bess1-inverter"] == "ok"
        await rig.step()
        report = await rig.cycle()
        est = report.estimate
        assert est is not None
        assert est.health["bess1-inverter"] == "frozen"
        assert "bess1" not in est.soc
        assert est.health["bess2-inverter"] == "ok"
        assert report.reason == "state incomplete: battery bess1: SOC unknown"
        assert report.source == "rules"  # a plan is not replayed on a state it cannot check (issue 12)
        assert report.decision is not None
        assert report.decision.battery_kw["bess1"] == 0.0

    run_rig(tcp_hospital, winter, body, optimizer=optimizer)
    assert optimizer.calls == 2


def test_a_frozen_soc_register_is_caught_by_its_cross_check_and_the_floor_holds(
    tcp_hospital: Site, winter: Profiles
) -> None:
    """bess1's SOC register sticks at 25 % (the rest of the inverter updates) while the plan asks 100 kW.

    The first interval drains 100 kW · 0.25 h / 0.95 = 26.3 kWh: 0.25 → 0.145 of 250 kWh. Cycle 2's
    cross-check sees 25 kWh through the terminals and no change in the register: implausible, SOC
    from the model (≈ the plant's). From then on the safety layer works on that SOC: bess1 stops at
    its 10 % floor. Without the check the estimate stays at 25 % and bess1 is driven to empty.
    """
    plan = Optimizer(lambda inputs: synthetic_plan(inputs, {"battery.bess1.discharge_kw": 100.0}))
    state = SiteState(soc={"bess1": 0.25, "bess2": 0.50}, generators={}, fuel_stock={})
    floor = next(b.soc_min for b in tcp_hospital.batteries if b.id == "bess1")

    async def body(rig: Rig) -> None:
        rig.sim.faults["bess1-inverter"] = Fault(frozen_points=frozenset({"soc_pct"}))
        first = await rig.cycle()
        assert first.estimate is not None and first.estimate.soc["bess1"] == pytest.approx(0.25)
        await rig.step()
        second = await rig.cycle()
        est = second.estimate
        assert est is not None and est.health["bess1-inverter"] == "implausible"
        assert "SOC register unchanged at 25 %" in est.implausible["bess1-inverter"]
        assert summary(second)["implausible"] == est.implausible  # recorded with the cycle: `status` shows it
        truth = rig.sim.plant.batteries["bess1"].soc
        assert truth == pytest.approx(0.145, abs=0.01) and est.soc["bess1"] == pytest.approx(truth, abs=0.01)
        lowest = truth
        for _ in range(4):
            await rig.step()
            report = await rig.cycle()
            assert report.estimate is not None
            assert report.estimate.health["bess1-inverter"] == "implausible"
            lowest = min(lowest, rig.sim.plant.batteries["bess1"].soc)
        assert lowest >= floor - 0.01
        assert battery_setpoints(rig)["bess1"] <= 0.0

    run_rig(tcp_hospital, winter, body, optimizer=plan, state=state)


def test_an_idle_battery_whose_whole_image_froze_is_caught_when_asked_to_discharge(
    tcp_hospital: Site, winter: Profiles
) -> None:
    """bess1 idle at 25 %; its whole register image freezes (SOC 25 %, power 0 kW: an idle battery's image
    does not move, so the whole-device frozen check cannot tell); then the plan asks 100 kW. The power
    reading stays at 0 while the setpoint read back says 100: the SOC check integrates the setpoint
    (26.3 kWh in the interval, 0.25 → 0.145), finds the register unchanged, and the safety layer works on
    the model's SOC from then on: bess1 stops at its floor. Integrating the frozen 0 kW instead, the
    estimate would stay at 25 % and bess1 be driven to empty (the drill ``bess1-frozen-moving`` with the
    image frozen while idle: 141 unsafe writes)."""
    idle = lambda inputs: synthetic_plan(inputs, {})  # noqa: E731
    plan = Optimizer(idle, lambda inputs: synthetic_plan(inputs, {"battery.bess1.discharge_kw": 100.0}))
    state = SiteState(soc={"bess1": 0.25, "bess2": 0.50}, generators={}, fuel_stock={})
    floor = next(b.soc_min for b in tcp_hospital.batteries if b.id == "bess1")

    async def body(rig: Rig) -> None:
        first = await rig.cycle()
        assert battery_setpoints(rig)["bess1"] == pytest.approx(0.0)
        await rig.step()
        rig.sim.faults["bess1-inverter"] = Fault(frozen=True)
        second = await rig.cycle()  # bess1 asked 100 kW; its image holds the last refresh (idle, 25 %)
        assert first.estimate is not None and second.estimate is not None
        assert second.estimate.health["bess1-inverter"] == "ok"
        assert battery_setpoints(rig)["bess1"] == pytest.approx(100.0)
        await rig.step()
        third = await rig.cycle()
        est = third.estimate
        assert est is not None and est.health["bess1-inverter"] == "implausible"
        assert "SOC register unchanged at 25 %" in est.implausible["bess1-inverter"]
        truth = rig.sim.plant.batteries["bess1"].soc
        assert truth == pytest.approx(0.145, abs=0.01) and est.soc["bess1"] == pytest.approx(truth, abs=0.01)
        lowest = truth
        for _ in range(4):
            await rig.step()
            await rig.cycle()
            lowest = min(lowest, rig.sim.plant.batteries["bess1"].soc)
        assert lowest >= floor - 0.01
        assert battery_setpoints(rig)["bess1"] <= 0.0

    run_rig(tcp_hospital, winter, body, optimizer=plan, state=state)


def test_a_genset_reporting_running_while_delivering_nothing_is_not_counted_on(
    tcp_hospital: Site, winter: Profiles
) -> None:
    """Islanded, dg1 runs as planned; its ``engine_state`` register sticks at "running" and the engine
    stops and will not start again (a failed set whose controller still says running).

    The next cycle sees it running at 0 kW for the first time: within the 10 min start-up allowance it is
    still believed. The one after, 15 min on, it is implausible and its status unknown: no plan is made
    on a state without it (nor is the last one replayed), the rules count no power from it, and the
    batteries carry the whole load. No critical load is lost.
    """
    runs = {"generator.dg1.on": 1.0, "generator.dg1.kw": 100.0}
    optimizer = Optimizer(lambda inputs: synthetic_plan(inputs, runs))
    state = SiteState(soc={"bess1": 0.5, "bess2": 0.5}, generators={"dg1": GeneratorState(True, 2.0)}, fuel_stock={})

    async def body(rig: Rig) -> None:
        rig.sim.plant.grid_forced = False
        rig.sim.faults["dg1-controller"] = Fault(frozen_points=frozenset({"engine_state"}))
        first = await rig.cycle()
        assert first.source == "plan" and first.estimate is not None and first.estimate.generators["dg1"].on
        dg1 = rig.sim.plant.gensets["dg1"]
        dg1.start_delay_s = 1e9  # it will not start again
        dg1.running, dg1.power_kw = False, 0.0
        await rig.step()
        second = await rig.cycle()
        assert second.estimate is not None and second.estimate.generators["dg1"].on  # the allowance
        assert second.estimate.implausible == {} and second.source == "plan"
        await rig.step()
        third = await rig.cycle()
        est = third.estimate
        assert est is not None and est.health["dg1-controller"] == "implausible"
        assert "reports running but has delivered nothing (0.0 kW)" in est.implausible["dg1-controller"]
        assert "dg1" not in est.generators and est.generators["dg2"].on is False
        assert summary(third)["implausible"] == est.implausible  # recorded with the cycle: `status` shows it
        assert (third.source, third.reason) == ("rules", "state incomplete: generator dg1: status unknown")
        assert optimizer.calls == 2  # no solve on a state without dg1
        assert third.decision is not None
        assert sum(third.decision.battery_kw.values()) == pytest.approx(sum(est.load_kw.values()), rel=1e-6)
        await rig.step()
        assert rig.sim.plant.totals.unserved_kwh["critical"] == 0.0

    run_rig(tcp_hospital, winter, body, optimizer=optimizer, state=state)


def test_a_frozen_fuel_level_is_replaced_by_the_model_stock(tcp_hospital: Site, winter: Profiles) -> None:
    """Islanded, dg1 and dg2 run at 100 kW each (2 x (0.24 x 100 + 3.5) = 55 l/h from the one 1,500 l tank)
    and the tank's level sticks at 1,500 l in both controllers (the rest of them updates).

    The check needs max(0.5 h x 51.5 l/h, 2 % of 1,500 l) = 30 l burnt without a fall: 27.5 l at the third
    cycle, 41.25 l at the fourth, which finds the level implausible and plans on the model's stock,
    1,500 l less the burn, within a litre of the tank's truth; the sets themselves stay counted on.
    """
    runs = {"generator.dg1.on": 1.0, "generator.dg1.kw": 100.0, "generator.dg2.on": 1.0, "generator.dg2.kw": 100.0}
    optimizer = Optimizer(lambda inputs: synthetic_plan(inputs, runs))
    on = GeneratorState(True, 2.0)
    state = SiteState(
        soc={"bess1": 0.5, "bess2": 0.5}, generators={"dg1": on, "dg2": on}, fuel_stock={"diesel": 1500.0}
    )
    stuck = Fault(frozen_points=frozenset({"fuel_level_l"}))

    async def body(rig: Rig) -> None:
        rig.sim.plant.grid_forced = False
        rig.sim.faults |= {"dg1-controller": stuck, "dg2-controller": stuck}
        report = await rig.cycle()
        for _ in range(2):
            assert report.estimate is not None and report.estimate.fuel_stock["diesel"] == 1500.0
            assert report.estimate.implausible == {}
            await rig.step()
            report = await rig.cycle()
        await rig.step()
        report = await rig.cycle()
        est = report.estimate
        assert est is not None and set(est.implausible) == {"dg1-controller", "dg2-controller"}
        assert "diesel level 1500 has not fallen from 1500" in est.implausible["dg1-controller"]
        truth = rig.sim.plant.fuel["diesel"]
        assert truth == pytest.approx(1500.0 - 41.25, abs=0.5)
        assert est.fuel_stock["diesel"] == pytest.approx(truth, abs=1.0)
        assert optimizer.inputs[-1].state.fuel_stock["diesel"] == est.fuel_stock["diesel"]  # the plan's stock
        assert report.source == "plan" and est.generators["dg1"].on and est.generators["dg2"].on
        await rig.step()
        report = await rig.cycle()
        assert report.estimate is not None
        assert report.estimate.fuel_stock["diesel"] == pytest.approx(rig.sim.plant.fuel["diesel"], abs=1.0)

    run_rig(tcp_hospital, winter, body, optimizer=optimizer, state=state)


def test_a_relay_stuck_reading_open_while_its_tier_draws_is_taken_as_served(
    tcp_hospital: Site, winter: Profiles
) -> None:
    """The second plan sheds comfort (the first has no demand forecast yet): its relay opens and reads
    open. Its read-back then sticks at "open"; the next plan serves comfort and the relay closes, so
    22 kW flow through a relay that reads open: implausible, and the tier is taken as served (the
    forecaster learns its demand, the feeders model sees the relay closed), the reason recorded for
    ``status``."""

    def serve(inputs: DispatchInputs) -> Plan:
        return synthetic_plan(inputs, {})

    optimizer = Optimizer(serve, lambda inputs: synthetic_plan(inputs, {"load.comfort.shed_kw": 1e6}), serve)

    async def body(rig: Rig) -> None:
        await rig.cycle()
        await rig.step()
        shed = await rig.cycle()
        assert shed.decision is not None and shed.decision.tier_connected["comfort"] is False
        await rig.step()
        assert not rig.sim.plant.relay_closed["comfort"]
        rig.sim.faults["feeders"] = Fault(frozen_points=frozenset({"feeder_3_closed"}))
        served = await rig.cycle()  # open and drawing nothing: believed; this plan closes it
        assert served.estimate is not None and served.estimate.tier_connected["comfort"] is False
        assert served.estimate.implausible == {}
        await rig.step()
        assert rig.sim.plant.relay_closed["comfort"]
        report = await rig.cycle()
        est = report.estimate
        assert est is not None and est.health["feeders"] == "implausible"
        assert "tier comfort: relay reads open while the tier draws" in est.implausible["feeders"]
        assert est.tier_connected["comfort"] is True and est.load_kw["comfort"] > 5.0
        assert summary(report)["implausible"] == est.implausible

    run_rig(tcp_hospital, winter, body, optimizer=optimizer)


# -- modes ------------------------------------------------------------------------------------


def test_safe_mode_uses_the_rules(tcp_hospital: Site, winter: Profiles) -> None:
    optimizer = Optimizer("stub")

    async def body(rig: Rig) -> None:
        report = await rig.cycle()
        assert (report.mode, report.source, report.reason) == (Mode.SAFE, "rules", "safe mode")
        live_writes_ok(report)
        assert battery_setpoints(rig) == pytest.approx({"bess1": -125.0, "bess2": -200.0})

    run_rig(tcp_hospital, winter, body, optimizer=optimizer, mode=Mode.SAFE)
    assert optimizer.calls == 0


def test_manual_mode_writes_the_operator_setpoints_clamped(tcp_hospital: Site, winter: Profiles) -> None:
    optimizer = Optimizer("stub")

    async def body(rig: Rig) -> None:
        report = await rig.cycle()  # no operator setpoints yet: the plan, as in auto mode
        assert report.source == "plan" and not report.reason.startswith("no plan")  # optimal, or the time limit
        rig.ctl.manual = Decision(
            battery_kw={"bess1": 500.0, "bess2": -50.0},
            generator_on={"dg1": True, "dg2": False},
            generator_kw={"dg1": 150.0},
            pv_limit_kw={"roof": 30.0},
            tier_connected={"critical": False, "essential": True, "comfort": False},
        )
        await rig.step(60)
        report = await rig.cycle()
        assert report.source == "manual"
        assert report.reason.startswith("operator setpoints for bess1, bess2, dg1, critical, essential, comfort")
        assert report.decision is not None
        # bess1: 500 → site 125, and the ramp from the plan's 10 kW allows all of it
        assert report.decision.battery_kw == {"bess1": 125.0, "bess2": -50.0}
        assert report.decision.generator_kw == {"dg1": 150.0, "dg2": 0.0}  # dg1 starting: its setpoint, once on line
        assert report.decision.tier_connected == {"critical": True, "essential": True, "comfort": False}
        live_writes_ok(report)
        await rig.step(60)
        report = await rig.cycle()
        assert report.decision is not None
        assert report.decision.battery_kw == {"bess1": 125.0, "bess2": -50.0}
        plant = rig.sim.plant
        assert battery_setpoints(rig) == pytest.approx({"bess1": 125.0, "bess2": -50.0})
        assert plant.relay_closed == {"critical": True, "essential": True, "comfort": False}
        assert plant.pv_limit_kw["roof"] == pytest.approx(30.0)
        assert plant.gensets["dg1"].run_requested and not plant.gensets["dg2"].run_requested

    run_rig(tcp_hospital, winter, body, optimizer=optimizer, mode=Mode.MANUAL)
    assert optimizer.calls == 3  # manual mode keeps planning: what the operator does not name follows the plan


def test_a_partial_override_changes_only_what_it_names(tcp_hospital: Site, winter: Profiles) -> None:
    """Issue 12: `override --battery bess1=-50` during an outage with the gensets running stopped both gensets and
    idled bess2 (every asset the override did not name went to 0 / off). Now the others follow the plan."""
    running = {"generator.dg1.on": 1, "generator.dg1.kw": 120.0, "generator.dg2.on": 1, "generator.dg2.kw": 90.0}
    optimizer = Optimizer(lambda inputs: synthetic_plan(inputs, {"battery.bess2.discharge_kw": 35.0} | running))

    async def body(rig: Rig) -> None:
        rig.ctl.manual = Decision(battery_kw={"bess1": -50.0})
        report = await rig.cycle()
        assert report.source == "manual"
        assert report.reason == "operator setpoints for bess1; the rest from plan"
        assert report.decision is not None
        assert report.decision.battery_kw == {"bess1": -50.0, "bess2": 35.0}
        assert report.decision.generator_on == {"dg1": True, "dg2": True}
        assert report.decision.generator_kw == {"dg1": 120.0, "dg2": 90.0}
        assert report.decision.tier_connected == {"critical": True, "essential": True, "comfort": True}
        plant = rig.sim.plant
        assert plant.gensets["dg1"].run_requested and plant.gensets["dg2"].run_requested
        assert battery_setpoints(rig) == pytest.approx({"bess1": -50.0, "bess2": 35.0})

    run_rig(tcp_hospital, winter, body, optimizer=optimizer, mode=Mode.MANUAL)


def test_dry_run_plans_but_writes_nothing(tcp_hospital: Site, winter: Profiles) -> None:
    optimizer = Optimizer("stub")

    async def body(rig: Rig) -> None:
        for _ in range(2):
            report = await rig.cycle()
            assert (report.mode, report.source) == (Mode.DRY_RUN, "plan")
            assert report.plan is not None
            assert report.writes == {}
            assert report.planned_writes["bess1-inverter"]["power_setpoint_kw"] != 0.0
            assert await rig.ctl.keepalive() == {}
            await rig.step()
        assert battery_setpoints(rig) == {"bess1": 0.0, "bess2": 0.0}
        assert not any(rig.adapter(d).remote or rig.adapter(d).heartbeat for d in rig.sim.served)
        assert await rig.ctl.hand_back() == {}

    run_rig(tcp_hospital, winter, body, optimizer=optimizer, mode=Mode.DRY_RUN)
    assert optimizer.calls == 2


# -- keep-alive and hand-back -----------------------------------------------------------------


def test_keepalive_keeps_devices_remote_across_an_interval(tcp_hospital: Site, winter: Profiles) -> None:
    async def body(rig: Rig) -> None:
        report = await rig.cycle()
        written = [d for d, points in report.planned_writes.items() if points]
        assert sorted(written) == sorted(set(rig.sim.served) - {"grid-meter"})  # the meter has nothing to write
        await rig.step(900)
        assert all(rig.adapter(d).remote for d in written)
        assert battery_setpoints(rig) == pytest.approx({"bess1": 10.0, "bess2": -20.0})
        await rig.step(61, keepalive=False)  # no keep-alive for longer than the revert timeout
        assert not any(rig.adapter(d).remote for d in written)
        assert battery_setpoints(rig) == {"bess1": 0.0, "bess2": 0.0}

    run_rig(tcp_hospital, winter, body, optimizer=Optimizer("stub"))


def test_keepalive_rechecks_the_battery_on_its_soc_now(tcp_hospital: Site, winter: Profiles) -> None:
    """Issue 12: keep-alives re-sent the interval's setpoint whatever the SOC had become (bess2 was asked for
    111 kW at 14.1 % against its 15 % floor). A battery that reached its floor since the cycle gets 0 kW."""

    async def body(rig: Rig) -> None:
        await rig.cycle()  # the stub plan: bess1 discharges 10 kW, bess2 charges 20 kW
        assert battery_setpoints(rig) == pytest.approx({"bess1": 10.0, "bess2": -20.0})
        bess1 = rig.sim.plant.batteries["bess1"]
        bess1.energy_kwh = bess1.spec.soc_min * bess1.spec.capacity_kwh  # drained to its floor meanwhile
        await rig.step(30)  # the plant moves on, then a keep-alive
        assert battery_setpoints(rig) == pytest.approx({"bess1": 0.0, "bess2": -20.0})
        assert rig.ctl.last_decision is not None and rig.ctl.last_decision.battery_kw["bess1"] == 0.0

    run_rig(tcp_hospital, winter, body, optimizer=Optimizer("stub"))


def test_keepalive_lets_a_battery_planned_to_its_floor_finish_the_interval(
    tcp_hospital: Site, winter: Profiles
) -> None:
    """bess1 (250 kWh, floor 10 %, ηd 0.96) at 23 %: 32.5 kWh above its floor, 125 kW for a whole interval.
    Planned at 120 kW, it ends the interval at its floor. The keep-alives re-check it on its SOC every
    30 s over what is left of the interval (at least a minute): no clamp but maybe in the last minute.
    (Re-checked over a whole interval each time, the limit fell below 120 kW from the second keep-alive
    on and bess1 delivered ever less: the grid-forming battery took the rest, and ended an outage's last
    interval 2 % below its own floor in the normal day.)"""
    optimizer = Optimizer(lambda inputs: synthetic_plan(inputs, {"battery.bess1.discharge_kw": 120.0}))
    state = SiteState(soc={"bess1": 0.23, "bess2": 0.5}, generators={}, fuel_stock={})

    async def body(rig: Rig) -> None:
        report = await rig.cycle()
        assert report.decision is not None and report.decision.battery_kw["bess1"] == pytest.approx(120.0)
        await rig.step(810)  # 27 keep-alives
        assert battery_setpoints(rig)["bess1"] == pytest.approx(120.0)
        await rig.step(90)  # to the interval's end: the last minute's limit may bind
        soc = rig.sim.plant.batteries["bess1"].soc
        assert 0.10 - 0.002 < soc < 0.10 + 0.01  # 120 kW for 15 min: 31.3 kWh of the 32.5 above the floor

    run_rig(tcp_hospital, winter, body, optimizer=optimizer, state=state)


def test_hand_back_returns_devices_to_autonomous(tcp_hospital: Site, winter: Profiles) -> None:
    async def body(rig: Rig) -> None:
        rig.ctl.manual = Decision(
            battery_kw={"bess1": -50.0, "bess2": 40.0},
            pv_limit_kw={"roof": 30.0},
            tier_connected={"essential": False, "comfort": False},
        )
        await rig.cycle()
        plant = rig.sim.plant
        assert plant.relay_closed == {"critical": True, "essential": False, "comfort": False}
        assert rig.adapter("bess1-inverter").values()["control_mode"] == 1
        reports = await rig.ctl.hand_back()
        assert all(r.ok for r in reports.values()), reports
        for bess in ("bess1-inverter", "bess2-inverter"):
            assert rig.adapter(bess).values()["control_mode"] == 0
        assert battery_setpoints(rig) == {"bess1": 0.0, "bess2": 0.0}
        assert plant.relay_closed == {"critical": True, "essential": True, "comfort": True}
        assert not rig.adapter("roof-inverter").limit_enabled
        assert await rig.ctl.keepalive() == {}  # keep-alives stop

    run_rig(tcp_hospital, winter, body, mode=Mode.MANUAL)
