"""A benchmark as a Markdown section."""

from __future__ import annotations

from bandfusion.display.markdown import benchmark_markdown, markdown_table
from bandfusion.engine.compare import Benchmark


def test_markdown_table() -> None:
    assert markdown_table([["a", "b"], ["1", "2"]]) == ["| a | b |", "| --- | --- |", "| 1 | 2 |"]


def test_benchmark_markdown_holds_table_protocol_settings_and_environment(
    benchmark: Benchmark,
) -> None:
    lines = benchmark_markdown(benchmark).splitlines()
    assert lines[0] == "## synthetic — protocol block, 2 seeds 0..1"
    assert lines[2].startswith("Protocol: block: spatially disjoint 16-px blocks")
    assert lines[4].startswith("| method | OA | AA | kappa | macro-F1 | IoU water |")
    assert lines[6].startswith("| fusion | ")
    assert lines[7].startswith("| logistic | ")
    assert '- fusion_params: `{"hidden": [16], "epochs": 5, "patience": 5}`' in lines
    assert '- device: `"cpu"`' in lines
