"""The map writer on real files: round trips, COG layout, atomicity, errors and bounded memory."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections import namedtuple
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import rasterio
import rasterio.shutil
import xarray as xr
from affine import Affine
from bandfusion.errors import BandfusionWarning, OutputError
from bandfusion.io import cog as cog_steps
from bandfusion.io import geotiff
from bandfusion.io.atomic import atomic_output, check_writable
from bandfusion.io.geotiff import write_geotiff
from bandfusion.io.map_metadata import MapMetadata
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rio_cogeo import cog_validate

UTM = CRS.from_epsg(32630).to_wkt()
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4500000.0)
COLORMAP = {0: (0, 0, 255, 255), 1: (0, 160, 0, 255), 2: (200, 200, 0, 255), 255: (0, 0, 0, 0)}
CLASS_NAMES = {0: "water", 1: "forest", 2: "crops"}
DiskUsage = namedtuple("DiskUsage", "total used free")
MODE = Resampling.mode


def _map(values: np.ndarray, chunks: Any = (128, 256), crs: str = UTM) -> xr.DataArray:
    """A dask-backed map DataArray as bandfusion makes them, with (y, x) last."""
    dims = ("y", "x") if values.ndim == 2 else ("class", "y", "x")
    chunks = chunks if values.ndim == 2 else (-1, *chunks)
    attrs = {"crs": crs, "transform": tuple(TRANSFORM)[:6]}
    return xr.DataArray(da.from_array(values, chunks=chunks), dims=dims, attrs=attrs)


def _classes(dtype: str = "uint8", shape: tuple[int, int] = (530, 700)) -> np.ndarray:
    """Random classes 0-2 with a band of nodata (255) pixels."""
    values = np.random.default_rng(0).integers(0, 3, shape).astype(dtype)
    values[:, :37] = 255
    return values


def _failing_map(error: type[BaseException]) -> xr.DataArray:
    """A class map whose computation raises `error` on one chunk, after others were written."""

    def compute(block: np.ndarray, block_info: dict[Any, Any]) -> np.ndarray:
        if block_info[None]["chunk-location"] == (2, 1):
            raise error("chunk failed")
        return block

    source = _map(_classes())
    failing = source.data.map_blocks(compute, dtype=np.uint8)
    return source.copy(data=failing)


def _entries(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir())


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_class_map_round_trips_as_a_valid_cog(tmp_path: Path, dtype: str) -> None:
    values = _classes(dtype)
    written: list[int] = []
    path = write_geotiff(
        _map(values),
        tmp_path / "map.tif",
        nodata=255,
        colormap=COLORMAP,
        class_names=CLASS_NAMES,
        band_names=["land cover"],
        tags={"MODEL": "fusion-v1"},
        overview_resampling="mode",
        progress=written.append,
    )
    assert path == tmp_path / "map.tif"
    assert _entries(tmp_path) == ["map.tif", "map.tif.aux.xml"]  # the category names: see pam
    assert sum(written) == 530 * 700
    assert len(written) == 5 * 3
    is_valid, errors, _ = cog_validate(str(path))
    assert is_valid, errors
    with rasterio.open(path) as src:
        assert src.dtypes == (dtype,)
        assert (src.width, src.height, src.count) == (700, 530, 1)
        assert src.crs == CRS.from_wkt(UTM)
        assert src.transform == TRANSFORM
        assert src.nodata == 255
        np.testing.assert_array_equal(src.read(1), values)
        assert all(src.colormap(1)[key] == rgba for key, rgba in COLORMAP.items())
        assert json.loads(src.tags()["CLASS_NAMES"]) == {"0": "water", "1": "forest", "2": "crops"}
        assert src.tags()["MODEL"] == "fusion-v1"
        assert src.descriptions == ("land cover",)
        assert src.overviews(1) == [2]
        assert src.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
    with rasterio.open(path, overview_level=0) as overview:
        assert set(np.unique(overview.read(1))) <= {0, 1, 2, 255}  # "mode" invents no class


def test_cog_false_writes_a_tiled_deflate_gtiff(tmp_path: Path) -> None:
    values = _classes()
    path = write_geotiff(_map(values), tmp_path / "map.tif", nodata=255, cog=False, blocksize=256)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(1), values)
        assert src.profile["tiled"]
        assert src.block_shapes == [(256, 256)]
        assert src.compression.value == "DEFLATE"
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG"
        assert src.overviews(1) == []


def test_tiles_of_a_small_raster_shrink_to_a_multiple_of_16(tmp_path: Path) -> None:
    values = _classes(shape=(40, 100))
    tiled = write_geotiff(_map(values), tmp_path / "small.tif", nodata=255, cog=False)
    cog = write_geotiff(_map(values), tmp_path / "small-cog.tif", nodata=255)
    with rasterio.open(tiled) as src:
        assert src.block_shapes == [(48, 112)]
        np.testing.assert_array_equal(src.read(1), values)
    assert cog_validate(str(cog))[0]


def test_probabilities_round_trip_with_average_overviews(tmp_path: Path) -> None:
    values = np.random.default_rng(1).random((3, 530, 700), dtype=np.float32)
    path = write_geotiff(
        _map(values),
        tmp_path / "probabilities.tif",
        nodata=float("nan"),
        band_names=["water", "forest", "crops"],
        overview_resampling="average",
    )
    assert cog_validate(str(path))[0]
    with rasterio.open(path) as src:
        assert src.dtypes == ("float32",) * 3
        assert np.isnan(src.nodata)
        assert src.descriptions == ("water", "forest", "crops")
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
        np.testing.assert_array_equal(src.read(), values)
    with rasterio.open(path, overview_level=0) as overview:
        means = values.reshape(3, 265, 2, 350, 2).mean(axis=(2, 4))
        np.testing.assert_allclose(overview.read(), means, rtol=1e-5)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_map_without_crs_is_written_without_crs(tmp_path: Path) -> None:
    path = write_geotiff(_map(_classes(), crs=""), tmp_path / "map.tif", nodata=255)
    with rasterio.open(path) as src:
        assert src.crs is None
        assert src.transform == TRANSFORM


@pytest.mark.parametrize(
    ("width", "height", "blocksize"),
    [
        (700, 530, 512),
        (700, 530, 256),
        (2100, 90, 256),
        (512, 512, 512),
        (513, 40, 128),
        (1025, 7, 512),
        (40, 2049, 512),
    ],
)
def test_overview_levels_are_those_gdals_cog_driver_picks(
    tmp_path: Path, width: int, height: int, blocksize: int
) -> None:
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "uint8"}
    with rasterio.open(tmp_path / "plain.tif", "w", **profile, crs=UTM, transform=TRANSFORM):
        pass
    rasterio.shutil.copy(
        tmp_path / "plain.tif", tmp_path / "cog.tif", driver="COG", BLOCKSIZE=blocksize
    )
    with rasterio.open(tmp_path / "cog.tif") as src:
        assert cog_steps.overview_factors(width, height, blocksize) == src.overviews(1)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("cog", [True, False])
def test_a_failed_computation_leaves_no_file(
    tmp_path: Path, error: type[BaseException], cog: bool
) -> None:
    with pytest.raises(error, match="chunk failed"):
        write_geotiff(_failing_map(error), tmp_path / "map.tif", nodata=255, cog=cog)
    assert _entries(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failed_computation_keeps_the_previous_file(
    tmp_path: Path, error: type[BaseException]
) -> None:
    path = tmp_path / "map.tif"
    path.write_bytes(b"the previous map")
    with pytest.raises(error, match="chunk failed"):
        write_geotiff(_failing_map(error), path, nodata=255)
    assert _entries(tmp_path) == ["map.tif"]
    assert path.read_bytes() == b"the previous map"


def test_a_failed_cog_conversion_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(cog_steps, "to_cog", fail)
    path = tmp_path / "map.tif"
    path.write_bytes(b"the previous map")
    with pytest.raises(RuntimeError, match="conversion failed"):
        write_geotiff(_map(_classes()), path, nodata=255)
    assert _entries(tmp_path) == ["map.tif"]
    assert path.read_bytes() == b"the previous map"


def test_missing_directory_is_reported_before_any_compute(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "map.tif"
    with pytest.raises(OutputError, match="does not exist") as caught:
        write_geotiff(_failing_map(RuntimeError), path, nodata=255)
    assert str(path) in str(caught.value)


def test_a_directory_at_the_path_is_reported(tmp_path: Path) -> None:
    (tmp_path / "map.tif").mkdir()
    with pytest.raises(OutputError, match="is a directory") as caught:
        write_geotiff(_failing_map(RuntimeError), tmp_path / "map.tif", nodata=255)
    assert str(tmp_path / "map.tif") in str(caught.value)


def test_a_read_only_directory_is_reported(tmp_path: Path) -> None:
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        if os.access(directory, os.W_OK):
            pytest.skip("permissions are not enforced for this user (root)")
        with pytest.raises(OutputError, match="not writable") as caught:
            check_writable(directory / "map.tif")
        assert str(directory / "map.tif") in str(caught.value)
    finally:
        directory.chmod(0o755)


def test_a_directory_without_write_access_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same check as above, for runs as root, where chmod does not take write access away."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(OutputError, match=f"directory {tmp_path} is not writable"):
        write_geotiff(_failing_map(RuntimeError), tmp_path / "map.tif", nodata=255)


def test_check_writable_accepts_a_new_file_and_an_existing_one(tmp_path: Path) -> None:
    assert check_writable(tmp_path / "new.tif") == tmp_path / "new.tif"
    (tmp_path / "old.tif").write_bytes(b"old")
    assert check_writable(str(tmp_path / "old.tif")) == tmp_path / "old.tif"


@pytest.mark.parametrize(
    ("code", "message"), [(errno.ENOSPC, "disk full"), (errno.EDQUOT, "disk quota exceeded")]
)
def test_a_full_disk_becomes_an_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, message: str
) -> None:
    def full(self: object, key: object, value: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(geotiff._WindowWriter, "__setitem__", full)
    path = tmp_path / "map.tif"
    with pytest.raises(OutputError, match=message) as caught:
        write_geotiff(_map(_classes()), path, nodata=255)
    assert str(caught.value) == f"{path}: {message}"
    assert _entries(tmp_path) == []


@pytest.mark.parametrize(
    ("free", "expected", "message"),
    [(0, OutputError, "disk full"), (10**12, RasterioIOError, "Write failed")],
)
def test_a_gdal_write_error_is_a_full_disk_only_when_the_disk_is_full(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    free: int,
    expected: type[Exception],
    message: str,
) -> None:
    def gdal_failure(self: object, key: object, value: object) -> None:
        raise RasterioIOError("Write failed. See previous exception for details.")

    monkeypatch.setattr(geotiff._WindowWriter, "__setitem__", gdal_failure)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10**12, 10**12 - free, free))
    with pytest.raises(expected, match=message):
        write_geotiff(_map(_classes()), tmp_path / "map.tif", nodata=255)
    assert _entries(tmp_path) == []


@pytest.mark.parametrize(
    ("free", "expected", "message"),
    [(0, OutputError, "disk full"), (10**12, OSError, "past the end of the file")],
)
def test_a_silently_truncated_cog_is_caught(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    free: int,
    expected: type[Exception],
    message: str,
) -> None:
    """GDAL's COG driver can report success on a full disk after writing part of the file."""
    convert = cog_steps.to_cog

    def truncating(src: Path, dst: Path, *args: Any) -> None:
        convert(src, dst, *args)
        os.truncate(dst, dst.stat().st_size // 2)

    monkeypatch.setattr(cog_steps, "to_cog", truncating)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10**12, 10**12 - free, free))
    with pytest.raises(expected, match=message):
        write_geotiff(_map(_classes()), tmp_path / "map.tif", nodata=255)
    assert _entries(tmp_path) == []


def test_metadata_lost_on_the_way_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MapMetadata, "apply", lambda self, dst: None)
    with pytest.raises(RuntimeError, match="colour map, tags, band descriptions"):
        write_geotiff(
            _map(_classes()),
            tmp_path / "map.tif",
            nodata=255,
            colormap=COLORMAP,
            class_names=CLASS_NAMES,
            band_names=["class"],
        )
    assert _entries(tmp_path) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"blocksize": 100}, "multiple of 16"),
        ({"overview_resampling": "bogus"}, "overview_resampling"),
        ({"band_names": ["a", "b"]}, "2 band names for 1 bands"),
        ({"scheduler": "bogus"}, "scheduler must be one of"),
    ],
)
def test_bad_options_fail_before_writing(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_geotiff(_failing_map(RuntimeError), tmp_path / "map.tif", nodata=255, **options)
    assert _entries(tmp_path) == []


def test_wrong_dims_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dims"):
        write_geotiff(_map(_classes()).rename(x="col"), tmp_path / "map.tif", nodata=255)


def test_a_colour_map_for_floats_is_skipped_with_a_warning(tmp_path: Path) -> None:
    values = np.random.default_rng(2).random((530, 700), dtype=np.float32)
    with pytest.warns(BandfusionWarning, match="no colour map"):
        path = write_geotiff(_map(values), tmp_path / "p.tif", nodata=None, colormap=COLORMAP)
    with rasterio.open(path) as src, pytest.raises(ValueError):
        src.colormap(1)


def test_the_default_scheduler_is_local_even_under_a_distributed_client(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, dashboard_address=None):
        path = write_geotiff(_map(_classes()), tmp_path / "map.tif", nodata=255)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(1), _classes())


def test_the_writer_refuses_chunks_that_arrive_after_it_closed(tmp_path: Path) -> None:
    """dask's threads finish their running chunks after a failure has closed the file."""
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "uint8"}
    chunk = np.ones((1, 2, 2), dtype=np.uint8)
    with rasterio.open(tmp_path / "map.tif", "w", **profile, crs=UTM, transform=TRANSFORM) as dst:
        with geotiff._WindowWriter(dst, nodata=255, progress=None) as writer:
            writer[slice(0, 1), slice(0, 2), slice(0, 2)] = chunk
        with pytest.raises(RuntimeError, match="after the map writer was closed"):
            writer[slice(0, 1), slice(2, 4), slice(2, 4)] = chunk


def test_atomic_output_renames_only_on_success(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "report.json") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".report.json.")
        tmp.write_text("{}")
        tmp.with_name(tmp.name + ".aux.xml").write_text("side file")
    assert _entries(tmp_path) == ["report.json"]


MEMORY_PROBE = textwrap.dedent(
    """
    import resource, sys
    import dask.array as da, numpy as np, xarray as xr
    from bandfusion.io.geotiff import write_geotiff

    def classes(block, block_info=None):
        (y0, y1), (x0, x1) = block_info[None]["array-location"]
        rows = (np.arange(y0, y1) // 64 % 6).astype(np.uint8)
        cols = (np.arange(x0, x1) // 48 % 6).astype(np.uint8)
        return (rows[:, None] + cols[None, :]) % 6

    def lazy_map(size):
        data = da.empty((size, size), dtype=np.uint8, chunks=1024)
        attrs = {"crs": "", "transform": (10.0, 0.0, 0.0, 0.0, -10.0, 0.0)}
        return xr.DataArray(data.map_blocks(classes, dtype=np.uint8), dims=("y", "x"), attrs=attrs)

    write_geotiff(lazy_map(64), sys.argv[1], nodata=255, overview_resampling="mode")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    write_geotiff(lazy_map(8192), sys.argv[1], nodata=255, overview_resampling="mode")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((peak - baseline) * 1024)
    """
)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_writing_a_large_lazy_map_keeps_memory_far_below_its_size(tmp_path: Path) -> None:
    path = tmp_path / "large.tif"
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path)], capture_output=True, text=True, check=True
    )
    growth = int(probe.stdout.split()[-1])
    assert growth < 64 * 2**20  # the map alone is 64 MiB
    with rasterio.open(path) as src:
        assert (src.width, src.height) == (8192, 8192)
        assert src.overviews(1) == [2, 4, 8, 16]
        assert src.read(1, window=((4000, 4001), (100, 101)))[0, 0] == (4000 // 64 + 100 // 48) % 6


def _assert_same_overviews(first: Path, second: Path) -> None:
    """Both files hold the same overview levels, pixel for pixel."""
    with rasterio.open(first) as a, rasterio.open(second) as b:
        assert a.overviews(1) == b.overviews(1)
        levels = len(a.overviews(1))
    for level in range(levels):
        with (
            rasterio.open(first, overview_level=level) as a,
            rasterio.open(second, overview_level=level) as b,
        ):
            np.testing.assert_array_equal(a.read(1), b.read(1))


@pytest.mark.parametrize(
    ("shape", "chunks", "streamed"),
    [((1100, 1300), (256, 384), 2), ((1024, 1536), (512, 512), 3), ((1100, 1300), (255, 383), 0)],
    ids=["two-levels-streamed", "every-level-streamed", "odd-chunks"],
)
def test_streamed_mode_overviews_equal_gdals(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shape: tuple[int, int],
    chunks: tuple[int, int],
    streamed: int,
) -> None:
    """Whether the writer streams some levels (chunk sides divisible by their factors), all of
    them, or none (odd chunks cut 2 × 2 cells), the COG is the same as GDAL builds it, level by
    level, with whole chunks of nodata as outside a swath."""
    values = _classes(shape=shape)
    values[:512, :768] = 255
    levels = cog_steps.streamed_levels(
        Path("m.tif"), _map(values, chunks).data[None], MODE, [2, 4, 8]
    )
    assert len(levels) == streamed

    def write(name: str) -> Path:
        options: dict[str, Any] = {"blocksize": 256, "colormap": COLORMAP}
        return write_geotiff(
            _map(values, chunks), tmp_path / name, nodata=255, overview_resampling="mode", **options
        )

    streamed_cog = write("streamed.tif")
    monkeypatch.setattr(cog_steps, "streamed_levels", lambda *args: [])
    built = write("built.tif")
    assert _entries(tmp_path) == ["built.tif", "streamed.tif"]
    assert cog_validate(str(streamed_cog))[0]
    with rasterio.open(streamed_cog) as a, rasterio.open(built) as b:
        assert a.overviews(1) == b.overviews(1) == [2, 4, 8]
        assert a.colormap(1)[1] == COLORMAP[1]
        np.testing.assert_array_equal(a.read(1), values)
    _assert_same_overviews(streamed_cog, built)


def test_mode_levels_are_streamed_while_every_2x2_cell_lies_inside_one_chunk() -> None:
    tiled = Path("map.gtiff.tif")
    first, second = Path("map.gtiff.tif.ovr"), Path("map.gtiff.tif.ovr.ovr")
    data = da.zeros((1, 1024, 1536), dtype=np.uint8, chunks=(1, 512, 512))
    assert cog_steps.streamed_levels(tiled, data, MODE, [2, 4]) == [first, second]
    assert cog_steps.streamed_levels(tiled, data.rechunk((1, 512, 510)), MODE, [2, 4]) == [first]
    odd = data.rechunk((1, 511, 512))
    floats = data.astype(np.float32)
    bands = da.zeros((2, 1024, 1536), dtype=np.uint8, chunks=(2, 512, 512))
    for chunked, resampling, factors in [
        (odd, MODE, [2]),
        (floats, MODE, [2]),
        (bands, MODE, [2]),
        (data, Resampling.average, [2]),
        (data, MODE, []),
    ]:
        assert cog_steps.streamed_levels(tiled, chunked, resampling, factors) == []


def test_a_cog_is_the_same_from_a_raw_or_a_compressed_intermediate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The intermediate's compression is the writer's business: the COG's pixels, overviews and
    creation options do not depend on it."""
    values = _classes(shape=(1100, 1300))

    def write(name: str) -> Path:
        return write_geotiff(
            _map(values, (256, 384)), tmp_path / name, nodata=255, overview_resampling="mode"
        )

    raw = write("raw.tif")
    monkeypatch.setattr(cog_steps, "RAW_INTERMEDIATE_BYTES", 0)
    compressed = write("compressed.tif")
    assert cog_validate(str(raw))[0]
    with rasterio.open(raw) as a, rasterio.open(compressed) as b:
        assert a.profile == b.profile
        assert a.compression == b.compression == rasterio.enums.Compression.deflate
        assert a.overviews(1) == b.overviews(1) == [2, 4]
        np.testing.assert_array_equal(a.read(1), values)
    _assert_same_overviews(raw, compressed)


def test_only_a_small_cog_intermediate_is_left_uncompressed() -> None:
    profile = {"width": 1000, "height": 1000, "count": 1, "dtype": "uint8"}
    profile |= {"compress": "DEFLATE", "predictor": 2}
    raw = cog_steps.intermediate_profile(profile)
    assert raw["compress"] == "NONE" and "predictor" not in raw
    large = {**profile, "width": 40000, "height": 40000}
    assert cog_steps.intermediate_profile(large) == large


def test_metadata_left_out_is_taken_from_the_attrs_and_given_metadata_wins(tmp_path: Path):
    array = _map(_classes())
    array.attrs |= {"nodata": 255, "colormap": COLORMAP, "class_names": CLASS_NAMES}
    array.attrs |= {"tags": {"SOURCE": "attrs"}}
    path = write_geotiff(array, tmp_path / "map.tif", tags={"SOURCE": "given"})
    with rasterio.open(path) as src:
        assert src.nodata == 255
        assert src.colormap(1)[1] == COLORMAP[1]
        assert json.loads(src.tags()["CLASS_NAMES"]) == {"0": "water", "1": "forest", "2": "crops"}
        assert src.tags()["SOURCE"] == "given"
