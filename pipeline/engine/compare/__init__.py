"""Benchmarks: the fusion net and scikit-learn baselines on the same pixels, over several seeds.

A protocol (`protocols`) turns the labelled pixels into train and test masks for each seed; every
method (`methods`) then fits on the same training pixels (capped per class) and is scored on
every test pixel (`run`). The result (`results`) holds every run and their mean ± std over the
seeds, with versions, settings and load average; `bandfusion.display` presents it as a table,
JSON, Markdown and a bar chart.
"""

from bandfusion.engine.compare.methods import FUSION, FUSION_INDICES, available_methods
from bandfusion.engine.compare.protocols import PROTOCOLS, Protocol, spatial_cv, usable_labels
from bandfusion.engine.compare.results import SCORES, Benchmark, MethodRun
from bandfusion.engine.compare.run import run_benchmark

__all__ = [
    "FUSION",
    "FUSION_INDICES",
    "PROTOCOLS",
    "SCORES",
    "Benchmark",
    "MethodRun",
    "Protocol",
    "available_methods",
    "run_benchmark",
    "spatial_cv",
    "usable_labels",
]
