"""The ``microgrid`` command imports only what the command needs (issue 14, item 1).

Structural, not timed: each command runs in a fresh interpreter, then the test reads which heavy
packages are in ``sys.modules``. ``--help``, ``validate``, ``status`` and ``override`` need none of
pandas, numpy, pyomo, pvlib, dask, matplotlib, highspy, pymodbus (the wall times they buy are in
``benchmarks/startup.py`` and the README). A probe that does load pandas (``validate --profiles``)
shows the check can fail. The public API stays whole: every name of ``microgrid.__all__`` and
``microgrid.control.__all__`` still resolves, to the object of its defining module.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import microgrid
import microgrid.control
from microgrid.store import CycleRow, Store
from tests.conftest import HOSPITAL, WINTER

HEAVY = ("pandas", "numpy", "pyomo", "pvlib", "dask", "matplotlib", "highspy", "pymodbus", "pyarrow", "scipy", "paho")

_PROBE = """
import json, sys
out, argv = sys.argv[1], sys.argv[2:]
if argv == ["--import-only"]:
    import microgrid
    code = 0
else:
    from microgrid.cli import main
    sys.argv = ["microgrid", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}, f)
"""


def loaded(tmp_path: Path, *args: str | Path) -> tuple[int, set[str]]:
    """Run ``microgrid ARGS`` in a fresh interpreter: (exit code, top-level packages imported)."""
    result = tmp_path / "probe.json"
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(result), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.exists(), done.stderr
    probe = json.loads(result.read_text())
    return probe["code"], set(probe["modules"])


def one_cycle(path: Path) -> Path:
    """A history holding one cycle, as a controller records it."""
    summary = {"source": "plan", "health": {"bess1-inverter": "ok"}, "state": {"grid_up": True}}
    with Store(path, retention_days=None) as store:
        assert store.record_cycle(CycleRow(datetime.now(UTC), "auto", "plan", "", {}, summary))
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("--import-only",),
        ("--help",),
        ("plan", "--help"),
        ("simulate", "--help"),
        ("status", "--help"),
        ("run", "--help"),
        ("validate", HOSPITAL),
    ],
    ids=lambda args: " ".join(map(str, args)),
)
def test_light_commands_import_no_heavy_package(tmp_path: Path, args: tuple[str | Path, ...]) -> None:
    code, modules = loaded(tmp_path, *args)
    assert code == 0
    assert sorted(modules & set(HEAVY)) == []


def test_status_and_override_on_a_real_history_import_no_heavy_package(tmp_path: Path) -> None:
    store = one_cycle(tmp_path / "history.sqlite")
    code, modules = loaded(tmp_path, "status", "--store", store)
    assert code == 0
    assert sorted(modules & set(HEAVY)) == []
    code, modules = loaded(tmp_path, "override", "--mode", "safe", "--by", "test", "--store", store)
    assert code == 0
    assert sorted(modules & set(HEAVY)) == []
    with Store(store, readonly=True) as history:
        assert [a["action"] for a in history.pending_actions()] == ["mode"]


def test_the_probe_sees_an_import_a_command_needs(tmp_path: Path) -> None:
    """``validate --profiles`` reads a CSV with pandas: the probe must report it."""
    code, modules = loaded(tmp_path, "validate", HOSPITAL, "--profiles", WINTER)
    assert code == 0
    assert {"pandas", "numpy"} <= modules


@pytest.mark.parametrize("package", [microgrid, microgrid.control], ids=lambda p: p.__name__)
def test_every_public_name_still_resolves_to_its_definition(package: object) -> None:
    names: list[str] = package.__all__  # type: ignore[attr-defined]
    lazy: dict[str, str] = package._LAZY  # type: ignore[attr-defined]
    assert set(lazy) <= set(names)
    assert set(names) <= set(dir(package))
    for name in names:
        value = getattr(package, name)
        if name in lazy:
            assert value is getattr(importlib.import_module(lazy[name]), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        getattr(package, "nothing_here")  # noqa: B009 - the module's __getattr__ is under test


def test_from_microgrid_import_works_for_lazy_names() -> None:
    from microgrid import Plan, Profiles, Site, plan, read_profiles
    from microgrid.dispatch import plan as dispatch_plan
    from microgrid.plans import Plan as PlanClass
    from microgrid.profiles import Profiles as ProfilesClass
    from microgrid.profiles import read_profiles as reader
    from microgrid.site import Site as SiteClass

    assert (plan, Plan, Profiles, read_profiles, Site) == (dispatch_plan, PlanClass, ProfilesClass, reader, SiteClass)
