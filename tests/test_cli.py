"""The ``microgrid`` command in a subprocess: exit codes 0/2/3, stdout holding nothing but the
JSON object with ``--json``, the plan CSV of ``--out``, messages on stderr."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from microgrid.site import read_site
from tests.conftest import HOSPITAL, STATE, WINTER

FAST = ("--mip-gap", "0.01")


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def microgrid(*args: str | Path) -> Run:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MICROGRID_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "microgrid", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def assert_clean(run: Run) -> None:
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr


def only_json_object(stdout: str) -> dict[str, Any]:
    """stdout is exactly one JSON object (and a newline), nothing else."""
    decoder = json.JSONDecoder()
    obj, end = decoder.raw_decode(stdout)
    assert stdout[end:].strip() == "", f"extra output after the JSON object: {stdout[end:]!r}"
    assert isinstance(obj, dict)
    return obj


def write_yaml(path: Path, raw: Any) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def hospital_raw() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))
    return raw


# -- the commands run, all at once (each starts a Python; two solve the hospital) ------------

Args = list[str | Path]


def _plan_json(tmp: Path) -> Args:
    return ["plan", HOSPITAL, "--profiles", WINTER, "--state", STATE, "--out", tmp / "plan.csv", "--json", *FAST]


def _plan_human(tmp: Path) -> Args:
    return ["plan", HOSPITAL, "--profiles", WINTER, "--out", tmp / "plan.csv", *FAST]


def _bad_site(tmp: Path) -> Args:
    raw = hospital_raw()
    raw["batteries"][0]["soc_min"] = 0.99
    return ["plan", write_yaml(tmp / "site.yaml", raw), "--profiles", WINTER, "--json", *FAST]


def _bad_profiles_csv(tmp: Path) -> Path:
    path = tmp / "profiles.csv"
    path.write_text(WINTER.read_text(encoding="utf-8").replace(",90.3,", ",-90.3,", 1), encoding="utf-8")
    return path


def _bad_profiles(tmp: Path) -> Args:
    return ["plan", HOSPITAL, "--profiles", _bad_profiles_csv(tmp), "--json", *FAST]


def _bad_state(tmp: Path) -> Args:
    path = tmp / "state.json"
    path.write_text('{"batteries": {"bess1": {"soc": 1.5}}}', encoding="utf-8")
    return ["plan", HOSPITAL, "--profiles", WINTER, "--state", path, *FAST]


def _broken_json_state(tmp: Path) -> Args:
    path = tmp / "state.json"
    path.write_text('{"batteries": \n', encoding="utf-8")
    return ["plan", HOSPITAL, "--profiles", WINTER, "--state", path, "--json", *FAST]


def _missing_site(tmp: Path) -> Args:
    return ["plan", tmp / "nope.yaml", "--profiles", WINTER, *FAST]


def _missing_profiles(tmp: Path) -> Args:
    return ["plan", HOSPITAL, "--profiles", tmp / "nope.csv", "--json", *FAST]


def _yaml_syntax(tmp: Path) -> Args:
    path = tmp / "site.yaml"
    path.write_text("site:\n  name: [x\n", encoding="utf-8")
    return ["plan", path, "--profiles", WINTER, *FAST]


def _bad_gap(tmp: Path) -> Args:
    return ["plan", HOSPITAL, "--profiles", WINTER, "--mip-gap", "2", "--json"]


def _infeasible(tmp: Path) -> Args:
    """A genset that must stay on (its min up time not served) at ≥ 80 kW for a 5 kW load,
    with no battery and no grid to take the rest."""
    site = {
        "site": {"name": "stuck genset", "timezone": "UTC"},
        "generators": [
            {
                "id": "g1",
                "fuel": "diesel",
                "max_kw": 100,
                "min_kw": 80,
                "fuel_per_kwh": 0.3,
                "fuel_per_hour_running": 1,
                "min_up_h": 2,
                "initial_on": True,
                "initial_hours_in_state": 0.5,
            }
        ],
        "fuels": {"diesel": {"unit": "l", "price_per_unit": 60}},
        "loads": [{"id": "base", "priority": 1, "value_of_lost_load_per_kwh": 100}],
    }
    profiles = tmp / "profiles.csv"
    profiles.write_text(
        "timestamp,load.base\n" + "".join(f"2026-01-01T00:{m:02d}:00+00:00,5\n" for m in (0, 15, 30, 45)),
        encoding="utf-8",
    )
    return ["plan", write_yaml(tmp / "site.yaml", site), "--profiles", profiles, "--json"]


def _help(tmp: Path) -> Args:
    return ["plan", "--help"]


def _validate_ok(tmp: Path) -> Args:
    return ["validate", HOSPITAL]


def _validate_all_ok(tmp: Path) -> Args:
    return ["validate", HOSPITAL, "--profiles", WINTER, "--state", STATE]


EVERY_PROBLEM = [
    "colour",
    "batteries[1].charge_efficiency",
    "generators[0].min_kw",
    "generators[1].fuel",
    "pv[0].id",
    "control.horizon",
    "loads[0].value_of_lost_load_per_kwh",
    "devices[4].asset",  # the PV inverter's array lost its id 'roof' above
]


def _validate_many(tmp: Path) -> Args:
    raw = hospital_raw()
    raw["colour"] = "red"
    raw["batteries"][1]["charge_efficiency"] = 1.5
    raw["generators"][0]["min_kw"] = 500
    raw["generators"][1]["fuel"] = "petrol"
    raw["pv"][0]["id"] = "bess1"
    raw["control"]["horizon"] = "25min"
    raw["loads"][0]["value_of_lost_load_per_kwh"] = 1
    return ["validate", write_yaml(tmp / "site.yaml", raw)]


def _validate_profiles(tmp: Path) -> Args:
    return ["validate", HOSPITAL, "--profiles", _bad_profiles_csv(tmp), "--state", STATE]


def _validate_markup(tmp: Path) -> Args:
    raw = hospital_raw()
    raw["site"]["timezone"] = "[/bold]"
    raw["batteries"][0]["[red]x"] = 1
    return ["validate", write_yaml(tmp / "[site].yaml", raw)]


COMMANDS: dict[str, Callable[[Path], Args]] = {
    "plan-json": _plan_json,
    "plan-human": _plan_human,
    "bad-site": _bad_site,
    "bad-profiles": _bad_profiles,
    "bad-state": _bad_state,
    "broken-json-state": _broken_json_state,
    "missing-site": _missing_site,
    "missing-profiles": _missing_profiles,
    "yaml-syntax": _yaml_syntax,
    "bad-gap": _bad_gap,
    "infeasible": _infeasible,
    "help": _help,
    "validate-ok": _validate_ok,
    "validate-all-ok": _validate_all_ok,
    "validate-many": _validate_many,
    "validate-profiles": _validate_profiles,
    "validate-markup": _validate_markup,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Run, Path]]:
    """Every command of COMMANDS, run concurrently: name → (result, its directory)."""
    dirs = {name: tmp_path_factory.mktemp(name) for name in COMMANDS}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(microgrid, *make(dirs[name])) for name, make in COMMANDS.items()}
        return {name: (future.result(), dirs[name]) for name, future in futures.items()}


# -- plan: exit 0 -------------------------------------------------------------------------------


def test_plan_exits_0_and_prints_only_the_json_object(runs: dict[str, tuple[Run, Path]]) -> None:
    run, _ = runs["plan-json"]
    assert run.code == 0, run.stderr
    assert_clean(run)
    out = only_json_object(run.stdout)
    assert out["status"] == "optimal"
    for key in ("objective", "mip_gap", "solve_seconds", "step_hours"):
        assert type(out[key]) is float, (key, out[key])
    assert type(out["steps"]) is int
    assert out["steps"] == 96 and out["step_hours"] == 0.25
    assert 0 <= out["mip_gap"] <= 0.01 and out["solve_seconds"] >= 0


def test_plan_csv_has_the_spec_columns(runs: dict[str, tuple[Run, Path]]) -> None:
    run, tmp = runs["plan-json"]
    assert run.code == 0, run.stderr
    site = read_site(HOSPITAL)
    with (tmp / "plan.csv").open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    expected = (
        [f"battery.{b.id}.{k}" for b in site.batteries for k in ("charge_kw", "discharge_kw", "soc")]
        + [f"generator.{g.id}.{k}" for g in site.generators for k in ("kw", "on", "fuel")]
        + [f"pv.{a.id}.kw" for a in site.pv]
        + [f"load.{t.id}.{k}" for t in site.loads for k in ("served_kw", "shed_kw")]
        + ["grid.import_kw", "grid.export_kw"]
    )
    assert header[0] == "timestamp"
    assert len(header) == len(set(header))
    assert set(header[1:]) == set(expected)
    assert len(rows) == 96 and all(len(r) == len(header) for r in rows)
    for row in rows:
        values = dict(zip(header[1:], map(float, row[1:]), strict=True))
        assert all(v >= -1e-6 for v in values.values())  # every power ≥ 0, its direction in its name
        assert all(values[f"generator.{g.id}.on"] in (0.0, 1.0) for g in site.generators)
        assert all(-1e-6 <= values[f"battery.{b.id}.soc"] <= 1 + 1e-6 for b in site.batteries)


def test_plan_csv_timestamps_round_trip(runs: dict[str, tuple[Run, Path]]) -> None:
    _, tmp = runs["plan-json"]
    with (tmp / "plan.csv").open(newline="", encoding="utf-8") as f:
        planned = [r["timestamp"] for r in csv.DictReader(f)]
    with WINTER.open(newline="", encoding="utf-8") as f:
        forecast = [r["timestamp"] for r in csv.DictReader(f)]
    assert [datetime.fromisoformat(t) for t in planned] == [datetime.fromisoformat(t) for t in forecast]
    assert planned == forecast  # the same local time and offset (the site is in Kyiv, like the forecast)


def test_plan_without_json_prints_a_summary(runs: dict[str, tuple[Run, Path]]) -> None:
    run, tmp = runs["plan-human"]
    assert run.code == 0, run.stderr
    assert_clean(run)
    text = re.sub(r"\s+", " ", run.stdout)
    for fragment in ("Hospital No. 7", "status optimal", "Cost (UAH)", "shed critical", "fuel burnt: diesel"):
        assert fragment in text, fragment
    assert "plan written to" in text and (tmp / "plan.csv").is_file()
    with pytest.raises(ValueError):
        json.loads(run.stdout)


# -- bad input: exit 2, the message on stderr, nothing on stdout -----------------------------

BAD: dict[str, tuple[str, ...]] = {
    "bad-site": ("site.yaml", "batteries[0].soc_min", "< soc_max"),
    "bad-profiles": ("profiles.csv", "line 2, column 'load.critical'", "≥ 0"),
    "bad-state": ("state.json", "batteries.bess1.soc", "1.5"),
    "broken-json-state": ("state.json", "line 2, column 1", "not valid JSON"),
    "missing-site": ("nope.yaml", "cannot read file"),
    "missing-profiles": ("nope.csv", "cannot read file"),
    "yaml-syntax": ("site.yaml", "line 3, column 1"),
    "validate-profiles": ("profiles.csv", "line 2, column 'load.critical'"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_exits_2_with_the_message_on_stderr(runs: dict[str, tuple[Run, Path]], name: str) -> None:
    run, _ = runs[name]
    assert run.code == 2, (run.stdout, run.stderr)
    assert run.stdout == ""
    assert_clean(run)
    assert run.stderr.startswith("error:")
    for fragment in BAD[name]:
        assert fragment in run.stderr, (fragment, run.stderr)


def test_bad_option_exits_2(runs: dict[str, tuple[Run, Path]]) -> None:
    run, _ = runs["bad-gap"]
    assert run.code == 2 and run.stdout == "" and "--mip-gap" in run.stderr
    assert_clean(run)


# -- no feasible plan: exit 3 -----------------------------------------------------------------


def test_infeasible_plan_exits_3(runs: dict[str, tuple[Run, Path]]) -> None:
    run, _ = runs["infeasible"]
    assert run.code == 3, (run.stdout, run.stderr)
    assert_clean(run)
    assert only_json_object(run.stdout)["status"] == "infeasible"
    assert "infeasible" in run.stderr


# -- help and validate ------------------------------------------------------------------------


def test_plan_help_mentions_units(runs: dict[str, tuple[Run, Path]]) -> None:
    run, _ = runs["help"]
    assert run.code == 0
    text = re.sub(r"[\s│]+", " ", run.stdout)
    for word in ("kW", "seconds", "--profiles", "--json", "--out", "--state", "--mip-gap"):
        assert word in text, word


@pytest.mark.parametrize("name", ["validate-ok", "validate-all-ok"])
def test_validate_shipped_files_exits_0(runs: dict[str, tuple[Run, Path]], name: str) -> None:
    run, _ = runs[name]
    assert run.code == 0, run.stderr
    assert run.stdout.startswith("ok:") and run.stderr == ""


def test_validate_lists_every_problem(runs: dict[str, tuple[Run, Path]]) -> None:
    run, _ = runs["validate-many"]
    assert run.code == 2 and run.stdout == ""
    assert_clean(run)
    assert f"{len(EVERY_PROBLEM)} problem(s)" in run.stderr
    for key in EVERY_PROBLEM:
        assert f"  - {key}: " in run.stderr, key


def test_user_text_is_printed_verbatim(runs: dict[str, tuple[Run, Path]]) -> None:
    """Values that look like console markup are shown as written: not interpreted, no crash."""
    run, _ = runs["validate-markup"]
    assert run.code == 2, run.stderr
    assert_clean(run)
    for text in ("'[/bold]'", "batteries[0].[red]x: unknown key", "[site].yaml"):
        assert text in run.stderr, text
