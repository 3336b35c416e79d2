"""What a raster file itself says is not there: GDAL masks, alpha bands and the grid it misses.

GDAL knows three kinds of mask beside a nodata value: a per-dataset mask (an internal or
`.msk` mask shared by every band), an alpha band (whose values are the other bands' mask) and
per-band masks. Pixels any of them masks are nodata, as are pixels of the scene grid that a
band file does not cover. Masks are read only from files that have them, in the same window
as their pixels, so a file without one costs nothing more.

A band file warped onto the scene grid is read through a WarpedVRT, whose one alpha band holds
the grid it misses, its per-dataset mask or alpha band, but not per-band masks: GDAL's warper
ignores those. Those are read from the file itself and sampled at the scene's pixel centres
(`read_own_masks`), as the nearest-neighbour warp samples its pixels.
"""

from __future__ import annotations

import numpy as np
from bandfusion.io.grid import Grid
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

_VALUES_TELL = frozenset({MaskFlags.all_valid, MaskFlags.nodata})
"""Mask kinds the pixel values already show (none, or the nodata value): nothing to read."""


def data_bands(dataset: DatasetReader) -> tuple[int, ...]:
    """The bands holding data: all but an alpha band, which is the others' mask, not a band.

    A file of alpha bands alone keeps them all: there is nothing else to classify.
    """
    bands = tuple(
        index
        for index, interp in zip(dataset.indexes, dataset.colorinterp, strict=True)
        if interp != ColorInterp.alpha
    )
    return bands or tuple(dataset.indexes)


def mask_bands(dataset: DatasetReader, indexes: tuple[int, ...]) -> tuple[int, ...]:
    """The bands whose GDAL masks say which pixels are valid: none where the values tell (no
    mask, or a nodata value), the first for a per-dataset mask or an alpha band (one mask for
    all), every band for per-band masks."""
    every = dataset.mask_flag_enums  # a property that asks GDAL for every band: once
    flags = [set(every[index - 1]) for index in indexes]
    if all(kinds & _VALUES_TELL for kinds in flags):
        return _unflagged_alpha(dataset, indexes)
    if any(MaskFlags.per_dataset in kinds for kinds in flags):
        return indexes[:1]
    return indexes


def _unflagged_alpha(dataset: DatasetReader, indexes: tuple[int, ...]) -> tuple[int, ...]:
    """The alpha band that GDAL does not use as the others' mask, if any (an alpha band beside
    two or more bands that are not RGB): its values are read as the mask."""
    alpha = [
        index
        for index, interp in zip(dataset.indexes, dataset.colorinterp, strict=True)
        if interp == ColorInterp.alpha and index not in indexes
    ]
    return tuple(alpha[:1])


def own_masks(dataset: DatasetReader, indexes: tuple[int, ...]) -> tuple[int, ...]:
    """The bands among `indexes` with a mask of their own: not a nodata value, not the
    per-dataset mask or alpha band, none of which a warp drops."""
    every = dataset.mask_flag_enums
    ignored = _VALUES_TELL | {MaskFlags.per_dataset}
    return tuple(index for index in indexes if not set(every[index - 1]) & ignored)


def read_own_masks(
    dataset: DatasetReader, bands: tuple[int, ...], window: Window, grid: Grid
) -> np.ndarray:
    """Bool (y, x) of `window` of `grid`: False where the mask of any of `bands` of `dataset`
    (on another grid of the same CRS) masks the file's pixel under the pixel's centre; True
    off the file, which the warp's alpha band marks."""
    to_file = ~dataset.transform @ grid.transform
    rows, cols = np.mgrid[
        window.row_off : window.row_off + window.height,
        window.col_off : window.col_off + window.width,
    ]
    file_cols, file_rows = to_file @ (cols + 0.5, rows + 0.5)
    col, row = np.floor(file_cols).astype(np.int64), np.floor(file_rows).astype(np.int64)
    inside = (col >= 0) & (col < dataset.width) & (row >= 0) & (row < dataset.height)
    valid = np.ones((window.height, window.width), dtype=bool)
    if inside.any():
        col, row = col[inside], row[inside]
        top, left = int(row.min()), int(col.min())
        span = Window(left, top, int(col.max()) + 1 - left, int(row.max()) + 1 - top)
        masks = dataset.read_masks(list(bands), window=span)
        valid[inside] = np.all(masks[:, row - top, col - left] != 0, axis=0)
    return valid


def read_valid(
    reader: DatasetReader | WarpedVRT, bands: tuple[int, ...], window: Window
) -> np.ndarray:
    """Bool (y, x) of `window`: True where every band's mask in `bands` marks a valid pixel.
    An alpha band among them (one GDAL does not flag as a mask, or a warped VRT's, which GDAL
    flags only for Byte and UInt16 bands) is that mask: its values are read."""
    alpha = [band for band in bands if reader.colorinterp[band - 1] == ColorInterp.alpha]
    if alpha:
        return np.asarray(reader.read(alpha[0], window=window) != 0)
    masks = reader.read_masks(list(bands), window=window)
    return np.asarray(np.all(masks != 0, axis=0))


def covers(outer: Grid, inner: Grid) -> bool:
    """Whether `outer`'s extent holds all of `inner`'s (edges within a thousandth of a pixel)."""
    ox0, oy0, ox1, oy1 = bounds(outer)
    ix0, iy0, ix1, iy1 = bounds(inner)
    slack = 1e-3 * min(abs(inner.transform.a), abs(inner.transform.e))
    return ox0 <= ix0 + slack and oy0 <= iy0 + slack and ox1 >= ix1 - slack and oy1 >= iy1 - slack


def bounds(grid: Grid) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of the grid's extent, whichever way its axes run."""
    xs, ys = zip(*(grid.transform @ corner for corner in [(0, 0), grid.shape[::-1]]), strict=True)
    return min(xs), min(ys), max(xs), max(ys)
