"""The classic hyperspectral benchmarks (Indian Pines, Pavia University, Salinas) as a scene.

They come as MATLAB files: a (rows, cols, bands) cube and a (rows, cols) ground truth, 0 meaning
unlabelled. `read_mat_scene` turns the pair into what the rest of bandfusion takes: a
`DataArray(band, y, x)` on a pixel grid without georeferencing, and Labels with class names.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.io
import xarray as xr
from affine import Affine
from bandfusion.errors import LabelError, SceneError
from bandfusion.io.grid import Grid
from bandfusion.io.labels import Labels
from bandfusion.io.legend import PartialLegend, read_legend_file, resolve_legend
from bandfusion.io.nodata import nodata_coord

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "indian_pines_gt": (
        "Alfalfa",
        "Corn-notill",
        "Corn-mintill",
        "Corn",
        "Grass-pasture",
        "Grass-trees",
        "Grass-pasture-mowed",
        "Hay-windrowed",
        "Oats",
        "Soybean-notill",
        "Soybean-mintill",
        "Soybean-clean",
        "Wheat",
        "Woods",
        "Buildings-Grass-Trees-Drives",
        "Stone-Steel-Towers",
    ),
    "paviaU_gt": (
        "Asphalt",
        "Meadows",
        "Gravel",
        "Trees",
        "Painted metal sheets",
        "Bare soil",
        "Bitumen",
        "Self-blocking bricks",
        "Shadows",
    ),
    "salinas_gt": (
        "Brocoli green weeds 1",
        "Brocoli green weeds 2",
        "Fallow",
        "Fallow rough plow",
        "Fallow smooth",
        "Stubble",
        "Celery",
        "Grapes untrained",
        "Soil vinyard develop",
        "Corn senesced green weeds",
        "Lettuce romaine 4wk",
        "Lettuce romaine 5wk",
        "Lettuce romaine 6wk",
        "Lettuce romaine 7wk",
        "Vinyard untrained",
        "Vinyard vertical trellis",
    ),
}
"""Class names of ids 1..n, by the ground truth's variable name (the published class lists)."""


def is_mat_file(path: str | os.PathLike[str]) -> bool:
    """Whether `path` names a MATLAB file (by its suffix)."""
    return Path(path).suffix.lower() == ".mat"


def read_mat_scene(
    cube_path: str | os.PathLike[str],
    ground_truth_path: str | os.PathLike[str],
    *,
    legend: str | os.PathLike[str] | None = None,
) -> tuple[xr.DataArray, Labels]:
    """The cube as a scene (bands b1..bn, no nodata) and the ground truth as its Labels.

    Each file must hold one numeric variable of the right rank (3 for the cube, 2 for the
    ground truth; MATLAB's own `__header__` entries aside), and their rows and columns must
    agree. Class names come from `legend` (a JSON legend file), else the published names of
    the three benchmarks, else defaults. Raises SceneError / LabelError naming the file.
    """
    cube_name, cube = _single_array(cube_path, 3, SceneError)
    gt_name, truth = _single_array(ground_truth_path, 2, LabelError)
    if cube.shape[:2] != truth.shape:
        raise LabelError(
            f"{ground_truth_path}: ground truth is {truth.shape[0]}×{truth.shape[1]} px, the "
            f"cube {cube_path} is {cube.shape[0]}×{cube.shape[1]}"
        )
    if truth.dtype.kind not in "iu":
        raise LabelError(f"{ground_truth_path}: '{gt_name}' holds {truth.dtype}, not class ids")
    labelled = truth != 0
    if not labelled.any():
        raise LabelError(f"{ground_truth_path}: '{gt_name}' labels no pixel (all 0)")
    ids = np.unique(truth[labelled]).tolist()
    sources = [PartialLegend(names=_published_names(gt_name, ids))]
    if legend is not None:
        sources.append(read_legend_file(legend))
    labels = Labels(
        values=truth,
        labelled=labelled,
        legend=resolve_legend(ids, *sources),
        source=str(ground_truth_path),
    )
    return _scene(cube, str(cube_path), cube_name), labels


def _single_array(
    path: str | os.PathLike[str], ndim: int, error: type[SceneError] | type[LabelError]
) -> tuple[str, np.ndarray]:
    """The one numeric `ndim`-dimensional variable of a .mat file, with its name."""
    if not Path(path).is_file():
        raise error(f"{path}: no such file")
    try:
        content = scipy.io.loadmat(path)
    except NotImplementedError:
        raise error(f"{path}: MATLAB v7.3 (HDF5) files are not supported; save with -v7") from None
    except (OSError, ValueError, TypeError, scipy.io.matlab.MatReadError) as exc:
        raise error(f"{path}: not a readable MATLAB file ({exc})") from None
    found = {
        name: value
        for name, value in content.items()
        if not name.startswith("__")
        and isinstance(value, np.ndarray)
        and value.ndim == ndim
        and value.dtype.kind in "iuf"
    }
    if len(found) != 1:
        variables = [name for name in content if not name.startswith("__")]
        raise error(
            f"{path}: expected one numeric {ndim}-D variable, found {len(found)} "
            f"(variables: {', '.join(variables) or 'none'})"
        )
    return next(iter(found.items()))


def _published_names(variable: str, ids: list[int]) -> dict[int, str]:
    names = CLASS_NAMES.get(variable, ())
    return {i: names[i - 1] for i in ids if 1 <= i <= len(names)}


def _scene(cube: np.ndarray, source: str, variable: str) -> xr.DataArray:
    """(rows, cols, bands) → DataArray(band, y, x) on a unit pixel grid without a CRS."""
    height, width, n_bands = cube.shape
    grid = Grid(
        crs=None,
        transform=Affine(1.0, 0.0, 0.0, 0.0, -1.0, float(height)),
        width=width,
        height=height,
    )
    return xr.DataArray(
        np.ascontiguousarray(cube.transpose(2, 0, 1)),
        dims=("band", "y", "x"),
        coords={
            "band": [f"b{k + 1}" for k in range(n_bands)],
            "source": ("band", [source] * n_bands),
            "nodata": nodata_coord([None] * n_bands),
            **grid.coords(),
        },
        attrs=grid.to_attrs(),
        name=variable,
    )
