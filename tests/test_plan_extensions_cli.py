"""`microgrid plan --possible-outages` and `--emergency`: the extensions are opt-in in `plan`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from microgrid.cli import app
from tests.conftest import HOSPITAL, WINTER

FAST = ["--mip-gap", "0.05", "--time-limit-s", "3"]


def plan(*args: str) -> tuple[int, dict[str, object] | str]:
    result = CliRunner().invoke(app, ["plan", str(HOSPITAL), "--profiles", str(WINTER), "--json", *FAST, *args])
    try:
        return result.exit_code, json.loads(result.stdout)
    except json.JSONDecodeError:
        return result.exit_code, result.output


def test_plain_plan_has_no_contingency_and_possible_outages_adds_the_schedule_windows() -> None:
    code, plain = plan()
    assert code == 0 and isinstance(plain, dict) and "contingency" not in plain
    code, out = plan("--possible-outages")
    assert code == 0 and isinstance(out, dict)
    windows = out["contingency"]
    assert isinstance(windows, list)
    # queue 3.1 on 2026-01-15: possible 08:00-09:00 and 16:00-17:00 local (UTC+2)
    assert [(w["start"], w["end"]) for w in windows] == [
        ("2026-01-15T06:00:00+00:00", "2026-01-15T07:00:00+00:00"),
        ("2026-01-15T14:00:00+00:00", "2026-01-15T15:00:00+00:00"),
    ]
    assert all(w["tiers"] == ["critical"] and w["shed_kwh"] < 1e-6 for w in windows)


def test_emergency_plans_without_grid_after_the_step_now_and_sheds_no_critical() -> None:
    code, out = plan("--emergency")
    assert code == 0 and isinstance(out, dict)
    cost, shed = out["cost"], out["energy_shed_kwh"]
    assert isinstance(cost, dict) and isinstance(shed, dict)
    # the profiles say the grid is up at step 0 (the step now): usable then, never after
    one_step_at_most = 400 * 0.25 * 2.16  # max_import_kw × Δ × the night price at 00:00
    assert 0.0 < cost["grid"] <= one_step_at_most + 1e-6 and shed["critical"] < 1e-6
    stages = out["emergency_stages"]
    assert isinstance(stages, list) and stages[0]["name"] == "shed priority 1"


def test_possible_outages_without_a_schedule_is_bad_input(tmp_path: Path) -> None:
    raw = yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))
    del raw["grid"]["schedule"]
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = CliRunner().invoke(app, ["plan", str(site), "--profiles", str(WINTER), "--possible-outages"])
    assert result.exit_code == 2 and "no grid.schedule" in result.output
