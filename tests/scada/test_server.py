"""The SCADA server over real TCP on 127.0.0.1, in front of a controller driving the simulated hospital.

Reads come from the last cycle's snapshot; commands go the way of `microgrid override` (queued in the
store with the client's identity, applied at the next cycle), are refused without --scada-writes
(exception 01) or out of range (03, nothing queued); an address outside the allowlist is closed; the
watchdog returns a SCADA-held manual island to auto.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from pathlib import Path

import pytest

from microgrid.control import Mode
from microgrid.control.alarms import event_alarms
from microgrid.profiles import Profiles
from microgrid.site import Site
from tests.control.conftest import Optimizer, synthetic_plan
from tests.scada.conftest import ScadaRig, run_scada, s32

AUTONOMY, ALARMS, CYCLES, EMERGENCY_CMD = 106, 110, 115, 201


def test_identity_and_status_come_from_the_last_cycle(tcp_hospital: Site, winter: Profiles, tmp_path: Path) -> None:
    async def body(s: ScadaRig) -> None:
        assert await s.read(100) == [0xFFFF]  # no cycle yet: the mode is unknown
        report = await s.cycle()
        identity = await s.read(0, 80)
        assert identity[0] == 1
        text = b"".join(w.to_bytes(2, "big") for w in identity[41:73]).rstrip(b"\0").decode()
        assert text == tcp_hospital.site.name
        mode, source, reason, emergency, grid, _schedule = await s.read(100, 6)
        assert (mode, source, reason, emergency, grid) == (1, 1, 0, 0, 1)  # auto, plan, no fallback, grid up
        assert await s.read_u32(CYCLES) == 1
        assert report.autonomy is not None
        assert await s.read_u32(AUTONOMY) == round(report.autonomy.critical_h * 100)
        assert report.estimate is not None
        for n, bat in enumerate(("bess1", "bess2")):
            (soc,) = await s.read(1000 + 20 * n)
            assert soc == round(report.estimate.soc[bat] * 10000)  # 0.01 %
            assert report.decision is not None
            assert await s.read_s32(1003 + 20 * n) == round(report.decision.battery_kw[bat] * 1000)  # W
        assert await s.read(1506) == [1]  # the critical tier's relay is closed

    run_scada(tcp_hospital, winter, tmp_path, body)


def test_emergency_written_by_scada_is_in_force_at_the_next_cycle_with_its_identity(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    async def body(s: ScadaRig) -> None:
        await s.cycle()
        response = await s.write(EMERGENCY_CMD, [1])
        assert not response.isError(), response
        assert await s.read(EMERGENCY_CMD) == [1]  # reads back the value accepted
        actions = s.store.actions()
        port = s.client.ctx.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        assert actions[["action", "by"]].values.tolist() == [["emergency", f"scada:127.0.0.1:{port}"]]
        report = await s.cycle()
        assert report.emergency.get("active") is True
        assert await s.read(103) == [1]
        events = s.store.events()["message"].tolist()
        assert any(m.startswith(f"operator emergency by scada:127.0.0.1:{port}:") for m in events), events
        assert (await s.read_u32(ALARMS)) & 1  # bit 0: emergency mode

    run_scada(tcp_hospital, winter, tmp_path, body, writes=True)


def test_every_write_is_refused_without_scada_writes(tcp_hospital: Site, winter: Profiles, tmp_path: Path) -> None:
    async def body(s: ScadaRig) -> None:
        await s.cycle()
        for address, words in ((EMERGENCY_CMD, [1]), (200, [3]), (1006, s32(-10_000)), (203, [5])):
            response = await s.write(address, words)
            assert response.isError() and response.exception_code == 1, (address, response)
        assert s.store.actions().empty
        assert len(s.scada.refused) == 4
        report = await s.cycle()
        assert report.mode is Mode.AUTO and not report.emergency.get("active")

    run_scada(tcp_hospital, winter, tmp_path, body)


def test_out_of_range_is_exception_3_and_nothing_is_applied(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    """bess1 takes −125 … 125 kW; a genset 0 or 60 … 200 kW; the critical tier is never switched off."""

    async def body(s: ScadaRig) -> None:
        await s.cycle()
        refused = [
            (1006, s32(-126_000)),  # bess1 beyond its charge limit
            (1207, [0, 30_000]),  # dg1 at 30 kW: below its minimum, not a stop
            (1507, [0]),  # the critical tier off
            (200, [4]),  # dry-run is not a mode SCADA may ask for
            (201, [2]),  # emergency is 0 or 1
        ]
        for address, words in refused:
            response = await s.write(address, words)
            assert response.isError() and response.exception_code == 3, (address, response)
        assert s.store.actions().empty
        response = await s.write(100, [2])  # a status point
        assert response.isError() and response.exception_code == 2
        response = await s.write(1007, [0])  # half of bess1's 2-register setpoint
        assert response.isError() and response.exception_code == 2
        report = await s.cycle()
        assert report.mode is Mode.AUTO and report.source == "plan"

    run_scada(tcp_hospital, winter, tmp_path, body, writes=True)


def test_manual_setpoints_accumulate_and_go_through_the_safety_layer(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    async def body(s: ScadaRig) -> None:
        await s.cycle()
        assert not (await s.write(1006, s32(-40_000))).isError()  # bess1 charges 40 kW
        assert not (await s.write(1026, s32(30_000))).isError()  # bess2 discharges 30 kW
        report = await s.cycle()
        assert report.mode is Mode.MANUAL
        assert report.decision is not None
        assert report.decision.battery_kw == pytest.approx({"bess1": -40.0, "bess2": 30.0})
        assert report.manual == {"battery_kw": {"bess1": -40.0, "bess2": 30.0}}
        assert await s.read(101) == [4]  # setpoint source manual

    run_scada(tcp_hospital, winter, tmp_path, body, writes=True)


def test_an_address_outside_the_allowlist_is_closed(tcp_hospital: Site, winter: Profiles, tmp_path: Path) -> None:
    """Only 10.0.0.0/8 may connect: a client on 127.0.0.1 is closed at once (logged), before any request."""

    async def body(s: ScadaRig) -> None:
        answer = await asyncio.to_thread(closed_after_request, s.scada.options.port)
        assert answer == b""
        assert [(address, "allowlist" in why) for address, why in s.scada.closed][-1] == ("127.0.0.1", True)

    run_scada(tcp_hospital, winter, tmp_path, body, allow=(ipaddress.ip_network("10.0.0.0/8"),))


def closed_after_request(port: int) -> bytes:
    """What a raw socket gets back for a read request (b"": the server closed the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        try:
            sock.sendall(bytes([0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1]))
            return sock.recv(64)
        except ConnectionResetError:
            return b""


def test_the_watchdog_returns_a_scada_held_island_to_auto(tcp_hospital: Site, winter: Profiles, tmp_path: Path) -> None:
    """SCADA takes manual and beats for a while, then stops: after timeout_s (30 s on the test's clock) a
    'mode auto' action by scada-watchdog is queued, applied at the next cycle, and alarm bit 5 latched
    until acknowledged."""
    now = [0.0]

    async def body(s: ScadaRig) -> None:
        await s.cycle()
        assert not (await s.write(200, [2])).isError()  # mode manual
        report = await s.cycle()
        assert report.mode is Mode.MANUAL
        for beat in range(1, 4):  # a heartbeat every 20 s keeps it
            now[0] += 20.0
            assert not (await s.write(203, [beat])).isError()
            await asyncio.sleep(1.1)  # the watchdog looks every second
        assert not s.scada.check_watchdog()
        now[0] += 31.0
        deadline = time.monotonic() + 10  # the watchdog looks every second, in the server's thread
        while not (by := s.store.actions()["by"].tolist())[-1].startswith("scada-watchdog"):
            assert time.monotonic() < deadline, by
            await asyncio.sleep(0.1)
        report = await s.cycle()
        assert report.mode is Mode.AUTO
        alarms = await s.read_u32(ALARMS)
        assert alarms & (1 << 5)
        (shown,) = event_alarms(s.store.last_event("scada"))  # what `microgrid status` lists
        assert shown.startswith("scada: SCADA watchdog: no heartbeat for 31 s")
        assert not (await s.write(202, [1])).isError()  # acknowledge
        assert not (await s.read_u32(ALARMS)) & (1 << 5)
        assert event_alarms(s.store.last_event("scada")) == []

    run_scada(tcp_hospital, winter, tmp_path, body, writes=True, timeout_s=30.0, clock=lambda: now[0])


def test_reads_are_answered_while_the_solver_runs(tcp_hospital: Site, winter: Profiles, tmp_path: Path) -> None:
    """A solve of 1.5 s in its worker thread: reads meanwhile answer at once, from the previous cycle."""

    def slow(inputs: object) -> object:
        time.sleep(1.5)
        return synthetic_plan(inputs)  # type: ignore[arg-type]

    async def body(s: ScadaRig) -> None:
        await s.cycle()
        cycle = asyncio.create_task(s.cycle())
        await asyncio.sleep(0.3)  # the solve is running
        latencies = []
        for _ in range(10):
            started = time.perf_counter()
            assert await s.read_u32(CYCLES) == 1
            latencies.append(time.perf_counter() - started)
        assert not cycle.done()
        assert max(latencies) < 0.2, latencies
        await cycle
        assert await s.read_u32(CYCLES) == 2

    run_scada(tcp_hospital, winter, tmp_path, body, optimizer=Optimizer("stub", slow))


def test_writes_beyond_the_rate_limit_get_exception_6_and_are_logged(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A burst of 3 at 0.5 writes/s: the fourth write at once is refused busy; two seconds later one more passes."""
    now = [0.0]

    async def body(s: ScadaRig) -> None:
        codes = [(await s.write(203, [beat])).exception_code for beat in range(1, 5)]
        assert codes == [0, 0, 0, 6]  # 0: no exception
        now[0] += 2.0
        assert not (await s.write(203, [9])).isError()
        assert [code for _, code, _ in s.scada.refused] == [6]
        assert "SCADA write refused (exception 06)" in caplog.text
        assert s.store.actions().empty  # heartbeats are the server's own

    with caplog.at_level("WARNING", logger="microgrid.scada"):
        run_scada(tcp_hospital, winter, tmp_path, body, writes=True, rate_per_s=0.5, burst=3, clock=lambda: now[0])


def test_the_watchdog_stands_down_when_an_operator_took_the_island_out_of_manual(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    now = [0.0]

    async def body(s: ScadaRig) -> None:
        await s.cycle()
        assert not (await s.write(200, [2])).isError()  # SCADA: manual
        assert (await s.cycle()).mode is Mode.MANUAL
        s.store.add_action("mode", {"mode": "safe"}, by="duty engineer")  # `microgrid override --mode safe`
        assert (await s.cycle()).mode is Mode.SAFE
        now[0] += 120.0  # SCADA silent far beyond its timeout
        await asyncio.sleep(1.2)
        assert not s.scada.check_watchdog()
        assert s.store.actions()["by"].tolist()[-1] == "duty engineer"  # no watchdog action
        assert not (await s.read_u32(ALARMS)) & (1 << 5)

    run_scada(tcp_hospital, winter, tmp_path, body, writes=True, timeout_s=30.0, clock=lambda: now[0])


def test_a_manual_request_written_while_a_cycle_runs_is_still_watched(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    """SCADA asks for manual while a cycle solves: that cycle ends in auto (it applied its actions before the
    write), the next one applies manual, and the watchdog still guards it: SCADA silent for its timeout, back
    to auto. (The watchdog must not take the first cycle's auto for someone else leaving manual.)"""
    now, slow = [0.0], [False]

    def solve(inputs: object) -> object:
        if slow[0]:
            time.sleep(1.0)
        return synthetic_plan(inputs)  # type: ignore[arg-type]

    async def body(s: ScadaRig) -> None:
        await s.cycle()
        slow[0] = True
        cycle = asyncio.create_task(s.cycle())
        await asyncio.sleep(0.4)  # the cycle has applied its actions; its solve runs
        assert not (await s.write(200, [2])).isError()  # SCADA: manual
        assert (await cycle).mode is Mode.AUTO  # not yet: the request is for the next cycle
        slow[0] = False
        await asyncio.sleep(1.2)  # the server thread's watchdog looks at the cycle just published
        assert s.scada.commands.holding
        assert (await s.cycle()).mode is Mode.MANUAL
        now[0] += 31.0  # SCADA silent beyond its timeout
        deadline = time.monotonic() + 10
        while not (by := s.store.actions()["by"].tolist())[-1].startswith("scada-watchdog"):
            assert time.monotonic() < deadline, by
            await asyncio.sleep(0.1)
        assert (await s.cycle()).mode is Mode.AUTO

    run_scada(
        tcp_hospital,
        winter,
        tmp_path,
        body,
        optimizer=Optimizer("stub", solve),
        writes=True,
        timeout_s=30.0,
        clock=lambda: now[0],
    )


def test_setpoints_from_before_an_operator_left_manual_are_not_sent_again(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    """SCADA sets bess1, an operator returns the island to auto (SCADA holds nothing now); SCADA's next
    setpoint (bess2) is all it asks for: bess1's old setpoint is not re-applied behind the operator's back."""

    async def body(s: ScadaRig) -> None:
        await s.cycle()
        assert not (await s.write(1006, s32(-40_000))).isError()  # SCADA: bess1 charges 40 kW
        assert (await s.cycle()).mode is Mode.MANUAL
        s.store.add_action("mode", {"mode": "auto"}, by="duty engineer")  # `microgrid override --mode auto`
        assert (await s.cycle()).mode is Mode.AUTO
        s.scada.check_watchdog()  # SCADA no longer holds the island
        assert not s.scada.commands.holding
        assert not (await s.write(1026, s32(30_000))).isError()  # SCADA: bess2 discharges 30 kW
        report = await s.cycle()
        assert report.mode is Mode.MANUAL
        assert report.manual == {"battery_kw": {"bess2": 30.0}}

    run_scada(tcp_hospital, winter, tmp_path, body, writes=True)


def test_a_dry_run_controller_refuses_what_it_cannot_apply(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    """A controller in dry-run drives nothing and the runner refuses modes and setpoints: SCADA hears so at
    once (exception 01, nothing queued) instead of an acknowledgement for a command never applied. Emergency
    mode is planning only and is still taken."""

    async def body(s: ScadaRig) -> None:
        s.rig.ctl.mode = Mode.DRY_RUN  # `microgrid run --dry-run`
        await s.cycle()
        for address, words in ((200, [2]), (1006, s32(-40_000)), (1507, [1])):
            answer = await s.write(address, words)
            assert answer.isError() and answer.exception_code == 1, (address, answer)
        assert s.store.actions().empty
        assert "dry-run" in s.scada.refused[-1][2]
        assert not (await s.write(EMERGENCY_CMD, [1])).isError()
        report = await s.cycle()
        assert report.mode is Mode.DRY_RUN and report.emergency.get("active") is True

    run_scada(tcp_hospital, winter, tmp_path, body, writes=True)


def test_a_restart_keeps_watching_the_manual_scada_held(tcp_hospital: Site, winter: Profiles, tmp_path: Path) -> None:
    """SCADA takes manual with a battery setpoint, then the controller restarts: it resumes manual and the new
    server holds it for SCADA. No heartbeat for timeout_s from the server's start: back to auto, alarm bit 5."""
    now = [0.0]

    async def before(s: ScadaRig) -> None:
        await s.cycle()
        assert not (await s.write(1006, s32(-10_000))).isError()  # bess1 charges 10 kW: manual
        assert (await s.cycle()).mode is Mode.MANUAL

    async def after(s: ScadaRig) -> None:
        assert s.runner.controller.mode is Mode.MANUAL  # resumed
        assert s.scada.commands.holding
        assert s.scada.commands.manual == {"battery_kw": {"bess1": -10.0}}  # SCADA's next setpoint adds to it
        assert (await s.cycle()).mode is Mode.MANUAL
        now[0] += 29.0
        assert not s.scada.check_watchdog()  # the timeout runs from the server's start
        now[0] += 2.0
        deadline = time.monotonic() + 10  # the watchdog looks every second, in the server's thread
        while not (by := s.store.actions()["by"].tolist())[-1].startswith("scada-watchdog"):
            assert time.monotonic() < deadline, by
            await asyncio.sleep(0.1)
        assert (await s.cycle()).mode is Mode.AUTO
        assert await s.read_u32(ALARMS) & (1 << 5)

    run_scada(tcp_hospital, winter, tmp_path, before, writes=True)
    run_scada(tcp_hospital, winter, tmp_path, after, writes=True, timeout_s=30.0, clock=lambda: now[0], resume=True)


def test_a_restart_does_not_hand_an_operators_manual_to_the_watchdog(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    """Manual last asked for by an operator (`microgrid override`), not SCADA: after a restart nobody watches."""

    async def before(s: ScadaRig) -> None:
        await s.cycle()
        s.store.add_action("mode", {"mode": "manual"}, by="alice")
        assert (await s.cycle()).mode is Mode.MANUAL

    async def after(s: ScadaRig) -> None:
        assert s.runner.controller.mode is Mode.MANUAL
        assert not s.scada.commands.holding

    run_scada(tcp_hospital, winter, tmp_path, before, writes=True)
    run_scada(tcp_hospital, winter, tmp_path, after, writes=True, resume=True)


def test_a_write_the_store_fails_part_way_queues_nothing(tcp_hospital: Site, winter: Profiles, tmp_path: Path) -> None:
    """Function 16 over mode_request and emergency_command: the store refuses the second insert (an SQLite
    trigger), so the write gets exception 04 and the mode action queued before it is not left behind."""

    async def body(s: ScadaRig) -> None:
        await s.cycle()
        s.store._open().execute(  # a store failing part-way: only the emergency action cannot be inserted
            "CREATE TRIGGER no_emergency BEFORE INSERT ON actions WHEN NEW.action = 'emergency'"
            " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        response = await s.write(200, [3, 1])  # mode safe + emergency on
        assert response.isError() and response.exception_code == 4
        assert s.store.actions().empty
        assert (await s.cycle()).mode is Mode.AUTO

    run_scada(tcp_hospital, winter, tmp_path, body, writes=True)


def test_a_write_of_the_whole_command_block_with_acknowledge_0_is_taken(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    """Function 16 over 200…203 (mode auto, emergency off, acknowledge 0, heartbeat): accepted, and
    acknowledge 0 clears nothing; a later 1 does."""

    async def body(s: ScadaRig) -> None:
        await s.cycle()
        s.scada.latched = 1 << 5  # as the watchdog latches it
        response = await s.write(200, [1, 0, 0, 7])
        assert not response.isError(), response
        assert s.store.actions()["action"].tolist() == ["mode", "emergency"]
        assert await s.read_u32(ALARMS) & (1 << 5)
        assert not (await s.write(202, [1])).isError()
        assert not (await s.read_u32(ALARMS)) & (1 << 5)

    run_scada(tcp_hospital, winter, tmp_path, body, writes=True)
