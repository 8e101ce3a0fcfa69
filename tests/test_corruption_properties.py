"""Random corruptions of the shipped files never crash with anything but the library's
InputError subclasses (ConfigError, ProfileError, StateError); a handful also go through the
``microgrid`` command, which must exit 0 or 2 without a traceback."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from microgrid.errors import ConfigError, ProfileError, StateError
from microgrid.profiles import Profiles, read_profiles
from microgrid.site import Site, read_site, site_from_dict
from microgrid.state import SiteState, read_state, state_from_dict
from tests.conftest import HOSPITAL, STATE, WINTER

SITE = read_site(HOSPITAL)
HOSPITAL_TEXT = HOSPITAL.read_text(encoding="utf-8")
HOSPITAL_DICT: dict[str, Any] = yaml.safe_load(HOSPITAL_TEXT)
WINTER_TEXT = WINTER.read_text(encoding="utf-8")
HEADER, *ROWS = [line.split(",") for line in WINTER_TEXT.splitlines()]
STATE_DICT: dict[str, Any] = json.loads(STATE.read_text(encoding="utf-8"))

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies -----------------------------------------------------------------------------

scalar_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "15min", "24h", "1e3", "-0", "0", "1", "0.5", "diesel", "bess1", "Europe/Kyiv", "a.b"]),
    st.sampled_from(["99999999999999d", "0.0000001s", "1e400", "[/]", "Mars/Olympus", "1.5h", "7d", "15"]),
    st.dates(),
    st.binary(max_size=4),
)
junk = st.one_of(
    scalar_junk,
    st.lists(scalar_junk, max_size=3),
    st.dictionaries(st.text(max_size=6), scalar_junk, max_size=3),
)
unknown_key = st.one_of(st.text(min_size=1, max_size=10), st.integers(), st.sampled_from(["id", "soc", "stock", "kw"]))

YAML_SNIPPETS = {  # odd lines of YAML, each once a crash of the reader or a misleading message
    "list-key": "? [1, 2]\n: 3",
    "dict-key": "{a: 1}: 2",
    "merge": "<<: {colour: red}",
    "merge-scalar": "<<: 5",
    "anchor": "x: &a [1]",
    "unknown-alias": "y: *nope",
    "bad-date": "when: 2026-02-30",
    "big-int": "big: 1" + "0" * 5000,
    "deep": "deep: " + "[" * 1000 + "]" * 1000,
    "python-tag": "t: !!python/name:os.system",
    "binary": "b: !!binary aGk=",
    "set": "s: !!set {a, b}",
    "id": "id: roof",
    "bare-duration": "interval: 15",
    "list-item": "- id: extra",
}

Path_ = tuple[Any, ...]


def paths(tree: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every key path in a tree of dicts and lists (the root excluded)."""
    found: list[Path_] = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
    for key, value in items:
        found.append((*prefix, key))
        found.extend(paths(value, (*prefix, key)))
    return found


def get(tree: Any, path: Path_) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def mutate_tree(data: st.DataObject, tree: Any, n_ops: int) -> Any:
    """Apply ``n_ops`` random edits to a copy of ``tree``: delete, replace, add an unknown key, swap."""
    tree = copy.deepcopy(tree)
    for _ in range(n_ops):
        where = paths(tree)
        if not where:
            break
        op = data.draw(st.sampled_from(["delete", "replace", "insert", "swap"]), label="op")
        path = data.draw(st.sampled_from(where), label="path")
        parent, key = get(tree, path[:-1]), path[-1]
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = data.draw(junk, label="junk")
        elif op == "insert":
            target = parent[key] if isinstance(parent[key], dict) else parent
            if isinstance(target, dict):
                target[data.draw(unknown_key, label="key")] = data.draw(junk, label="value")
            else:
                target.append(data.draw(junk, label="item"))
        else:
            other = data.draw(st.sampled_from(where), label="other")
            if other[: len(path)] != path and path[: len(other)] != other:  # neither inside the other
                other_parent = get(tree, other[:-1])
                parent[key], other_parent[other[-1]] = other_parent[other[-1]], parent[key]
    return tree


# -- the site ---------------------------------------------------------------------------------


@PROPERTY
@given(data=st.data(), n_ops=st.integers(min_value=1, max_value=4))
def test_corrupted_site_dict_gives_site_or_config_error(data: st.DataObject, n_ops: int) -> None:
    raw = mutate_tree(data, HOSPITAL_DICT, n_ops)
    try:
        site = site_from_dict(raw, "corrupt.yaml")
    except ConfigError as exc:
        event("refused")
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        assert str(exc).startswith("corrupt.yaml: ")
        return
    assert isinstance(site, Site)
    # a site that passed must also take the shipped profiles and state without crashing
    with contextlib.suppress(ProfileError):
        assert isinstance(read_profiles(WINTER, site), Profiles)
    with contextlib.suppress(StateError):
        assert isinstance(state_from_dict(STATE_DICT, site), SiteState)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corrupt")


@PROPERTY
@given(data=st.data())
def test_corrupted_site_text_gives_site_or_config_error(scratch: Path, data: st.DataObject) -> None:
    text = HOSPITAL_TEXT
    op = data.draw(st.sampled_from(["truncate", "insert", "delete", "dump-mutated"]), label="op")
    if op == "truncate":
        text = text[: data.draw(st.integers(0, len(text)), label="at")]
    elif op == "insert":
        at = data.draw(st.integers(0, len(text)), label="at")
        piece = data.draw(st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#%@`,? \t\nx1.")), max_size=8))
        text = text[:at] + piece + text[at:]
    elif op == "delete":
        at = data.draw(st.integers(0, len(text)), label="at")
        text = text[:at] + text[at + data.draw(st.integers(1, 20), label="n") :]
    else:
        raw = mutate_tree(data, HOSPITAL_DICT, data.draw(st.integers(1, 3), label="n_ops"))
        text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    path = scratch / "site.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        assert isinstance(read_site(path), Site)
    except ConfigError as exc:
        event("refused")
        assert exc.source == str(path) and exc.problems


@pytest.mark.parametrize("snippet", YAML_SNIPPETS.values(), ids=YAML_SNIPPETS.keys())
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_odd_yaml_line_gives_site_or_config_error(scratch: Path, snippet: str, data: st.DataObject) -> None:
    """A line of the hospital replaced by odd YAML, at that line's indentation."""
    lines = HOSPITAL_TEXT.splitlines()
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines[i] = indent + snippet.replace("\n", "\n" + indent)
    path = scratch / "odd.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        assert isinstance(read_site(path), Site)
    except ConfigError as exc:
        event("refused")
        assert exc.source == str(path) and exc.problems


# -- the profiles -------------------------------------------------------------------------------

csv_junk = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["", "nan", "-1", "inf", "1e999", "0x1", '"', '","', "1,2", "2026-01-15", "NaT", " ", "\n"]),
    st.sampled_from(["3000-01-15T00:00:00+02:00", "0001-01-01T00:00:00+00:00", "2026-01-15T00:00:00Z", "1.0"]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers().map(str),
)


def corrupt_csv(data: st.DataObject) -> str:
    header, rows = list(HEADER), copy.deepcopy(ROWS)
    for _ in range(data.draw(st.integers(1, 4), label="n_ops")):
        op = data.draw(st.sampled_from(["cell", "header", "drop", "duplicate", "shuffle", "swap-rows"]), label="op")
        if op == "cell" and rows:
            r = data.draw(st.integers(0, len(rows) - 1), label="row")
            c = data.draw(st.integers(0, len(header) - 1), label="col")
            rows[r][c] = data.draw(csv_junk, label="junk")
        elif op == "header":
            c = data.draw(st.integers(0, len(header) - 1), label="col")
            header[c] = data.draw(
                st.one_of(
                    csv_junk,
                    st.sampled_from(["load.nope", "pv.nope", "grid.x", "load.critical", "pv.roof", " pv.roof "]),
                )
            )
        elif op == "drop" and rows:
            del rows[data.draw(st.integers(0, len(rows) - 1), label="row")]
        elif op == "duplicate" and rows:
            r = data.draw(st.integers(0, len(rows) - 1), label="row")
            rows.insert(r, list(rows[r]))
        elif op == "shuffle":
            order = data.draw(st.permutations(range(len(header))), label="order")
            header = [header[i] for i in order]
            rows = [[row[i] if i < len(row) else "" for i in order] for row in rows]
        elif op == "swap-rows" and len(rows) > 1:
            a, b = data.draw(st.integers(0, len(rows) - 1)), data.draw(st.integers(0, len(rows) - 1))
            rows[a], rows[b] = rows[b], rows[a]
    text = "\n".join(",".join(r) for r in [header, *rows]) + "\n"
    if data.draw(st.booleans(), label="truncate"):
        text = text[: data.draw(st.integers(0, len(text)), label="at")]
    return text


@PROPERTY
@given(data=st.data())
def test_corrupted_profiles_give_profiles_or_profile_error(scratch: Path, data: st.DataObject) -> None:
    path = scratch / "profiles.csv"
    path.write_bytes(corrupt_csv(data).encode("utf-8"))
    try:
        prof = read_profiles(path, SITE)
    except ProfileError as exc:
        event("refused")
        assert exc.source == str(path) and exc.problems
        return
    assert prof.steps >= 2 and prof.step_h > 0
    assert prof.load_kw.notna().all().all() and (prof.load_kw.to_numpy() >= 0).all()


NASTY_CELLS = [
    "3000-01-15T00:00:00+02:00",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59-23:59",
    "2026-01-15T00:00:00Z",
    "2026-01-15",
    '"1\n2"',
    '"',
    "1,2",
    "1e999",
    "-0",
    "",
]
NASTY_HEADERS = ["pv.roof ", " load.critical", "load.critical.1", "", "timestamp", "grid.available", '"a,b"', "load."]


@pytest.mark.parametrize("value", NASTY_CELLS)
@settings(max_examples=5, deadline=None)
@given(row=st.integers(0, len(ROWS) - 1), column=st.integers(0, len(HEADER) - 1))
def test_odd_cell_gives_profiles_or_profile_error(scratch: Path, value: str, row: int, column: int) -> None:
    rows = copy.deepcopy(ROWS)
    rows[row][column] = value
    path = scratch / "odd-cell.csv"
    path.write_text("\n".join(",".join(r) for r in [HEADER, *rows]) + "\n", encoding="utf-8")
    try:
        read_profiles(path, SITE)
    except ProfileError as exc:
        event("refused")
        assert exc.problems


@pytest.mark.parametrize("name", NASTY_HEADERS)
@settings(max_examples=5, deadline=None)
@given(column=st.integers(0, len(HEADER) - 1))
def test_odd_header_gives_profiles_or_profile_error(scratch: Path, name: str, column: int) -> None:
    header = list(HEADER)
    header[column] = name
    path = scratch / "odd-header.csv"
    path.write_text("\n".join(",".join(r) for r in [header, *ROWS]) + "\n", encoding="utf-8")
    try:
        read_profiles(path, SITE)
    except ProfileError as exc:
        event("refused")
        assert exc.problems


@PROPERTY
@given(data=st.data(), at=st.integers(min_value=0, max_value=len(WINTER_TEXT.encode("utf-8"))))
def test_profiles_truncated_at_any_byte(scratch: Path, data: st.DataObject, at: int) -> None:
    path = scratch / "truncated.csv"
    path.write_bytes(WINTER_TEXT.encode("utf-8")[:at])
    try:
        prof = read_profiles(path, SITE)
    except ProfileError:
        return
    assert 2 <= prof.steps <= 96


@settings(max_examples=30, deadline=None)
@given(order=st.permutations(range(len(HEADER))))
def test_column_order_does_not_matter(scratch: Path, order: list[int]) -> None:
    path = scratch / "shuffled.csv"
    lines = [[r[i] for i in order] for r in [HEADER, *ROWS]]
    path.write_text("\n".join(",".join(r) for r in lines) + "\n", encoding="utf-8")
    got, want = read_profiles(path, SITE), read_profiles(WINTER, SITE)
    assert (got.index == want.index).all()
    pd.testing.assert_frame_equal(got.load_kw, want.load_kw)
    pd.testing.assert_frame_equal(got.pv_kw, want.pv_kw)
    pd.testing.assert_series_equal(got.grid_available, want.grid_available)
    pd.testing.assert_series_equal(got.import_price_per_kwh, want.import_price_per_kwh)


# -- the state ----------------------------------------------------------------------------------


@PROPERTY
@given(data=st.data(), n_ops=st.integers(min_value=1, max_value=3), truncate=st.booleans())
def test_corrupted_state_gives_state_or_state_error(
    scratch: Path, data: st.DataObject, n_ops: int, truncate: bool
) -> None:
    raw = mutate_tree(data, STATE_DICT, n_ops)
    text = json.dumps(raw, default=repr)
    if truncate:
        text = text[: data.draw(st.integers(0, len(text)), label="at")]
    path = scratch / "state.json"
    path.write_text(text, encoding="utf-8")
    try:
        assert isinstance(read_state(path, SITE), SiteState)
    except StateError as exc:
        event("refused")
        assert exc.source == str(path) and exc.problems


# -- a handful through the command ---------------------------------------------------------------


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_corrupted_files_through_the_cli_exit_0_or_2(scratch: Path, data: st.DataObject) -> None:
    site = scratch / "cli-site.yaml"
    profiles = scratch / "cli-profiles.csv"
    raw = mutate_tree(data, HOSPITAL_DICT, data.draw(st.integers(0, 2), label="site_ops"))
    site.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    profiles.write_text(corrupt_csv(data), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "MICROGRID_DEBUG"}
    proc = subprocess.run(
        [sys.executable, "-m", "microgrid", "validate", str(site), "--profiles", str(profiles), "--state", str(STATE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )
    assert proc.returncode in (0, 2), proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert (proc.returncode == 0) == (proc.stderr == "")
