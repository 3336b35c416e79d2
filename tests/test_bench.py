"""The benchmark (`python -m bench`, the repository's bench/) runs end to end on a small scene."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO


@pytest.mark.slow
def test_bench_runs_end_to_end_on_a_small_scene() -> None:
    root = REPO
    command = [sys.executable, "-m", "bench", "--size", "512", "--no-record", "--no-baseline"]
    command += ["--repeats", "1", "--no-jp2", "--no-store"]  # each has its own test
    result = subprocess.run(command, capture_output=True, text=True, cwd=root, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = ("| io |", "| e2e fp32 |", "| model fp32 |", "e2e fp32 / (I/O floor")
    lines += ("| 50 % nodata speed-up |",)  # one round: tests/bench/test_report.py pairs rounds
    for line in lines:
        assert line in result.stdout


@pytest.mark.slow
def test_bench_jp2_figure_runs_or_says_why_not() -> None:
    command = [sys.executable, "-m", "bench", "--jp2-only", "--repeats", "1", "--no-record"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=900)
    assert result.returncode == 0, result.stderr
    if "JP2 figures skipped" in result.stdout:
        return
    for line in ("| e2e JP2 |", "| decode JP2 |", "| decode GeoTIFF |", "e2e JP2 / e2e GeoTIFF"):
        assert line in result.stdout
