"""The README holds to what it promises: a short read, a Python tour that runs as written (in a
scratch directory holding the data), commands that exist, and links that lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest
from bandfusion.cli import SUBCOMMANDS

from tests.helpers import REPO

README = REPO / "README.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "bench" / "RESULTS.md"]


def test_readme_python_example_runs(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "README has no Python example"
    matplotlib.use("Agg")
    (tmp_path / "data").symlink_to(data_dir)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    assert (tmp_path / "water.tif").exists()
    assert (tmp_path / "water-model" / "model.json").exists()
    assert namespace["report"].overall_accuracy > 0.9  # type: ignore[attr-defined]


def test_readme_is_an_hours_read():
    assert len(README.read_text().splitlines()) <= 150


def test_readme_commands_exist():
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)
    used = {name for block in blocks for name in re.findall(r"^bandfusion (\w+)", block, re.M)}
    assert used, "README shows no bandfusion command"
    assert used <= set(SUBCOMMANDS)
    makefile = (REPO / "Makefile").read_text()
    for target in re.findall(r"^make (\w+)", "\n".join(blocks), re.M):
        assert re.search(rf"^{target}:", makefile, re.M), f"make {target}: no such target"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_lead_to_files(page: Path):
    targets = re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", page.read_text())
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"
