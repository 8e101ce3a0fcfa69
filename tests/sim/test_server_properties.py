"""Property: whatever one simulated battery inverter does, ``Device.read`` never raises and never lies.

Random sequences of faults (silent, late, exceptions, garbled frames, ignored writes, endpoint
closed), plant time and writes. After every read: no exception; every ``ok`` value equals what
the simulated device (and its battery) holds at that moment, within half a register step; every
``stale`` value is the last ``ok`` value of that point. Frozen registers are left out: by design
they serve old values as ``ok`` (see ``test_server.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microgrid.profiles import Profiles
from microgrid.sim.server import Fault, SimulatedSite
from microgrid.site import Site
from microgrid.telemetry.devices import Device, Measurement
from microgrid.telemetry.registers import Quality
from microgrid.telemetry.wiring import connect
from tests.sim.conftest import close_to, only, rebind, serving, wrong_ok_values

DEVICE, ASSET = "bess1-inverter", "bess1"
TIMEOUT_S = 0.05

faults = st.one_of(
    st.just(Fault(silent=True)),
    st.builds(Fault, delay_s=st.sampled_from([0.01, 0.02])),  # answers in time
    st.builds(Fault, delay_s=st.sampled_from([0.1, 0.15])),  # answers after the client gave up
    st.builds(Fault, exception=st.sampled_from([1, 2, 3, 4, 5, 6, 10, 11])),
    st.just(Fault(garbage=True)),
    st.just(Fault(ignore_writes=True)),
)
steps = st.one_of(
    st.tuples(st.just("advance"), st.floats(0, 90)),
    st.tuples(st.just("write"), st.floats(-125, 125), st.booleans()),
    st.tuples(st.just("fault"), faults),
    st.tuples(st.just("clear")),
    st.tuples(st.just("offline")),
    st.tuples(st.just("online")),
    st.tuples(st.just("read")),  # another read, at once
)


class Checker:
    """Reads the device and checks every measurement against the simulator, remembering the last ok values."""

    def __init__(self, sim: SimulatedSite, device: Device) -> None:
        self.sim, self.device = sim, device
        self.last_ok: dict[str, Any] = {}
        self.reads = 0

    def held(self) -> dict[str, Any]:
        return dict(self.sim.served[DEVICE].adapter.values())

    async def read(self) -> dict[str, Measurement]:
        before = self.held()
        measurements = await self.device.read()
        after = self.held()
        self.reads += 1
        regmap, battery = self.device.map, self.sim.plant.batteries[ASSET]
        assert set(measurements) == {p.name for p in regmap.points if p.readable}
        assert {m.quality for m in measurements.values()} <= {Quality.OK, Quality.STALE, Quality.COMMS_LOST}
        assert wrong_ok_values(measurements, regmap, [before, after]) == {}
        for name, m in measurements.items():
            if m.quality is Quality.OK:
                self.last_ok[name] = m.value
            elif m.quality is Quality.STALE:
                assert m.value == self.last_ok[name], name
            else:
                assert m.value is None
        if measurements["soc_pct"].quality is Quality.OK:  # and the plant itself (no step runs during a read)
            assert close_to(measurements["soc_pct"].value, battery.soc * 100, 0.01)
            assert close_to(measurements["battery_power_kw"].value, battery.power_kw, 0.001)
        return measurements


async def scenario(site: Site, profiles: Profiles, plan: list[tuple[Any, ...]]) -> None:
    async with serving(site, profiles) as sim:
        devices = connect(sim.site)
        device = devices.devices[DEVICE]
        checker = Checker(sim, device)
        beat = 0
        try:
            for step in plan:  # a read after every step
                match step:
                    case ("advance", seconds):
                        sim.advance(seconds)
                    case ("write", kw, heartbeat):
                        beat = (beat + 1) % 65536
                        setpoints: dict[str, float | int] = {"power_setpoint_kw": round(kw, 3)}
                        if heartbeat:
                            setpoints["heartbeat_count"] = beat
                        report = await device.write(setpoints, {"power_setpoint_kw": (-125.0, 125.0)})
                        outcomes = [report.written, report.skipped, report.refused, report.unknown, report.mismatches]
                        assert set().union(*outcomes) == set(setpoints)  # every point has an outcome
                    case ("fault", fault):
                        sim.faults[DEVICE] = fault
                    case ("clear",):
                        sim.faults.pop(DEVICE, None)
                    case ("offline",):
                        await sim.take_offline(DEVICE)
                    case ("online",):
                        await sim.bring_online(DEVICE)
                    case _:
                        pass
                await checker.read()
            sim.faults.pop(DEVICE, None)
            await sim.bring_online(DEVICE)
            final = await checker.read()  # and it always comes back
            assert {m.quality for m in final.values()} == {Quality.OK}
        finally:
            devices.close()


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(plan=st.lists(steps, min_size=1, max_size=12))
def test_reads_never_raise_and_never_return_a_wrong_ok_value(
    hospital_file_site: Site, winter: Profiles, plan: list[tuple[Any, ...]]
) -> None:
    site = rebind(only(hospital_file_site, DEVICE), timeout_s=TIMEOUT_S, retries=0)
    asyncio.run(scenario(site, winter, plan))
