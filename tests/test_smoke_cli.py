"""The README's main-job command works end to end (a real HiGHS solve)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import HOSPITAL, WINTER


def test_plan_json_prints_the_spec_object() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "microgrid",
            "plan",
            str(HOSPITAL),
            "--profiles",
            str(WINTER),
            "--json",
            "--mip-gap",
            "0.01",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "optimal"
    assert out["steps"] == 96 and out["step_hours"] == 0.25
    assert out["mip_gap"] <= 0.01
    assert abs(out["objective"] - out["cost"]["total"]) < 1e-6
