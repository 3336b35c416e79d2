"""Engine results made by hand, as plain data: what the display functions take."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from bandfusion.batch.manifest import SceneRecord
from bandfusion.batch.run import BatchResult
from bandfusion.engine.compare import Benchmark, MethodRun, Protocol
from bandfusion.engine.compare.run import collect_environment
from bandfusion.engine.evaluate import EvaluationReport, report_from_pixels
from bandfusion.engine.explain import Explanation

CLASS_IDS = [1, 2]
CLASS_NAMES = ["water", "broadleaf forest"]


@pytest.fixture
def report() -> EvaluationReport:
    return EvaluationReport(CLASS_IDS, CLASS_NAMES, np.array([[8, 2], [1, 9]]))


@pytest.fixture
def explanation() -> Explanation:
    """Band b2 matters most, b3 not at all; four inputs (the bands and NDWI), five channels."""
    rng = np.random.default_rng(0)
    return Explanation(
        bands=["b1", "b2", "b3"],
        importance_mean=np.array([0.012, 0.41, -0.002]),
        importance_std=np.array([0.004, 0.03, 0.001]),
        scoring="f1_macro",
        score=0.953,
        n_repeats=3,
        inputs=["b1", "b2", "b3", "NDWI"],
        mixing_weights=rng.normal(size=(5, 4)),
        class_ids=CLASS_IDS,
        class_names=CLASS_NAMES,
        class_colors=[(0, 90, 200), (20, 120, 40)],
        signature_mean=np.array([[900.0, 700.0, 400.0], [1000.0, 1300.0, 2500.0]]),
        signature_std=np.array([[40.0, 30.0, 20.0], [50.0, 60.0, 200.0]]),
        class_pixels=np.array([10, 12]),
    )


@pytest.fixture
def benchmark() -> Benchmark:
    """Two methods on two seeds; logistic misses class 2 more often than fusion does."""
    truth = np.array([1] * 10 + [2] * 10)
    bench = Benchmark(
        dataset="synthetic",
        protocol=Protocol(block_size=16),
        methods=["fusion", "logistic"],
        seeds=[0, 1],
        class_ids=CLASS_IDS,
        class_names=CLASS_NAMES,
        settings={
            "per_class_cap": 500,
            "fusion_params": {"hidden": (16,), "epochs": 5, "patience": 5},
            "bands": ["b1", "b2"],
        },
        environment=collect_environment(1, "cpu"),
    )
    for seed in bench.seeds:
        for method, wrong in (("fusion", 1 + seed), ("logistic", 4 + seed)):
            predicted = truth.copy()
            predicted[-wrong:] = 1
            report = report_from_pixels(truth, predicted, CLASS_IDS, CLASS_NAMES)
            bench.runs.append(MethodRun(method, seed, report, 0.5 + seed, 0.01, 40))
    bench.environment["load_average_end"] = list(os.getloadavg())
    return bench


@pytest.fixture
def batch_result() -> BatchResult:
    """A done, a skipped and a failed scene."""
    done = SceneRecord(
        output="out.tif",
        inputs=(),
        model_sha256="m1",
        status="done",
        sha256="0" * 64,
        pixels={"1": 3, "nodata": 1},
        duration_s=0.5,
        worker="tcp://127.0.0.1:1",
        parts=1,
    )
    failed = SceneRecord("bad.tif", (), "m1", status="failed", error="bad.tif: not a raster")
    return BatchResult((done, replace(done, status="skipped"), failed), Path("m.json"), 2.0)
