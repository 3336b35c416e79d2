"""Overviews and the Cloud-Optimized GeoTIFF: what the map writer does after the pixels.

Overviews are built in the band-interleaved intermediate file and the COG driver copies them:
left to itself, the driver computes overviews of a multi-band (pixel-interleaved) raster over
many full-width rows of all bands at once, which takes several times the memory and twice the
time. The COG driver keeps nodata, the colour table, dataset tags and band descriptions, so
nothing is re-applied after the conversion (GDAL refuses to update a COG in place unless told
to break its layout); the result is checked. The intermediate is written uncompressed when
small enough (see RAW_INTERMEDIATE_BYTES), as its tiles are decoded and re-encoded anyway. A
class map's first "mode" levels, GDAL's slowest, are instead reduced from each chunk as it
streams (see `overview`), each into the external overview file of the one before (FILE.ovr,
FILE.ovr.ovr): GDAL and its COG driver read such a chain as successive levels, and GDAL builds
the coarser levels from the last one.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from bandfusion.io.tiff_blocks import block_place
from rasterio.enums import Resampling

OVERVIEW_RESAMPLINGS = frozenset(
    {"nearest", "mode", "average", "rms", "bilinear", "gauss", "cubic", "cubicspline", "lanczos"}
)
"""Resampling methods GDAL's overview builder accepts."""

RAW_INTERMEDIATE_BYTES = 1 << 30
"""Largest COG intermediate left uncompressed (a class map of up to ~32k × 32k uint8 pixels).

The COG driver decodes and re-encodes every tile, so compressing the intermediate is work done
twice. Larger intermediates (probability stacks, mosaics) stay compressed to bound the disk
they take.
"""


def tile_size(blocksize: int, extent: int) -> int:
    """`blocksize`, shrunk for small rasters to the extent rounded up to GDAL's multiple of 16."""
    return min(blocksize, -(-extent // 16) * 16)


def intermediate_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile of the file a COG is copied from: uncompressed up to RAW_INTERMEDIATE_BYTES."""
    itemsize = np.dtype(profile["dtype"]).itemsize
    if profile["width"] * profile["height"] * profile["count"] * itemsize > RAW_INTERMEDIATE_BYTES:
        return profile
    raw = {key: value for key, value in profile.items() if key != "predictor"}
    return {**raw, "compress": "NONE"}


def streamed_levels(
    tiled: Path, data: da.Array, resampling: Resampling, factors: list[int]
) -> list[Path]:
    """The overview levels the writer reduces itself, coarsest last, each the external overview
    of the one before (FILE.ovr, FILE.ovr.ovr, ...); none leaves every level to GDAL.

    Only for a single-band integer map with "mode" overviews, and only the levels at which every
    2 × 2 cell lies inside one chunk: chunk sides divisible by the level's factor, so that GDAL
    cuts the cells where the chunks do (on a Sentinel-2 map of 1024² chunks, the 2× and 4×).
    """
    if resampling != Resampling.mode or data.shape[0] != 1 or data.dtype.kind not in "iu":
        return []
    sides = {size for sizes in data.chunks[1:] for size in sizes}
    levels = [tiled]
    for factor in factors:
        if any(side % factor for side in sides):
            break
        levels.append(levels[-1].with_name(f"{levels[-1].name}.ovr"))
    return levels[1:]


def halved(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile of the next overview level: half the size (rounded up, as GDAL), twice the
    pixel."""
    width, height = -(-profile["width"] // 2), -(-profile["height"] // 2)
    return {
        **profile,
        "width": width,
        "height": height,
        "transform": profile["transform"] @ Affine.scale(2),
        "blockxsize": tile_size(profile["blockxsize"], width),
        "blockysize": tile_size(profile["blockysize"], height),
    }


def build_overviews(path: Path, factors: list[int], resampling: Resampling) -> None:
    """Add internal overviews at `factors`, band by band (see the module docstring).

    On all cores: GDAL splits the work by tiles, so the overviews are the same as on one.
    """
    if not factors:
        return
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(path, "r+") as dst:
        dst.build_overviews(factors, resampling)


def overview_factors(width: int, height: int, blocksize: int) -> list[int]:
    """Factors 2, 4, ... until a level fits in one tile: the levels GDAL's COG driver picks."""
    factors: list[int] = []
    factor = 1
    while max(width, height) // factor > blocksize:
        factor *= 2
        factors.append(factor)
    return factors


def to_cog(src: Path, dst: Path, predictor: int, blocksize: int) -> None:
    """Convert the tiled GeoTIFF to a Cloud-Optimized GeoTIFF, copying its overviews."""
    rasterio.shutil.copy(
        src,
        dst,
        driver="COG",
        COMPRESS="DEFLATE",
        PREDICTOR=str(predictor),
        BLOCKSIZE=blocksize,
        OVERVIEWS="FORCE_USE_EXISTING",
        NUM_THREADS="ALL_CPUS",
        BIGTIFF="IF_SAFER",
    )


def check_tiles_inside(path: Path) -> None:
    """Raise OSError if a full-resolution tile ends past the end of the file.

    On a full disk GDAL's COG driver can report success after a failed write, leaving a
    truncated file. Full-resolution tiles come last in both layouts, so a truncated file always
    has some beyond its end.
    """
    size = path.stat().st_size
    with rasterio.open(path) as src:
        for bidx in src.indexes:
            for (row, col), _ in src.block_windows(bidx):
                place = block_place(src, bidx, row, col)
                if place and sum(place) > size:
                    raise OSError(errno.EIO, "tiles end past the end of the file", str(path))
