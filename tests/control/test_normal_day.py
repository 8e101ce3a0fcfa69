"""A normal winter day at the hospital, closed loop over Modbus TCP: 96 cycles of 15 min.

The day is the shipped winter day, with the city's scheduled outages (04-08, 12-16 and 20-24 h
local). Every cycle solves for real; to keep the test near a minute the solve effort is lowered
(gap 0.02, 2 s limit) and the horizon is 6 h: what is checked are invariants (every cycle on a
plan, nothing refused or unserved, SOCs in their bands), not the optimum; 6 h still sees each 4-h
outage whole at least 2 h before it starts (12 h and 24 h work the same, at about 2x and 4x the
solve time). Between cycles the plant runs 15 min in 30 s chunks, with the controller's keep-alive
after each (the devices revert after 60 s without one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from microgrid.profiles import Profiles
from microgrid.site import Site
from tests.control.conftest import Rig, fast, run_rig

CYCLES = 96
SOC_SLACK = 0.01


@dataclass
class DayLog:
    sources: list[str] = field(default_factory=list)
    refused: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    mismatches: list[tuple[int, str, object]] = field(default_factory=list)
    soc_out: list[tuple[int, str, float]] = field(default_factory=list)
    grid_states: set[bool | None] = field(default_factory=set)
    gensets_ran: bool = False
    implausible: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    unserved: dict[str, float] = field(default_factory=dict)


@pytest.mark.slow
def test_normal_day(tcp_hospital: Site, winter: Profiles) -> None:
    site = fast(tcp_hospital, horizon=timedelta(hours=6))
    specs = {b.id: b for b in site.batteries}

    async def body(rig: Rig) -> DayLog:
        log = DayLog()
        for i in range(CYCLES):
            report = await rig.cycle()
            log.sources.append(f"{report.source}: {report.reason}")
            assert report.estimate is not None
            log.grid_states.add(report.estimate.grid_up)
            if report.estimate.implausible:  # the cross-checks' thresholds are never tripped by a normal day
                log.implausible.append((i, report.estimate.implausible))
            for device_id, result in report.writes.items():
                if result.refused:
                    log.refused.append((i, device_id, result.refused))
                if result.mismatches:
                    log.mismatches.append((i, device_id, result.mismatches))
            for b, plant in rig.sim.plant.batteries.items():
                if not specs[b].soc_min - SOC_SLACK <= plant.soc <= specs[b].soc_max + SOC_SLACK:
                    log.soc_out.append((i, b, plant.soc))
            await rig.step()
            log.gensets_ran |= any(g.running for g in rig.sim.plant.gensets.values())
        log.unserved = dict(rig.sim.plant.totals.unserved_kwh)
        return log

    log = run_rig(site, winter, body)
    assert log.grid_states == {True, False}  # the day has its outages
    assert log.unserved["critical"] == 0.0, log.unserved
    assert log.refused == []
    assert log.implausible == []
    assert log.mismatches == []
    assert log.soc_out == []
    not_plan = [(i, s) for i, s in enumerate(log.sources) if not s.startswith("plan")]
    assert not_plan == []
    assert sum(log.unserved.values()) == pytest.approx(0.0, abs=1e-6), log.unserved
