"""Nothing classified that is not there: GDAL masks, alpha bands and band files that miss part
of the grid make nodata, on real GeoTIFFs written by rasterio and GDAL."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from bandfusion.errors import SceneError
from bandfusion.io.nodata import band_nodata, valid_mask
from bandfusion.io.scene import open_scene
from rasterio.enums import ColorInterp

from tests.strategies import write_per_band_vrt

TRANSFORM = Affine(10, 0, 500000, 0, -10, 5000000)


def write(path: Path, pixels: np.ndarray, **profile: object) -> Path:
    """A tiled GeoTIFF of `pixels` (band, y, x); `mask` (y, x) becomes its internal mask."""
    mask = profile.pop("mask", None)
    base = {
        "driver": "GTiff",
        "count": pixels.shape[0],
        "height": pixels.shape[1],
        "width": pixels.shape[2],
        "dtype": pixels.dtype,
        "crs": "EPSG:32633",
        "transform": TRANSFORM,
        "tiled": True,
        "blockxsize": 16,
        "blockysize": 16,
    }
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
        rasterio.open(path, "w", **{**base, **profile}) as dst,
    ):
        dst.write(pixels)
        if mask is not None:
            dst.write_mask(mask)
    return path


def pixels(bands: int = 3, side: int = 48, dtype: str = "uint16") -> np.ndarray:
    return np.random.default_rng(0).integers(1, 200, (bands, side, side)).astype(dtype)


def valid_of(path: Path | list[Path]) -> np.ndarray:
    scene = open_scene(path, chunk_pixels=16 * 16)
    return valid_mask(scene.values, band_nodata(scene))


def a_mask(side: int = 48) -> np.ndarray:
    mask = np.full((side, side), 255, np.uint8)
    mask[:20, :] = 0
    mask[30:, 40:] = 0
    return mask


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "float32"])
def test_an_internal_mask_makes_nodata(tmp_path: Path, dtype: str):
    path = write(tmp_path / "masked.tif", pixels(dtype=dtype), mask=a_mask())
    with rasterio.open(path) as src:
        assert list(src.mask_flag_enums[0]) == [rasterio.enums.MaskFlags.per_dataset]
    np.testing.assert_array_equal(valid_of(path), a_mask() > 0)
    scene = open_scene(path)
    valid = a_mask() > 0
    np.testing.assert_array_equal(scene.values[:, valid], pixels(dtype=dtype)[:, valid])


def test_a_mask_over_declared_nodata_keeps_the_integer_type(tmp_path: Path):
    path = write(tmp_path / "masked.tif", pixels(), mask=a_mask(), nodata=0)
    scene = open_scene(path)
    assert scene.dtype == np.uint16
    assert (scene.values[:, a_mask() == 0] == 0).all()
    np.testing.assert_array_equal(valid_of(path), a_mask() > 0)


def test_an_integer_mask_without_nodata_reads_as_float_with_nan(tmp_path: Path):
    scene = open_scene(write(tmp_path / "masked.tif", pixels(), mask=a_mask()))
    assert scene.dtype == np.float32
    assert np.isnan(scene.values[:, a_mask() == 0]).all()


def test_an_alpha_band_is_the_mask_and_not_a_band(tmp_path: Path):
    rgb = pixels(3, dtype="uint8")
    alpha = a_mask()[None]
    path = write(
        tmp_path / "rgba.tif", np.concatenate([rgb, alpha]), photometric="RGB", alpha="YES"
    )
    with rasterio.open(path) as src:
        assert src.colorinterp[3] == ColorInterp.alpha
    scene = open_scene(path)
    assert list(scene["band"].values) == ["b1", "b2", "b3"]
    np.testing.assert_array_equal(valid_of(path), a_mask() > 0)


def test_an_alpha_band_set_on_a_grey_image(tmp_path: Path):
    path = write(tmp_path / "ga.tif", np.concatenate([pixels(1, dtype="uint8"), a_mask()[None]]))
    with rasterio.open(path, "r+") as dst:
        dst.colorinterp = [ColorInterp.gray, ColorInterp.alpha]
    assert open_scene(path).sizes["band"] == 1
    np.testing.assert_array_equal(valid_of(path), a_mask() > 0)


def test_per_band_masks_each_make_nodata(tmp_path: Path):
    data = write(tmp_path / "data.tif", pixels(2))
    masks = np.full((2, 48, 48), 255, np.uint8)
    masks[0, :5], masks[1, :, :7] = 0, 0
    vrt = write_per_band_vrt(tmp_path / "per-band.vrt", data, write(tmp_path / "masks.tif", masks))
    with rasterio.open(vrt) as src:
        assert [list(f) for f in src.mask_flag_enums] == [[], []]
    np.testing.assert_array_equal(valid_of(vrt), masks.all(axis=0))


def test_a_band_file_covering_part_of_the_grid_is_nodata_elsewhere(tmp_path: Path):
    whole = write(tmp_path / "B02.tif", pixels(1))
    half = write(tmp_path / "B03.tif", pixels(1)[:, :, :24], width=24)
    valid = valid_of([whole, half])
    assert valid[:, :24].all() and not valid[:, 24:].any()
    scene = open_scene([whole, half])
    np.testing.assert_array_equal(scene.values[1, :, :24], pixels(1)[0, :, :24])


def test_a_coarser_band_file_covering_the_grid_keeps_its_type(tmp_path: Path):
    fine = write(tmp_path / "B02.tif", pixels(1))
    coarse = write(tmp_path / "B05.tif", pixels(1, side=24), transform=TRANSFORM @ Affine.scale(2))
    scene = open_scene([fine, coarse])
    assert scene.dtype == np.uint16
    assert valid_of([fine, coarse]).all()


def test_a_warped_band_file_keeps_its_own_mask(tmp_path: Path):
    fine = write(tmp_path / "B02.tif", pixels(1))
    coarse_mask = np.full((24, 24), 255, np.uint8)
    coarse_mask[:5] = 0
    coarse = write(
        tmp_path / "B05.tif", pixels(1, side=24), transform=TRANSFORM @ Affine.scale(2),
        mask=coarse_mask,
    )  # fmt: skip
    valid = valid_of([fine, coarse])
    assert not valid[:10].any() and valid[10:].all()


def test_a_file_without_masks_reads_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path / "plain.tif", pixels())
    calls: list[object] = []
    original = rasterio.io.DatasetReader.read_masks
    monkeypatch.setattr(
        rasterio.io.DatasetReader,
        "read_masks",
        lambda self, *a, **k: calls.append(1) or original(self, *a, **k),
    )
    assert valid_of(path).all()
    assert calls == []


@pytest.mark.parametrize("kind", ["fifo", "char device"])
def test_special_files_are_refused_before_they_are_opened(tmp_path: Path, kind: str):
    if kind == "fifo":
        path = tmp_path / "scene.tif"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    with pytest.raises(SceneError, match="not a regular file"):
        open_scene(path)
