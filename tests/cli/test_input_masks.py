"""Nothing classified that is not there, through `bandfusion predict`: the map holds nodata
exactly where the input's GDAL per-dataset mask, alpha band or per-band masks mask pixels,
read as they are or warped onto the grid of a finer band file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model

from tests.fuzzing import run_cli
from tests.helpers import random_model
from tests.strategies import GRID, MASK_KINDS, write_masked, write_plain

MAP_NODATA = 255


def masked_raster(kind: str, side: int = 40) -> dict[str, object]:
    """Three uint16 bands with a random mask, the top rows masked in every layer."""
    rng = np.random.default_rng(3)
    layers = 3 if kind == "per-band" else 1
    masks = rng.random((layers, side, side)) > 0.3
    masks[:, :4] = False
    values = rng.integers(100, 3000, (3, side, side)).astype(np.uint16)
    return {"kind": kind, "values": values, "masks": masks, "valid": masks.all(axis=0)}


def predicted(inputs: list[Path], tmp_path: Path) -> np.ndarray:
    """`bandfusion predict` of `inputs` with a model of their bands; the class map's pixels."""
    scene = open_scene(inputs).fillna(0)  # masked pixels are NaN: 0 for the statistics
    model = save_model(random_model(scene, [1, 2, 3]), tmp_path / "model")
    out = tmp_path / "map.tif"
    code, err = run_cli(["predict", *map(str, inputs), "-m", str(model), "-o", str(out), "-q"])
    assert code == 0, err
    with rasterio.open(out) as src:
        assert src.nodata == MAP_NODATA
        return src.read(1)


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_predict_writes_nodata_where_the_input_masks_pixels(tmp_path: Path, kind: str):
    raster = masked_raster(kind)
    classes = predicted([write_masked(tmp_path, raster)], tmp_path)
    np.testing.assert_array_equal(classes == MAP_NODATA, ~raster["valid"])


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_masks_of_a_band_file_warped_onto_a_finer_grid_are_nodata(tmp_path: Path, kind: str):
    """A 20 m band file beside a 10 m one: its masks, per-band ones included (GDAL's warper
    drops those), are nodata on the 10 m grid."""
    raster = masked_raster(kind, side=20)
    coarse = write_masked(tmp_path, raster, GRID @ Affine.scale(2))
    fine = write_plain(tmp_path / "B02.tif", np.full((1, 40, 40), 500, np.uint16))
    classes = predicted([fine, coarse], tmp_path)
    expected = np.kron(raster["valid"], np.ones((2, 2), dtype=bool))
    np.testing.assert_array_equal(classes == MAP_NODATA, ~expected)
