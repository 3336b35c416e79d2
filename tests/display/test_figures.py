"""Figures of a benchmark and of an explanation, drawn from plain engine data; the engine itself
draws nothing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from bandfusion.display.figures import (
    benchmark_figure,
    explanation_figures,
    importance_figure,
    mixing_figure,
    signature_figure,
)
from bandfusion.engine.compare import Benchmark
from bandfusion.engine.explain import Explanation
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from tests.helpers import run_python


def texts(labels: list) -> list[str]:
    return [label.get_text() for label in labels]


def bars(axes: Axes) -> list[BarContainer]:
    return [c for c in axes.containers if isinstance(c, BarContainer)]


def test_the_engine_draws_nothing() -> None:
    loaded = run_python(
        "import sys\n"
        "import bandfusion.engine.compare, bandfusion.engine.evaluate, bandfusion.engine.explain\n"
        "print('matplotlib' in sys.modules)"
    )
    assert loaded == "False"


def test_benchmark_figure_has_a_bar_group_per_score(benchmark: Benchmark) -> None:
    figure = benchmark_figure(benchmark)
    [axes] = figure.axes
    assert texts(axes.get_xticklabels()) == ["OA", "AA", "kappa", "macro-F1"]
    assert axes.get_title() == "synthetic — protocol block, 2 seeds 0..1"
    assert texts(axes.get_legend().get_texts()) == ["fusion", "logistic"]
    summary = benchmark.summary()
    heights = [[bar.get_height() for bar in group] for group in bars(axes)]
    assert heights[1][0] == pytest.approx(summary["logistic"]["overall_accuracy"][0])
    assert heights[0][0] > heights[1][0]  # fusion made fewer mistakes


def test_importance_figure_puts_the_most_important_band_on_top(
    explanation: Explanation,
) -> None:
    [axes] = importance_figure(explanation).axes
    at = dict(zip(axes.get_yticks().tolist(), texts(axes.get_yticklabels()), strict=True))
    assert [at[y] for y in sorted(at, reverse=True)] == ["b2", "b1", "b3"]  # top to bottom
    [group] = bars(axes)
    assert [bar.get_width() for bar in group] == [0.41, 0.012, -0.002]


def test_mixing_figure_shows_every_input_and_channel(explanation: Explanation) -> None:
    figure = mixing_figure(explanation)
    axes, _colorbar = figure.axes
    np.testing.assert_array_equal(axes.images[0].get_array(), explanation.mixing_weights.T)
    assert texts(axes.get_yticklabels()) == ["b1", "b2", "b3", "NDWI"]


def test_signature_figure_draws_each_class_in_its_colour(explanation: Explanation) -> None:
    [axes] = signature_figure(explanation).axes
    assert [line.get_color() for line in axes.get_lines()] == [
        (0.0, 90 / 255, 200 / 255),
        (20 / 255, 120 / 255, 40 / 255),
    ]
    np.testing.assert_array_equal(axes.get_lines()[1].get_ydata(), [1000.0, 1300.0, 2500.0])
    assert texts(axes.get_legend().get_texts()) == ["water", "broadleaf forest"]
    assert texts(axes.get_xticklabels()) == ["b1", "b2", "b3"]


def test_figures_are_on_their_own_agg_canvas(
    benchmark: Benchmark, explanation: Explanation
) -> None:
    figures = [benchmark_figure(benchmark), *explanation_figures(explanation).values()]
    for figure in figures:
        assert isinstance(figure, Figure) and isinstance(figure.canvas, FigureCanvasAgg)
        png = io.BytesIO()
        figure.savefig(png, format="png")
        assert png.getvalue().startswith(b"\x89PNG")
    assert list(explanation_figures(explanation)) == ["importance", "mixing-weights", "signatures"]
