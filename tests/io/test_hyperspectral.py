"""The .mat loader on the real benchmark ground truth with synthetic cubes of the same layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from bandfusion.cli import main
from bandfusion.errors import LabelError, SceneError
from bandfusion.io.hyperspectral import read_mat_scene

GT = "hyperspectral_gt"


def synthetic_cube(truth: np.ndarray, n_bands: int, seed: int = 0) -> np.ndarray:
    """(rows, cols, bands) uint16 radiance-like values with a distinct spectrum per class."""
    rng = np.random.default_rng(seed)
    spectra = rng.uniform(1000, 4000, size=(int(truth.max()) + 1, n_bands))
    noise = rng.normal(0, 60, size=(*truth.shape, n_bands))
    return (spectra[truth] + noise).clip(0, 65535).astype(np.uint16)


def write_cube(path: Path, variable: str, truth: np.ndarray, n_bands: int) -> np.ndarray:
    cube = synthetic_cube(truth, n_bands)
    scipy.io.savemat(path, {variable: cube})
    return cube


def test_indian_pines_layout(data_dir: Path, tmp_path: Path) -> None:
    gt_path = data_dir / GT / "Indian_pines_gt.mat"
    truth = scipy.io.loadmat(gt_path)["indian_pines_gt"]
    cube = write_cube(tmp_path / "Indian_pines_corrected.mat", "indian_pines_corrected", truth, 200)
    scene, labels = read_mat_scene(tmp_path / "Indian_pines_corrected.mat", gt_path)
    assert scene.dims == ("band", "y", "x") and scene.shape == (200, 145, 145)
    assert scene["band"].values.tolist()[:3] == ["b1", "b2", "b3"]
    np.testing.assert_array_equal(scene.values[17, 40, 90], cube[40, 90, 17])
    assert np.isnan(scene["nodata"].values).all()
    assert labels.legend.ids == tuple(range(1, 17))
    assert labels.legend.name_of(2) == "Corn-notill"
    assert int(labels.labelled.sum()) == 10249


@pytest.mark.parametrize(
    ("gt_file", "variable", "shape", "first_class"),
    [
        ("PaviaU_gt.mat", "paviaU_gt", (610, 340), "Asphalt"),
        ("Salinas_gt.mat", "salinas_gt", (512, 217), "Brocoli green weeds 1"),
    ],
)
def test_the_other_benchmarks(
    data_dir: Path,
    tmp_path: Path,
    gt_file: str,
    variable: str,
    shape: tuple[int, int],
    first_class: str,
) -> None:
    truth = scipy.io.loadmat(data_dir / GT / gt_file)[variable]
    write_cube(tmp_path / "cube.mat", "cube", truth, 4)
    scene, labels = read_mat_scene(tmp_path / "cube.mat", data_dir / GT / gt_file)
    assert scene.shape == (4, *shape)
    assert labels.legend.name_of(1) == first_class


def test_a_legend_file_renames_classes(data_dir: Path, tmp_path: Path) -> None:
    gt_path = data_dir / GT / "Indian_pines_gt.mat"
    write_cube(tmp_path / "cube.mat", "x", scipy.io.loadmat(gt_path)["indian_pines_gt"], 3)
    legend = tmp_path / "legend.json"
    legend.write_text(json.dumps({"1": "lucerne"}))
    _, labels = read_mat_scene(tmp_path / "cube.mat", gt_path, legend=legend)
    assert labels.legend.name_of(1) == "lucerne"
    assert labels.legend.name_of(2) == "Corn-notill"


def test_mismatched_or_ambiguous_files_are_refused(data_dir: Path, tmp_path: Path) -> None:
    gt_path = data_dir / GT / "Indian_pines_gt.mat"
    scipy.io.savemat(tmp_path / "small.mat", {"cube": np.ones((10, 10, 3), np.uint16)})
    with pytest.raises(LabelError, match=r"145×145 px, the cube .* is 10×10"):
        read_mat_scene(tmp_path / "small.mat", gt_path)
    scipy.io.savemat(tmp_path / "two.mat", {"a": np.ones((2, 2, 3)), "b": np.ones((2, 2, 3))})
    with pytest.raises(SceneError, match=r"found 2 .*variables: a, b"):
        read_mat_scene(tmp_path / "two.mat", gt_path)
    with pytest.raises(SceneError, match="no such file"):
        read_mat_scene(tmp_path / "missing.mat", gt_path)
    (tmp_path / "text.mat").write_text("not matlab")
    with pytest.raises(SceneError, match="not a readable MATLAB file"):
        read_mat_scene(tmp_path / "text.mat", gt_path)


def test_benchmark_command_takes_mat_files(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt_path = data_dir / GT / "PaviaU_gt.mat"
    write_cube(tmp_path / "PaviaU.mat", "paviaU", scipy.io.loadmat(gt_path)["paviaU_gt"], 12)
    out = tmp_path / "bench"
    main(
        [
            "benchmark",
            str(tmp_path / "PaviaU.mat"),
            "--labels",
            str(gt_path),
            "--protocol",
            "fixed-per-class",
            "--per-class",
            "20",
            "--methods",
            "logistic",
            "--runs",
            "2",
            "-q",
            "-o",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert "OPTIMISTIC" in printed and "IoU Asphalt" in printed
    result = json.loads((out / "benchmark.json").read_text())
    assert all(run["n_train"] == 9 * 20 for run in result["runs"])
    assert result["summary"]["logistic"]["overall_accuracy"][0] > 0.95
