"""Regressions from the safety review: operator actions, a failing store, stale keep-alives, tied tiers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from microgrid.control import Mode, check, rules
from microgrid.control.decisions import Decision
from microgrid.control.runner import Runner
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.store import Store
from tests.control.conftest import Optimizer, Rig, at_position, estimate, run_rig


def test_dry_run_refuses_operator_overrides(tcp_hospital: Site, winter: Profiles, tmp_path: Path) -> None:
    async def body(rig: Rig) -> None:
        with Store(tmp_path / "h.sqlite") as store:
            store.add_action("manual", {"battery_kw": {"bess1": 100.0}})
            runner = Runner(rig.ctl, store)
            report = await runner.run_once()
            assert rig.ctl.mode is Mode.DRY_RUN
            assert report.writes == {}
            assert store.actions()["status"].tolist() == ["refused"]
        assert rig.sim.plant.batteries["bess1"].setpoint_kw == 0.0

    run_rig(tcp_hospital, winter, body, optimizer=Optimizer("stub"), mode=Mode.DRY_RUN)


def test_locked_store_does_not_stop_the_cycle(tcp_hospital: Site, winter: Profiles, tmp_path: Path) -> None:
    async def body(rig: Rig) -> None:
        with Store(tmp_path / "h.sqlite", timeout_s=0.1) as store:
            runner = Runner(rig.ctl, store)
            await runner.run_once()
            store.add_action("mode", {"mode": "safe"})
            blocker = sqlite3.connect(tmp_path / "h.sqlite", timeout=0.1)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                report = await runner.run_once()  # must not raise
            finally:
                blocker.rollback()
                blocker.close()
            assert report.phases_s.get("read") is not None  # the cycle ran
            await runner.run_once()  # the store is free again: the action is applied now (or was)
            assert rig.ctl.mode is Mode.SAFE

    run_rig(tcp_hospital, winter, body, optimizer=Optimizer("stub"))


def test_keepalive_stops_when_cycles_stop(tcp_hospital: Site, winter: Profiles) -> None:
    async def body(rig: Rig) -> None:
        await rig.cycle()
        assert await rig.ctl.keepalive()  # fresh: keeps devices alive
        rig.sim.advance(1400)  # > 1.5 × 15 min without a cycle
        assert await rig.ctl.keepalive() == {}
        assert rig.ctl.last_points == {}

    run_rig(tcp_hospital, winter, body, optimizer=Optimizer("stub"))


def test_every_tier_tied_at_the_top_is_protected(hospital: Site) -> None:
    loads = tuple(t.model_copy(update={"priority": 1}) if t.id == "essential" else t for t in hospital.loads)
    site = hospital.model_copy(update={"loads": loads})
    off = Decision(tier_connected={t.id: False for t in site.loads})
    safe, _ = check(site, off, estimate(site), None)
    assert safe.tier_connected == {"critical": True, "essential": True, "comfort": False}
    est = estimate(site, soc=at_position(0.0), grid_up=False)
    shed = rules(site, est, Decision(tier_connected={"critical": True, "essential": True, "comfort": False}), "")
    assert shed.tier_connected["essential"] is True
