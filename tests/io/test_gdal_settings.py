"""GDAL's settings (bandfusion.io.gdal_settings): a bounded block cache, and every scene read
made inside those settings."""

from __future__ import annotations

import rasterio
from bandfusion.io.gdal_settings import GDAL_CACHE_MB, gdal_env


def test_gdal_env_bounds_the_block_cache_in_bytes() -> None:
    with gdal_env(GDAL_NUM_THREADS=2):
        options = rasterio.env.getenv()
    assert options["GDAL_CACHEMAX"] == GDAL_CACHE_MB * 2**20  # rasterio passes an int as bytes
    assert options["GDAL_NUM_THREADS"] == 2


def test_reads_happen_inside_the_bounded_gdal_env(scene, monkeypatch) -> None:
    import bandfusion.io.reader as reader_module

    seen: list[dict[str, object]] = []
    original = reader_module.SceneReader._read_into

    def spy(self, out, source, window):
        seen.append(rasterio.env.getenv())
        original(self, out, source, window)

    monkeypatch.setattr(reader_module.SceneReader, "_read_into", spy)
    scene.isel(x=slice(0, 64), y=slice(0, 64)).compute(scheduler="threads")
    assert seen and all(env["GDAL_CACHEMAX"] == GDAL_CACHE_MB * 2**20 for env in seen)
