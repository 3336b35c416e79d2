"""Which pixels of a block are valid: the one nodata rule every path shares."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr


def valid_mask(block: np.ndarray, nodata: Sequence[float | None]) -> np.ndarray:
    """Boolean (y, x): False where any band equals its nodata value or is NaN/inf.

    `block` is (band, y, x); `nodata` holds one value (or None) per band.
    """
    valid = np.ones(block.shape[1:], dtype=bool)
    for k, (band, value) in enumerate(zip(block, nodata, strict=True)):
        if value is not None and not np.isnan(value) and _holds(band.dtype, value):
            valid &= band != band.dtype.type(value)
        if band.dtype.kind == "f":
            valid &= np.isfinite(band)
        if k == 0 and not valid.any():
            break  # outside a swath every band is nodata: one band tells, the rest is skipped
    return valid


def _holds(dtype: np.dtype, value: float) -> bool:
    """Whether pixels of `dtype` can equal `value`: integers only integral values in range.

    Comparing in the band's own dtype skips a cast of every pixel to float64; a value no pixel
    can hold (-9999 in uint16) marks nothing, as comparing in float64 would.
    """
    if dtype.kind not in "iu":
        return True
    info = np.iinfo(dtype)
    return float(value).is_integer() and info.min <= value <= info.max


def band_nodata(scene: xr.DataArray) -> tuple[float | None, ...]:
    """Each band's nodata value, from the scene's `nodata` coordinate (NaN there: none).

    A coordinate, not an attr, so that selecting bands keeps values and bands together.
    """
    return tuple(None if np.isnan(v) else float(v) for v in scene["nodata"].values)


def nodata_coord(values: Sequence[float | None]) -> tuple[str, np.ndarray]:
    """The `nodata` coordinate along `band` for per-band nodata values (None → NaN)."""
    return ("band", np.array([np.nan if v is None else v for v in values], dtype=np.float64))
