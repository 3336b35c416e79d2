"""The benchmark runner: every method fitted on the same training pixels and scored on the same
test pixels, seed after seed, with the versions and load that numbers and timings depend on."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import sklearn
import torch
import xarray as xr
from bandfusion import __version__
from bandfusion.engine.compare.methods import (
    available_methods,
    baseline_settings,
    build_method,
    cap_per_class,
    with_jobs,
)
from bandfusion.engine.compare.protocols import Protocol, usable_labels
from bandfusion.engine.compare.results import Benchmark, MethodRun
from bandfusion.engine.evaluate import report_from_pixels
from bandfusion.engine.sampling import sample_pixels
from bandfusion.io.labels import Labels
from bandfusion.progress import Progress, Step, silent
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits


def run_benchmark(
    scene: xr.DataArray,
    labels: Labels,
    *,
    dataset: str,
    protocol: Protocol | None = None,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    per_class_cap: int | None = 20000,
    fusion_params: Mapping[str, Any] | None = None,
    threads: int = 1,
    progress: Progress | None = None,
) -> Benchmark:
    """Fit and score every method on every seed's split of the labelled pixels of `scene`.

    Each seed draws its own split and seeds every method; all methods fit on the same training
    pixels (at most `per_class_cap` per class, fewer for methods with a smaller cap) and are
    scored on every test pixel. `fusion_params` are SpectralFusionClassifier parameters.
    `progress` is told of each fit as it starts (its seed and method) and ends (stage "fits").
    """
    protocol = protocol or Protocol()
    bands = [str(b) for b in scene["band"].values]
    methods = list(methods or available_methods(bands))
    fusion_params = dict(fusion_params or {})
    labels = usable_labels(scene, labels)
    bench = Benchmark(
        dataset=dataset,
        protocol=protocol,
        methods=methods,
        seeds=list(seeds),
        class_ids=list(labels.legend.ids),
        class_names=list(labels.legend.names),
        settings={
            "per_class_cap": per_class_cap,
            "fusion_params": fusion_params,
            "baselines": baseline_settings(methods),
            "bands": bands,
        },
        environment=collect_environment(threads, str(fusion_params.get("device", "cpu"))),
    )
    report = progress or silent
    total = len(bench.seeds) * len(methods)
    with _thread_limit(threads):
        for seed in bench.seeds:
            train, test = protocol.split(labels, seed)
            x_train, y_train = sample_pixels(
                scene, labels, where=train, per_class_cap=per_class_cap, seed=seed
            )
            x_test, y_test = sample_pixels(scene, labels, where=test, per_class_cap=None)
            for method in methods:
                report(Step("fits", 0, total, "fit", {"seed": seed, "method": method}))
                estimator, cap = build_method(method, seed, bands, fusion_params)
                x, y = cap_per_class(x_train, y_train, cap, seed)
                bench.runs.append(
                    _run(
                        method,
                        seed,
                        with_jobs(estimator, threads),
                        (x, y),
                        (x_test, y_test),
                        bench,
                    )
                )
                report(Step("fits", 1, total, "fit"))
    bench.environment["load_average_end"] = list(os.getloadavg())
    return bench


def collect_environment(threads: int, device: str) -> dict[str, Any]:
    """Versions, threads and load average: what numbers and timings depend on."""
    return {
        "bandfusion": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "device": device,
        "load_average_start": list(os.getloadavg()),
        "command": " ".join(sys.argv),
    }


@contextmanager
def _thread_limit(threads: int) -> Iterator[None]:
    """torch, OpenMP and BLAS limited to `threads`: comparable timings, repeatable sums."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def _run(
    method: str,
    seed: int,
    estimator: BaseEstimator,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    bench: Benchmark,
) -> MethodRun:
    start = time.perf_counter()
    estimator.fit(*train)
    fitted = time.perf_counter()
    predicted = estimator.predict(test[0])
    done = time.perf_counter()
    report = report_from_pixels(test[1], predicted, bench.class_ids, bench.class_names)
    return MethodRun(method, seed, report, fitted - start, done - fitted, len(train[1]))
