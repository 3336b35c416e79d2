"""Probability maps in one byte a value: 0–250 for 0–1, 255 for nodata.

A float32 probability stack takes four bytes a pixel a class; 250 steps (0.004) are finer than
any model's calibration, and the byte compresses several times better. GDAL's band scale
(1/250, offset 0) tells GDAL, QGIS and rasterio's `scales` how to read the values back.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

PROBABILITY_STEPS = 250
"""A probability p is stored as round(p * 250)."""

PROBABILITY_NODATA = 255
"""The uint8 value of a pixel without probabilities (nodata in the scene)."""

PROBABILITY_DTYPES = ("float32", "uint8")
"""The dtypes a probability map can be written in."""

ENCODING_TAG = "PROBABILITY_ENCODING"
_ENCODING = (
    f"uint8: probability = value / {PROBABILITY_STEPS} (band scale {1 / PROBABILITY_STEPS}); "
    f"{PROBABILITY_NODATA} = nodata"
)


def as_uint8(proba: xr.DataArray) -> xr.DataArray:
    """The lazy probabilities `proba` (float, NaN on nodata, as `predict_proba_scene` returns
    them) as uint8: round(p * 250), 255 where p is NaN, with the band scale and an
    ENCODING_TAG tag that `write_geotiff` writes."""
    scaled = da.map_blocks(_scale, da.asarray(proba.data), dtype=np.uint8)
    attrs = dict(proba.attrs)
    attrs["nodata"] = PROBABILITY_NODATA
    attrs["scales"] = (1 / PROBABILITY_STEPS,) * (proba.shape[0] if proba.ndim == 3 else 1)
    attrs["tags"] = {**(attrs.get("tags") or {}), ENCODING_TAG: _ENCODING}
    return proba.copy(data=scaled).assign_attrs(attrs)


def with_dtype(proba: xr.DataArray, dtype: str) -> xr.DataArray:
    """`proba` in `dtype`, one of PROBABILITY_DTYPES ("float32" leaves it as it is)."""
    if dtype not in PROBABILITY_DTYPES:
        raise ValueError(f"dtype must be one of {PROBABILITY_DTYPES}, got {dtype!r}")
    return as_uint8(proba) if dtype == "uint8" else proba


def _scale(block: np.ndarray) -> np.ndarray:
    """round(p * 250) of probabilities clipped to [0, 1]; 255 where NaN."""
    scaled = np.rint(np.clip(block, 0.0, 1.0) * PROBABILITY_STEPS)
    return np.where(np.isnan(block), PROBABILITY_NODATA, scaled).astype(np.uint8)
