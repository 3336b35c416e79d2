"""Fuzzing prediction with valid but odd rasters (any dtype GDAL writes, 1..400 bands, edge
values, nodata, scale and offset): open_scene and predict_scene give a full map whose nodata
follows the documented rule, and probabilities that agree with it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from bandfusion.engine.predict import class_map_encoding, predict_proba_scene, predict_scene
from bandfusion.io.scene import open_scene
from hypothesis import event, example, given

from tests.fuzzing import case_dir, fuzz, model_for
from tests.strategies import odd_rasters, write_odd


def expected_valid(path: Path, raster: dict[str, Any]) -> np.ndarray:
    """The documented rule, from the file's own nodata: a pixel is nodata where any band is
    its nodata value or not finite (after scale and offset, computed in float32)."""
    with rasterio.open(path) as src:
        nodata = src.nodata
    values = raster["values"]
    missing = np.zeros(values.shape, dtype=bool) if nodata is None else values == nodata
    if raster["scale"]:
        scale, offset = (np.float32(v) for v in raster["scale"])
        with np.errstate(over="ignore", invalid="ignore"):
            values = values.astype(np.float32) * scale + offset
    finite = np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
    return (finite & ~missing).all(axis=0)


@fuzz(40)
@given(raster=odd_rasters())
@example(  # a float raster with NaN nodata: refused as 'bands differ in nodata' before the fix
    raster={
        "values": np.full((3, 2, 2), np.nan, dtype=np.float32),
        "nodata": math.nan,
        "layout": "striped",
        "compress": None,
        "crs": None,
        "described": False,
        "scale": None,
        "class_ids": (0, 1, 2),
    }
)
def test_odd_rasters_give_full_maps(scratch: Path, raster: dict[str, Any]):
    bands = raster["values"].shape[0]
    event(f"{raster['values'].dtype}, {1 if bands == 1 else '2-9' if bands < 10 else '10+'} bands")
    with case_dir(scratch) as directory:
        path = directory / "odd.tif"
        names = write_odd(path, raster)
        scene = open_scene(path)
        assert list(scene["band"].values) == names
        expected_dtype = np.float32 if raster["scale"] else raster["values"].dtype
        assert scene.dtype == expected_dtype
        model = model_for(names, raster["class_ids"])
        classes = predict_scene(scene, model, device="cpu").compute()
        dtype, nodata = class_map_encoding(list(raster["class_ids"]))
        assert classes.shape == raster["values"].shape[1:]
        assert classes.dtype == dtype and classes.attrs["nodata"] == nodata
        valid = expected_valid(path, raster)
        np.testing.assert_array_equal(classes.values != nodata, valid)
        assert np.isin(classes.values[valid], raster["class_ids"]).all()
        proba = predict_proba_scene(scene, model, device="cpu").compute()
        assert proba.shape == (len(raster["class_ids"]), *valid.shape)
        assert proba.dtype == np.float32 and np.isnan(proba.values[:, ~valid]).all()
