"""`microgrid scada-map`, the `--scada*` options refused at entry, and `microgrid run --scada` end to end:
a `microgrid sim` subprocess serves the hospital, a `microgrid run --scada` subprocess drives it and serves
SCADA; a pymodbus client reads the mode and commands emergency mode, which a later cycle is in."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymodbus.client import ModbusTcpClient
from typer.testing import CliRunner

from microgrid.cli import app
from microgrid.sim.ports import free_ports
from tests.conftest import HOSPITAL, ROOT, WINTER


def cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "microgrid", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def test_scada_map_prints_the_committed_point_list() -> None:
    shown = CliRunner().invoke(app, ["scada-map", str(HOSPITAL), "--format", "csv"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == (ROOT / "docs" / "scada-points.csv").read_text(encoding="utf-8")
    assert CliRunner().invoke(app, ["scada-map", str(HOSPITAL), "--format", "xml"]).exit_code == 2


@pytest.mark.parametrize(
    ("options", "why"),
    [
        (["--scada", "1502"], "HOST:PORT"),
        (["--scada", "127.0.0.1:99999"], "HOST:PORT"),
        (["--scada-writes"], "need --scada HOST:PORT"),
        (["--scada", "127.0.0.1:1502", "--scada-allow", "10.0.0.300/8"], "10.0.0.300/8"),
        (["--scada", "127.0.0.1:1502", "--scada-tls", "/nonexistent"], "server.crt"),
        (["--scada", "127.0.0.1:1502", "--once"], "leave out --once"),
    ],
)
def test_bad_scada_options_exit_2_before_anything_starts(
    options: list[str], why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = CliRunner().invoke(app, ["run", str(HOSPITAL), *options, "--store", str(tmp_path / "h.sqlite")])
    assert refused.exit_code == 2, refused.output
    assert why in refused.output + capsys.readouterr().err
    assert not (tmp_path / "h.sqlite").exists()


@pytest.fixture
def site_file(tmp_path: Path) -> Path:
    raw: dict[str, Any] = yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))
    old = sorted({d["port"] for d in raw["devices"]})
    new = dict(zip(old, free_ports(len(old)), strict=True))
    for device in raw["devices"]:
        device["port"] = new[device["port"]]
    raw["control"] = {"interval": "10s", "horizon": "10min", "mip_gap": 0.05, "time_limit_s": 2}
    path = tmp_path / "hospital-fast.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.fixture
def simulator(site_file: Path) -> Iterator[None]:
    command = [sys.executable, "-m", "microgrid", "sim", str(site_file), "--profiles", str(WINTER), "--speed", "10"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while cli("read", site_file, "--device", "grid-meter", "--json", timeout=30).returncode != 0:
        assert time.monotonic() < deadline, "the simulator did not come up"
        time.sleep(0.5)
    yield
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


def summaries(store: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'cycles'").fetchone():
            return []
        return [json.loads(row[0]) for row in db.execute("SELECT summary FROM cycles ORDER BY id")]


def wait_for(condition: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)
    return result


@pytest.mark.slow
def test_run_with_scada_serves_status_and_takes_emergency(site_file: Path, simulator: None, tmp_path: Path) -> None:
    store, port = tmp_path / "history.sqlite", free_ports(1)[0]
    args = ["run", site_file, "--profiles", WINTER, "--store", store, "--scada", f"127.0.0.1:{port}", "--scada-writes"]
    run = subprocess.Popen(
        [sys.executable, "-m", "microgrid", *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    try:
        wait_for(lambda: store.exists() and summaries(store), 60)
        assert client.connect()
        mode = wait_for(lambda: client.read_holding_registers(100, count=1, device_id=1).registers[0] != 0xFFFF, 20)
        assert mode
        assert client.read_holding_registers(100, count=1, device_id=1).registers == [1]  # auto
        assert not client.write_register(201, 1, device_id=1).isError()  # emergency on
        wait_for(lambda: (summaries(store)[-1].get("emergency") or {}).get("active"), 40)
        assert client.read_holding_registers(103, count=1, device_id=1).registers == [1]
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            by, status = db.execute("SELECT by, status FROM actions").fetchone()
        assert by.startswith("scada:127.0.0.1:") and status == "applied"
    finally:
        client.close()
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr.decode()
