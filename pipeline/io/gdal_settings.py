"""GDAL settings chosen deliberately for every read and write: a bounded block cache, no side files.

GDAL's default block cache is a share of RAM and fills up while a scene streams through it,
since no block is read twice; a small fixed cache holds every block a few in-flight chunks touch
and reads just as fast (figures in docs/engine.md).
"""

from __future__ import annotations

import rasterio

GDAL_CACHE_MB = 64
"""GDAL block cache while reading scenes or writing maps: bounds memory at full speed."""

READ_THREADS = 1
"""GDAL decoding threads per read: dask already runs one read per core, so one is enough."""


def gdal_env(cache_mb: int = GDAL_CACHE_MB, **options: str | int) -> rasterio.Env:
    """A GDAL environment with a `cache_mb` block cache, no `.aux.xml` side files, and `options`.

    A side file would be left behind by the writer's rename, so whatever GDAL cannot store
    inside the file is lost instead, and the writer's check catches that. rasterio passes an
    integer GDAL_CACHEMAX to GDAL in bytes, hence the conversion.
    """
    return rasterio.Env(GDAL_CACHEMAX=cache_mb * 2**20, GDAL_PAM_ENABLED="NO", **options)
