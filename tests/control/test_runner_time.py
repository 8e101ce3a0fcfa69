"""The runner's loops against the simulated hospital over TCP and a real SQLite store, on a fast clock:
a wall clock that steps back never stops cycles or keep-alives, an overrunning cycle loses no boundary,
a restart within an interval leaves one cycle row for it."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path

from microgrid.control.runner import Runner
from microgrid.dispatch import DispatchInputs
from microgrid.plans import Plan
from microgrid.profiles import Profiles
from microgrid.site import Site
from microgrid.store import Store
from tests.control.conftest import T0, Optimizer, Rig, run_rig, synthetic_plan

SPEED = 300.0
"""Simulated seconds per real second: a 15-min interval in 3 s."""


class FastClock:
    """A monotonic clock running ``SPEED`` times faster than the real one, and a wall clock that follows it
    from :data:`T0` plus ``step_s`` (a test steps the wall clock by changing it)."""

    def __init__(self) -> None:
        self.start, self.step_s = time.monotonic(), 0.0

    def monotonic(self) -> float:
        return (time.monotonic() - self.start) * SPEED

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / SPEED)

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.monotonic() + self.step_s)


def on_fast_clock(rig: Rig, clock: FastClock) -> None:
    """The controller and the devices' time stamps on ``clock`` (the plant's own time stays put)."""
    rig.ctl.clock, rig.ctl.monotonic = clock.wall, clock.monotonic
    for device in rig.devices.devices.values():
        device.clock = lambda: clock.wall().timestamp()


async def run_until(
    runner: Runner, clock: FastClock, until_s: float, *, step: tuple[float, float] | None = None
) -> None:
    """``runner.run_forever`` until ``until_s`` [fast monotonic s]; ``step`` = (when, by how much) [s] the
    wall clock steps."""
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run_forever(stop))
    if step is not None:
        await clock.sleep(step[0] - clock.monotonic())
        clock.step_s += step[1]
    await clock.sleep(until_s - clock.monotonic())
    stop.set()
    await asyncio.wait_for(task, 10)


def test_a_clock_stepped_back_an_hour_stops_neither_cycles_nor_keep_alives(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    """Started at 22:00 (a boundary): the cycle at once, 22:15:01, then at 22:20 the clock steps back 1 h;
    the next cycle still comes 15 min after the last (21:30:01 on the new clock: scheduled on the
    monotonic clock), keep-alives go on meanwhile, and the step is a recorded event. A scheduler waiting
    for 22:30 on the wall clock would have stopped for an hour."""
    clock = FastClock()

    async def body(rig: Rig) -> None:
        on_fast_clock(rig, clock)
        with Store(tmp_path / "h.sqlite", retention_days=None) as store:  # T0 is months ago
            runner = Runner(rig.ctl, store, keepalive_s=60.0, timer=clock)
            beats: list[tuple[float, int]] = []

            async def sample() -> None:
                while True:
                    beats.append((clock.monotonic(), rig.ctl.heartbeat))
                    await clock.sleep(30.0)

            sampler = asyncio.create_task(sample())
            try:
                await run_until(runner, clock, 2100.0, step=(1200.0, -3600.0))
            finally:
                sampler.cancel()
            stamps = [ts.strftime("%H:%M") for ts in store.cycles().sort_values("id")["ts"]]
            assert stamps == ["22:00", "22:15", "21:30"]  # in the order recorded
            events = store.events()
            clock_events = events[events["kind"] == "clock"]["message"].tolist()
            assert len(clock_events) == 1 and "stepped -3600 s" in clock_events[0]
        after_step = [beat for when, beat in beats if 1300.0 <= when <= 1750.0]
        assert after_step[-1] - after_step[0] >= 4, "keep-alives every 60 s went on after the step"

    run_rig(tcp_hospital, winter, body, optimizer=Optimizer("stub"))


def test_a_restart_within_an_interval_leaves_one_cycle_row_for_it(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    """A controller killed and restarted at 22:05 (the interval of 22:00 is recorded): the cycle is run
    again at once (the devices must be commanded) and its record replaces the earlier row; its setpoints
    join the earlier ones. The next interval's cycle is a new row."""

    async def body(rig: Rig) -> None:
        with Store(tmp_path / "h.sqlite", retention_days=None) as store:  # T0 is months ago
            await Runner(rig.ctl, store).run_once()
            first = len(store.setpoints())
            rig.sim.advance(300)
            restarted = Runner(rig.ctl, store)
            assert restarted.resume(keep_mode=False) is not None
            report = await restarted.run_once()
            cycles = store.cycles()
            assert [ts.strftime("%H:%M") for ts in cycles["ts"]] == ["22:00"]
            assert ("restart" in dict(report.events)) and len(set(store.setpoints()["cycle_id"])) == 1
            assert len(store.setpoints()) > first > 0
            rig.sim.advance(600)
            await restarted.run_once()
            assert [ts.strftime("%H:%M") for ts in store.cycles()["ts"]] == ["22:00", "22:15"]

    run_rig(tcp_hospital, winter, body, optimizer=Optimizer("stub"))


def test_a_cycle_that_overruns_the_next_boundary_is_followed_at_once_by_its_cycle(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    """The first cycle (at 22:07) takes until 22:16: 22:15's cycle runs at once after it, late but not
    lost; the one after is on the boundary, 22:30."""
    clock = FastClock()
    clock.step_s = 420.0  # started at 22:07

    def slow(inputs: DispatchInputs) -> Plan:
        time.sleep(540.0 / SPEED)  # 9 min on the fast clock, in the solver's thread
        return synthetic_plan(inputs)

    async def body(rig: Rig) -> None:
        on_fast_clock(rig, clock)
        with Store(tmp_path / "h.sqlite", retention_days=None) as store:  # T0 is months ago
            runner = Runner(rig.ctl, store, keepalive_s=60.0, timer=clock)
            await run_until(runner, clock, 1500.0)
            stamps = [ts.strftime("%H:%M") for ts in store.cycles()["ts"]]
            assert stamps == ["22:00", "22:15", "22:30"]

    run_rig(tcp_hospital, winter, body, optimizer=Optimizer(slow, "stub"))
