"""A device that ignores writes (issue 12): an alarm after two cycles, in the record and in ``status``; the
controller stops counting on it; the alarm clears when its read-backs match again. And a writer that breaks
off leaves its points 'unknown'. Against the simulated hospital over real Modbus TCP; a scripted optimizer
asks bess1 for 10 + r kW (row r).
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from microgrid.cli import app
from microgrid.control.alarms import alarms
from microgrid.control.cycle import CycleReport
from microgrid.control.obedience import IGNORES_WRITES_AFTER, WriteWatch
from microgrid.control.recording import record, summary
from microgrid.profiles import Profiles
from microgrid.sim.server import Fault
from microgrid.site import Site
from microgrid.store import Store
from microgrid.telemetry.devices import WriteReport
from tests.control.conftest import Optimizer, Rig, run_rig

DEVICE = "bess1-inverter"


def device_events(report: CycleReport) -> list[str]:
    return [message for kind, message in report.events if kind == "device"]


def status_of(store: Path) -> str:
    result = CliRunner().invoke(app, ["status", "--store", str(store)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_a_battery_that_ignores_writes_is_an_alarm_after_two_cycles_until_it_obeys_again(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    assert IGNORES_WRITES_AFTER == 2
    store_path = tmp_path / "history.sqlite"

    async def body(rig: Rig) -> None:
        rig.sim.faults[DEVICE] = Fault(ignore_writes=True)  # its controller switched to local
        first = await rig.cycle()
        assert first.writes[DEVICE].mismatches and first.decision is not None
        line = json.loads(first.log_line())  # the cycle's JSON log line counts them too
        assert (line["mismatch"], line["refused"]) == (len(first.writes[DEVICE].mismatches), 0)
        assert first.decision.battery_kw["bess1"] == 10.0  # one cycle is not enough to give up on it
        assert first.estimate is not None and first.estimate.health[DEVICE] == "ok" and not device_events(first)
        await rig.step()
        second = await rig.cycle()
        assert second.estimate is not None and second.estimate.health[DEVICE] == "ignores-writes"
        assert "for 2 cycles in a row" in second.estimate.ignores_writes[DEVICE]
        assert [e.split(":")[0] for e in device_events(second)] == [f"{DEVICE} ignores writes"]
        with Store(store_path, retention_days=None) as store:  # simulated January: no purge
            assert record(store, second)
        shown = status_of(store_path)
        assert "ALARMS" in shown and f"device {DEVICE} ignores-writes: read-backs differ" in shown

        await rig.step()
        third = await rig.cycle()  # not controllable: held at 0 kW, the alarm stays, no second event
        assert third.decision is not None and third.decision.battery_kw["bess1"] == 0.0
        assert third.decision.battery_kw["bess2"] != 0.0
        assert third.estimate is not None and third.estimate.health[DEVICE] == "ignores-writes"
        assert not device_events(third)

        del rig.sim.faults[DEVICE]  # back in remote mode
        await rig.step()
        fourth = await rig.cycle()
        assert fourth.writes[DEVICE].ok
        assert device_events(fourth) == [f"{DEVICE} obeys writes again: its read-backs match; alarm cleared"]
        assert fourth.estimate is not None and fourth.estimate.health[DEVICE] == "ok"
        with Store(store_path, retention_days=None) as store:  # simulated January: no purge
            assert record(store, fourth)
        assert "ignores-writes" not in status_of(store_path)
        await rig.step()
        fifth = await rig.cycle()  # controlled again
        assert fifth.decision is not None and fifth.decision.battery_kw["bess1"] != 0.0

    run_rig(tcp_hospital, winter, body, optimizer=Optimizer("stub"))


def test_only_consecutive_cycles_of_mismatches_count_and_unclear_ones_are_no_evidence() -> None:
    watch = WriteWatch()
    bad = WriteReport(written={"p": 1.0}, mismatches={"p": (1.0, 0.0)})
    good = WriteReport(written={"p": 1.0})
    unclear = WriteReport(unknown={"p": "no clear answer"})
    assert watch.observe({"d": bad}) == [] and watch.observe({"d": good}) == []
    assert watch.observe({"d": bad}) == [] and watch.observe({"d": unclear}) == []  # no evidence: still 1
    assert [e.split(":")[0] for e in watch.observe({"d": bad})] == ["d ignores writes"]
    assert watch.observe({"d": bad}) == [] and set(watch.ignoring) == {"d"}  # raised once
    assert watch.observe({"d": unclear}) == [] and set(watch.ignoring) == {"d"}
    assert watch.observe({"d": good}) == ["d obeys writes again: its read-backs match; alarm cleared"]
    assert watch.ignoring == {}


def test_a_writer_that_breaks_off_is_unknown_not_refused(tcp_hospital: Site, winter: Profiles) -> None:
    """What a writer that raised had sent is not known: its points are 'unknown' (an alarm), not 'refused'."""

    async def body(rig: Rig) -> CycleReport:
        async def broken(setpoints: object, limits: object = None) -> WriteReport:
            raise RuntimeError("writer bug")

        rig.devices.devices[DEVICE].write = broken  # type: ignore[method-assign]
        return await rig.cycle()

    report = run_rig(tcp_hospital, winter, body, optimizer=Optimizer("stub"))
    result = report.writes[DEVICE]
    assert not result.refused and set(result.unknown) == set(report.planned_writes[DEVICE])
    assert result.unknown["power_setpoint_kw"] == "the writer failed: RuntimeError('writer bug')"
    assert json.loads(report.log_line())["unknown"] == len(result.unknown)
    assert "write bess1-inverter.power_setpoint_kw outcome unknown: the writer failed" in " ".join(
        alarms(summary(report))
    )
