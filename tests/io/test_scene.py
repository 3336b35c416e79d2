"""open_scene: lazy, exact, georeferenced, with band names and nodata, from one file or many."""

from __future__ import annotations

import math
import re
import struct
import warnings
from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
from affine import Affine
from bandfusion.errors import BandfusionError, BandfusionWarning, SceneError
from bandfusion.io.grid import Grid
from bandfusion.io.nodata import band_nodata
from bandfusion.io.scene import MAX_SCENE_SIDE, open_scene
from rasterio.enums import Resampling

from tests.strategies import BASES, ifd_entries, write_base

S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"


def test_multiband_file_matches_rasterio_exactly(data_dir: Path):
    scene = open_scene(data_dir / S2)
    with rasterio.open(data_dir / S2) as src:
        expected = src.read()
        transform, crs = src.transform, src.crs
    assert scene.dims == ("band", "y", "x")
    assert list(scene["band"].values[:3]) == ["B1", "B2", "B3"]
    assert scene.dtype == np.int16
    np.testing.assert_array_equal(scene.values, expected)
    grid = Grid.of(scene)
    assert grid.transform == transform and grid.crs == crs
    assert band_nodata(scene) == (0.0,) * 13
    assert band_nodata(scene.sel(band=["B8", "B2"])) == (0.0, 0.0)
    assert scene["x"].values[0] == pytest.approx(transform.c + transform.a / 2)


def test_nothing_is_read_until_asked(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    reads: list[object] = []
    original = rasterio.io.DatasetReader.read
    monkeypatch.setattr(
        rasterio.io.DatasetReader,
        "read",
        lambda self, *a, **k: reads.append(1) or original(self, *a, **k),
    )
    scene = open_scene(data_dir / S2)
    subset = scene.isel(x=slice(0, 10)).mean()
    assert reads == []
    float(subset)
    assert reads


def test_band_files_take_file_names_and_stack_in_order(data_dir: Path):
    files = sorted((data_dir / "oncloudn_s2/adwp").glob("B*.tif"))
    scene = open_scene(files)
    assert list(scene["band"].values) == ["B02", "B03", "B04", "B08"]
    assert list(scene["source"].values) == [str(f) for f in files]
    with rasterio.open(files[2]) as src:
        np.testing.assert_array_equal(scene.sel(band="B04").values, src.read(1))


def test_chunks_follow_the_file_blocks(data_dir: Path):
    striped = open_scene(data_dir / "landsat7_rgb/RGB.byte.tif", chunk_pixels=50_000)
    assert striped.chunks[2] == (791,)
    assert all(c % 3 == 0 for c in striped.chunks[1][:-1])
    assert striped.chunks[0] == (3,)


def test_coarser_band_is_resampled_onto_the_finest_grid(tmp_path: Path, data_dir: Path):
    fine = data_dir / "oncloudn_s2/adwp/B04.tif"
    coarse = tmp_path / "B11.tif"
    with rasterio.open(fine) as src:
        profile = src.profile
        data = src.read(1)
        transform = src.transform
    profile.update(width=256, height=256, transform=transform @ Affine.scale(2))
    with rasterio.open(coarse, "w", **profile) as dst:
        dst.write(data[::2, ::2], 1)
    scene = open_scene([fine, coarse])
    assert scene.shape == (2, 512, 512)
    upsampled = scene.sel(band="B11").values
    np.testing.assert_array_equal(upsampled[::2, ::2], data[::2, ::2])
    np.testing.assert_array_equal(upsampled[1::2, 1::2], data[::2, ::2])
    bilinear = open_scene([fine, coarse], resampling="bilinear").sel(band="B11").values
    assert not np.array_equal(bilinear, upsampled)
    assert Resampling.bilinear.name == "bilinear"


def test_raster_larger_than_memory_opens_lazily(tmp_path: Path):
    huge = tmp_path / "huge.tif"
    profile = {
        "driver": "GTiff",
        "width": 400_000,
        "height": 400_000,
        "count": 12,
        "dtype": "uint16",
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "sparse_ok": True,
        "crs": "EPSG:32633",
        "transform": Affine(10, 0, 0, 0, -10, 0),
        "nodata": 0,
    }
    with rasterio.open(huge, "w", **profile):
        pass  # a sparse file: 3.8 TB of pixels declared, nothing written
    scene = open_scene(huge)
    assert scene.nbytes > 3e12
    window = scene.isel(y=slice(1000, 1010), x=slice(2000, 2010)).values
    assert window.shape == (12, 10, 10) and not window.any()


def test_no_crs_warns_and_carries_none(tmp_path: Path):
    path = tmp_path / "nocrs.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=2, dtype="uint8") as dst:
        dst.write(np.ones((2, 8, 8), dtype="uint8"))
    with pytest.warns(BandfusionWarning, match="no CRS"):
        scene = open_scene(path)
    assert scene.attrs["crs"] == ""
    assert Grid.of(scene).crs is None
    assert list(scene["band"].values) == ["b1", "b2"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.tif", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: _write_text(d / "text.tif"), "not a raster GDAL can read"),
    ],
)
def test_bad_files_raise_one_line_scene_errors(tmp_path: Path, make, message):
    path = make(tmp_path)
    with pytest.raises(SceneError, match=message) as info:
        open_scene(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_band_files_in_different_crs_are_refused(tmp_path: Path, data_dir: Path):
    fine = data_dir / "oncloudn_s2/adwp/B04.tif"
    other = tmp_path / "other.tif"
    with rasterio.open(fine) as src:
        profile = src.profile
        profile.update(crs="EPSG:4326")
        with rasterio.open(other, "w", **profile) as dst:
            dst.write(src.read())
    with pytest.raises(SceneError, match="CRS"):
        open_scene([fine, other])


def test_band_names_must_match_the_band_count(data_dir: Path):
    with pytest.raises(BandfusionError, match="2 band names given for 13 bands"):
        open_scene(data_dir / S2, band_names=["a", "b"])
    files = [data_dir / "oncloudn_s2/adwp/B02.tif", data_dir / "oncloudn_s2/adwp/B03.tif"]
    with pytest.raises(BandfusionError, match="repeated: a"):
        open_scene(files, band_names=["a", "a"])


def test_repeated_band_descriptions_are_made_unique(data_dir: Path):
    scene = open_scene(data_dir / "eolearn_slovenia/ndvi_stack.tif")
    names = list(scene["band"].values)
    assert len(set(names)) == 68
    assert names[7:9] == ["NDVI_2015-12-08", "NDVI_2015-12-08_2"]


def test_scene_is_picklable_for_distributed_workers(data_dir: Path):
    import pickle

    scene = open_scene(data_dir / S2)
    clone = pickle.loads(pickle.dumps(scene))
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        np.testing.assert_array_equal(clone.values, scene.values)


def _write_text(path: Path) -> Path:
    path.write_text("this is not a GeoTIFF\n")
    return path


# ---------------------------------------------------------------------------------------------
# hostile headers and values (the first regressions fuzzing found: docs/hostile-inputs.md)

COMPLEX_DTYPES = ("complex_int16", "complex64", "complex128")


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 1, 17), (300, 5, 1)])
def test_complex_rasters_are_refused(tmp_path: Path, dtype: str, shape: tuple[int, int, int]):
    path = tmp_path / f"{dtype}.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        count=shape[0],
        height=shape[1],
        width=shape[2],
        dtype=dtype,
        crs="EPSG:4326",
        transform=Affine(0.1, 0, 5, 0, -0.1, 50),
    ) as dst:
        if dtype != "complex_int16":  # numpy has no such dtype; GDAL fills the file with zeros
            dst.write(np.ones(shape, dtype=dtype))
    with pytest.raises(SceneError, match=re.escape(f"{path}: unsupported data type {dtype} ")):
        open_scene(path)


def test_a_crs_that_is_not_utf8_is_a_scene_error(tmp_path: Path):
    path = write_base(tmp_path / "base.tif", BASES["striped-raw-int16"])
    data = path.read_bytes()
    # Without its ProjectedCSTypeGeoKey (3072) the CRS is a LOCAL_CS named by the citation...
    key = struct.pack("<HHHH", 3072, 0, 1, 32633)
    data = data.replace(key, struct.pack("<HHHH", 3106, 0, 1, 32633))
    # ... which is not UTF-8 here: rasterio.open raised UnicodeDecodeError.
    data = data.replace(b"WGS 84 / UTM zone 33N", b"WGS 84 / U\xd5M zone 33N")
    path.write_bytes(data)
    with pytest.raises(SceneError, match="not a raster GDAL can read"):
        open_scene(path)


def test_a_geotransform_with_nan_is_a_scene_error(tmp_path: Path):
    path = write_base(tmp_path / "base.tif", BASES["striped-raw-int16"])
    data = bytearray(path.read_bytes())
    entries, _ = ifd_entries(data)
    pixel_scale = next(e for e in entries if struct.unpack_from("<H", data, e)[0] == 33550)
    struct.pack_into("<d", data, struct.unpack_from("<I", data, pixel_scale + 8)[0], math.nan)
    path.write_bytes(bytes(data))
    with pytest.raises(SceneError, match=r"geotransform .* is not finite"):
        open_scene(path)  # said 'does not overlap the other band files' before


@pytest.mark.parametrize("bands", [1, 2])
def test_a_nan_scale_is_a_scene_error(tmp_path: Path, bands: int):
    path = write_base(tmp_path / "base.tif", {"count": bands, "dtype": "int16", "scale": 1e-4})
    with rasterio.open(path, "r+") as dst:
        dst.scales = (math.nan,) * bands
    with pytest.raises(SceneError, match=r"scale nan or offset -0\.1 is not finite"):
        open_scene(path)  # 1 band: an all-nodata map; 2: 'bands differ in nodata, scale ...'


@pytest.mark.parametrize("side", [MAX_SCENE_SIDE + 1, 0x7FFFFFFF])
@pytest.mark.parametrize("tag", [256, 257])
def test_a_header_with_an_enormous_side_is_refused_before_allocating(
    tmp_path: Path, tag: int, side: int
):
    path = write_base(tmp_path / "base.tif", BASES["striped-raw-int16"])
    data = bytearray(path.read_bytes())
    entries, _ = ifd_entries(data)
    entry = next(e for e in entries if struct.unpack_from("<H", data, e)[0] == tag)
    struct.pack_into("<HII", data, entry + 2, 4, 1, side)  # ImageWidth/Length as a LONG
    path.write_bytes(bytes(data))
    with pytest.raises(SceneError, match="header claims"):
        open_scene(path)  # allocated 16 GiB of pixel coordinates (MemoryError or OOM) before


def many_band_tiff(bands: int) -> bytes:
    """A 1 x 1 uncompressed TIFF of `bands` uint8 samples, built by hand: GDAL takes ~1 ms a
    band to write one."""
    tags = [(256, 1), (257, 1), (258, 8), (259, 1), (262, 1), (273, 0), (277, bands),
            (278, 1), (279, bands), (284, 1)]  # fmt: skip
    pixels_at = 8 + 2 + 12 * len(tags) + 4
    entries = b"".join(
        struct.pack("<HHII", tag, 4 if tag in (273, 279) else 3, 1, pixels_at if tag == 273 else v)
        for tag, v in tags
    )
    ifd = struct.pack("<H", len(tags)) + entries + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(bands)


def test_many_band_names_are_checked_in_linear_time(tmp_path: Path):
    path = tmp_path / "many.tif"
    path.write_bytes(many_band_tiff(20000))
    names = [f"n{i}" for i in range(20000)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene = open_scene(path, band_names=names)  # was quadratic: 4 s here, 40 s at 65535
        assert scene.sizes["band"] == 20000
        with pytest.raises(BandfusionError, match=r"repeated: n7$"):
            open_scene(path, band_names=[*names[:-1], "n7"])
