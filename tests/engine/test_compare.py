"""Benchmark protocols, spatial cross-validation, runs over seeds and the benchmark command."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from affine import Affine
from bandfusion import Grid, open_scene, read_labels
from bandfusion.cli import main
from bandfusion.engine.compare import (
    FUSION_INDICES,
    Protocol,
    available_methods,
    run_benchmark,
    spatial_cv,
    usable_labels,
)
from bandfusion.engine.compare.methods import SKLEARN_DEFAULTS, build_method, fit_arguments
from bandfusion.io.labels import Labels
from bandfusion.io.legend import default_legend
from bandfusion.io.nodata import nodata_coord
from sklearn.ensemble import RandomForestClassifier

SLOVENIA = "eolearn_slovenia"
TINY_FUSION = {"hidden": (16,), "epochs": 5, "patience": 5}
BALANCED = {"class_weight": "balanced"}


@pytest.fixture(scope="module")
def slovenia(data_dir: Path) -> tuple[xr.DataArray, Labels]:
    scene = open_scene(data_dir / SLOVENIA / "ndvi_stack.tif")
    labels = read_labels(
        data_dir / SLOVENIA / "lulc.tif", Grid.of(scene), legend=data_dir / SLOVENIA / "legend.json"
    )
    return scene, labels


def grid_labels(shape: tuple[int, int] = (40, 60), seed: int = 0) -> Labels:
    """Random classes 1..3 on a grid, a quarter of the pixels unlabelled."""
    rng = np.random.default_rng(seed)
    values = rng.integers(1, 4, size=shape)
    labelled = rng.random(shape) > 0.25
    return Labels(values, labelled, default_legend([1, 2, 3]), "synthetic")


def test_block_protocol_holds_out_whole_blocks() -> None:
    labels = grid_labels()
    train, test = Protocol(block_size=10, test_fraction=0.3).split(labels, seed=1)
    assert not (train & test).any()
    np.testing.assert_array_equal(train | test, labels.labelled)
    blocks = test.reshape(4, 10, 6, 10).swapaxes(1, 2).reshape(24, 100)
    labelled_blocks = labels.labelled.reshape(4, 10, 6, 10).swapaxes(1, 2).reshape(24, 100)
    for in_test, in_labels in zip(blocks, labelled_blocks, strict=True):
        assert not in_test.any() or np.array_equal(in_test, in_labels)  # all of a block or none
    assert 0.15 < test.sum() / labels.labelled.sum() < 0.45


def test_fixed_per_class_protocol() -> None:
    labels = grid_labels()
    labelled = labels.labelled.copy()
    labelled.flat[np.flatnonzero(labelled & (labels.values == 3))[30:]] = False
    labels = replace(labels, labelled=labelled)  # class 3 keeps 30 pixels
    protocol = Protocol("fixed-per-class", per_class=50)
    train, test = protocol.split(labels, seed=0)
    counts = {c: int((train & (labels.values == c)).sum()) for c in (1, 2, 3)}
    assert counts == {1: 50, 2: 50, 3: 15}  # at most half of a small class
    np.testing.assert_array_equal(train | test, labels.labelled)
    assert protocol.optimistic and "OPTIMISTIC" in protocol.describe()
    again, _ = protocol.split(labels, seed=0)
    other, _ = protocol.split(labels, seed=1)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)


def test_fraction_protocol() -> None:
    labels = grid_labels()
    train, test = Protocol("fraction", fraction=0.1).split(labels, seed=0)
    for c in (1, 2, 3):
        n = int((labels.labelled & (labels.values == c)).sum())
        assert int((train & (labels.values == c)).sum()) == round(0.1 * n)
    assert not (train & test).any()
    assert not Protocol().optimistic


def test_bad_protocols() -> None:
    with pytest.raises(ValueError, match="protocol must be one of"):
        Protocol("random")
    with pytest.raises(ValueError, match="between 0 and 1"):
        Protocol("fraction", fraction=1.5)


def test_usable_labels_drop_nodata_pixels() -> None:
    labels = grid_labels()
    data = np.ones((2, 40, 60), np.int16)
    data[1, :5, :] = 0
    grid = Grid(None, Affine.identity(), 60, 40)
    scene = xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={"band": ["a", "b"], "nodata": nodata_coord([None, 0]), **grid.coords()},
        attrs=grid.to_attrs(),
    )
    usable = usable_labels(scene, labels)
    assert not usable.labelled[:5].any()
    np.testing.assert_array_equal(usable.labelled[5:], labels.labelled[5:])


def test_spatial_cv_folds_are_disjoint_blocks(slovenia: tuple[xr.DataArray, Labels]) -> None:
    scene, labels = slovenia
    where = np.zeros(labels.values.shape, bool)
    where[:, :70] = True
    x, y, cv = spatial_cv(scene, labels, where, n_folds=3, block_size=16, per_class_cap=None)
    assert len(y) == int((labels.labelled & where).sum()) == len(x)
    assert sorted(np.unique(cv.test_fold)) == [0, 1, 2]
    assert cv.get_n_splits() == 3


def test_cap_weights_go_to_every_estimator_whose_classes_count_per_pixel() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 3)), np.array([1, 2, 8])[rng.integers(0, 3, 120)]
    weights = {1: 0.5, 2: 3.0, 8: 1.0}
    per_row = np.array([weights[c] for c in y])
    for name in SKLEARN_DEFAULTS:
        estimator, params = fit_arguments(build_method(name, 0, ["b1"], {})[0], y, weights, None)
        if name == "sk:knn":
            assert params == {}  # it takes no weights
            continue
        (given,) = params.values()
        np.testing.assert_array_equal(given, per_row)
        estimator.fit(x, y, **params)  # labels 1, 2, 8: HistGB's class_weight dict would fail
    forest, params = fit_arguments(
        build_method("sk:random-forest", 0, ["b1"], {})[0], y, weights, None
    )
    same = RandomForestClassifier(random_state=0, class_weight=weights).fit(x, y)
    np.testing.assert_array_equal(forest.fit(x, y, **params).predict(x), same.predict(x))
    groups = np.arange(len(y)) // 10
    fusion, params = fit_arguments(build_method("fusion", 0, ["b1"], {})[0], y, weights, groups)
    assert fusion.get_params()["class_weight"] == weights and params.keys() == {"groups"}
    balanced, params = fit_arguments(
        build_method("fusion", 0, ["b1"], BALANCED)[0], y, weights, None
    )
    assert balanced.get_params()["class_weight"] == "balanced" and params == {}


def test_methods_available_for_the_bands() -> None:
    s2 = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
    assert available_methods(s2) == [
        "fusion",
        FUSION_INDICES,
        "random-forest",
        "svm",
        "logistic",
        "hist-gb",
    ]
    assert FUSION_INDICES not in available_methods(["NDVI_1", "NDVI_2"])


def test_run_benchmark_repeats_with_the_same_seeds(slovenia: tuple[xr.DataArray, Labels]) -> None:
    scene, labels = slovenia
    settings = {
        "dataset": "slovenia",
        "protocol": Protocol(block_size=16),
        "methods": ["fusion", "logistic"],
        "seeds": (0, 1),
        "per_class_cap": 500,
        "fusion_params": TINY_FUSION,
    }
    bench = run_benchmark(scene, labels, **settings)  # type: ignore[arg-type]
    again = run_benchmark(scene, labels, **settings)  # type: ignore[arg-type]
    assert [r.report.confusion.tolist() for r in bench.runs] == [
        r.report.confusion.tolist() for r in again.runs
    ]
    assert [(r.method, r.seed) for r in bench.runs] == [
        ("fusion", 0),
        ("logistic", 0),
        ("fusion", 1),
        ("logistic", 1),
    ]
    summary = bench.summary()
    mean, std = summary["fusion"]["macro_f1"]
    scores = [r.scores()["macro_f1"] for r in bench.runs if r.method == "fusion"]
    assert mean == pytest.approx(np.mean(scores)) and std == pytest.approx(np.std(scores, ddof=1))
    assert set(summary["logistic"]["iou"]) == {"1", "2", "3", "4", "8"}
    document = bench.to_dict()
    assert document["environment"]["torch"] == torch.__version__
    assert document["settings"]["fusion_params"] == TINY_FUSION


@pytest.mark.parametrize(
    ("protocol", "folds"),
    [
        (Protocol(block_size=16), "spatial blocks"),
        (Protocol("fraction", fraction=0.3), "stratified"),
    ],
)
def test_the_fusion_search_folds_follow_the_protocol(
    slovenia: tuple[xr.DataArray, Labels], protocol: Protocol, folds: str
) -> None:
    """Under the block protocol the search holds out whole blocks, as the benchmark does."""
    scene, labels = slovenia
    # Cultivated land (11 px) lies in one block, which would send the search to stratified folds.
    labels = replace(labels, labelled=labels.labelled & (labels.values != 1))
    params = {**TINY_FUSION, "search": True}
    bench = run_benchmark(
        scene,
        labels,
        dataset="slovenia",
        protocol=protocol,
        methods=["fusion"],
        seeds=(0,),
        per_class_cap=300,
        fusion_params=params,
    )
    (run,) = bench.runs
    assert run.selection is not None and run.selection["protocol"] == folds
    assert bench.to_dict()["runs"][0]["selection"] == run.selection


def test_benchmark_command(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    main(
        [
            "benchmark",
            str(data_dir / SLOVENIA / "ndvi_stack.tif"),
            "--labels",
            str(data_dir / SLOVENIA / "lulc.tif"),
            "--legend",
            str(data_dir / SLOVENIA / "legend.json"),
            "--block-size",
            "16",
            "--methods",
            "fusion,logistic",
            "--runs",
            "2",
            "--epochs",
            "3",
            "--hidden",
            "8",
            "--no-class-weight",
            "--validation-fraction",
            "0.2",
            "-q",
            "-o",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert "torch " + torch.__version__ in printed and "load average" in printed
    assert "protocol block, 2 seeds 0..1" in printed and "IoU forest" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "benchmark.json",
        "benchmark.md",
        "benchmark.png",
    ]
    fusion = json.loads((out / "benchmark.json").read_text())["settings"]["fusion_params"]
    assert fusion == {
        "hidden": [8],
        "epochs": 3,
        "validation_fraction": 0.2,
        "class_weight": None,
        "device": "auto",
    }


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--methods", "fusion+indices"], "available here: fusion, random-forest"),
        (
            ["--validation-fraction", "1"],
            "'--validation-fraction': 1.0 is not in the range 0.0<=x<1.0",
        ),
    ],
    ids=["unknown method", "validation fraction"],
)
def test_benchmark_command_refuses_bad_options_before_any_work(
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: list[str],
    message: str,
) -> None:
    stack, labels = data_dir / SLOVENIA / "ndvi_stack.tif", data_dir / SLOVENIA / "lulc.tif"
    args = ["benchmark", str(stack), "--labels", str(labels), *option]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "-o", str(tmp_path / "bench")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bench").exists()
