"""The files a benchmark and an explanation leave in their output directory."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from bandfusion.display.files import write_benchmark, write_explanation
from bandfusion.engine.compare import Benchmark
from bandfusion.engine.explain import Explanation


def test_write_benchmark(benchmark: Benchmark, tmp_path: Path) -> None:
    paths = write_benchmark(benchmark, tmp_path)
    assert [p.name for p in paths] == ["benchmark.json", "benchmark.md", "benchmark.png"]
    document = json.loads(paths[0].read_text())
    assert document["environment"]["torch"] == torch.__version__
    assert document["settings"]["fusion_params"] == {"hidden": [16], "epochs": 5, "patience": 5}
    assert document["summary"]["fusion"]["iou"].keys() == {"1", "2"}
    assert "| fusion |" in paths[1].read_text()
    assert paths[2].read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in paths]  # no temp files


def test_write_explanation(explanation: Explanation, tmp_path: Path) -> None:
    paths = write_explanation(explanation, tmp_path)
    assert [p.name for p in paths] == [
        "explanation.json",
        "importance.png",
        "mixing-weights.png",
        "signatures.png",
    ]
    document = json.loads(paths[0].read_text())
    assert document["ranking"][0] == "b2" and document["signatures"]["2"]["pixels"] > 0
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths[1:])
