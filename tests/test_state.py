"""State JSON: what is given overrides the site's initial values, the rest falls back; bad files
give a StateError naming the key path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from microgrid.errors import StateError
from microgrid.site import read_site, site_from_dict
from microgrid.state import GeneratorState, SiteState, read_state, state_from_dict
from tests.conftest import HOSPITAL, STATE, tiny_site

SITE = read_site(HOSPITAL)


def write_json(tmp_path: Path, raw: Any) -> Path:
    path = tmp_path / "state.json"
    path.write_text(raw if isinstance(raw, str) else json.dumps(raw), encoding="utf-8")
    return path


def refused(path: Path) -> StateError:
    with pytest.raises(StateError) as info:
        read_state(path, SITE)
    exc = info.value
    assert exc.source == str(path) and str(path) in str(exc)
    return exc


def test_shipped_state_merges_over_the_site() -> None:
    state = read_state(STATE, SITE)
    assert state.soc == {"bess1": 0.42, "bess2": 0.30}
    assert state.generators["dg1"] == GeneratorState(on=True, hours_in_state=0.25)
    assert state.generators["dg2"] == GeneratorState(on=False, hours_in_state=24.0)  # from the site file
    assert state.fuel_stock == {"diesel": 900}


def test_empty_state_is_the_initial_state(tmp_path: Path) -> None:
    state = read_state(write_json(tmp_path, {}), SITE)
    assert state == SiteState.initial(SITE)
    assert state.soc == {"bess1": 0.60, "bess2": 0.50}
    assert state.fuel_stock == {"diesel": 1500}


def test_partial_state_falls_back_per_asset() -> None:
    state = state_from_dict({"batteries": {"bess2": {"soc": 0.0}}, "generators": {}}, SITE)
    assert state.soc == {"bess1": 0.60, "bess2": 0.0}
    assert state.generators == SiteState.initial(SITE).generators
    assert state.fuel_stock == {"diesel": 1500}


def test_unlimited_fuel_stays_unlimited_unless_given() -> None:
    site = site_from_dict(tiny_site(fuels={"gas": {"unit": "m3", "price_per_unit": 20}}))
    assert state_from_dict({}, site).fuel_stock == {"gas": None}
    assert state_from_dict({"fuels": {"gas": {"stock": 12.5}}}, site).fuel_stock == {"gas": 12.5}


def test_soc_bounds_are_inclusive() -> None:
    assert state_from_dict({"batteries": {"bess1": {"soc": 0}, "bess2": {"soc": 1}}}, SITE).soc == {
        "bess1": 0,
        "bess2": 1,
    }


CASES: list[tuple[str, Any, str, tuple[str, ...]]] = [
    ("unknown-battery", {"batteries": {"bess9": {"soc": 0.5}}}, "batteries.bess9", ("no battery", "bess1, bess2")),
    ("unknown-generator", {"generators": {"dg3": {"on": True, "hours_in_state": 1}}}, "generators.dg3", ("dg1",)),
    ("unknown-fuel", {"fuels": {"petrol": {"stock": 10}}}, "fuels.petrol", ("no fuel", "diesel")),
    ("pv-id-as-battery", {"batteries": {"roof": {"soc": 0.5}}}, "batteries.roof", ("no battery",)),
    ("unknown-top", {"pv": {}}, "pv", ("unknown key",)),
    ("unknown-nested", {"batteries": {"bess1": {"soc": 0.5, "soh": 0.9}}}, "batteries.bess1.soh", ("unknown key",)),
    ("misspelt", {"generators": {"dg1": {"on": True, "hours": 1}}}, "generators.dg1.hours", ("unknown key",)),
    ("soc-above-1", {"batteries": {"bess1": {"soc": 1.2}}}, "batteries.bess1.soc", ("1.2",)),
    ("soc-percent", {"batteries": {"bess1": {"soc": 42}}}, "batteries.bess1.soc", ("42",)),
    ("soc-negative", {"batteries": {"bess2": {"soc": -0.01}}}, "batteries.bess2.soc", ("-0.01",)),
    ("stock-negative", {"fuels": {"diesel": {"stock": -5}}}, "fuels.diesel.stock", ("-5",)),
    (
        "hours-negative",
        {"generators": {"dg1": {"on": False, "hours_in_state": -1}}},
        "generators.dg1.hours_in_state",
        (),
    ),
    ("soc-string", {"batteries": {"bess1": {"soc": "0.5"}}}, "batteries.bess1.soc", ("'0.5'",)),
    ("soc-bool", {"batteries": {"bess1": {"soc": True}}}, "batteries.bess1.soc", ("True",)),
    ("soc-null", {"batteries": {"bess1": {"soc": None}}}, "batteries.bess1.soc", ("None",)),
    ("on-string", {"generators": {"dg1": {"on": "yes", "hours_in_state": 1}}}, "generators.dg1.on", ("'yes'",)),
    ("on-int", {"generators": {"dg1": {"on": 1, "hours_in_state": 1}}}, "generators.dg1.on", ("1",)),
    ("hours-bool", {"generators": {"dg1": {"on": True, "hours_in_state": True}}}, "generators.dg1.hours_in_state", ()),
    ("stock-string", {"fuels": {"diesel": {"stock": "900 l"}}}, "fuels.diesel.stock", ("'900 l'",)),
    ("section-list", {"batteries": [{"soc": 0.5}]}, "batteries", ("dictionary",)),
    ("entry-number", {"batteries": {"bess1": 0.5}}, "batteries.bess1", ()),
    ("missing-soc", {"batteries": {"bess1": {}}}, "batteries.bess1.soc", ("required key is missing",)),
    ("missing-hours", {"generators": {"dg1": {"on": True}}}, "generators.dg1.hours_in_state", ("missing",)),
    ("nan", '{"batteries": {"bess1": {"soc": NaN}}}', "batteries.bess1.soc", ("finite",)),
    ("infinity", '{"fuels": {"diesel": {"stock": Infinity}}}', "fuels.diesel.stock", ("finite",)),
]


@pytest.mark.parametrize(("raw", "key", "reasons"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_state_names_the_key_path(tmp_path: Path, raw: Any, key: str, reasons: tuple[str, ...]) -> None:
    exc = refused(write_json(tmp_path, raw))
    hits = [p for p in exc.problems if p.startswith(f"{key}:")]
    assert hits, exc.problems
    assert any(all(r in p for r in reasons) for p in hits), (reasons, hits)


def test_every_problem_is_listed(tmp_path: Path) -> None:
    raw = {
        "batteries": {"bess1": {"soc": 2}, "bess2": {"soc": "x"}},
        "generators": {"dg1": {"on": "no", "hours_in_state": -1}},
        "colour": 1,
    }
    exc = refused(write_json(tmp_path, raw))
    keys = sorted(p.split(":")[0] for p in exc.problems)
    assert keys == [
        "batteries.bess1.soc",
        "batteries.bess2.soc",
        "colour",
        "generators.dg1.hours_in_state",
        "generators.dg1.on",
    ]


def test_every_unknown_id_is_listed() -> None:
    with pytest.raises(StateError) as info:
        state_from_dict({"batteries": {"a": {"soc": 0.1}, "b": {"soc": 0.1}}, "fuels": {"c": {"stock": 1}}}, SITE)
    assert [p.split(":")[0] for p in info.value.problems] == ["batteries.a", "batteries.b", "fuels.c"]
    assert info.value.source == "<state>"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"batteries": {', "line 1, column 16"),
        ('{\n  "batteries": {"bess1": {"soc": 0.5}},\n}\n', "line 3, column 1"),
        ("{'batteries': {}}", "line 1, column 2"),
        ("", "line 1, column 1"),
        ('{"fuels": {"diesel": {"stock": 0x10}}}', "line 1, column 33"),
    ],
)
def test_invalid_json_gives_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    exc = refused(write_json(tmp_path, text))
    assert len(exc.problems) == 1 and exc.problems[0].startswith(where), exc.problems
    assert "not valid JSON" in exc.problems[0]


@pytest.mark.parametrize(("text", "got"), [("[]", "list"), ("null", "NoneType"), ('"bess1"', "str"), ("0.5", "float")])
def test_state_that_is_not_an_object(tmp_path: Path, text: str, got: str) -> None:
    exc = refused(write_json(tmp_path, text))
    assert exc.problems == [f"(top level): must be a JSON object, got {got}"]


@pytest.mark.parametrize(
    "text",
    [
        '{"batteries": {"bess1": {"soc": 0.5, "soc": 0.9}}}',  # a key given twice
        '{"fuels": {"diesel": {"stock": 1' + "0" * 5000 + "}}}",  # beyond Python's int-string limit
        "[" * 100_000 + "]" * 100_000,  # nesting deeper than the recursion limit
    ],
    ids=["duplicate-key", "huge-int", "deep"],
)
def test_pathological_json_gives_state_error(tmp_path: Path, text: str) -> None:
    exc = refused(write_json(tmp_path, text))
    assert "not valid JSON" in exc.problems[0]


def test_missing_and_binary_files(tmp_path: Path) -> None:
    assert "cannot read file" in refused(tmp_path / "nope.json").problems[0]
    path = tmp_path / "bin.json"
    path.write_bytes(b'{"\xff": 1}')
    assert "cannot read file" in refused(path).problems[0]
