"""JPEG 2000 scenes: windows follow the codestream's tiles (no tile is decoded for two chunks),
and the pixels are those of a GeoTIFF copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from bandfusion.io.scene import open_scene
from rasterio.transform import from_origin

TILE = 128


def _write(path: Path, driver: str, data: np.ndarray, **options: object) -> Path:
    profile = {
        "driver": driver,
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": "uint16",
        "crs": "EPSG:32629",
        "transform": from_origin(500000, 6000000, 60, 60),
    }
    with rasterio.open(path, "w", **profile, **options) as dst:
        dst.write(data)
    return path


def test_jp2_chunks_are_whole_tiles_and_read_as_geotiff(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 10000, size=(2, 700, 650), dtype=np.uint16)
    jp2 = _write(
        tmp_path / "b.jp2",
        "JP2OpenJPEG",
        data,
        QUALITY=100,
        REVERSIBLE="YES",
        blockxsize=TILE,
        blockysize=TILE,
    )
    with rasterio.open(jp2) as src:
        assert src.block_shapes[0] == (TILE, TILE)
    scene = open_scene(jp2, chunk_pixels=300 * 300)
    for sizes in scene.chunks[1:]:
        assert all(size % TILE == 0 for size in sizes[:-1])
    tif = _write(tmp_path / "b.tif", "GTiff", data)
    np.testing.assert_array_equal(scene.values, open_scene(tif).values)
    np.testing.assert_array_equal(scene.values, data)
