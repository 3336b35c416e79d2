"""`python -m bench` records each run under build/, never in the tracked bench/RESULTS.md."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bench import report
from tests.helpers import REPO


def test_each_run_gets_its_own_file_outside_the_tracked_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    results = REPO / "bench" / "RESULTS.md"
    before = results.read_text()
    monkeypatch.setattr(report, "RUNS", tmp_path / "runs")
    first = report.record("engine", datetime(2026, 1, 2, 3, 4, 5), "python -m bench", "| a |")
    second = report.record("engine", datetime(2026, 1, 2, 3, 4, 6), "python -m bench", "| b |")
    assert first != second
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "engine-20260102-030405.md",
        "engine-20260102-030406.md",
    ]
    text = first.read_text()
    assert text.startswith("# 2026-01-02 03:04 · `python -m bench` · ")
    assert "torch " in text.splitlines()[0] and text.endswith("| a |\n")
    assert results.read_text() == before


def test_default_runs_folder_is_ignored_by_git():
    assert report.RUNS == REPO / "build" / "bench"
    assert "build/" in (REPO / ".gitignore").read_text().splitlines()
