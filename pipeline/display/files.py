"""The files a benchmark and an explanation leave in their output directory: JSON for programs,
Markdown and PNG figures for people. Each file is written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from bandfusion.display.figures import benchmark_figure, explanation_figures
from bandfusion.display.markdown import benchmark_markdown
from bandfusion.io.atomic import atomic_output, write_json
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from bandfusion.engine.compare.results import Benchmark
    from bandfusion.engine.explain import Explanation

BENCHMARK_FILES = ("benchmark.json", "benchmark.md", "benchmark.png")
"""What `write_benchmark` writes into its directory."""
EXPLANATION_FILES = ("explanation.json", "importance.png", "mixing-weights.png", "signatures.png")
"""What `write_explanation` writes into its directory: the JSON, then each figure's PNG."""


def write_benchmark(bench: Benchmark, directory: str | Path) -> list[Path]:
    """Write benchmark.json, benchmark.md and benchmark.png into `directory`."""
    json_path, markdown_path, png_path = (Path(directory) / name for name in BENCHMARK_FILES)
    write_json(json_path, bench.to_dict(), indent=2, allow_nan=False, default=_numbers)
    _write_text(benchmark_markdown(bench), markdown_path)
    _write_png(benchmark_figure(bench), png_path)
    return [json_path, markdown_path, png_path]


def write_explanation(explanation: Explanation, directory: str | Path) -> list[Path]:
    """explanation.json, importance.png, mixing-weights.png, signatures.png in `directory`."""
    json_path = Path(directory) / EXPLANATION_FILES[0]
    write_json(json_path, explanation.to_dict(), indent=2)
    paths = [json_path]
    for name, figure in explanation_figures(explanation).items():
        paths.append(Path(directory) / f"{name}.png")
        _write_png(figure, paths[-1])
    return paths


def _write_text(text: str, path: Path) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def _write_png(figure: Figure, path: Path) -> None:
    with atomic_output(path) as tmp:
        figure.canvas.print_png(tmp)  # type: ignore[attr-defined]


def _numbers(value: object) -> object:
    """numpy values as JSON numbers (json.dump's fallback)."""
    return value.tolist() if isinstance(value, np.generic | np.ndarray) else str(value)
