"""Sizing sweeps: designs applied by hand, sweep files and their errors, serial = Dask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from microgrid.errors import ConfigError, ProfileError
from microgrid.planning.sweep import (
    Scenario,
    apply_design,
    check_designs,
    design_state,
    evaluate,
    read_sweep,
    run_sweep,
    sweep_from_dict,
)
from microgrid.profiles import Profiles, read_profiles
from microgrid.site import Site, read_site
from microgrid.state import read_state
from tests.conftest import HOSPITAL, ROOT, STATE, SUMMER, WINTER


@pytest.fixture(scope="module")
def hospital() -> tuple[Site, Profiles]:
    site = read_site(HOSPITAL)
    return site, read_profiles(WINTER, site)


# -- designs ---------------------------------------------------------------------------------


def test_design_overrides_fields_scales_and_profiles(hospital: tuple[Site, Profiles]) -> None:
    site, profiles = hospital
    design = {
        "battery.bess2.capacity_kwh": 600,
        "battery.*.capacity_kwh_scale": 1.5,
        "generator.dg1.max_kw": 250,
        "pv.roof.peak_kw": 300,
        "fuel.diesel.stock": 800,
        "load.critical.scale": 1.2,
        "grid.max_import_kw": 200,
    }
    new, scaled = apply_design(site, profiles, design)
    assert [b.capacity_kwh for b in new.batteries] == [375.0, 900.0]  # in order: 600 first, then × 1.5
    assert new.generators[0].max_kw == 250 and new.generators[1].max_kw == 200
    assert new.pv[0].peak_kw == 300 and new.fuels["diesel"].stock == 800
    assert new.grid is not None and new.grid.max_import_kw == 200
    assert np.allclose(scaled.pv_kw["roof"], profiles.pv_kw["roof"] * 2)  # 150 → 300 kWp
    assert np.allclose(scaled.load_kw["critical"], profiles.load_kw["critical"] * 1.2)
    assert np.allclose(scaled.load_kw["comfort"], profiles.load_kw["comfort"])
    assert site.batteries[1].capacity_kwh == 400  # the original is untouched
    assert new.resolve("x") == site.resolve("x")


def test_whole_asset_scale_and_removal(hospital: tuple[Site, Profiles]) -> None:
    site, profiles = hospital
    new, _ = apply_design(site, profiles, {"battery.bess1.scale": 2, "generator.dg2.max_kw": 0, "pv.roof.scale": 0.5})
    bess1 = new.batteries[0]
    assert (bess1.capacity_kwh, bess1.max_charge_kw, bess1.max_discharge_kw) == (500, 250, 250)
    assert [g.id for g in new.generators] == ["dg1"]
    assert "dg2-controller" not in {d.id for d in new.devices}  # its binding goes with it
    assert new.pv[0].peak_kw == 75
    gone, scaled = apply_design(site, profiles, {"pv.roof.peak_kw": 0})
    assert not gone.pv and list(scaled.pv_kw.columns) == []


@pytest.mark.parametrize(
    ("design", "message"),
    [
        ({"battery.nope.capacity_kwh": 1}, "battery.nope.capacity_kwh: names no battery of the site (bess1, bess2)"),
        ({"battery.bess1.colour": 1}, "battery.bess1.colour: battery has no numeric field 'colour'"),
        ({"fuel.petrol.stock": 1}, "fuel.petrol.stock: names no fuel of the site (diesel)"),
        ({"reactor.r1.max_kw": 1}, "reactor.r1.max_kw: not a design key"),
        ({"battery.bess1.capacity_kwh": "big"}, "battery.bess1.capacity_kwh: must be a finite number, got 'big'"),
        ({"generator.dg1.min_kw": 300}, "generators[0].min_kw: must be ≤ max_kw (200.0), got 300.0"),
        ({"battery.bess1.soc_min": 0.99}, "batteries[0].soc_min: must be < soc_max"),
    ],
)
def test_bad_designs_name_the_key(hospital: tuple[Site, Profiles], design: dict[str, Any], message: str) -> None:
    site, profiles = hospital
    with pytest.raises(ConfigError) as caught:
        apply_design(site, profiles, design)
    assert message in str(caught.value)


def test_design_state_takes_the_designs_fuel(hospital: tuple[Site, Profiles]) -> None:
    site, profiles = hospital
    state = read_state(STATE, site)  # 900 l of diesel, bess1 at 42 %
    design = {"fuel.diesel.stock": 300, "battery.bess2.capacity_kwh": 0}
    new, _ = apply_design(site, profiles, design)
    moved = design_state(state, new, design)
    assert moved is not None
    assert moved.fuel_stock == {"diesel": 300}
    assert moved.soc == {"bess1": 0.42}
    kept = design_state(state, apply_design(site, profiles, {})[0], {})
    assert kept is not None and kept.fuel_stock == {"diesel": 900}
    assert design_state(None, new, design) is None


# -- sweep files -----------------------------------------------------------------------------


def test_grid_and_list_designs(tmp_path: Path) -> None:
    grid = sweep_from_dict(
        {"designs": {"a.x.y": [1, 2, 3], "b.x.y": [10, 20]}, "scenarios": [{"profiles": "p.csv"}]}, "s.yaml", tmp_path
    )
    assert len(grid.designs) == 6 and grid.tasks == 6
    assert grid.designs[0] == ("d000", {"a.x.y": 1, "b.x.y": 10})
    assert grid.designs[5] == ("d005", {"a.x.y": 3, "b.x.y": 20})
    assert grid.grid_keys == ("a.x.y", "b.x.y")
    assert grid.scenarios == (Scenario("p", tmp_path / "p.csv"),)
    listed = sweep_from_dict(
        {
            "designs": [{"name": "base"}, {"name": "big", "battery.*.scale": 2}],
            "scenarios": [{"name": "w", "profiles": "w.csv", "days": 2, "forecast_error": 0.1, "seed": 4}],
            "controller": "mpc",
            "mip_gap": 0.05,
        },
        "s.yaml",
        tmp_path,
    )
    assert listed.designs == (("base", {}), ("big", {"battery.*.scale": 2}))
    assert listed.grid_keys == ()
    assert listed.scenarios[0] == Scenario("w", tmp_path / "w.csv", 2.0, 0.1, 4)
    assert listed.controller == "mpc" and listed.survival == {"solver": {"mip_gap": 0.05}}


def test_sweep_file_errors_name_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    raw = {
        "designs": {"battery.bess1.capacity_kwh": 300},
        "scenarios": [{"name": "w", "profile": "x.csv", "seed": -1}],
        "controller": "magic",
        "colour": "blue",
    }
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_sweep(path)
    text = str(caught.value)
    assert text.startswith(str(path))
    for part in (
        "colour: unknown key",
        "designs.battery.bess1.capacity_kwh: a grid key needs a non-empty list of values",
        "scenarios[0].profile: unknown key",
        "scenarios[0].profiles: required",
        "controller: must be one of rules, mpc, perfect_foresight, survival, got 'magic'",
    ):
        assert part in text


def test_designs_checked_against_the_site_name_the_file(hospital: tuple[Site, Profiles], tmp_path: Path) -> None:
    spec = sweep_from_dict(
        {"designs": [{"name": "odd", "battery.bess9.capacity_kwh": 1}], "scenarios": [{"profiles": "p.csv"}]},
        "sizing.yaml",
        tmp_path,
    )
    with pytest.raises(ConfigError) as caught:
        check_designs(hospital[0], spec)
    assert "sizing.yaml" in str(caught.value) and "odd" in str(caught.value) and "bess9" in str(caught.value)


def test_shipped_sweep_file_reads_and_applies(hospital: tuple[Site, Profiles]) -> None:
    spec = read_sweep(ROOT / "models" / "sweeps" / "hospital-sizing.yaml")
    assert spec.tasks == 24 and spec.controller == "rules"
    assert all(s.profiles.exists() for s in spec.scenarios)
    check_designs(hospital[0], spec)


def test_missing_profiles_name_the_sweep_and_scenario(hospital: tuple[Site, Profiles], tmp_path: Path) -> None:
    spec = sweep_from_dict({"designs": [{}], "scenarios": [{"name": "w", "profiles": "nope.csv"}]}, "s.yaml", tmp_path)
    with pytest.raises(ProfileError, match=r"s\.yaml: scenario 'w'"):
        run_sweep(hospital[0], spec, workers=0, progress=False)


# -- evaluation --------------------------------------------------------------------------------


def test_a_failing_design_is_a_row_with_its_error(hospital: tuple[Site, Profiles]) -> None:
    site, profiles = hospital
    row = evaluate(site, profiles, ("bad", {"generator.dg1.min_kw": 999}), Scenario("w", WINTER, days=0.25))
    assert row["design"] == "bad" and row["scenario"] == "w"
    assert row["error"].startswith("ConfigError") and "min_kw" in row["error"]


def test_survival_sweep_rows(hospital: tuple[Site, Profiles], tmp_path: Path) -> None:
    spec = sweep_from_dict(
        {
            "designs": {"fuel.diesel.stock": [0, 1500]},
            "scenarios": [{"name": "w", "profiles": str(WINTER)}],
            "controller": "survival",
            "survival": {"durations_h": [4, 24], "samples": 20},
        },
        "s.yaml",
        tmp_path,
    )
    frame = run_sweep(hospital[0], spec, workers=0, progress=False)
    assert frame["error"].isna().all()
    assert list(frame["fuel.diesel.stock"]) == [0, 1500]
    no_fuel, full = frame.to_dict("records")
    assert no_fuel["p_survive.24h"] <= full["p_survive.24h"]
    assert full["p_survive.4h"] == 1.0


SMALL_SWEEP = {
    "controller": "rules",
    "designs": {"battery.bess2.capacity_kwh": [400, 800], "fuel.diesel.stock": [200]},
    "scenarios": [
        {"name": "winter", "profiles": str(WINTER), "days": 0.5},
        {"name": "summer", "profiles": str(SUMMER), "days": 0.5, "forecast_error": 0.1, "seed": 2},
    ],
}


@pytest.mark.slow
def test_two_worker_dask_sweep_equals_the_serial_one(hospital: tuple[Site, Profiles], tmp_path: Path) -> None:
    site = hospital[0]
    spec = sweep_from_dict(SMALL_SWEEP, "small.yaml", tmp_path)
    seen: list[tuple[int, int]] = []
    serial = run_sweep(site, spec, workers=0, progress=False, on_result=lambda d, t: seen.append((d, t)))
    parallel = run_sweep(site, spec, workers=2, progress=True, parquet=tmp_path / "results.parquet")
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert list(serial["design"]) == ["d000", "d000", "d001", "d001"]
    assert list(serial["scenario"]) == ["winter", "summer"] * 2
    assert serial["error"].isna().all(), serial["error"].tolist()
    assert serial["cost_total"].gt(0).all()
    assert serial.loc[0, "fuel.diesel.stock"] == 200
    timing = ["task_s"]
    pd.testing.assert_frame_equal(serial.drop(columns=timing), parallel.drop(columns=timing))
    stored = pd.read_parquet(tmp_path / "results.parquet")
    pd.testing.assert_frame_equal(stored.drop(columns=timing), parallel.drop(columns=timing))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"designs": [1], "scenarios": [{"profiles": "p.csv"}]}, "designs: item 0 must be a mapping"),
        ({"designs": {}, "scenarios": [{"profiles": "p.csv"}]}, "designs: must be a grid"),
        ({"designs": [{}], "scenarios": []}, "scenarios: Tuple should have at least 1 item"),
        (
            {"designs": [{}], "scenarios": [{"profiles": "w.csv"}, {"profiles": "x/w.csv"}]},
            "scenarios: name 'w' used twice",
        ),
        ({"designs": [{}], "scenarios": [{"profiles": "p.csv", "days": -1}]}, "scenarios[0].days: Input should be"),
        ({"designs": [{}], "scenarios": [{"profiles": "p.csv"}], "survival": {"samples": 0}}, "survival.samples:"),
        ({"designs": [{}], "scenarios": [{"profiles": "p.csv"}], "mip_gap": "tight"}, "mip_gap: Input should be"),
    ],
)
def test_sweep_files_are_validated_like_the_site(tmp_path: Path, raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        sweep_from_dict(raw, "s.yaml", tmp_path)
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems
