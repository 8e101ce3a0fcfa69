"""The planners' notebooks run top to bottom (as the scripts jupytext pairs them with)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    namespace = runpy.run_path(str(path))
    if "plan" in namespace:  # the notebooks that plan must get a plan, not an error
        assert namespace["plan"].status.value == "optimal"


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS
