"""No test pixel in the loop: benchmark fits see only training pixels away from the test blocks,
and the test pixels cannot be read until every method of a seed is fitted."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import xarray as xr
from bandfusion.engine.compare import FUSION, Protocol, run_benchmark
from bandfusion.engine.compare import run as run_module
from bandfusion.engine.compare.heldout import HeldOut, HeldOutReadEarly
from bandfusion.engine.compare.methods import SKLEARN_DEFAULTS, build_method
from bandfusion.engine.compare.results import paired_differences
from bandfusion.io.labels import Labels
from bandfusion.io.legend import default_legend
from bandfusion.io.nodata import nodata_coord
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier

TINY_FUSION = {"hidden": (8,), "epochs": 3, "patience": 3}
BUFFER = 2


class Recorder(ClassifierMixin, BaseEstimator):
    """Wraps a method: logs the (row, col) of every pixel it is fitted on or asked to predict."""

    def __init__(
        self, inner: Any = None, log: list[tuple[str, set[tuple[int, int]]]] | None = None
    ):
        self.inner = inner
        self.log = log

    def fit(self, x: np.ndarray, y: np.ndarray) -> Recorder:
        self.log.append(("fit", positions(x)))
        self.inner.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.log.append(("predict", positions(x)))
        return self.inner.predict(x)


def positions(x: np.ndarray) -> set[tuple[int, int]]:
    """The pixels of rows of the position-coded scene: band 0 is the row, band 1 the column."""
    return {(int(r), int(c)) for r, c in x[:, :2]}


def coded_scene(shape: tuple[int, int] = (48, 64)) -> tuple[xr.DataArray, Labels]:
    """A scene whose first two bands give each pixel's row and column, and learnable classes."""
    rng = np.random.default_rng(0)
    rows, cols = np.indices(shape)
    values = 1 + (cols // 11 + rows // 13) % 3
    signal = values + rng.normal(0, 0.3, shape)
    data = np.stack([rows, cols, signal]).astype(np.float32)
    scene = xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={"band": ["row", "col", "signal"], "nodata": nodata_coord([None] * 3)},
    )
    return scene, Labels(values, rng.random(shape) > 0.1, default_legend([1, 2, 3]), "coded")


def test_held_out_pixels_refuse_to_be_read_before_release() -> None:
    reads = []
    held = HeldOut(lambda: reads.append(1) or (np.zeros((1, 1)), np.zeros(1)))
    with pytest.raises(HeldOutReadEarly):
        held.pixels()
    assert reads == []
    held.release()
    held.pixels()
    held.pixels()
    assert reads == [1]  # read once, then kept


def test_fits_see_no_test_pixel_and_every_fit_precedes_the_test_read(monkeypatch) -> None:
    log: list[tuple[str, set[tuple[int, int]]]] = []

    def recorded(name: str, seed: int, bands: Any, params: Any) -> tuple[Any, int | None]:
        estimator, cap = build_method(name, seed, bands, params)
        return Recorder(estimator, log), cap

    monkeypatch.setattr(run_module, "build_method", recorded)
    scene, labels = coded_scene()
    methods = [FUSION, "sk:random-forest", "sk:knn"]
    protocol = Protocol(block_size=8, test_fraction=0.3, buffer=BUFFER)
    bench = run_benchmark(
        scene,
        labels,
        dataset="coded",
        protocol=protocol,
        methods=methods,
        seeds=(0, 1),
        fusion_params=TINY_FUSION,
        per_class_cap=300,
        max_test_pixels=400,
    )
    per_seed = len(methods) * 2
    assert [kind for kind, _ in log] == (["fit"] * 3 + ["predict"] * 3) * 2
    for start in range(0, len(log), per_seed):
        fitted = set().union(*(seen for _, seen in log[start : start + 3]))
        tested = set().union(*(seen for _, seen in log[start + 3 : start + per_seed]))
        assert tested and fitted and not fitted & tested
        fit_at, test_at = np.array(sorted(fitted)), np.array(sorted(tested))
        chebyshev = np.abs(fit_at[:, None, :] - test_at[None, :, :]).max(axis=2)
        assert chebyshev.min() > BUFFER  # nothing fitted within the buffer of a test pixel
    assert len(bench.runs) == 6


def test_paired_differences_are_the_mean_of_seed_pairs_with_a_t_interval() -> None:
    scene, labels = coded_scene((32, 32))
    bench = run_benchmark(
        scene,
        labels,
        dataset="coded",
        protocol=Protocol(block_size=8, buffer=1),
        methods=["sk:logistic", "sk:knn"],
        seeds=(0, 1, 2),
    )
    oa = {(r.method, r.seed): r.report.overall_accuracy for r in bench.runs}
    diffs = np.array([oa[("sk:logistic", s)] - oa[("sk:knn", s)] for s in (0, 1, 2)])
    mean, low, high = paired_differences(bench, "sk:logistic")["sk:knn"]
    assert mean == pytest.approx(diffs.mean())
    half = 4.302652729911275 * diffs.std(ddof=1) / np.sqrt(3)  # t(0.975, df=2)
    assert (low, high) == pytest.approx((mean - half, mean + half))


def test_block_buffer_keeps_training_away_from_test_blocks() -> None:
    _, labels = coded_scene()
    train, test = Protocol(block_size=8, buffer=3).split(labels, seed=4)
    assert test.any() and train.any() and not (train & test).any()
    ti, tj = np.nonzero(train)
    si, sj = np.nonzero(test)
    gap = np.maximum(np.abs(ti[:, None] - si[None]), np.abs(tj[:, None] - sj[None])).min()
    assert gap > 3
    with pytest.raises(ValueError, match="buffer"):
        Protocol(buffer=-1)


def test_scikit_learn_baselines_keep_scikit_learn_defaults() -> None:
    forest = SKLEARN_DEFAULTS["sk:random-forest"](7)
    expected = RandomForestClassifier(random_state=7).get_params()
    assert forest.get_params() == expected
    svm = SKLEARN_DEFAULTS["sk:svm-rbf"](0)
    assert svm.steps[0][0] == "standardscaler" and svm.steps[1][1].kernel == "rbf"
