"""Device.write: guarded writes, read-back, and the keep-alive rewrite schedule, on a fake clock.

Devices are the hospital's, served by the simulator on free loopback ports (helpers in
``tests/sim/conftest.py``); the clock of each ``Device`` is a :class:`FakeClock`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from microgrid.profiles import Profiles, read_profiles
from microgrid.sim.server import Fault, SimulatedSite
from microgrid.sim.sunspec_server import ImageDevice, serve_sunspec
from microgrid.site import Site, read_site
from microgrid.telemetry import load_map
from microgrid.telemetry.devices import Device, WriteReport
from microgrid.telemetry.limits import site_limits
from microgrid.telemetry.registers import Value
from microgrid.telemetry.transport import CommsError, ModbusTransport
from microgrid.telemetry.wiring import SiteDevices, connect
from tests.conftest import HOSPITAL, WINTER
from tests.sim.conftest import FAST, FakeClock, rebind, run_site


@pytest.fixture(scope="module")
def hospital_file() -> Site:
    return read_site(HOSPITAL)


@pytest.fixture(scope="module")
def winter(hospital_file: Site) -> Profiles:
    return read_profiles(WINTER, hospital_file)


@pytest.fixture
def site(hospital_file: Site) -> Site:
    return rebind(hospital_file, **FAST)


def limits_of(site: Site, devs: SiteDevices, device_id: str) -> dict[str, tuple[float, float]]:
    return site_limits(site, devs.bindings[device_id], devs.devices[device_id].map)


def with_clock(devs: SiteDevices, device_id: str) -> tuple[Device, FakeClock]:
    clock = FakeClock()
    device = devs.devices[device_id]
    device.clock = clock
    return device, clock


def test_site_limits(site: Site) -> None:
    devs = connect(site)
    expected: dict[str, dict[str, tuple[float, float]]] = {
        "bess1-inverter": {"power_setpoint_kw": (-125.0, 125.0)},
        "bess2-inverter": {"power_setpoint_kw": (-200.0, 200.0)},
        "dg1-controller": {"power_setpoint_kw": (0.0, 200.0)},
        "dg2-controller": {"power_setpoint_kw": (0.0, 200.0)},
        "roof-inverter": {},
        "grid-meter": {},
        "feeders": {},
    }
    assert {d: limits_of(site, devs, d) for d in devs.devices} == expected
    devs.close()


REFUSED = [
    ("bess1-inverter", "soc_pct", 50.0, "read-only"),
    ("bess1-inverter", "battery_power_kw", 5.0, "read-only"),
    ("bess1-inverter", "power_setpoint_kw", 125.5, "outside the site's limits [-125, 125] kW"),
    ("bess1-inverter", "power_setpoint_kw", -126.0, "outside the site's limits [-125, 125] kW"),
    ("bess1-inverter", "control_mode", 2, "out of the point's range [0, 1]"),
    ("bess1-inverter", "heartbeat_count", 65536, "out of the point's range"),
    ("bess1-inverter", "revert_timeout_s", 4, "out of the point's range"),
    ("bess1-inverter", "nope_kw", 1.0, "no point 'nope_kw'"),
    ("bess2-inverter", "power_setpoint_kw", 200.5, "outside the site's limits [-200, 200] kW"),
    ("dg1-controller", "power_setpoint_kw", 201.0, "outside the site's limits [0, 200] kW"),
    ("dg1-controller", "power_setpoint_kw", -1.0, "outside the site's limits [0, 200] kW"),
    ("dg2-controller", "run_command", 0.5, "not one of the point's values"),
    ("dg2-controller", "engine_state", 2, "read-only"),
    ("roof-inverter", "power_limit_pct", 100.5, "out of the point's range"),
    ("roof-inverter", "power_limit_enabled", 0.5, "not one of the point's values"),
    ("grid-meter", "grid_power_kw", 0.0, "read-only"),
    ("feeders", "feeder_1_closed", 0, "read-only"),
    ("feeders", "feeder_1_command", -1, "out of the point's range"),
]


@pytest.mark.parametrize("case", REFUSED, ids=[f"{d}.{n}={v}" for d, n, v, _ in REFUSED])
def test_refused_writes_never_reach_the_device(site: Site, winter: Profiles, case: tuple[str, str, Value, str]) -> None:
    device_id, name, value, why = case

    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        device, limits = devs.devices[device_id], limits_of(site, devs, device_id)
        before = sim.served[device_id].adapter.values()
        report = await device.write({name: value}, limits)
        assert not report.written and not report.ok and set(report.refused) == {name}
        assert why in report.refused[name]
        assert device.check(name, value, limits) == report.refused[name]  # what `microgrid write` refuses with
        assert sim.served[device_id].adapter.values() == before
        assert not sim.served[device_id].adapter.remote

    run_site(site, winter, body)


def test_the_map_range_applies_without_site_limits(site: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        device = devs.devices["bess1-inverter"]
        report = await device.write({"power_setpoint_kw": 10_000.5})
        assert "out of the point's range [-10000, 10000]" in report.refused["power_setpoint_kw"]
        report = await device.write(
            {"power_setpoint_kw": 300.0}
        )  # within the map, beyond the battery: the caller's call
        assert report.ok and sim.plant.batteries["bess1"].setpoint_kw == 300.0

    run_site(site, winter, body)


@pytest.mark.parametrize(
    ("device_id", "setpoints"),
    [
        ("bess1-inverter", {"power_setpoint_kw": 125.0}),
        ("bess1-inverter", {"power_setpoint_kw": -125.0}),
        ("dg1-controller", {"power_setpoint_kw": 0.0}),
        ("dg1-controller", {"power_setpoint_kw": 200.0, "run_command": 1}),
        ("roof-inverter", {"power_limit_pct": 0.0, "power_limit_enabled": 1}),
        ("feeders", {"feeder_4_command": 0}),
    ],
)
def test_the_edges_of_the_limits_are_written(
    site: Site, winter: Profiles, device_id: str, setpoints: dict[str, Value]
) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> WriteReport:
        return await devs.devices[device_id].write(setpoints, limits_of(site, devs, device_id))

    report = run_site(site, winter, body)
    assert report.ok and report.written == setpoints


def test_a_partly_refused_write_still_writes_the_rest(site: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        device = devs.devices["bess1-inverter"]
        report = await device.write(
            {"power_setpoint_kw": 999.0, "heartbeat_count": 4}, limits_of(site, devs, "bess1-inverter")
        )
        assert report.written == {"heartbeat_count": 4} and set(report.refused) == {"power_setpoint_kw"}
        assert not report.ok and sim.served["bess1-inverter"].adapter.heartbeat == 4

    run_site(site, winter, body)


def test_ignored_writes_are_mismatches_and_are_retried(site: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        device, clock = with_clock(devs, "bess1-inverter")
        sim.faults["bess1-inverter"] = Fault(ignore_writes=True)  # a controller switched to local
        for _ in range(2):  # not skipped as "unchanged": the device never took it
            report = await device.write({"power_setpoint_kw": 42.0, "heartbeat_count": 1})
            assert report.written == {"power_setpoint_kw": 42.0, "heartbeat_count": 1}
            assert report.mismatches == {"power_setpoint_kw": (42.0, 0.0), "heartbeat_count": (1, 0)}
            assert not report.ok and sim.plant.batteries["bess1"].setpoint_kw == 0
            clock.advance(1)
        del sim.faults["bess1-inverter"]
        report = await device.write({"power_setpoint_kw": 42.0, "heartbeat_count": 2})
        assert report.ok and report.written == {"power_setpoint_kw": 42.0, "heartbeat_count": 2}
        clock.advance(1)
        report = await device.write({"power_setpoint_kw": 42.0, "heartbeat_count": 3})
        assert report.ok and report.skipped == {"power_setpoint_kw": 42.0}  # confirmed: now it is skipped

    run_site(site, winter, body)


def test_unchanged_setpoints_wait_for_keepalive_s_and_the_heartbeat_never_waits(site: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> list[tuple[float, WriteReport]]:
        device, clock = with_clock(devs, "dg1-controller")
        assert device.keepalive_s == 20
        reports = []
        for t in (0.0, 5.0, 19.9, 20.0, 25.0, 39.9, 40.0):
            clock.now = FakeClock().now + t
            reports.append((t, await device.write({"run_command": 1, "power_setpoint_kw": 80.0, "heartbeat_count": 9})))
        return reports

    written_at = []
    for t, report in run_site(site, winter, body):
        assert report.ok and "heartbeat_count" in report.written  # even though its value never changes
        assert set(report.written) | set(report.skipped) == {"run_command", "power_setpoint_kw", "heartbeat_count"}
        if "run_command" in report.written:
            assert "power_setpoint_kw" in report.written
            written_at.append(t)
        else:
            assert report.skipped == {"run_command": 1, "power_setpoint_kw": 80.0}
    assert written_at == [0.0, 20.0, 40.0]


def test_a_changed_setpoint_is_written_at_once(site: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        device, clock = with_clock(devs, "bess2-inverter")
        steps: list[tuple[float, dict[str, Any], set[str]]] = [
            (0.0, {"power_setpoint_kw": 50.0, "control_mode": 1}, {"power_setpoint_kw", "control_mode"}),
            (0.5, {"power_setpoint_kw": 50.001, "control_mode": 1}, {"power_setpoint_kw"}),
            (1.0, {"power_setpoint_kw": 50.0, "control_mode": 1}, {"power_setpoint_kw"}),  # back again
            (1.5, {"power_setpoint_kw": -20.0, "control_mode": 1}, {"power_setpoint_kw"}),
        ]
        for t, setpoints, written in steps:
            clock.now = FakeClock().now + t
            report = await device.write(setpoints)
            assert report.ok and set(report.written) == written, t
            assert sim.plant.batteries["bess2"].setpoint_kw == pytest.approx(setpoints["power_setpoint_kw"])

    run_site(site, winter, body)


def test_a_refused_write_is_not_remembered(site: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        device, clock = with_clock(devs, "bess1-inverter")
        for fault, kw, outcome in ((Fault(exception=6), 33.0, "refused"), (Fault(silent=True), 34.0, "unknown")):
            sim.faults["bess1-inverter"] = fault
            report = await device.write({"power_setpoint_kw": kw})
            assert not report.written and set(getattr(report, outcome)) == {"power_setpoint_kw"}
            del sim.faults["bess1-inverter"]
            clock.advance(1)
        for kw in (33.0, 34.0):  # not skipped: never written (34: read first, it is not there, sent)
            report = await device.write({"power_setpoint_kw": kw})
            assert report.ok and report.written == {"power_setpoint_kw": kw} and not report.notes

    run_site(site, winter, body)


def count_writes(sim: SimulatedSite, device_id: str, point: str) -> list[Value]:
    """The values of ``point`` the simulated device applied from now on (a spy on its adapter)."""
    adapter, applied = sim.served[device_id].adapter, []
    original = adapter.write

    def spy(name: str, value: Value) -> None:
        if name == point:
            applied.append(value)
        original(name, value)

    adapter.write = spy  # type: ignore[method-assign]
    return applied


UNCLEAR = [Fault(delay_s=1.2), Fault(garbage=True)]


@pytest.mark.parametrize("fault", UNCLEAR, ids=["late answer", "garbled answer"])
def test_an_applied_write_without_a_clear_answer_is_unknown_then_read_back_and_never_sent_twice(
    site: Site, winter: Profiles, fault: Fault
) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        device, clock = with_clock(devs, "bess1-inverter")
        device.transport.retries = 1  # the transport must not resend a write that left either
        applied = count_writes(sim, "bess1-inverter", "power_setpoint_kw")
        sim.faults["bess1-inverter"] = fault
        report = await device.write({"power_setpoint_kw": 42.0})
        assert set(report.unknown) == {"power_setpoint_kw"} and not report.refused and not report.mismatches
        assert "no clear answer" in report.unknown["power_setpoint_kw"] and not report.ok
        await asyncio.sleep(fault.delay_s)  # the late answer's write lands meanwhile
        del sim.faults["bess1-inverter"]
        assert sim.plant.batteries["bess1"].setpoint_kw == 42.0  # the device did apply it
        clock.advance(1)
        report = await device.write({"power_setpoint_kw": 42.0})  # the same value again: read first
        assert report.ok and report.written == {"power_setpoint_kw": 42.0}
        assert "applied by an earlier write" in report.notes["power_setpoint_kw"]
        assert applied == [42.0]  # sent once, applied once
        clock.advance(1)
        report = await device.write({"power_setpoint_kw": 42.0})
        assert report.skipped == {"power_setpoint_kw": 42.0}  # confirmed: the keep-alive schedule again

    run_site(site, winter, body)


def test_an_unclear_write_whose_read_back_shows_it_applied_is_ok_at_once(site: Site, winter: Profiles) -> None:
    """A late answer to the write only (the device applies it, then answers late): the read-back right after
    shows the value, so the outcome is known at once: written, with why."""

    async def body(sim: SimulatedSite, devs: SiteDevices) -> WriteReport:
        device = devs.devices["bess1-inverter"]
        original = device.transport.write

        async def late(unit: int, address: int, registers: list[int]) -> None:
            await original(unit, address, registers)
            raise CommsError("timeout (the answer came too late)")

        device.transport.write = late  # type: ignore[method-assign]
        return await device.write({"power_setpoint_kw": 42.0})

    report = run_site(site, winter, body)
    assert report.ok and report.written == {"power_setpoint_kw": 42.0}
    assert report.notes["power_setpoint_kw"].startswith("applied: the read-back shows the value")


@pytest.mark.parametrize(("code", "outcome"), [(5, "unknown"), (11, "unknown"), (2, "refused"), (6, "refused")])
def test_only_an_exception_that_says_no_is_a_refusal(site: Site, winter: Profiles, code: int, outcome: str) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> WriteReport:
        sim.faults["bess1-inverter"] = Fault(exception=code)
        return await devs.devices["bess1-inverter"].write({"power_setpoint_kw": 42.0})

    report = run_site(site, winter, body)
    assert set(getattr(report, outcome)) == {"power_setpoint_kw"} and not report.ok
    assert f"Modbus exception {code}" in getattr(report, outcome)["power_setpoint_kw"]


def test_a_write_that_never_left_is_refused_as_not_sent(site: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> WriteReport:
        await sim.take_offline("bess1-inverter")
        return await devs.devices["bess1-inverter"].write({"power_setpoint_kw": 42.0, "heartbeat_count": 3})

    report = run_site(site, winter, body)
    assert set(report.refused) == {"power_setpoint_kw", "heartbeat_count"} and not report.unknown
    assert all(why.startswith("not sent") for why in report.refused.values())


def test_keepalive_s_comes_from_the_site_file(site: Site) -> None:
    slow = site.model_copy(update={"devices": tuple(d.model_copy(update={"keepalive_s": 5.0}) for d in site.devices)})
    devs = connect(slow)
    assert {d.keepalive_s for d in devs.devices.values()} == {5.0}
    devs.close()


def test_write_only_points_are_written_and_not_read_back() -> None:
    """DSE GenComm's control key (write-only, enumerated key + complement) through a static image."""
    regmap = load_map("dse-gencomm")
    point = regmap.by_name["system_control_key"]
    image = ImageDevice({a: 0 for a in range(point.address, point.address + point.words)} | {772: 1})
    unit = regmap.unit_id or 1

    async def go() -> tuple[WriteReport, WriteReport]:
        async with serve_sunspec(image, unit=unit) as port:
            transport = ModbusTransport("127.0.0.1", port, timeout_s=1.0)
            try:
                device = Device("dse", regmap, transport, unit, clock=FakeClock())
                good = await device.write({"system_control_key": 0x8B75748A})  # select auto mode
                bad = await device.write({"system_control_key": 0x8B75748B})  # not one of its keys
                return good, bad
            finally:
                transport.close()

    good, bad = asyncio.run(go())
    assert good.ok and good.written == {"system_control_key": 0x8B75748A} and not good.mismatches
    assert image.read(point.address, 2) == [0x8B75, 0x748A]
    assert "not one of the point's values" in bad.refused["system_control_key"]
