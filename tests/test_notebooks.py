"""The exploratory notebooks: stored clean, linked from the README, public API only, and each
runs top to bottom without an error (executed by nbclient, from the notebooks/ folder as
Jupyter runs them).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.helpers import REPO

ROOT = REPO
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = [
    "01_explore_scene.ipynb",
    "02_train_and_compare.ipynb",
    "03_predict_and_map.ipynb",
    "04_what_the_bands_do.ipynb",
    "05_sentinel2_product.ipynb",
]
# What a notebook may import: bandfusion's public modules (notebook 05: a product's description,
# its cloud mask and the map quicklook's colours), the scientific stack (dask for notebook 01's
# look at the task graph) and a little of the standard library.
BANDFUSION_MODULES = {
    "bandfusion",
    "bandfusion.display.preview",
    "bandfusion.display.product_info",
    "bandfusion.display.tables",
    "bandfusion.io.cloudmask",
    "bandfusion.io.products",
    "bandfusion.models.baselines",
}
OTHER_PACKAGES = {"dask", "matplotlib", "numpy", "sklearn", "xarray"}
STANDARD_LIBRARY = {"pathlib", "shutil", "tempfile", "time"}
CELL_TIMEOUT_S = 180


def _code_cells(path: Path) -> list[nbformat.NotebookNode]:
    notebook = nbformat.read(path, as_version=4)
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_notebooks_are_there_and_linked_from_the_readme() -> None:
    assert [path.name for path in NOTEBOOKS] == EXPECTED
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Notebooks\n", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"\]\(notebooks/([^)]+)\)", section) == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nbformat.validate(nbformat.read(path, as_version=4))
    dirty = [
        k
        for k, cell in enumerate(_code_cells(path))
        if cell.outputs or cell.execution_count is not None
    ]
    assert not dirty, (
        f"{path.name}: code cells {dirty} hold outputs or execution counts; clear them "
        "(jupyter nbconvert --clear-output --inplace) before committing"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_imports_only_the_public_api(path: Path) -> None:
    imported = set()
    for cell in _code_cells(path):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add("." * node.level + (node.module or ""))
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports private names {private}"
    refused = {
        module
        for module in imported
        if module not in BANDFUSION_MODULES
        and module.split(".")[0] not in OTHER_PACKAGES | STANDARD_LIBRARY
    }
    assert not refused, f"{path.name} imports {sorted(refused)}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits these. Agg: no display needed. Passive OpenMP waits: on a busy
    # two-core machine, torch's spinning OpenMP threads starve each other and the kernel's
    # first training ran 10-100x slower than with threads that sleep while they wait.
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
