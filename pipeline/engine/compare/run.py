"""The benchmark runner: every method fitted on the same training pixels and scored on the same
test pixels, seed after seed, with the versions and load that numbers and timings depend on."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import sklearn
import torch
import xarray as xr
from bandfusion import __version__
from bandfusion.engine.compare.heldout import HeldOut
from bandfusion.engine.compare.methods import (
    available_methods,
    baseline_settings,
    build_method,
    cap_per_class,
    fit_arguments,
    with_jobs,
)
from bandfusion.engine.compare.protocols import Protocol, usable_labels
from bandfusion.engine.compare.results import Benchmark, MethodRun
from bandfusion.engine.evaluate import report_from_pixels
from bandfusion.engine.sampling import (
    block_ids,
    cap_class_weights,
    class_counts,
    sample_located_pixels,
    sample_pixels,
)
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
    max_test_pixels: int | None = None,
    progress: Progress | None = None,
) -> Benchmark:
    """Fit and score every method on every seed's split of the labelled pixels of `scene`.

    Each seed draws its own split and seeds every method; all methods fit on the same training
    pixels (at most `per_class_cap` per class, fewer for methods with a smaller cap) and are
    scored on the same test pixels: every one, or `max_test_pixels` of them drawn at random.
    Test pixels are read only once every method of the seed is fitted (`HeldOut`), so no fit
    can see them. Methods that count each pixel the same (`class_weight=None`) are given the
    weights that undo the per-class cap, so they learn the training region's class mix, which
    the test pixels share; under the block protocol the fusion net's search folds whole
    blocks. `fusion_params` are SpectralFusionClassifier parameters.
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
            "max_test_pixels": max_test_pixels,
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
            x_train, y_train, train_at = sample_located_pixels(
                scene, labels, where=train, per_class_cap=per_class_cap, seed=seed
            )
            groups = _search_groups(protocol, train_at, labels)
            population = class_counts(labels, train)
            held = HeldOut(partial(_test_pixels, scene, labels, test, max_test_pixels, seed))
            fitted = []
            for method in methods:
                report(Step("fits", 0, total, "fit", {"seed": seed, "method": method}))
                estimator, cap = build_method(method, seed, bands, fusion_params)
                rows = cap_per_class(y_train, cap, seed)
                x, y = x_train[rows], y_train[rows]
                estimator, params = fit_arguments(
                    estimator,
                    y,
                    cap_class_weights(population, y),
                    None if groups is None else groups[rows],
                )
                fitted.append(_fit(method, with_jobs(estimator, threads), x, y, params))
                report(Step("fits", 1, total, "fit"))
            held.release()
            bench.runs.extend(_score(fit, seed, held.pixels(), bench) for fit in fitted)
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


@dataclass(frozen=True)
class _Fitted:
    method: str
    estimator: BaseEstimator
    fit_seconds: float
    n_train: int


def _search_groups(protocol: Protocol, train_at: np.ndarray, labels: Labels) -> np.ndarray | None:
    """Each training pixel's spatial block, for the fusion net's search, under the block
    protocol: its CV then holds out whole blocks, as the benchmark does. Protocols of random
    pixels test neighbours of training pixels, and the search's stratified folds match them."""
    if protocol.name != "block":
        return None
    return block_ids(train_at, labels.values.shape[1], protocol.block_size)


def _fit(
    method: str,
    estimator: BaseEstimator,
    x: np.ndarray,
    y: np.ndarray,
    params: dict[str, Any],
) -> _Fitted:
    """Fit `estimator` with its `fit_arguments`, timed."""
    start = time.perf_counter()
    estimator.fit(x, y, **params)
    return _Fitted(method, estimator, time.perf_counter() - start, len(y))


def _score(
    fitted: _Fitted, seed: int, test: tuple[np.ndarray, np.ndarray], bench: Benchmark
) -> MethodRun:
    start = time.perf_counter()
    predicted = fitted.estimator.predict(test[0])
    seconds = time.perf_counter() - start
    report = report_from_pixels(test[1], predicted, bench.class_ids, bench.class_names)
    selection = getattr(fitted.estimator, "selection_", None)
    return MethodRun(
        fitted.method, seed, report, fitted.fit_seconds, seconds, fitted.n_train, selection
    )


def _test_pixels(
    scene: xr.DataArray, labels: Labels, test: np.ndarray, most: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every test pixel's (X, y), or `most` of them drawn at random (the same for a seed)."""
    x, y = sample_pixels(scene, labels, where=test, per_class_cap=None)
    if most is None or len(y) <= most:
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(y), most, replace=False))
    return x[keep], y[keep]
