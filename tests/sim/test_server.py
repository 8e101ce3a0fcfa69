"""The simulated site over real Modbus TCP on 127.0.0.1, read and driven through the client side.

Every test serves the hospital (``data/hospital-winter-day.csv``) on free ports with short
timeouts (see ``conftest.py``); time moves only through ``sim.advance``. The SunSpec view and
SunSpec model maps are covered by ``test_sunspec_server.py``.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from microgrid.profiles import Profiles
from microgrid.sim.server import Fault, SimulatedSite
from microgrid.sim.sunspec_server import serve_sunspec
from microgrid.site import Site
from microgrid.telemetry import DataType, encode, load_map, shipped_maps
from microgrid.telemetry.datatypes import LAYOUTS
from microgrid.telemetry.devices import Device, Measurement
from microgrid.telemetry.maps import Point, RegisterMap
from microgrid.telemetry.registers import Quality, Value
from microgrid.telemetry.transport import ExceptionCodeError, ModbusTransport
from microgrid.telemetry.wiring import SiteDevices, connect
from tests.sim.conftest import FakeClock, close_to, qualities, run_site, values, wrong_ok_values

OTHERS = ("bess2-inverter", "grid-meter", "feeders")
"""Devices on endpoints of their own, next to bess1-inverter."""


def adapter_values(sim: SimulatedSite, device_id: str) -> dict[str, Value | None]:
    """What the simulated device holds now, in its map's units."""
    return sim.served[device_id].adapter.values()


def assert_matches_sim(sim: SimulatedSite, devices: SiteDevices, snapshot: dict[str, dict[str, Measurement]]) -> None:
    """Every ok value of every device in ``snapshot`` equals what its simulated device holds now."""
    for device_id, measurements in snapshot.items():
        regmap = devices.devices[device_id].map
        assert wrong_ok_values(measurements, regmap, [adapter_values(sim, device_id)]) == {}, device_id


async def write_ok(device: Device, setpoints: dict[str, Value]) -> None:
    report = await device.write(setpoints)
    assert report.ok and set(report.written) == set(setpoints), report


# -- reading the whole site --------------------------------------------------------------------


def test_every_device_reads_what_the_plant_holds(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        d = devs.devices
        await write_ok(d["bess1-inverter"], {"power_setpoint_kw": 50.0, "heartbeat_count": 1})  # discharge
        await write_ok(d["bess2-inverter"], {"power_setpoint_kw": -80.0, "heartbeat_count": 1})  # charge
        await write_ok(d["dg1-controller"], {"run_command": 1, "power_setpoint_kw": 90.0, "heartbeat_count": 1})
        await write_ok(d["feeders"], {"feeder_3_command": 0, "heartbeat_count": 1})
        sim.advance(50)
        snapshot = await devs.read_all()
        plant = sim.plant

        assert set(snapshot) == {b.id for b in hospital.devices}
        for device_id, measurements in snapshot.items():
            assert qualities(measurements) == {Quality.OK}, device_id
            assert set(measurements) == {p.name for p in d[device_id].map.points if p.readable}
        assert_matches_sim(sim, devs, snapshot)

        for device_id, asset, kw in (("bess1-inverter", "bess1", 50.0), ("bess2-inverter", "bess2", -80.0)):
            got, bat = values(snapshot[device_id]), plant.batteries[asset]
            initial = next(b for b in hospital.batteries if b.id == asset)
            assert close_to(got["soc_pct"], bat.soc * 100, 0.01)
            assert close_to(got["battery_power_kw"], bat.power_kw, 0.001)
            assert got["battery_power_kw"] == pytest.approx(kw)  # positive = discharge
            assert (got["soc_pct"] - initial.initial_soc * 100) * kw < 0  # discharging lowers the SOC
            assert got["dc_current_a"] * kw > 0
            assert got["remote_control"] == 1 and got["control_mode"] == 1

        dg1, dg2 = values(snapshot["dg1-controller"]), values(snapshot["dg2-controller"])
        assert plant.gensets["dg1"].running and not plant.gensets["dg2"].running
        assert dg1["engine_state"] == 2 and dg2["engine_state"] == 0
        assert close_to(dg1["generator_power_kw"], plant.gensets["dg1"].power_kw, 0.001)
        assert dg1["generator_power_kw"] == pytest.approx(90.0) and dg2["generator_power_kw"] == 0
        assert dg1["start_count"] == 1 and dg1["run_command"] == 1 and dg1["control_mode"] == 3  # remote

        meter = values(snapshot["grid-meter"])
        assert plant.grid_kw > 0  # importing: loads + bess2 charging exceed bess1 + dg1
        assert close_to(meter["grid_power_kw"], -plant.grid_kw, 0.001)  # + = export
        assert meter["grid_present"] == 1 and meter["frequency_hz"] == 50.0

        feeders = values(snapshot["feeders"])
        for tier, n in hospital.devices[-1].feeders.items():
            assert feeders[f"feeder_{n}_closed"] == int(plant.relay_closed[tier])
            assert close_to(feeders[f"feeder_{n}_power_kw"], plant.load_kw[tier], 0.001)
        assert (feeders["feeder_1_closed"], feeders["feeder_2_closed"], feeders["feeder_3_closed"]) == (1, 1, 0)
        assert feeders["feeder_3_power_kw"] == 0 and feeders["feeder_1_power_kw"] > 0

        roof = values(snapshot["roof-inverter"])
        assert close_to(roof["pv_power_kw"], plant.pv_kw["roof"], 0.001)

    run_site(hospital, winter, body)


def test_gensets_behind_one_gateway_share_one_transport(hospital: Site) -> None:
    devs = connect(hospital)
    try:
        endpoints = {(b.host, b.port) for b in hospital.devices}
        assert len(devs.transports) == len(endpoints) == len(hospital.devices) - 1
        d = devs.devices
        assert d["dg1-controller"].transport is d["dg2-controller"].transport
        assert (d["dg1-controller"].unit, d["dg2-controller"].unit) == (1, 2)
        others = [dev.transport for name, dev in d.items() if not name.startswith("dg")]
        assert len({id(t) for t in others}) == len(others)
    finally:
        devs.close()


# -- every shipped absolute map, served as a static image and read back --------------------------


def _type_range(point: Point, regmap: RegisterMap) -> tuple[float, float]:
    """The engineering values a point's registers can hold (before its min/max)."""
    layout, codec = LAYOUTS[point.type], regmap.codecs[point.name]
    if layout.kind == "float":
        return -1e6, 1e6
    bits = 16 * layout.words
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if layout.signed else (0, (1 << bits) - 1)
    ends = sorted(raw * codec.scale * (-1 if codec.negate else 1) for raw in (low + 1, high - 1))
    return ends[0], ends[1]


def chosen_value(point: Point, regmap: RegisterMap, i: int) -> Value:
    """An in-range value for a readable point (varied by ``i``), not on a register step for scaled points."""
    if point.type is DataType.STRING:
        return f"SN{i:04d}"[: 2 * (point.count or 1)]
    if point.values:
        keys = sorted(point.values)
        return keys[i % len(keys)]
    low, high = _type_range(point, regmap)
    low = low if point.min is None else max(low, point.min)
    high = high if point.max is None else min(high, point.max)
    fraction = 0.15 + 0.7 * ((i * 0.618) % 1)
    value = low + (high - low) * fraction
    return round(value) if regmap.codecs[point.name].integer_valued else value


ABSOLUTE_MAPS = [name for name in shipped_maps() if load_map(name).addressing == "absolute"]


def test_the_absolute_maps_are_the_ones_expected() -> None:
    expected = {f"generic-{k}" for k in ("battery-inverter", "genset-controller", "pv-inverter", "grid-meter")}
    assert expected | {"generic-load-feeder", "dse-gencomm", "victron-gx-system"} == set(ABSOLUTE_MAPS)


@pytest.mark.parametrize("map_name", ABSOLUTE_MAPS)
def test_shipped_map_round_trips_through_a_served_image(map_name: str) -> None:
    regmap = load_map(map_name)
    readable = [p for p in regmap.points if p.readable]
    chosen = {p.name: chosen_value(p, regmap, i) for i, p in enumerate(readable)}
    start = min(p.address for p in regmap.points)
    end = max(p.address + p.words for p in regmap.points)
    image = dict.fromkeys(range(start, end), 0)  # gaps read as 0, as the generic profile promises
    for point in readable:
        for offset, word in enumerate(encode(chosen[point.name], regmap.codecs[point.name])):
            image[point.address + offset] = word
    unit = regmap.unit_id if regmap.unit_id is not None else 1

    async def go() -> dict[str, Measurement]:
        async with serve_sunspec(image, unit=unit) as port:
            transport = ModbusTransport("127.0.0.1", port, timeout_s=1.0)
            try:
                return await Device(map_name, regmap, transport, unit).read()
            finally:
                transport.close()

    got = asyncio.run(go())
    assert set(got) == set(chosen)
    for name, m in got.items():
        point = regmap.by_name[name]
        assert m.quality is Quality.OK, (name, m)
        assert m.unit == point.unit
        if LAYOUTS[point.type].kind == "float":
            assert m.value == pytest.approx(chosen[name], rel=1e-6), name
        else:
            assert close_to(m.value, chosen[name], abs(point.scale or 1.0)), (name, m.value, chosen[name])


# -- writes drive the plant ---------------------------------------------------------------------


def test_battery_setpoint_drives_the_battery(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev, bat = devs.devices["bess1-inverter"], sim.plant.batteries["bess1"]
        soc0 = bat.soc
        await write_ok(dev, {"power_setpoint_kw": -100.0, "heartbeat_count": 1})
        assert bat.setpoint_kw == -100.0 and bat.power_kw == 0.0  # the plant follows on the next step
        sim.advance(30)
        got = values(await dev.read())
        assert bat.power_kw == pytest.approx(-100.0) and got["battery_power_kw"] == pytest.approx(-100.0)
        assert bat.soc > soc0 and got["soc_pct"] > soc0 * 100  # charging
        assert got["power_setpoint_kw"] == -100.0 and got["remote_control"] == 1
        await write_ok(dev, {"power_setpoint_kw": 75.5, "heartbeat_count": 2})
        sim.advance(2)
        assert values(await dev.read())["battery_power_kw"] == pytest.approx(75.5) == bat.power_kw

    run_site(hospital, winter, body)


def test_genset_run_command_starts_the_engine_after_its_start_delay(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev, gen = devs.devices["dg2-controller"], sim.plant.gensets["dg2"]
        await write_ok(dev, {"run_command": 1, "power_setpoint_kw": 150.0, "heartbeat_count": 1})
        sim.advance(gen.start_delay_s - 4)
        got = values(await dev.read())
        assert got["engine_state"] == 1 and got["generator_power_kw"] == 0 and not gen.running  # starting
        sim.advance(6)
        got = values(await dev.read())
        assert got["engine_state"] == 2 and sim.plant.gensets["dg2"].running and got["start_count"] == 1
        assert got["generator_power_kw"] >= gen.spec.min_kw and got["generator_frequency_hz"] == 50.0
        await write_ok(dev, {"heartbeat_count": 2})
        sim.advance(30)  # ramps at 5 kW/s to its setpoint
        got = values(await dev.read())
        assert got["generator_power_kw"] == pytest.approx(150.0) == gen.power_kw
        assert sim.plant.gensets["dg1"].power_kw == 0  # the other unit behind the gateway untouched
        await write_ok(dev, {"run_command": 0, "heartbeat_count": 3})
        sim.advance(2)
        assert values(await dev.read())["engine_state"] == 0 and not gen.running

    run_site(hospital, winter, body)


def test_feeder_command_opens_a_relay(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["feeders"]
        sim.advance(2)
        assert values(await dev.read())["feeder_2_power_kw"] > 0
        await write_ok(dev, {"feeder_2_command": 0, "heartbeat_count": 1})  # essential
        sim.advance(2)
        got = values(await dev.read())
        assert not sim.plant.relay_closed["essential"] and sim.plant.load_kw["essential"] == 0
        assert got["feeder_2_closed"] == 0 and got["feeder_2_power_kw"] == 0 and got["feeder_2_command"] == 0
        assert got["feeder_1_closed"] == 1 and got["feeder_1_power_kw"] > 0
        await write_ok(dev, {"feeder_2_command": 1, "heartbeat_count": 2})
        sim.advance(2)
        assert values(await dev.read())["feeder_2_power_kw"] > 0

    run_site(hospital, winter, body)


def test_pv_power_limit_caps_the_output(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev, peak = devs.devices["roof-inverter"], hospital.pv[0].peak_kw
        sim.plant.clock = winter.index[
            int(winter.pv_kw["roof"].to_numpy().argmax())
        ]  # jump to the sunniest quarter hour (grid up)
        sim.advance(2)
        sunny = sim.plant.pv_kw["roof"]
        assert sunny > 0.2 * peak
        await write_ok(dev, {"power_limit_pct": 20.0, "power_limit_enabled": 1, "heartbeat_count": 1})
        sim.advance(2)
        got = values(await dev.read())
        assert sim.plant.pv_kw["roof"] == pytest.approx(0.2 * peak) and got["pv_power_kw"] == pytest.approx(0.2 * peak)
        assert got["available_power_kw"] == pytest.approx(sunny) and got["operating_state"] == 3  # curtailed
        await write_ok(dev, {"power_limit_enabled": 0, "heartbeat_count": 2})
        sim.advance(2)
        assert values(await dev.read())["pv_power_kw"] == pytest.approx(sunny)

    run_site(hospital, winter, body)


# -- keep-alive and revert ------------------------------------------------------------------------


def test_battery_reverts_to_zero_without_heartbeats(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev, bat = devs.devices["bess1-inverter"], sim.plant.batteries["bess1"]
        await write_ok(dev, {"power_setpoint_kw": 60.0, "heartbeat_count": 1})
        timeout = values(await dev.read())["revert_timeout_s"]
        assert timeout == 60
        sim.advance(timeout - 2)
        got = values(await dev.read())
        assert got["remote_control"] == 1 and got["battery_power_kw"] == pytest.approx(60.0)
        sim.advance(4)
        got = values(await dev.read())
        assert got["remote_control"] == 0 and got["control_mode"] == 0 and got["power_setpoint_kw"] == 0
        assert got["battery_power_kw"] == 0 == bat.power_kw

    run_site(hospital, winter, body)


def test_changing_heartbeats_keep_the_battery_remote(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["bess1-inverter"]
        await write_ok(dev, {"power_setpoint_kw": -40.0, "heartbeat_count": 65534})
        for beat in (65535, 0, 1, 2, 3, 4, 5, 6, 7, 8):  # wraps at 65535; 200 s in all
            sim.advance(20)
            report = await dev.write({"power_setpoint_kw": -40.0, "heartbeat_count": beat})
            assert report.ok and report.written == {"heartbeat_count": beat}  # the unchanged setpoint skipped
        got = values(await dev.read())
        assert got["remote_control"] == 1 and got["battery_power_kw"] == pytest.approx(-40.0)

    run_site(hospital, winter, body)


def test_an_unchanged_heartbeat_does_not_keep_the_battery_remote(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["bess1-inverter"]
        await write_ok(dev, {"power_setpoint_kw": 30.0, "heartbeat_count": 7})
        for _ in range(4):
            sim.advance(20)
            await write_ok(dev, {"heartbeat_count": 7})  # written, but the value never changes
        got = values(await dev.read())
        assert got["remote_control"] == 0 and got["battery_power_kw"] == 0

    run_site(hospital, winter, body)


def test_setpoint_rewrites_are_no_heartbeat(hospital: Site, winter: Profiles) -> None:
    """Rewriting the setpoint every keepalive_s does not count; a setpoint after a revert makes it remote again."""

    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        clock = FakeClock()
        dev = devs.devices["bess1-inverter"]
        dev.clock = clock

        def tick(seconds: float) -> None:
            sim.advance(seconds)
            clock.advance(seconds)

        assert dev.keepalive_s == 20
        await write_ok(dev, {"power_setpoint_kw": 50.0})  # t = 0: remote
        for _ in range(2):
            tick(19)
            assert (await dev.write({"power_setpoint_kw": 50.0})).skipped == {"power_setpoint_kw": 50.0}
            tick(1)
            await write_ok(dev, {"power_setpoint_kw": 50.0})  # due again: rewritten (t = 20, 40)
        tick(21)  # t = 61: 61 s of setpoints only
        got = values(await dev.read())
        assert got["remote_control"] == 0 and got["power_setpoint_kw"] == 0
        await write_ok(dev, {"power_setpoint_kw": 50.0, "heartbeat_count": 1})  # a setpoint makes it remote again
        sim.advance(2)
        got = values(await dev.read())
        assert got["remote_control"] == 1 and got["battery_power_kw"] == pytest.approx(50.0)

    run_site(hospital, winter, body)


def test_revert_timeout_is_configurable(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["bess2-inverter"]
        await write_ok(dev, {"revert_timeout_s": 10, "power_setpoint_kw": 20.0, "heartbeat_count": 1})
        sim.advance(8)
        assert values(await dev.read())["remote_control"] == 1
        sim.advance(3)
        got = values(await dev.read())
        assert got["remote_control"] == 0 and got["revert_timeout_s"] == 10

    run_site(hospital, winter, body)


def test_battery_control_mode_autonomous_reverts_at_once(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["bess1-inverter"]
        await write_ok(dev, {"power_setpoint_kw": 50.0, "control_mode": 1, "heartbeat_count": 1})
        await write_ok(dev, {"control_mode": 0})  # read back 0, not 1
        sim.advance(2)
        got = values(await dev.read())
        assert (got["control_mode"], got["remote_control"], got["battery_power_kw"]) == (0, 0, 0)

    run_site(hospital, winter, body)


def test_genset_reverts_to_local_automatic_mains_failure(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev, gen = devs.devices["dg1-controller"], sim.plant.gensets["dg1"]
        sim.plant.grid_forced = False  # an outage: in auto, the genset would start
        await write_ok(dev, {"run_command": 0, "heartbeat_count": 1})  # remote: hold it stopped
        sim.advance(50)
        got = values(await dev.read())
        assert got["engine_state"] == 0 and got["control_mode"] == 3 and not gen.run_requested
        sim.advance(12)  # past the 60 s revert timeout: local AMF asks for a start
        got = values(await dev.read())
        assert got["remote_control"] == 0 and got["control_mode"] == 2 and got["run_command"] == 1
        assert got["engine_state"] == 1 and got["power_setpoint_kw"] == gen.spec.max_kw
        sim.advance(gen.start_delay_s)
        assert values(await dev.read())["engine_state"] == 2 and gen.running
        sim.plant.grid_forced = True  # mains back: AMF stops it
        sim.advance(2)
        assert values(await dev.read())["engine_state"] == 0

    run_site(hospital, winter, body)


def test_feeders_and_pv_limit_revert(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        feeders, pv = devs.devices["feeders"], devs.devices["roof-inverter"]
        await write_ok(feeders, {"feeder_3_command": 0, "feeder_2_command": 0, "heartbeat_count": 1})
        await write_ok(pv, {"power_limit_pct": 10.0, "power_limit_enabled": 1, "heartbeat_count": 1})
        sim.advance(30)
        assert values(await feeders.read())["feeder_3_closed"] == 0
        assert sim.plant.pv_limit_kw["roof"] == pytest.approx(15.0)
        sim.advance(32)
        got = values(await feeders.read())
        assert all(sim.plant.relay_closed.values()) and got["remote_control"] == 0
        assert (got["feeder_1_closed"], got["feeder_2_closed"], got["feeder_3_closed"]) == (1, 1, 1)
        assert got["feeder_3_power_kw"] > 0 and got["feeder_2_power_kw"] > 0
        got = values(await pv.read())
        assert got["power_limit_enabled"] == 0 and got["remote_control"] == 0
        assert sim.plant.pv_limit_kw["roof"] == hospital.pv[0].peak_kw

    run_site(hospital, winter, body)


# -- illegal writes --------------------------------------------------------------------------------


def test_read_only_points_are_refused_before_anything_is_sent(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["bess1-inverter"]
        report = await dev.write({"soc_pct": 10.0, "battery_power_kw": 5.0, "nope_kw": 1.0})
        assert not report.written and not report.ok
        assert "read-only" in report.refused["soc_pct"] and "read-only" in report.refused["battery_power_kw"]
        assert "no point" in report.refused["nope_kw"]
        assert not sim.served["bess1-inverter"].adapter.remote  # nothing reached the device

    run_site(hospital, winter, body)


@pytest.mark.parametrize(
    ("address", "registers", "code"),
    [
        pytest.param(100, [1000], 2, id="read-only soc_pct"),
        pytest.param(3, [1], 2, id="read-only remote_control"),
        pytest.param(5, [1], 2, id="unused address"),
        pytest.param(200, [0], 2, id="half of an s32 setpoint"),
        pytest.param(201, [0, 1], 2, id="straddles two points"),
        pytest.param(500, [1], 2, id="outside the served registers"),
        pytest.param(11, [1], 3, id="revert_timeout_s below 5"),
        pytest.param(11, [4000], 3, id="revert_timeout_s above 3600"),
        pytest.param(202, [2], 3, id="control_mode not in values"),
        pytest.param(200, [0x0131, 0x2D00], 3, id="setpoint 20000 kW beyond the map's range"),
    ],
)
def test_illegal_raw_writes_get_modbus_exceptions(
    hospital: Site, winter: Profiles, address: int, registers: list[int], code: int
) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["bess1-inverter"]
        before = adapter_values(sim, "bess1-inverter")
        with pytest.raises(ExceptionCodeError) as info:
            await dev.transport.write(dev.unit, address, registers)
        assert info.value.code == code
        assert adapter_values(sim, "bess1-inverter") == before
        await dev.transport.write(dev.unit, 10, [9])  # the connection is still good
        assert values(await dev.read())["heartbeat_count"] == 9

    run_site(hospital, winter, body)


# -- faults ---------------------------------------------------------------------------------------


async def _baseline(sim: SimulatedSite, devs: SiteDevices) -> dict[str, dict[str, Measurement]]:
    """bess1 discharging and everything read once (all ok): the last good values."""
    await write_ok(devs.devices["bess1-inverter"], {"power_setpoint_kw": 100.0, "heartbeat_count": 1})
    sim.advance(10)
    snapshot = await devs.read_all()
    assert all(qualities(m) == {Quality.OK} for m in snapshot.values())
    return snapshot


def _assert_stale_copy(now: dict[str, Measurement], before: dict[str, Measurement]) -> None:
    for name, m in now.items():
        assert m.quality is Quality.STALE, name
        assert (m.value, m.timestamp) == (before[name].value, before[name].timestamp), name


FAULTS = {
    "silent": Fault(silent=True),
    "delay-above-timeout": Fault(delay_s=1.2),
    "exception-4": Fault(exception=4),
    "garbage": Fault(garbage=True),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_a_failing_device_reads_stale_and_recovers(hospital: Site, winter: Profiles, fault: Fault) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["bess1-inverter"]
        before = await _baseline(sim, devs)
        sim.faults["bess1-inverter"] = fault
        sim.advance(60)  # the plant moves on: SOC drops, the setpoint reverts
        started = time.monotonic()
        snapshot = await devs.read_all()
        assert time.monotonic() - started < 3.0  # bounded: one timeout, the other endpoints concurrent
        _assert_stale_copy(snapshot["bess1-inverter"], before["bess1-inverter"])
        assert dev.last_error is not None
        if fault.exception is not None:
            assert "exception 4" in dev.last_error
        for other in OTHERS:
            assert qualities(snapshot[other]) == {Quality.OK} and devs.devices[other].last_error is None
        assert_matches_sim(sim, devs, {k: snapshot[k] for k in OTHERS})

        report = await dev.write({"power_setpoint_kw": 10.0, "heartbeat_count": 2})
        assert not report.ok  # refused (no answer, exception) or unconfirmed (garbled read-back)
        await asyncio.sleep(fault.delay_s)  # a write that timed out still lands late: let it, before comparing

        del sim.faults["bess1-inverter"]
        snapshot = await devs.read_all()
        assert qualities(snapshot["bess1-inverter"]) == {Quality.OK}
        assert devs.devices["bess1-inverter"].last_error is None
        assert_matches_sim(sim, devs, snapshot)
        assert values(snapshot["bess1-inverter"])["soc_pct"] < values(before["bess1-inverter"])["soc_pct"]

    run_site(hospital, winter, body)


def test_a_short_delay_is_only_slower(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["bess1-inverter"]
        await _baseline(sim, devs)
        sim.faults["bess1-inverter"] = Fault(delay_s=0.05)  # below the 0.5 s timeout
        sim.advance(30)
        started = time.monotonic()
        measurements = await dev.read()
        assert time.monotonic() - started >= 0.05
        assert qualities(measurements) == {Quality.OK} and dev.last_error is None
        assert_matches_sim(sim, devs, {"bess1-inverter": measurements})
        await write_ok(dev, {"power_setpoint_kw": 12.0, "heartbeat_count": 2})

    run_site(hospital, winter, body)


def test_a_frozen_point_holds_its_value_while_the_rest_moves(hospital: Site, winter: Profiles) -> None:
    """``frozen_points``: a stuck SOC while the battery discharges (the estimate's cross-check is tested
    against it in tests/control); clearing the fault serves the true value again."""

    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["bess1-inverter"]
        before = values(await dev.read())
        sim.faults["bess1-inverter"] = Fault(frozen_points=frozenset({"soc_pct"}))
        await write_ok(dev, {"power_setpoint_kw": 100.0, "heartbeat_count": 1})
        for beat in range(2, 22):  # 10 min, a heartbeat each 30 s (else the inverter reverts)
            sim.advance(30)
            assert (await dev.write({"heartbeat_count": beat})).ok
        stuck = await dev.read()
        assert qualities(stuck) == {Quality.OK}
        assert values(stuck)["soc_pct"] == before["soc_pct"]
        assert values(stuck)["battery_power_kw"] == pytest.approx(100.0, abs=0.1)
        true_pct = sim.plant.batteries["bess1"].soc * 100
        assert true_pct < before["soc_pct"] - 5  # 100 kW for 10 min of 250 kWh: -7 %
        del sim.faults["bess1-inverter"]
        assert values(await dev.read())["soc_pct"] == pytest.approx(true_pct, abs=0.1)

    run_site(hospital, winter, body)


def test_a_silent_device_goes_stale_then_comms_lost(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        clock = FakeClock()
        dev = devs.devices["bess1-inverter"]
        dev.clock = clock
        before = await dev.read()
        sim.faults["bess1-inverter"] = Fault(silent=True)
        clock.advance(dev.stale_after_s - 1)
        _assert_stale_copy(await dev.read(), before)
        clock.advance(2)
        lost = await dev.read()
        assert set(lost) == set(before)
        assert all(m.quality is Quality.COMMS_LOST and m.value is None for m in lost.values())
        assert all(m.timestamp.timestamp() == clock.now for m in lost.values())
        del sim.faults["bess1-inverter"]
        assert qualities(await dev.read()) == {Quality.OK}

    run_site(hospital, winter, body)


def test_frozen_registers_read_ok_with_the_values_they_froze_at(hospital: Site, winter: Profiles) -> None:
    """A frozen device is indistinguishable from a quiet one: its old values come back with quality ok.

    Nothing invented: every value is exactly what it showed when it froze, and once it thaws
    it shows the plant again.
    """

    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["bess1-inverter"]
        before = await _baseline(sim, devs)
        sim.faults["bess1-inverter"] = Fault(frozen=True)
        sim.advance(30)
        frozen = await dev.read()
        assert qualities(frozen) == {Quality.OK}
        assert values(frozen) == values(before["bess1-inverter"])
        assert sim.plant.batteries["bess1"].soc * 100 < values(frozen)["soc_pct"] - 0.05  # the plant moved on
        del sim.faults["bess1-inverter"]
        assert_matches_sim(sim, devs, {"bess1-inverter": await dev.read()})

    run_site(hospital, winter, body)


def test_an_offline_device_is_refused_then_reconnects(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["bess1-inverter"]
        before = await _baseline(sim, devs)
        await sim.take_offline("bess1-inverter")
        sim.advance(20)
        for _ in range(2):  # the dropped connection, then connection refused
            snapshot = await devs.read_all()
            _assert_stale_copy(snapshot["bess1-inverter"], before["bess1-inverter"])
            assert all(qualities(snapshot[o]) == {Quality.OK} for o in OTHERS)
        report = await dev.write({"power_setpoint_kw": 20.0, "heartbeat_count": 2})
        assert set(report.refused) == {"power_setpoint_kw", "heartbeat_count"} and not report.written
        await sim.bring_online("bess1-inverter")
        snapshot = await devs.read_all()
        assert qualities(snapshot["bess1-inverter"]) == {Quality.OK}
        assert_matches_sim(sim, devs, snapshot)
        await write_ok(dev, {"power_setpoint_kw": 20.0, "heartbeat_count": 3})  # refused writes were not recorded

    run_site(hospital, winter, body)


def test_ignored_writes_are_reported_as_mismatches(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dev = devs.devices["bess2-inverter"]
        sim.faults["bess2-inverter"] = Fault(ignore_writes=True)
        report = await dev.write({"power_setpoint_kw": 55.0})
        assert report.written == {"power_setpoint_kw": 55.0} and report.mismatches == {"power_setpoint_kw": (55.0, 0.0)}
        sim.advance(5)
        assert sim.plant.batteries["bess2"].power_kw == 0
        assert_matches_sim(sim, devs, {"bess2-inverter": await dev.read()})

    run_site(hospital, winter, body)


GATEWAY_FAULTS = {**FAULTS, "gateway-target-failed-exception-11": Fault(exception=11)}


@pytest.mark.parametrize("fault", GATEWAY_FAULTS.values(), ids=GATEWAY_FAULTS.keys())
def test_a_failing_genset_behind_the_gateway_leaves_the_other_one_readable(
    hospital: Site, winter: Profiles, fault: Fault
) -> None:
    """dg1 and dg2 share one connection (one gateway port, units 1 and 2).

    When dg1 stops answering (silent, late, garbled), its request times out and the shared
    connection is dropped; dg2's request, next in turn, reconnects and is answered: dg2 costs one
    timeout per cycle but its values stay ok and right. An exception from dg1 keeps the
    connection. Either way dg1 reads stale (its last good values), never dg2's values.
    """

    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        dg1, dg2 = devs.devices["dg1-controller"], devs.devices["dg2-controller"]
        await write_ok(dg2, {"run_command": 1, "heartbeat_count": 1})
        sim.advance(40)
        before = await devs.read_all()
        sim.faults["dg1-controller"] = fault
        sim.advance(10)  # dg2 ramps on: its values change
        for _ in range(2):
            started = time.monotonic()
            snapshot = await devs.read_all()
            assert time.monotonic() - started < 3.0
            _assert_stale_copy(snapshot["dg1-controller"], before["dg1-controller"])
            assert dg1.last_error is not None and "unit 1 " in dg1.last_error
            assert qualities(snapshot["dg2-controller"]) == {Quality.OK} and dg2.last_error is None
            assert_matches_sim(sim, devs, {"dg2-controller": snapshot["dg2-controller"]})
            assert snapshot["dg2-controller"]["engine_state"].value == 2
        await write_ok(dg2, {"power_setpoint_kw": 100.0, "heartbeat_count": 2})  # and it takes writes
        assert sim.plant.gensets["dg2"].setpoint_kw == 100.0
        del sim.faults["dg1-controller"]
        snapshot = await devs.read_all()
        assert qualities(snapshot["dg1-controller"]) == {Quality.OK}
        assert_matches_sim(sim, devs, snapshot)

    run_site(hospital, winter, body)


def test_the_gateway_offline_takes_both_gensets(hospital: Site, winter: Profiles) -> None:
    async def body(sim: SimulatedSite, devs: SiteDevices) -> None:
        before = await devs.read_all()
        await sim.take_offline("dg2-controller")
        snapshot = await devs.read_all()
        for unit in ("dg1-controller", "dg2-controller"):
            _assert_stale_copy(snapshot[unit], before[unit])
        assert all(qualities(snapshot[o]) == {Quality.OK} for o in (*OTHERS, "bess1-inverter"))
        await sim.bring_online("dg1-controller")
        snapshot = await devs.read_all()
        assert all(qualities(m) == {Quality.OK} for m in snapshot.values())

    run_site(hospital, winter, body)
