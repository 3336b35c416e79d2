"""The README's Python example runs as written (in a scratch directory holding the data)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

from tests.helpers import REPO

README = REPO / "README.md"


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
