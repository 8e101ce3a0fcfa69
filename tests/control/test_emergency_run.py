"""An emergency outage mid-run against the simulated hospital over Modbus TCP: the grid drops while the
published schedule says 'on'. The controller switches to emergency mode within the interval, plans
with no grid (the lexicographic solve), serves the critical tier, and leaves emergency mode after the
grid has been back for the site's ``emergency_exit_after``.

The plans look 12 h ahead, not the hospital's 24 h: what is checked is when emergency mode is entered and
left and what the plans assume about the grid meanwhile, not their optimum; the emergency solves, at their
2 s limit over 24 h, take about half as long.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from microgrid.profiles import Profiles
from microgrid.site import Site
from tests.control.conftest import Rig, fast, run_rig


@pytest.mark.slow
def test_emergency_outage_mid_run(tcp_hospital: Site, winter: Profiles) -> None:
    """``unannounced_cut_h: null``: a cut outside the schedule is planned as no grid for the whole horizon,
    the maximum-autonomy solve (the default, a cut of 4 h, is the next test's)."""

    async def body(rig: Rig) -> None:
        first = await rig.cycle()
        assert first.source == "plan" and not first.emergency.get("active")
        assert first.outlook is not None and first.outlook.scheduled_now == "on"

        rig.sim.plant.grid_forced = False  # 00:05: a cut the schedule does not announce
        await rig.step(300)
        await rig.step(600)
        report = await rig.cycle()  # the meter wins at once: the grid is planned down for an hour
        assert report.emergency.get("active") is False
        assert report.plan is not None and report.plan.profiles.grid_available.iloc[:4].max() == 0.0
        await rig.step()
        report = await rig.cycle()  # still down in an 'on' hour: emergency, one interval after the cut
        assert report.emergency.get("active") is True
        assert any(kind == "emergency" and "outside" in msg for kind, msg in report.events)
        assert report.source == "plan" and report.plan is not None
        assert report.plan.profiles.grid_available.max() == 0.0  # no grid for the whole horizon
        # critical first, then the grid-forming battery's reserve (control.reserve, on by default), then essential
        assert [s.name for s in report.plan.stages][:3] == ["shed priority 1", "reserve", "shed priority 2"]
        assert report.autonomy is not None and report.autonomy.critical_h > 2.0
        for _ in range(3):
            await rig.step()
            report = await rig.cycle()
            assert report.emergency.get("active") is True
        assert rig.sim.plant.totals.unserved_kwh["critical"] == 0.0

        rig.sim.plant.grid_forced = True  # the grid is back: emergency holds for the site's 1 h
        await rig.step()
        report = await rig.cycle()
        assert report.emergency.get("active") is True
        assert report.plan is not None and report.plan.stages  # still the emergency solve ...
        grid = report.plan.profiles.grid_available
        assert grid.iloc[0] == 1.0 and grid.iloc[1:].max() == 0.0  # ... but the grid seen up now is used now
        for _ in range(4):
            await rig.step()
            report = await rig.cycle()
        assert report.emergency.get("active") is False
        assert any(kind == "emergency" and "left" in msg for kind, msg in report.events)
        assert report.plan is not None and report.plan.profiles.grid_available.iloc[0] == 1.0

    run_rig(fast(_with_cut_h(tcp_hospital, None), horizon=timedelta(hours=12)), winter, body)


def _with_cut_h(site: Site, hours: float | None) -> Site:
    assert site.grid is not None and site.grid.schedule is not None
    schedule = site.grid.schedule.model_copy(update={"unannounced_cut_h": hours})
    return site.model_copy(update={"grid": site.grid.model_copy(update={"schedule": schedule})})


@pytest.mark.slow
def test_a_cut_planned_to_last_an_hour_keeps_the_critical_tier_covered_beyond_it(
    tcp_hospital: Site, winter: Profiles
) -> None:
    """With ``unannounced_cut_h: 1`` emergency mode entered by the cut plans no grid for 4 steps, then the
    schedule, every later step a possible outage whose shadow carries the critical tier to the horizon's
    end: the spec's cost with the contingency extension, not the lexicographic solve."""

    async def body(rig: Rig) -> None:
        await rig.cycle()
        rig.sim.plant.grid_forced = False  # a cut the schedule does not announce
        await rig.step(900)
        await rig.cycle()
        await rig.step()
        report = await rig.cycle()
        assert report.emergency.get("active") is True and report.source == "plan"
        plan = report.plan
        assert plan is not None and not plan.stages
        grid = plan.profiles.grid_available.to_numpy()
        assert grid[:4].max() == 0.0 and grid[4:].max() == 1.0
        assert plan.contingency and plan.contingency[0].start == plan.frame.index[4]
        assert "critical" in plan.contingency[0].tiers
        assert rig.sim.plant.totals.unserved_kwh["critical"] == 0.0

        rig.sim.plant.grid_forced = True  # the grid is back: the cut is over, emergency mode holds a while
        await rig.step()
        report = await rig.cycle()
        assert report.emergency.get("active") is True and report.plan is not None
        back = report.plan
        # the schedule again from now (no cut planned from the next step on), the shadow from now on ...
        assert np.array_equal(back.profiles.grid_available.to_numpy()[:4], [1.0, 1.0, 1.0, 1.0])
        assert back.contingency and back.contingency[0].start == back.frame.index[0]
        # ... so no tier is held shed while the grid can carry it
        assert sum(float(back.frame[f"load.{t}.shed_kw"].iloc[0]) for t in ("essential", "comfort")) == 0.0

    run_rig(fast(_with_cut_h(tcp_hospital, 1.0), horizon=timedelta(hours=12)), winter, body)
