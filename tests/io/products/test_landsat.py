"""Landsat Collection 2 Level-2: the folder and each of the MTL's three forms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from bandfusion.errors import SceneError
from bandfusion.io.products import read_product
from bandfusion.io.scene import open_scene

from tests.io.products.builders import LANDSAT_ID, landsat_groups, landsat_product, mtl_text


@pytest.mark.parametrize("form", ["txt", "json", "xml"])
def test_each_mtl_form_gives_the_same_product(form: str, tmp_path: Path):
    folder = landsat_product(tmp_path, forms=(form,))
    for given in (folder, folder / f"{LANDSAT_ID}_MTL.{form}"):
        product = read_product(given)
        assert product is not None
        assert (product.sensor, product.level) == ("landsat-8", "L2SP")
        assert product.datetime == "2020-01-01T14:04:34.9546890Z"
        assert product.band_names() == [f"SR_B{n}" for n in range(1, 8)]
        assert {(b.scale, b.offset, b.nodata, b.origin) for b in product.bands} == {
            (2.75e-5, -0.2, 0.0, "MTL")
        }
        assert [m.kind for m in product.masks] == ["landsat_qa_pixel"]


def test_reflectance_is_the_mtl_scaling_and_fill_is_nodata(tmp_path: Path):
    folder = landsat_product(tmp_path)
    scene = open_scene(folder, bands=["red", "SR_B5"])
    assert list(scene["band"].values) == ["SR_B4", "SR_B5"]
    with rasterio.open(folder / f"{LANDSAT_ID}_SR_B4.TIF") as src:
        dn = src.read(1)
    expected = dn.astype(np.float32) * np.float32(2.75e-5) + np.float32(-0.2)
    expected[dn == 0] = np.nan
    np.testing.assert_array_equal(scene.values[0], expected)
    assert scene.attrs["transform"][0] == 30.0


def test_level_1_products_and_missing_groups_are_refused(tmp_path: Path):
    groups = landsat_groups()
    groups["PRODUCT_CONTENTS"]["PROCESSING_LEVEL"] = "L1TP"
    folder = landsat_product(tmp_path, forms=())
    mtl = folder / f"{LANDSAT_ID}_MTL.txt"
    mtl.write_text(mtl_text(groups, "txt"))
    with pytest.raises(SceneError, match="only Level-2 products"):
        read_product(folder)
    del groups["IMAGE_ATTRIBUTES"]
    mtl.write_text(mtl_text(groups, "txt"))
    with pytest.raises(SceneError, match="no IMAGE_ATTRIBUTES group"):
        read_product(mtl)
