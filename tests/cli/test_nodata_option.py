"""--nodata on the commands that read scenes, and what `info` says of nodata and scale/offset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model

from tests.cli.test_device_option import exit_code
from tests.helpers import random_model
from tests.io.test_radiometry import R60, crop_bands

pytestmark = pytest.mark.skipif(not R60, reason="the real SAFE sample is not on this machine")


def test_predict_with_nodata_zero_leaves_the_fill_unclassified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bands = crop_bands(tmp_path)
    model_dir = tmp_path / "model"
    save_model(random_model(open_scene(bands), [1, 2]), model_dir)
    out = tmp_path / "map.tif"
    code, _, err = exit_code(
        capsys, "predict", *bands, "-m", model_dir, "-o", out, "--nodata", "0", "-q"
    )
    assert code == 0, err
    with rasterio.open(out) as src:
        classes = src.read(1)
    fill = (open_scene(bands).values == 0).any(axis=0)
    assert fill.any() and (classes[fill] == 255).all() and (classes[~fill] != 255).all()
    assert np.isin(classes[~fill], [1, 2]).all()


def test_info_says_where_nodata_and_scale_come_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (band, *_) = crop_bands(tmp_path, 1e-4, -0.1)
    code, out, _ = exit_code(capsys, "info", band)
    assert code == 0
    assert "nodata=None (file)" in out and "value x 0.0001 + -0.1 (GDAL scale/offset tags)" in out
    code, out, _ = exit_code(capsys, "info", band, "--nodata", "0")
    assert code == 0 and "nodata=0.0 (given)" in out
