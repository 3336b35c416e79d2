"""Which pixels of a block are valid: the one nodata rule every path shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import xarray as xr


def valid_mask(block: np.ndarray, nodata: Sequence[float | None]) -> np.ndarray:
    """Boolean (y, x): False where any band equals its nodata value or is NaN/inf.

    `block` is (band, y, x); `nodata` holds one value (or None) per band.
    """
    valid = np.ones(block.shape[1:], dtype=bool)
    for k, (band, value) in enumerate(zip(block, nodata, strict=True)):
        pixel = pixel_value(band.dtype, value)
        if pixel is not None and not np.isnan(pixel):
            valid &= band != pixel
        if band.dtype.kind == "f":
            valid &= np.isfinite(band)
        if k == 0 and not valid.any():
            break  # outside a swath every band is nodata: one band tells, the rest is skipped
    return valid


def pixel_value(dtype: np.dtype, value: float | None) -> np.generic | None:
    """`value` as a pixel of `dtype`, or None where no pixel can equal it.

    Integers hold only integral values in their range: comparing in the band's own dtype skips
    a cast of every pixel to float64, and a value no pixel can hold (-9999 in uint16) marks
    nothing, as comparing in float64 would.
    """
    if value is None:
        return None
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not (float(value).is_integer() and info.min <= value <= info.max):
            return None
    return cast(np.generic, dtype.type(value))


def band_nodata(scene: xr.DataArray) -> tuple[float | None, ...]:
    """Each band's nodata value, from the scene's `nodata` coordinate (NaN there: none).

    A coordinate, not an attr, so that selecting bands keeps values and bands together.
    """
    return tuple(None if np.isnan(v) else float(v) for v in scene["nodata"].values)


def nodata_coord(values: Sequence[float | None]) -> tuple[str, np.ndarray]:
    """The `nodata` coordinate along `band` for per-band nodata values (None → NaN)."""
    return ("band", np.array([np.nan if v is None else v for v in values], dtype=np.float64))
