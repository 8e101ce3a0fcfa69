"""Site files: the shipped hospital loads; every class of bad file gives a ConfigError naming
the file, the key path and the reason (``shared/spec/site-and-profiles.md``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from microgrid.errors import ConfigError, InputError
from microgrid.site import Site, parse_duration, read_site, site_from_dict
from tests.conftest import HOSPITAL, tiny_site

HOSPITAL_DICT: dict[str, Any] = yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))


def hospital() -> dict[str, Any]:
    """A fresh, mutable copy of the shipped hospital site, without its ``devices`` section.

    Tests here change assets; the devices section (tested in tests/telemetry/test_wiring.py)
    would add its own problems about the assets they rename or remove.
    """
    raw = copy.deepcopy(HOSPITAL_DICT)
    raw.pop("devices", None)
    return raw


def write_site(tmp_path: Path, raw: Any, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def refused(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        read_site(path)
    exc = info.value
    assert exc.source == str(path)
    assert str(path) in str(exc)
    assert exc.problems
    return exc


def assert_problem(exc: ConfigError, key: str, *reasons: str) -> None:
    """One listed problem starts with ``key:`` and contains every reason fragment."""
    hits = [p for p in exc.problems if p.startswith(f"{key}:")]
    assert hits, f"no problem for {key!r} in {exc.problems}"
    assert any(all(r in p for r in reasons) for p in hits), f"{reasons} not in {hits}"
    for line in hits:
        assert line in str(exc)


# -- the shipped site and other good files -------------------------------------------------


def test_shipped_hospital_reads() -> None:
    site = read_site(HOSPITAL)
    assert site.site.timezone == "Europe/Kyiv"
    assert site.control.interval == timedelta(minutes=15)
    assert site.control.horizon == timedelta(hours=24)
    assert [b.id for b in site.batteries] == ["bess1", "bess2"]
    assert [g.id for g in site.generators] == ["dg1", "dg2"]
    assert site.fuels["diesel"].stock == 1500
    assert [t.id for t in site.loads] == ["critical", "essential", "comfort"]
    assert site.grid is not None and site.grid.import_price_per_kwh == 4.32
    assert site.asset_ids()["roof"] == "pv"


def test_minimal_site_takes_the_defaults() -> None:
    site = site_from_dict(tiny_site())
    assert site.batteries == () and site.generators == () and site.grid is None
    assert site.control.mip_gap == 0.001 and site.control.time_limit_s == 20


def test_the_operational_sections_are_on_unless_turned_off() -> None:
    raw = yaml.safe_load(HOSPITAL.read_text(encoding="utf-8"))
    on = site_from_dict(copy.deepcopy(raw))
    assert on.control.reserve is not None and on.control.feeders is not None
    assert on.grid_forming_battery() is not None and on.grid_forming_battery().id == "bess2"  # the largest
    raw["control"] |= {"reserve": "off", "feeders": False}
    off = site_from_dict(raw)
    assert off.control.reserve is None and off.control.feeders is None
    raw["control"]["reserve"] = {"grid_forming": "bess1"}
    assert site_from_dict(raw).grid_forming_battery().id == "bess1"  # type: ignore[union-attr]


def test_optional_keys_default() -> None:
    raw = hospital()
    for key in ("wear_cost_per_kwh", "terminal_value_per_kwh"):
        del raw["batteries"][0][key]
    del raw["fuels"]["diesel"]["stock"]
    site = site_from_dict(raw)
    assert site.batteries[0].wear_cost_per_kwh == 0 and site.batteries[0].terminal_value_per_kwh == 0
    assert site.fuels["diesel"].stock is None  # unlimited


def test_the_schedule_plans_a_surprise_cut_of_4_h_and_half_likely_possible_outages_unless_told() -> None:
    schedule = site_from_dict(hospital()).grid.schedule  # type: ignore[union-attr]
    assert schedule is not None
    assert (schedule.unannounced_cut_h, schedule.possible_outage_probability, schedule.late_return_h) == (
        4.0,
        0.5,
        None,
    )
    raw = hospital()
    raw["grid"]["schedule"].update(unannounced_cut_h=None, possible_outage_probability=1)
    told = site_from_dict(raw).grid.schedule  # type: ignore[union-attr]
    assert told is not None and (told.unannounced_cut_h, told.possible_outage_probability) == (None, 1.0)


@pytest.mark.parametrize(
    ("mutate", "kept"),
    [
        pytest.param(
            lambda d: d["batteries"][0].update(charge_efficiency=1, discharge_efficiency=1.0),
            lambda s: (s.batteries[0].charge_efficiency, s.batteries[0].discharge_efficiency) == (1.0, 1.0),
            id="eff-1",
        ),
        pytest.param(
            lambda d: d["batteries"][0].update(initial_soc=0.02),
            lambda s: s.batteries[0].initial_soc == 0.02,
            id="initial-soc-below-band",
        ),
        pytest.param(
            lambda d: d["loads"][1].update(value_of_lost_load_per_kwh=2000),
            lambda s: s.loads[1].value_of_lost_load_per_kwh == 2000,
            id="equal-voll",
        ),
        pytest.param(
            lambda d: d["generators"][0].update(min_kw=200),
            lambda s: s.generators[0].min_kw == 200,
            id="min-equals-max",
        ),
        pytest.param(
            lambda d: d["control"].update(interval="30min", horizon="1d"),
            lambda s: (s.control.interval, s.control.horizon) == (timedelta(minutes=30), timedelta(days=1)),
            id="durations",
        ),
        pytest.param(lambda d: d["control"].update(mip_gap=0), lambda s: s.control.mip_gap == 0, id="gap-0"),
        pytest.param(lambda d: d.pop("grid"), lambda s: s.grid is None, id="off-grid"),
        pytest.param(
            lambda d: d["grid"].update(export_price_per_kwh=-1.5),
            lambda s: s.grid is not None and s.grid.export_price_per_kwh == -1.5,
            id="negative-price",
        ),
    ],
)
def test_edge_values_are_accepted(mutate: Callable[[dict[str, Any]], object], kept: Callable[[Site], bool]) -> None:
    """Values at the edge of what the spec allows are read as given (not refused, not clamped)."""
    raw = hospital()
    mutate(raw)
    assert kept(site_from_dict(raw))


def test_yaml_merge_keys_are_accepted(tmp_path: Path) -> None:
    text = HOSPITAL.read_text(encoding="utf-8").replace(
        "generators:\n  - id: dg1\n", "generators:\n  - &genset\n    id: dg1\n", 1
    )
    start = text.index("  - id: dg2")
    end = text.index("fuels:")
    text = text[:start] + "  - <<: *genset\n    id: dg2\n    startup_cost: 200\n\n" + text[end:]
    path = tmp_path / "merged.yaml"
    path.write_text(text, encoding="utf-8")
    site = read_site(path)
    assert [g.id for g in site.generators] == ["dg1", "dg2"]
    assert site.generators[1].max_kw == 200 and site.generators[1].startup_cost == 200


def test_parse_duration() -> None:
    assert parse_duration("15min") == timedelta(minutes=15)
    assert parse_duration(" 24h ") == timedelta(hours=24)
    assert parse_duration("30s") == parse_duration("30sec") == timedelta(seconds=30)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration("1d") == timedelta(days=1)
    for bad in ("15 parsecs", "", "min", "-5min", "0h", "1e3s", "99999999999999d", "0.0000001s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


# -- one class of problem at a time ----------------------------------------------------------

Mutation = Callable[[dict[str, Any]], object]

CASES: list[tuple[str, Mutation, str, tuple[str, ...]]] = [
    # unknown keys, top level and nested
    ("unknown-top", lambda d: d.update(colour="red"), "colour", ("unknown key",)),
    ("unknown-site", lambda d: d["site"].update(colour="red"), "site.colour", ("unknown key",)),
    ("unknown-control", lambda d: d["control"].update(gap=0.1), "control.gap", ("unknown key",)),
    ("unknown-battery", lambda d: d["batteries"][1].update(colour=1), "batteries[1].colour", ("unknown key",)),
    ("unknown-fuel", lambda d: d["fuels"]["diesel"].update(colour=1), "fuels.diesel.colour", ("unknown key",)),
    ("unknown-grid", lambda d: d["grid"].update(max_import_kva=1), "grid.max_import_kva", ("unknown key",)),
    (
        "zero-possible-probability",
        lambda d: d["grid"]["schedule"].update(possible_outage_probability=0),
        "grid.schedule.possible_outage_probability",
        ("greater than 0",),
    ),
    (
        "possible-probability-above-1",
        lambda d: d["grid"]["schedule"].update(possible_outage_probability=1.5),
        "grid.schedule.possible_outage_probability",
        ("less than or equal to 1",),
    ),
    (
        "zero-late-return",
        lambda d: d["grid"]["schedule"].update(late_return_h=0),
        "grid.schedule.late_return_h",
        ("greater than 0",),
    ),
    ("misspelt-key", lambda d: d["loads"][0].update(prio=d["loads"][0].pop("priority")), "loads[0].prio", ()),
    # missing required keys
    ("missing-site", lambda d: d.pop("site"), "site", ("required key is missing",)),
    ("missing-name", lambda d: d["site"].pop("name"), "site.name", ("required key is missing",)),
    (
        "missing-capacity",
        lambda d: d["batteries"][0].pop("capacity_kwh"),
        "batteries[0].capacity_kwh",
        ("required key is missing",),
    ),
    ("missing-fuel", lambda d: d["generators"][1].pop("fuel"), "generators[1].fuel", ("required key is missing",)),
    ("missing-price", lambda d: d["fuels"]["diesel"].pop("price_per_unit"), "fuels.diesel.price_per_unit", ()),
    ("missing-import", lambda d: d["grid"].pop("max_import_kw"), "grid.max_import_kw", ("required key is missing",)),
    ("missing-priority", lambda d: d["loads"][2].pop("priority"), "loads[2].priority", ("required key is missing",)),
    # wrong types
    ("string-number", lambda d: d["batteries"][0].update(capacity_kwh="250"), "batteries[0].capacity_kwh", ("'250'",)),
    ("string-kw", lambda d: d["generators"][0].update(max_kw="200 kW"), "generators[0].max_kw", ("number",)),
    ("bool-number", lambda d: d["batteries"][0].update(max_charge_kw=True), "batteries[0].max_charge_kw", ("True",)),
    ("bool-price", lambda d: d["grid"].update(import_price_per_kwh=False), "grid.import_price_per_kwh", ("False",)),
    ("list-for-mapping", lambda d: d.update(grid=[400, 0]), "grid", ("dictionary", "[400, 0]")),
    ("list-for-site", lambda d: d.update(site=["x"]), "site", ("dictionary",)),
    ("list-for-fuels", lambda d: d.update(fuels=["diesel"]), "fuels", ("dictionary",)),
    ("mapping-for-list", lambda d: d.update(batteries={"id": "b"}), "batteries", ()),
    ("string-for-list", lambda d: d.update(pv="roof"), "pv", ()),
    ("string-for-bool", lambda d: d["generators"][0].update(initial_on="no"), "generators[0].initial_on", ("'no'",)),
    ("float-priority", lambda d: d["loads"][0].update(priority=1.5), "loads[0].priority", ("integer",)),
    ("null-value", lambda d: d["pv"][0].update(peak_kw=None), "pv[0].peak_kw", ("None",)),
    ("number-id", lambda d: d["pv"][0].update(id=7), "pv[0].id", ("7",)),
    ("number-timezone", lambda d: d["site"].update(timezone=2), "site.timezone", ()),
    # capacities and limits
    (
        "zero-capacity",
        lambda d: d["batteries"][0].update(capacity_kwh=0),
        "batteries[0].capacity_kwh",
        ("greater than 0",),
    ),
    ("negative-capacity", lambda d: d["batteries"][1].update(capacity_kwh=-400), "batteries[1].capacity_kwh", ()),
    ("zero-max-kw", lambda d: d["generators"][0].update(max_kw=0), "generators[0].max_kw", ("greater than 0",)),
    ("zero-peak", lambda d: d["pv"][0].update(peak_kw=0), "pv[0].peak_kw", ("greater than 0",)),
    ("negative-charge", lambda d: d["batteries"][0].update(max_charge_kw=-1), "batteries[0].max_charge_kw", ("-1",)),
    ("negative-min-kw", lambda d: d["generators"][0].update(min_kw=-5), "generators[0].min_kw", ("-5",)),
    ("negative-stock", lambda d: d["fuels"]["diesel"].update(stock=-1), "fuels.diesel.stock", ("-1",)),
    ("negative-import", lambda d: d["grid"].update(max_import_kw=-400), "grid.max_import_kw", ("-400",)),
    ("zero-time-limit", lambda d: d["control"].update(time_limit_s=0), "control.time_limit_s", ()),
    ("priority-0", lambda d: d["loads"][0].update(priority=0), "loads[0].priority", ("greater than or equal to 1",)),
    (
        "negative-voll",
        lambda d: d["loads"][2].update(value_of_lost_load_per_kwh=-1),
        "loads[2].value_of_lost_load_per_kwh",
        ("-1",),
    ),
    # efficiencies outside (0, 1]
    ("eff-0", lambda d: d["batteries"][0].update(charge_efficiency=0), "batteries[0].charge_efficiency", ("0",)),
    ("eff-neg", lambda d: d["batteries"][0].update(charge_efficiency=-0.9), "batteries[0].charge_efficiency", ()),
    (
        "eff-above-1",
        lambda d: d["batteries"][1].update(discharge_efficiency=1.05),
        "batteries[1].discharge_efficiency",
        ("less than or equal to 1", "1.05"),
    ),
    ("eff-percent", lambda d: d["batteries"][0].update(charge_efficiency=95), "batteries[0].charge_efficiency", ()),
    # SOC band
    ("soc-min-eq-max", lambda d: d["batteries"][0].update(soc_min=0.95), "batteries[0].soc_min", ("< soc_max",)),
    (
        "soc-min-gt-max",
        lambda d: d["batteries"][1].update(soc_min=0.9, soc_max=0.2),
        "batteries[1].soc_min",
        ("soc_max (0.2)", "0.9"),
    ),
    ("soc-max-above-1", lambda d: d["batteries"][0].update(soc_max=1.2), "batteries[0].soc_max", ("1.2",)),
    ("soc-percent", lambda d: d["batteries"][0].update(initial_soc=60), "batteries[0].initial_soc", ("60",)),
    # generator load range and fuel
    ("min-gt-max", lambda d: d["generators"][1].update(min_kw=250), "generators[1].min_kw", ("max_kw (200", "250")),
    ("fuel-unknown", lambda d: d["generators"][0].update(fuel="petrol"), "generators[0].fuel", ("'petrol'", "diesel")),
    ("fuels-none", lambda d: d.pop("fuels"), "generators[0].fuel", ("names no fuel", "none defined")),
    # ids
    ("dup-across", lambda d: d["pv"][0].update(id="dg1"), "pv[0].id", ("'dg1'", "generators[0].id")),
    ("dup-battery-load", lambda d: d["loads"][2].update(id="bess2"), "loads[2].id", ("batteries[1].id",)),
    ("dup-within", lambda d: d["loads"][1].update(id="critical"), "loads[1].id", ("loads[0].id",)),
    ("id-dot", lambda d: d["pv"][0].update(id="roof.east"), "pv[0].id", ("'roof.east'",)),
    ("id-space", lambda d: d["batteries"][0].update(id="bess 1"), "batteries[0].id", ("'bess 1'",)),
    ("id-digit-first", lambda d: d["generators"][0].update(id="1dg"), "generators[0].id", ("'1dg'",)),
    ("id-empty", lambda d: d["loads"][0].update(id=""), "loads[0].id", ()),
    # timezone and durations
    ("bad-zone", lambda d: d["site"].update(timezone="Europe/Kharkiv"), "site.timezone", ("IANA", "Europe/Kharkiv")),
    ("offset-zone", lambda d: d["site"].update(timezone="+02:00"), "site.timezone", ("IANA",)),
    ("folder-zone", lambda d: d["site"].update(timezone="Europe"), "site.timezone", ("IANA", "'Europe'")),
    ("parsecs", lambda d: d["control"].update(interval="15 parsecs"), "control.interval", ("'15 parsecs'",)),
    ("bare-number", lambda d: d["control"].update(interval=15), "control.interval", ("unit", "15")),
    ("zero-interval", lambda d: d["control"].update(interval="0min"), "control.interval", ("positive",)),
    ("horizon-not-multiple", lambda d: d["control"].update(horizon="25min"), "control.horizon", ("whole number",)),
    ("horizon-lt-interval", lambda d: d["control"].update(horizon="10min"), "control.horizon", ("whole number",)),
    ("horizon-bogus", lambda d: d["control"].update(horizon="tomorrow"), "control.horizon", ("'tomorrow'",)),
    # solver settings
    ("gap-1", lambda d: d["control"].update(mip_gap=1), "control.mip_gap", ("less than 1",)),
    ("gap-2", lambda d: d["control"].update(mip_gap=2.5), "control.mip_gap", ("2.5",)),
    ("gap-negative", lambda d: d["control"].update(mip_gap=-0.01), "control.mip_gap", ()),
    # the operational sections
    (
        "reserve-unknown-battery",
        lambda d: d["control"].update(reserve={"grid_forming": "bess9"}),
        "control.reserve.grid_forming",
        ("names no battery", "bess1, bess2", "'bess9'"),
    ),
    ("reserve-negative", lambda d: d["control"].update(reserve={"min_kw": -5}), "control.reserve.min_kw", ("-5",)),
    ("reserve-unknown-key", lambda d: d["control"].update(reserve={"kw": 5}), "control.reserve.kw", ("unknown key",)),
    (
        "feeders-pickup",
        lambda d: d["control"].update(feeders={"pickup_fraction": 3}),
        "control.feeders.pickup_fraction",
        (),
    ),
    ("feeders-zero-window", lambda d: d["control"].update(feeders={"discrete_h": 0}), "control.feeders.discrete_h", ()),
    # a corrupt id where another section looks ids up (a schedule's tiers): its own error, no crash
    (
        "mapping-load-id-with-schedule",
        lambda d: d["loads"][0].update(id={"x": 1}),
        "loads[0].id",
        (),
    ),
    # value of lost load must not rise as priority falls
    (
        "voll-inverted",
        lambda d: d["loads"][2].update(value_of_lost_load_per_kwh=2500),
        "loads[0].value_of_lost_load_per_kwh",
        ("less important tier 'comfort'", "2000"),
    ),
    (
        "voll-inverted-middle",
        lambda d: d["loads"][1].update(value_of_lost_load_per_kwh=10),
        "loads[1].value_of_lost_load_per_kwh",
        ("'comfort' (25.0)", "10"),
    ),
]


@pytest.mark.parametrize(("mutate", "key", "reasons"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_site_names_file_key_and_reason(
    tmp_path: Path, mutate: Mutation, key: str, reasons: tuple[str, ...]
) -> None:
    raw = hospital()
    mutate(raw)
    exc = refused(write_site(tmp_path, raw))
    assert_problem(exc, key, *reasons)
    assert isinstance(exc, InputError)


@pytest.mark.parametrize(
    ("key", "literal", "shown"),
    [
        ("capacity_kwh", ".nan", "nan"),
        ("capacity_kwh", ".NaN", "nan"),
        ("max_charge_kw", ".inf", "inf"),
        ("wear_cost_per_kwh", "-.inf", "-inf"),
        ("soc_min", ".nan", "nan"),
    ],
)
def test_yaml_nan_and_inf_are_refused(tmp_path: Path, key: str, literal: str, shown: str) -> None:
    text = HOSPITAL.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.strip().startswith(f"{key}:"))
    path = tmp_path / "nan.yaml"
    path.write_text(text.replace(line, f"{line.split(':')[0]}: {literal}", 1), encoding="utf-8")
    exc = refused(path)
    assert_problem(exc, f"batteries[0].{key}", "finite", shown)


def test_nan_price_in_grid_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        HOSPITAL.read_text(encoding="utf-8").replace("import_price_per_kwh: 4.32", "import_price_per_kwh: .inf")
    )
    assert_problem(refused(path), "grid.import_price_per_kwh", "finite")


# -- YAML-level problems ----------------------------------------------------------------------


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("site:\n  name: a\n  timezone: UTC\n  name: b\n", encoding="utf-8")
    exc = refused(path)
    assert exc.problems == ["line 4, column 3: key 'name' given twice (first on line 2)"]


def test_duplicate_section_is_refused(tmp_path: Path) -> None:
    text = HOSPITAL.read_text(encoding="utf-8")
    path = tmp_path / "dup.yaml"
    path.write_text(text + "\npv:\n  - id: roof2\n    peak_kw: 10\n", encoding="utf-8")
    exc = refused(path)
    assert "key 'pv' given twice" in exc.problems[0]
    assert exc.problems[0].startswith(f"line {len(text.splitlines()) + 2}, column 1:")


def test_duplicate_key_in_flow_mapping(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(
        HOSPITAL.read_text(encoding="utf-8").replace("stock: 1500}", "stock: 1500, unit: m3}"), encoding="utf-8"
    )
    assert "key 'unit' given twice" in refused(path).problems[0]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("site:\n  name: [unclosed\n", "line 3, column 1"),
        ("site:\n\tname: x\n", "line 2, column 1"),
        ("site:\n  name: x\n timezone: UTC\n", "line 3, column 2"),
        ('site: {name: "x}\n', "line 2, column 1"),
        ("site: {name: x}\n---\nsite: {name: y}\n", "line 2, column 1"),
        ("site: !!python/object:os.system {}\n", "line 1, column 7"),
    ],
)
def test_yaml_syntax_errors_give_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    exc = refused(path)
    assert len(exc.problems) == 1 and exc.problems[0].startswith(where), exc.problems


@pytest.mark.parametrize(
    ("text", "got"),
    [("", "NoneType"), ("# nothing but a comment\n", "NoneType"), ("- a\n- b\n", "list"), ("hello\n", "str")],
    ids=["empty", "comment-only", "list", "scalar"],
)
def test_file_that_is_not_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text, encoding="utf-8")
    exc = refused(path)
    assert exc.problems == [f"(top level): must be a mapping of sections, got {got}"]


def test_missing_file(tmp_path: Path) -> None:
    exc = refused(tmp_path / "nope.yaml")
    assert "cannot read file" in exc.problems[0] and "No such file" in exc.problems[0]


def test_directory_and_binary_file(tmp_path: Path) -> None:
    assert "cannot read file" in refused(tmp_path).problems[0]
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00site")
    assert "cannot read file" in refused(path).problems[0]


@pytest.mark.parametrize(
    "text",
    [
        "site: " + "[" * 20000 + "]" * 20000 + "\n",  # deep nesting
        "site: {name: x}\ncontrol: {mip_gap: 1" + "0" * 5000 + "}\n",  # int beyond Python's str limit
        "site: {name: x}\nbatteries: [{capacity_kwh: 2026-02-30}]\n",  # a date that does not exist
        "site: {name: x}\n? [1, 2]\n: 3\n",  # unhashable key
        "site: {name: x}\nfuels: {{a: 1}: {unit: l}}\n",
        "site: {name: x}\nbatteries: [{<<: 5}]\n",  # a merge of a scalar
        "site: {name: \x07}\n",
    ],
    ids=["deep", "bigint", "bad-date", "list-key", "dict-key", "bad-merge", "control-char"],
)
def test_pathological_yaml_gives_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text, encoding="utf-8")
    assert all(isinstance(p, str) and p for p in refused(path).problems)  # a ConfigError, not a crash


# -- every problem at once -----------------------------------------------------------------


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    raw = hospital()
    raw["colour"] = "red"  # unknown top-level key
    raw["batteries"][0]["soc_min"] = 0.99  # band
    raw["batteries"][1]["capacity_kwh"] = "400"  # type
    del raw["generators"][0]["max_kw"]  # missing
    raw["generators"][1]["fuel"] = "petrol"  # names no fuel
    raw["pv"][0]["id"] = "dg1"  # duplicate id
    raw["loads"][2]["value_of_lost_load_per_kwh"] = 5000  # inverted VOLL
    raw["control"]["interval"] = "15 parsecs"
    raw["site"]["timezone"] = "Mars/Olympus_Mons"
    exc = refused(write_site(tmp_path, raw))
    expected = [
        "colour",
        "batteries[0].soc_min",
        "batteries[1].capacity_kwh",
        "generators[0].max_kw",
        "generators[1].fuel",
        "pv[0].id",
        "loads[0].value_of_lost_load_per_kwh",
        "loads[1].value_of_lost_load_per_kwh",
        "control.interval",
        "site.timezone",
    ]
    for key in expected:
        assert_problem(exc, key)
    assert len(exc.problems) == len(expected)
    assert f"{len(expected)} problem(s)" in str(exc)


def test_all_cross_section_problems_are_listed() -> None:
    raw = hospital()
    raw["generators"][0]["fuel"] = "petrol"
    raw["generators"][1]["fuel"] = "gas"
    raw["pv"][0]["id"] = "bess1"
    raw["loads"][0]["id"] = "dg2"
    with pytest.raises(ConfigError) as info:
        site_from_dict(raw, "mine.yaml")
    assert info.value.source == "mine.yaml"
    assert [p.split(":")[0] for p in info.value.problems] == [
        "generators[0].fuel",
        "generators[1].fuel",
        "pv[0].id",
        "loads[0].id",
        "grid.schedule.possible_outage_tiers[0]",  # named 'critical', renamed away above
    ]


def test_site_model_still_checks_across_sections() -> None:
    raw = hospital()
    raw["pv"][0]["id"] = "bess1"
    with pytest.raises(pydantic.ValidationError, match="already used"):
        Site.model_validate(raw)


@pytest.mark.parametrize("raw", [None, [], "site", 3])
def test_site_from_dict_refuses_non_mappings(raw: Any) -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        site_from_dict(raw)
