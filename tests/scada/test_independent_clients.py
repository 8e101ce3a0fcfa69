"""Clients that share no code with pymodbus: mbpoll (C, libmodbus-free, Debian's package) and a raw socket
written from the Modbus TCP specification. They read the autonomy figure and the SOCs and command
emergency mode, which the next cycle is in, recorded with the client's identity."""

from __future__ import annotations

import asyncio
import re
import shutil
import struct
from pathlib import Path

import pytest

from microgrid.profiles import Profiles
from microgrid.site import Site
from tests.scada.conftest import ScadaRig, raw_request, run_scada


async def mbpoll(port: int, *args: str) -> str:
    """Run mbpoll once against the server (PDU addresses, big-endian words) without blocking the loop."""
    process = await asyncio.create_subprocess_exec(
        "mbpoll", "-m", "tcp", "-a", "1", "-0", "-B", "-1", "-o", "2", "-p", str(port), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


def values(output: str) -> dict[int, int]:
    """mbpoll's ``[address]: value`` lines."""
    return {int(a): int(v) for a, v in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", output, re.MULTILINE)}


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed (apt-get install mbpoll)")
def test_mbpoll_reads_autonomy_and_soc_and_commands_emergency(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    async def body(s: ScadaRig) -> None:
        report = await s.cycle()
        port = s.scada.options.port
        autonomy = values(await mbpoll(port, "-t", "4:int", "-r", "106", "-c", "2", "127.0.0.1"))
        assert report.autonomy is not None and report.estimate is not None
        assert autonomy[106] == round(report.autonomy.critical_h * 100)
        assert autonomy[108] == round(report.autonomy.critical_essential_h * 100)
        socs = values(await mbpoll(port, "-t", "4", "-r", "1000", "127.0.0.1"))
        assert socs[1000] == round(report.estimate.soc["bess1"] * 10000)
        await mbpoll(port, "-t", "4", "-r", "201", "127.0.0.1", "1")  # emergency on
        by = s.store.actions()["by"].tolist()
        assert len(by) == 1 and by[0].startswith("scada:127.0.0.1:")
        report = await s.cycle()
        assert report.emergency.get("active") is True
        assert values(await mbpoll(port, "-t", "4", "-r", "103", "127.0.0.1"))[103] == 1

    run_scada(tcp_hospital, winter, tmp_path, body, writes=True)


def test_a_raw_socket_client_reads_and_writes_by_the_specification(
    tcp_hospital: Site, winter: Profiles, tmp_path: Path
) -> None:
    """Function 03 (read holding registers), 06 (write single), 16 (write multiple) framed by hand; an
    out-of-range write answers function | 0x80 with exception code 03."""

    async def body(s: ScadaRig) -> None:
        report = await s.cycle()
        port = s.scada.options.port

        async def request(pdu: bytes) -> bytes:
            return await asyncio.to_thread(raw_request, port, pdu)

        answer = await request(struct.pack(">BHH", 3, 100, 2))
        assert answer == bytes([3, 4]) + struct.pack(">HH", 1, 1)  # mode auto, source plan
        for unit in (0, 255):  # what gateways send: any unit id answers
            assert await asyncio.to_thread(raw_request, port, struct.pack(">BHH", 3, 100, 2), unit=unit) == answer
        answer = await request(struct.pack(">BHH", 3, 1000, 1))
        assert report.estimate is not None
        assert struct.unpack(">BBH", answer)[2] == round(report.estimate.soc["bess1"] * 10000)
        assert await request(struct.pack(">BHH", 6, 201, 1)) == struct.pack(">BHH", 6, 201, 1)  # echo
        setpoint = struct.pack(">i", -20_000)  # bess1 charges 20 kW (W, big-endian words)
        assert await request(struct.pack(">BHHB", 16, 1006, 2, 4) + setpoint) == struct.pack(">BHH", 16, 1006, 2)
        too_much = struct.pack(">i", -500_000)
        assert await request(struct.pack(">BHHB", 16, 1006, 2, 4) + too_much) == bytes([0x90, 3])
        assert await request(struct.pack(">BHH", 1, 0, 8)) == bytes([0x81, 1])  # coils: not served
        report = await s.cycle()
        assert report.emergency.get("active") is True
        assert report.decision is not None and report.decision.battery_kw["bess1"] == pytest.approx(-20.0)

    run_scada(tcp_hospital, winter, tmp_path, body, writes=True)
