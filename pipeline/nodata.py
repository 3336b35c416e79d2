"""Which pixels of a block are valid: the one nodata rule every path shares."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def valid_mask(block: np.ndarray, nodata: Sequence[float | None]) -> np.ndarray:
    """Boolean (y, x): False where any band equals its nodata value or is NaN/inf.

    `block` is (band, y, x); `nodata` holds one value (or None) per band.
    """
    valid = np.ones(block.shape[1:], dtype=bool)
    for band, value in zip(block, nodata, strict=True):
        if value is not None and not np.isnan(value):
            valid &= band != value
        if band.dtype.kind == "f":
            valid &= np.isfinite(band)
    return valid
