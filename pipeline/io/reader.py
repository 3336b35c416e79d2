"""The window reader behind every scene: per-thread file handles, masks, empty blocks.

A task of the scene's dask graph calls `SceneReader` with a window; the reader opens (or reuses,
per thread) each source file, warps it onto the scene's grid where it is not on it already,
reads that window of every band with its masks, and fills nodata where a file has no data.
`bandfusion.io.scene` builds the graph around it and knows no file handle.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from bandfusion.errors import SceneError, first_line
from bandfusion.io.emptyblocks import EmptyBlocks
from bandfusion.io.gdal_settings import READ_THREADS, gdal_env
from bandfusion.io.grid import Grid
from bandfusion.io.masks import data_bands, own_masks, read_own_masks, read_valid
from bandfusion.io.nodata import pixel_value
from bandfusion.io.radiometry import GDAL_TAGS
from bandfusion.io.remote import file_stamp, open_raster
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

_HANDLES_PER_THREAD = 32


@dataclass(frozen=True)
class SourceFile:
    """One input file: which of its bands we use and where they land in the scene's band axis."""

    path: str
    indexes: tuple[int, ...]
    first: int  # position of this file's first band in the scene
    grid: Grid
    nodata: float | None
    scale: float
    offset: float
    dtype: str
    mask_bands: tuple[int, ...] = ()  # bands whose GDAL masks to read (masks.mask_bands)
    origin: str = GDAL_TAGS  # where scale, offset and nodata came from (a product's metadata)

    @property
    def last(self) -> int:
        return self.first + len(self.indexes)


@dataclass(frozen=True)
class SceneReader:
    """Reads any window of the scene; picklable, so dask workers can rebuild it anywhere."""

    files: tuple[SourceFile, ...]
    grid: Grid
    resampling: str
    dtype: np.dtype[Any]
    gdal_threads: int | str = READ_THREADS

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.files[-1].last, self.grid.height, self.grid.width)

    @property
    def ndim(self) -> int:
        return 3

    def __getitem__(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        bands, rows, cols = (s.indices(n) for s, n in zip(key, self.shape, strict=True))
        window = Window(cols[0], rows[0], cols[1] - cols[0], rows[1] - rows[0])
        out = np.empty((self.shape[0], window.height, window.width), dtype=self.dtype)
        if window.height > 0 and window.width > 0:
            with gdal_env(GDAL_NUM_THREADS=self.gdal_threads):
                for source in self.files:
                    self._read_into(out[source.first : source.last], source, window)
        return out[slice(*bands)]

    def _read_into(self, out: np.ndarray, source: SourceFile, window: Window) -> None:
        """Read `source`'s bands in `window` into `out`, scaled when the file says so.

        Unscaled bands are decoded straight into the chunk: a copy through a temporary would
        cost a chunk's worth of memory traffic and page faults whether its pixels are valid
        or not. A window of blocks known to hold only nodata is filled, not decoded.
        """
        opened = _open_cached(source, self.grid, self.resampling)
        empty = opened.empty
        if empty is not None and empty.all_empty(window):
            pixel = np.empty((1, 1, 1), dtype=out.dtype)
            _store(np.full((1, 1, 1), empty.nodata), pixel, source)
            out[...] = pixel
            return
        unscaled = source.scale == 1.0 and source.offset == 0.0
        target = out if unscaled and out.dtype == source.dtype else None
        try:
            data = opened.reader.read(list(source.indexes), window=window, out=target)
        except RasterioError as exc:
            raise SceneError(
                f"{source.path}: cannot read its pixels; the file is truncated or corrupt "
                f"({gdal_reason(exc)})"
            ) from exc
        if empty is not None:
            empty.learn(window, data)
        if target is None:
            _store(data, out, source)
        if source.mask_bands:
            valid = read_valid(opened.reader, opened.mask_bands or source.mask_bands, window)
            if opened.own_masks:  # per-band masks, which the warp drops
                valid &= read_own_masks(opened.handles[0], opened.own_masks, window, self.grid)
            if not valid.all():
                out[:, ~valid] = np.nan if out.dtype.kind == "f" else source.nodata


def _store(data: np.ndarray, out: np.ndarray, source: SourceFile) -> None:
    """Put pixels as read from `source` into `out`: cast, or scaled with nodata as NaN."""
    if source.scale == 1.0 and source.offset == 0.0:
        out[...] = data
        return
    np.multiply(data, np.float32(source.scale), out=out, dtype=np.float32)
    out += np.float32(source.offset)
    if source.nodata is not None:
        out[data == source.nodata] = np.nan


@dataclass
class _Opened:
    """One thread's handles on a source file, and what it has learned of the file's blocks."""

    handles: list[Any]  # the file, then the WarpedVRT onto the scene's grid where it needs one
    empty: EmptyBlocks | None  # only where the file is read as it is, not warped
    mask_bands: tuple[int, ...] = ()  # the warped VRT's one mask: its alpha band
    own_masks: tuple[int, ...] = ()  # bands with per-band masks, which the warp drops

    @property
    def reader(self) -> DatasetReader | WarpedVRT:
        return self.handles[-1]


_local = threading.local()


def _open_cached(source: SourceFile, grid: Grid, resampling: str) -> _Opened:
    """A per-thread LRU of open datasets: handles are not thread-safe and opening is not free."""
    cache: OrderedDict[tuple[Any, ...], _Opened] = _local.__dict__.setdefault(
        "cache", OrderedDict()
    )
    key = (source.path, file_stamp(source.path), grid, resampling)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        dataset = open_raster(source.path)
    if source.grid.same_as(grid):
        nodata = pixel_value(np.dtype(source.dtype), source.nodata)
        opened = _Opened([dataset], EmptyBlocks.of(dataset, nodata))
    else:
        has_alpha = len(data_bands(dataset)) < dataset.count
        warped = WarpedVRT(
            dataset,
            crs=grid.crs or source.grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=Resampling[resampling],
            add_alpha=bool(source.mask_bands) and not has_alpha,  # the grid it misses, its masks
        )
        # GDAL uses a warped VRT's alpha band as its mask only for Byte and UInt16 bands: the
        # alpha band's values are read as the mask whatever the type
        alpha = (warped.colorinterp.index(ColorInterp.alpha) + 1,) if source.mask_bands else ()
        opened = _Opened([dataset, warped], None, alpha, own_masks(dataset, source.mask_bands))
    cache[key] = opened
    while len(cache) > _HANDLES_PER_THREAD:
        for handle in reversed(cache.popitem(last=False)[1].handles):
            handle.close()
    return opened


def gdal_reason(exc: BaseException) -> str:
    """GDAL's own reason: rasterio wraps it as the cause of a generic 'Read failed'."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return first_line(exc)
