"""The object-storage batch figure of `python -m bench` runs on a tiny case and counts what the
store served."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.store import METHODS, measure
from tests.helpers import REPO, save_chip_model


def test_store_figure_maps_through_moto_and_counts_requests(tmp_path: Path) -> None:
    figures = measure(tmp_path, count=2, repeats=1, model=save_chip_model(tmp_path / "model"))
    assert len(figures.local) == len(figures.store) == 1
    assert figures.ratio > 0
    assert sorted((tmp_path / "maps").glob("*.tif")) == [
        tmp_path / "maps" / "adwp-000.tif",
        tmp_path / "maps" / "akny-001.tif",
    ]
    # every band file is read once, whole (the model's files and range overlaps add a little)
    assert figures.input_bytes <= figures.read_bytes < 2 * figures.input_bytes
    assert figures.requests["GET"] >= 8  # at least one a band file
    assert figures.requests["PUT"] >= 2  # at least one a map
    table = figures.table()
    assert "| object store / local (wall) |" in table
    assert f"| requests per scene, {' / '.join(METHODS)} |" in table


@pytest.mark.slow
def test_bench_store_only_prints_the_ratio() -> None:
    command = [sys.executable, "-m", "bench", "--store-only", "--store-scenes", "2"]
    command += ["--repeats", "1", "--no-record"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| object store / local (wall) |" in result.stdout
