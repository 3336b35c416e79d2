"""Figures of engine results: a benchmark's scores, and a model's band importance, band mixing
and class signatures.

Built on matplotlib's Agg canvas directly, leaving pyplot and the global backend alone; a
notebook shows the returned Figure as it is, and `figure.savefig` writes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from bandfusion.display.tables import SCORE_LABELS, benchmark_title
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from bandfusion.engine.compare.results import Benchmark
    from bandfusion.engine.explain import Explanation


def benchmark_figure(bench: Benchmark) -> Figure:
    """Bar chart of OA, AA, kappa and macro-F1 per method, with ±std error bars."""
    summary = bench.summary()
    scores = list(SCORE_LABELS)
    figure = _figure((4.0 + 1.6 * len(scores), 4.5))
    axes = figure.add_subplot()
    width = 0.8 / len(bench.methods)
    for k, method in enumerate(bench.methods):
        means = [summary[method][key][0] for key in scores]
        stds = [summary[method][key][1] for key in scores]
        positions = np.arange(len(scores)) + (k - (len(bench.methods) - 1) / 2) * width
        axes.bar(positions, means, width, yerr=stds, capsize=2, label=method)
    axes.set_xticks(np.arange(len(scores)), list(SCORE_LABELS.values()))
    lowest = min(summary[m][key][0] for m in bench.methods for key in scores)
    axes.set_ylim(max(0.0, lowest - 0.1), 1.0)
    axes.set_title(benchmark_title(bench), fontsize=9)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    return figure


def importance_figure(explanation: Explanation) -> Figure:
    """Horizontal bars of permutation importance ± std, most important at the top."""
    ranking = explanation.ranking()
    index = [explanation.bands.index(b) for b in ranking]
    figure = _figure((6.0, 1.5 + 0.25 * len(explanation.bands)))
    axes = figure.add_subplot()
    positions = np.arange(len(ranking))[::-1]
    axes.barh(
        positions,
        explanation.importance_mean[index],
        xerr=explanation.importance_std[index],
        capsize=2,
    )
    axes.set_yticks(positions, ranking, fontsize=8)
    axes.set_xlabel(f"{explanation.scoring} lost when the band is shuffled")
    axes.set_title("Permutation importance on held-out pixels", fontsize=10)
    figure.tight_layout()
    return figure


def mixing_figure(explanation: Explanation) -> Figure:
    """Heat map of the first layer's weights: one row per input band, one column per channel."""
    weights = explanation.mixing_weights.T
    inputs = explanation.inputs
    if weights.size == 0:
        figure = _figure((5.0, 1.5))
        figure.text(
            0.5,
            0.5,
            "No band mixing to show: this model's first layer encodes each band in bins\n"
            "on its own (trained with bins), or is several networks' side by side (a blend);\n"
            "band importance is the measure here.",
            ha="center",
            va="center",
            fontsize=9,
        )
        return figure
    limit = float(np.abs(weights).max()) or 1.0
    figure = _figure((2.5 + 0.12 * weights.shape[1], 1.5 + 0.25 * len(inputs)))
    axes = figure.add_subplot()
    image = axes.imshow(weights, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    axes.set_yticks(np.arange(len(inputs)), inputs, fontsize=8)
    axes.set_xlabel("first-layer channel")
    axes.set_title("Learned band mixing (weights on standardised bands)", fontsize=10)
    figure.colorbar(image, ax=axes, shrink=0.8)
    figure.tight_layout()
    return figure


def signature_figure(explanation: Explanation) -> Figure:
    """Mean ± std value of every band, one line per class, in the class colours."""
    bands = explanation.bands
    figure = _figure((2.0 + 0.4 * len(bands), 4.5))
    axes = figure.add_subplot()
    x = np.arange(len(bands))
    for k, name in enumerate(explanation.class_names):
        color = tuple(c / 255 for c in explanation.class_colors[k])
        mean, std = explanation.signature_mean[k], explanation.signature_std[k]
        axes.plot(x, mean, color=color, marker="o", markersize=3, label=name)
        axes.fill_between(x, mean - std, mean + std, color=color, alpha=0.2)
    axes.set_xticks(x, bands, rotation=90, fontsize=8)
    axes.set_ylabel("band value (mean ± std)")
    axes.set_title("Spectral signatures per class", fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def explanation_figures(explanation: Explanation) -> dict[str, Figure]:
    """The three figures of an explanation, by the name their PNG files take."""
    return {
        "importance": importance_figure(explanation),
        "mixing-weights": mixing_figure(explanation),
        "signatures": signature_figure(explanation),
    }


def _figure(size: tuple[float, float]) -> Figure:
    """A figure of `size` inches at 100 dpi on its own Agg canvas."""
    figure = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(figure)
    return figure
