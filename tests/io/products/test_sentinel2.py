"""Sentinel-2 products: the bundled real SAFE and complete ones built in the same layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from bandfusion.errors import SceneError, SettingError
from bandfusion.io.products import read_product
from bandfusion.io.scene import open_scene

from tests.io.products.builders import MTD, SAFE, complete_safe, zipped_safe


def test_the_real_product_is_read_as_delivered():
    product = read_product(SAFE)
    assert product is not None
    assert (product.sensor, product.level) == ("sentinel-2a", "L2A")
    assert product.datetime == "2022-10-05T11:54:11.024Z"
    names = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12"]
    assert product.band_names() == names  # L2A has no B08 nor B10 at 60 m; 10/20 m files absent
    assert {b.resolution for b in product.bands} == {60.0}
    assert {(b.scale, b.offset, b.nodata) for b in product.bands} == {(1e-4, -0.1, 0.0)}
    assert {b.origin for b in product.bands} == {"MTD_MSIL2A.xml"}
    assert [(m.kind, m.resolution) for m in product.masks] == [("s2_scl", 20.0), ("s2_scl", 60.0)]


def test_radiometry_over_water_is_reflectance_after_the_offset():
    scene = open_scene(SAFE, bands=["red"])
    assert list(scene["band"].values) == ["B04"]
    scl_path = next(SAFE.glob("GRANULE/*/IMG_DATA/R60m/*_SCL_60m.jp2"))
    with rasterio.open(scl_path) as src:
        scl = src.read(1)
    red = scene.values[0]
    assert 0.005 < float(np.median(red[scl == 6])) < 0.015  # DN ~1090 - 1000, / 10000
    with rasterio.open(scene["source"].values[0]) as src:
        dn = src.read(1)
    assert np.isnan(red).sum() == (dn == 0).sum() > 0  # the product's NO_DATA, undeclared in files


@pytest.mark.parametrize("form", ["folder", "mtd", "subdataset", "zip"])
def test_every_form_of_the_product_reads_the_same_pixels(form: str, tmp_path: Path):
    expected = open_scene(SAFE, bands=["B02", "B8A"]).values
    if form == "zip":
        given = str(zipped_safe(tmp_path))
    else:
        given = {
            "folder": str(SAFE),
            "mtd": str(MTD),
            "subdataset": f"SENTINEL2_L2A:{MTD}:60m:EPSG_32629",
        }[form]
    scene = open_scene(given, bands=["B2", "nir08"])
    assert list(scene["band"].values) == ["B02", "B8A"]
    np.testing.assert_array_equal(scene.values, expected)


def test_a_complete_product_picks_the_grid_and_the_files_by_the_policy(tmp_path: Path):
    safe = complete_safe(tmp_path)
    product = read_product(safe)
    assert product is not None and "B08" in product.band_names()
    assert open_scene(safe, bands=["B02", "B05"]).attrs["transform"][0] == 10.0
    assert open_scene(safe, bands=["B05", "B11"]).attrs["transform"][0] == 20.0
    at60 = open_scene(safe, bands=["B02", "B08"], resolution=60)
    assert at60.shape == (2, 6, 6)
    assert "R60m" in str(at60["source"].values[0])  # the producer's own 60 m file
    assert "R10m" in str(at60["source"].values[1])  # L2A has no B08 at 60 m: resampled
    fine = open_scene(safe, bands=["B01", "B02"])  # B01: 20 m file, nearest onto 10 m
    np.testing.assert_array_equal(
        fine.values[0][::2, ::2], open_scene(safe, bands=["B01"]).values[0]
    )


def test_resolutions_and_bands_the_product_does_not_hold_are_refused():
    with pytest.raises(SettingError, match=r"resolution=30: .* holds 10, 20, 60 m"):
        open_scene(SAFE, resolution=30)
    with pytest.raises(SettingError, match=r"bands=B08: .* holds no such band"):
        open_scene(SAFE, bands=["B08"])


def test_products_before_baseline_04_have_no_offset(tmp_path: Path):
    text = MTD.read_text()
    start = text.index("<BOA_ADD_OFFSET_VALUES_LIST>")
    end = text.index("</BOA_ADD_OFFSET_VALUES_LIST>") + len("</BOA_ADD_OFFSET_VALUES_LIST>")
    without = text[:start] + text[end:]
    old = without.replace("<PROCESSING_BASELINE>04.00", "<PROCESSING_BASELINE>03.01")
    product = read_product(complete_safe(tmp_path, old))
    assert product is not None and {b.offset for b in product.bands} == {0.0}
    with pytest.raises(SceneError, match=r"baseline 04\.00 lists no BOA_ADD_OFFSET"):
        read_product(complete_safe(tmp_path / "new", without))


def test_l1c_uses_radio_add_offset_and_quantification_value(tmp_path: Path):
    text = (
        MTD.read_text()
        .replace("Level-2A_User_Product", "Level-1C_User_Product")
        .replace("BOA_QUANTIFICATION_VALUE", "QUANTIFICATION_VALUE")
        .replace("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET")
        .replace('<RADIO_ADD_OFFSET band_id="3">-1000', '<RADIO_ADD_OFFSET band_id="3">-500')
    )
    safe = complete_safe(tmp_path, text)
    shutil.move(safe / "MTD_MSIL2A.xml", safe / "MTD_MSIL1C.xml")
    product = read_product(safe)
    assert product is not None and product.level == "L1C"
    offsets = {b.name: b.offset for b in product.bands}
    assert offsets["B04"] == -0.05 and offsets["B03"] == -0.1


def test_listed_files_absent_on_disk_do_not_break_reading(tmp_path: Path):
    safe = complete_safe(tmp_path)
    for file in safe.glob("GRANULE/*/IMG_DATA/R10m/*.jp2"):
        file.unlink()
    product = read_product(safe)
    assert product is not None
    assert {b.resolution for b in product.bands if b.name == "B02"} == {20.0, 60.0}
    assert "B08" not in product.band_names()


def test_a_zipped_products_clouds_are_masked_as_the_folders(tmp_path: Path):
    """The SCL inside a local zip (/vsizip/) masks the same pixels as the folder's SCL."""
    from bandfusion.io.cloudmask import mask_scene

    masks = []
    for given in (SAFE, zipped_safe(tmp_path)):
        scene = open_scene(given, bands=["B02"])
        masked = mask_scene(scene)  # the layers the product lists
        masks.append(masked["mask"].values)
    assert masks[0].any()
    np.testing.assert_array_equal(masks[1], masks[0])
