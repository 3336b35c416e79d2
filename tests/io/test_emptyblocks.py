"""Windows of blocks known to hold only nodata are filled, not decoded, and the scene stays what
GDAL reads, bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from bandfusion.io.emptyblocks import EmptyBlocks
from bandfusion.io.scene import open_scene
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.windows import Window

TILE = 32
TRANSFORM = Affine(10, 0, 500000, 0, -10, 4500000)
# What a tile holds: nodata, noise, or one valid value all over (as small as nodata compressed).
KINDS = ("nodata", "noise", "constant")


def _write(path: Path, data: np.ndarray, nodata: float | None, **options: Any) -> Path:
    """A tiled GeoTIFF of `data` (band, y, x), DEFLATE-compressed unless `options` say otherwise."""
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": TILE,
        "blockysize": TILE,
        "compress": "deflate",
        "crs": "EPSG:32630",
        "transform": TRANSFORM,
        **options,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def _tiles(kinds: list[str], bands: int, side: int, dtype: str, nodata: float) -> np.ndarray:
    """A (bands, side, side) raster whose TILE² tiles, row by row and band by band within a
    tile, hold `kinds` in turn: a tile can be nodata in one band and hold pixels in another."""
    rng = np.random.default_rng(0)
    data = np.empty((bands, side, side), dtype=dtype)
    per_row = -(-side // TILE)
    for index in range(per_row * per_row * bands):
        (row, col), band = divmod(index // bands, per_row), index % bands
        tile = data[band, row * TILE : (row + 1) * TILE, col * TILE : (col + 1) * TILE]
        kind = kinds[index % len(kinds)]
        tile[...] = {"nodata": nodata, "constant": 7}.get(kind, 0)
        if kind == "noise":
            tile[...] = rng.integers(1, 1000, tile.shape)
    return data


def _bits(values: np.ndarray) -> np.ndarray:
    return values.view(f"u{values.itemsize}")


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[Window]:
    """The windows GDAL is asked to decode."""
    seen: list[Window] = []
    original = rasterio.io.DatasetReader.read

    def spy(self: rasterio.io.DatasetReader, *args: Any, **kwargs: Any) -> np.ndarray:
        seen.append(kwargs["window"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    return seen


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=9),
    bands=st.integers(1, 3),
    side=st.sampled_from([64, 80, 96]),
    dtype=st.sampled_from(["uint16", "int16", "float32"]),
    nodata=st.sampled_from([0.0, 7.0, -9999.0]),
    interleave=st.sampled_from(["pixel", "band"]),
    chunk=st.sampled_from([TILE, 2 * TILE]),
    scheduler=st.sampled_from(["synchronous", "threads"]),
)
def test_the_scene_is_what_gdal_reads_bit_for_bit(
    tmp_path: Path,
    kinds: list[str],
    bands: int,
    side: int,
    dtype: str,
    nodata: float,
    interleave: str,
    chunk: int,
    scheduler: str,
) -> None:
    if dtype == "uint16" and nodata < 0:
        nodata = 65535.0
    name = f"{dtype}-{bands}-{side}-{interleave}-{nodata}-{''.join(k[0] for k in kinds)}.tif"
    path = _write(
        tmp_path / name, _tiles(kinds, bands, side, dtype, nodata), nodata, interleave=interleave
    )
    scene = open_scene(path, chunk_pixels=chunk * chunk)
    with rasterio.open(path) as src:
        expected = src.read()
    got = scene.data.compute(scheduler=scheduler)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(_bits(got), _bits(expected))


def test_nodata_windows_are_decoded_once_then_filled(tmp_path: Path, decodes: list[Window]) -> None:
    kinds = ["nodata"] * 6 + ["noise"] * 3 + ["nodata"] * 3  # per tile: 3 bands of each kind
    data = _tiles(kinds, 3, 4 * TILE, "uint16", 0)
    path = _write(tmp_path / "swath.tif", data, 0)
    scene = open_scene(path, chunk_pixels=TILE * TILE)
    np.testing.assert_array_equal(scene.data.compute(scheduler="synchronous"), data)
    noise = [w for w in decodes if data[0, w.row_off, w.col_off] != 0]
    assert len(noise) == 4  # every tile holding pixels is decoded, and only the first of nodata
    assert len(decodes) == len(noise) + 1


def test_a_scaled_scene_gets_nan_where_filled(tmp_path: Path, decodes: list[Window]) -> None:
    data = _tiles(["nodata", "nodata", "noise", "noise"], 2, 2 * TILE, "int16", -1)
    path = _write(tmp_path / "scaled.tif", data, -1)
    with rasterio.open(path, "r+") as dst:
        dst.scales, dst.offsets = (0.5, 0.5), (10.0, 10.0)
    scene = open_scene(path, chunk_pixels=TILE * TILE).data.compute(scheduler="synchronous")
    expected = np.where(data == -1, np.float32(np.nan), data * np.float32(0.5) + np.float32(10))
    np.testing.assert_array_equal(_bits(scene), _bits(expected))
    assert len(decodes) == 3  # the second nodata tile is filled


def test_negative_zero_is_not_taken_for_a_nodata_of_zero(tmp_path: Path) -> None:
    data = np.zeros((1, TILE, 3 * TILE), dtype=np.float32)
    data[:, :, TILE : 2 * TILE] = -0.0
    path = _write(tmp_path / "signed.tif", data, 0.0)
    scene = open_scene(path, chunk_pixels=TILE * TILE).data.compute(scheduler="synchronous")
    np.testing.assert_array_equal(_bits(scene), _bits(data))


def test_only_whole_blocks_are_learned(tmp_path: Path) -> None:
    """A block cut by the raster's edge is nodata where it is seen, which says nothing of the
    rest of it, so another block with its bytes could hold pixels."""
    side = TILE + TILE // 2
    path = _write(tmp_path / "edge.tif", np.zeros((1, side, side), np.uint16), 0)
    with rasterio.open(path) as src:
        blocks = EmptyBlocks.of(src, np.uint16(0))
        assert blocks is not None
        cut = Window(TILE, 0, TILE // 2, TILE)
        blocks.learn(cut, src.read(window=cut))
        assert not blocks.all_empty(cut)
        whole = Window(0, 0, TILE, TILE)
        blocks.learn(whole, src.read(window=whole))
        assert blocks.all_empty(whole) and blocks.all_empty(cut)


def test_blocks_of_data_cost_no_file_read_to_learn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _tiles(["noise", "constant"], 2, 2 * TILE, "uint16", 0)
    path = _write(tmp_path / "data.tif", data, 0)
    reads: list[int] = []
    original = EmptyBlocks._bytes
    monkeypatch.setattr(
        EmptyBlocks, "_bytes", lambda self, *a: reads.append(1) or original(self, *a)
    )
    with rasterio.open(path) as src:
        blocks = EmptyBlocks.of(src, np.uint16(0))
        assert blocks is not None
        whole = Window(0, 0, 2 * TILE, 2 * TILE)
        blocks.learn(whole, src.read(window=whole))
        assert reads == [] and not blocks.all_empty(whole)


def test_only_compressed_local_geotiffs_with_a_nodata_value_are_learned(tmp_path: Path) -> None:
    zeros = np.zeros((1, TILE, TILE), np.uint16)
    deflated = _write(tmp_path / "deflated.tif", zeros, 0)
    plain = _write(tmp_path / "plain.tif", zeros, 0, compress="none")
    envi = tmp_path / "scene.img"
    profile = {"width": TILE, "height": TILE, "count": 1, "dtype": "uint16", "crs": "EPSG:32630"}
    with rasterio.open(envi, "w", driver="ENVI", transform=TRANSFORM, **profile) as dst:
        dst.write(zeros)
    cases = [(deflated, np.uint16(0), True), (deflated, None, False), (plain, np.uint16(0), False)]
    for path, nodata, learns in [*cases, (envi, np.uint16(0), False)]:
        with rasterio.open(path) as src:
            assert (EmptyBlocks.of(src, nodata) is not None) == learns, path.name
