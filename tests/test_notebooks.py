"""The planners' notebooks: paired, stripped, on the public API, and small in CI.

They are *executed* by nbmake: ``python -m pytest`` collects ``notebooks/*.ipynb`` (``--nbmake``
and ``testpaths`` in pyproject.toml), and nbmake's mock sets ``SMALL = True`` after each
notebook's parameters cell, so CI runs them on small settings. Here: everything else.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager

import microgrid
import microgrid.logistics
import microgrid.planning
from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SCRIPTS = sorted((ROOT / "notebooks").glob("*.py"))
ids = lambda p: p.name  # noqa: E731


def test_there_are_notebooks_and_every_one_is_paired() -> None:
    assert len(NOTEBOOKS) >= 4
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in SCRIPTS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_pair_in_sync(path: Path) -> None:
    notebook, script = jupytext.read(path), jupytext.read(path.with_suffix(".py"))
    cells = lambda nb: [(c.cell_type, c.source) for c in nb.cells]  # noqa: E731
    assert cells(notebook) == cells(script), f"{path.name}: run `jupytext --sync notebooks/*.py`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_outputs_stripped_and_kernel_resolves(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: run `nbstripout notebooks/*.ipynb`"
            )
    name = notebook.metadata["kernelspec"]["name"]
    assert name == "python3"
    assert KernelSpecManager().get_kernel_spec(name)  # ipykernel's own, in this environment


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem != "plan_a_day"], ids=ids)
def test_small_switch_for_ci(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    parameters = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and "SMALL" in parameters[0].source
    assert parameters[0].metadata["nbmake"]["mock"] == {"SMALL": True}


def _public_names(module: object) -> set[str]:
    return set(getattr(module, "__all__", ()))  # submodules imported on the side do not count


@pytest.mark.parametrize("path", SCRIPTS, ids=ids)
def test_only_the_public_api(path: Path) -> None:
    """Notebooks import ``microgrid``, ``microgrid.planning`` and ``microgrid.logistics`` and use only names
    they export."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = {"microgrid": microgrid, "planning": microgrid.planning, "logistics": microgrid.logistics}
    subpackages = {"planning", "logistics"}
    used: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(not a.name.startswith("microgrid.") for a in node.names), ast.unparse(node)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("microgrid"):
            assert node.module in ("microgrid", "microgrid.planning", "microgrid.logistics"), ast.unparse(node)
            owner = "microgrid" if node.module == "microgrid" else node.module.rsplit(".", 1)[1]
            used += [(owner, a.name) for a in node.names if not (owner == "microgrid" and a.name in subpackages)]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            used.append((node.value.id, node.attr))
    missing = sorted({f"{owner}.{name}" for owner, name in used if name not in _public_names(modules[owner])})
    assert not missing, f"{path.name} uses names the public API does not export: {missing}"
