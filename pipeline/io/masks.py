"""What a raster file itself says is not there: GDAL masks, alpha bands and the grid it misses.

GDAL knows three kinds of mask beside a nodata value: a per-dataset mask (an internal or
`.msk` mask shared by every band), an alpha band (whose values are the other bands' mask) and
per-band masks. Pixels any of them masks are nodata, as are pixels of the scene grid that a
band file does not cover. Masks are read only from files that have them, in the same window
as their pixels, so a file without one costs nothing more.
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
        return ()
    if any(MaskFlags.per_dataset in kinds for kinds in flags):
        return indexes[:1]
    return indexes


def read_valid(
    reader: DatasetReader | WarpedVRT, bands: tuple[int, ...], window: Window
) -> np.ndarray:
    """Bool (y, x) of `window`: True where every band's mask in `bands` marks a valid pixel."""
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
