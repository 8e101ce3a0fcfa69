"""``microgrid centre serve`` as a real process: it serves the screen and the API, and refuses bad arguments."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from microgrid.sim.ports import free_ports
from tests.uplink.conftest import AmqttBroker


def test_serve_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    broker = AmqttBroker().start()
    port = free_ports(1)[0]
    args = ["-m", "microgrid", "centre", "serve", f"mqtt://127.0.0.1:{broker.port}/kharkiv"]
    args += ["--db", str(tmp_path / "centre.sqlite"), "--http", f"127.0.0.1:{port}"]
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/islands", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.json() == []
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert (tmp_path / "centre.sqlite").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        broker.stop()


@pytest.mark.parametrize(
    ("args", "said"),
    [(("http://h/kharkiv",), "mqtt://"), (("mqtt://h:1883/kharkiv", "--http", "8080"), "--http")],
)
def test_bad_arguments_exit_2(args: tuple[str, ...], said: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "microgrid", "centre", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and said in done.stderr, done.stderr


def test_emergency_sends_one_valid_command(tmp_path: Path) -> None:
    import json
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from microgrid.uplink.commands import verdict

    broker = AmqttBroker().start()
    got: list[bytes] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="listener")
    client.on_message = lambda c, u, m: got.append(bytes(m.payload))
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", broker.port)
    client.subscribe("kharkiv/commands", qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(5)
        url = f"mqtt://127.0.0.1:{broker.port}/kharkiv"
        base = [sys.executable, "-m", "microgrid", "centre", "emergency"]
        done = subprocess.run(
            [*base, "on", url, "--islands", "hospital-7,pumps-2", "--reason", "cut"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        bad = subprocess.run(
            [*base, "on", url, "--islands", "Bad Id"], capture_output=True, text=True, timeout=60, check=False
        )
        assert bad.returncode == 2 and "not a valid command" in bad.stderr
        deadline = time.monotonic() + 10
        while not got:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        command, why = verdict(got[0], "pumps-2")
        assert why is None and command is not None and command["on"] is True and command["reason"] == "cut"
        assert json.loads(got[0])["islands"] == ["hospital-7", "pumps-2"] and len(got) == 1
    finally:
        client.disconnect()
        client.loop_stop()
        broker.stop()
