"""``microgrid run --publish``: the real command against the simulated hospital (Modbus TCP) and a real broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import WINTER
from tests.test_operate_cli import _cli, simulator, site_file  # noqa: F401 - fixtures
from tests.uplink.conftest import AmqttBroker, Centre, wait_until
from tests.uplink.test_payloads import SCHEMAS


@pytest.mark.slow
def test_run_once_publishes_the_cycle(site_file: Path, simulator: object, tmp_path: Path) -> None:  # noqa: F811
    broker = AmqttBroker().start()
    centre = Centre(broker.port)
    try:
        store = tmp_path / "history.sqlite"
        url = f"mqtt://127.0.0.1:{broker.port}/kharkiv"
        args = ("run", site_file, "--profiles", WINTER, "--once", "--store", store, "--publish", url)
        done = _cli(*args, "--island-kind", "hospital")
        assert done.returncode == 0, done.stderr
        wait_until(lambda: bool(centre.of("cycle")), what="the cycle")
        status = centre.of("status")[-1]
        SCHEMAS["status"].validate(status)
        assert (status["island"], status["kind"], status["seq"]) == ("hospital-no-7-energy-island", "hospital", 1)
        assert status["position"] == {"latitude": 49.99, "longitude": 36.23}
        assert [p["online"] for p in centre.of("online")] == [True, False]
    finally:
        centre.close()
        broker.stop()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--publish", "http://h/kharkiv"), "mqtt://"),
        (("--publish", "mqtt://127.0.0.1:1/kharkiv", "--island-kind", "castle"), "--island-kind"),
        (("--publish", "mqtt://127.0.0.1:1/kharkiv", "--island-id", "Bad Id"), "island id"),
        (("--island-id", "h7"), "--island-id needs --publish"),
    ],
)
def test_bad_publish_options_exit_2(site_file: Path, args: tuple[str, ...], said: str) -> None:  # noqa: F811
    done = _cli("run", site_file, "--once", *args)
    assert done.returncode == 2 and said in done.stderr, done.stderr
