"""Probabilities in one byte: 0–250 for 0–1, 255 for nodata, a band scale to read them back."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio
import xarray as xr
from bandfusion.io.geotiff import write_geotiff
from bandfusion.io.probabilities import ENCODING_TAG, as_uint8, with_dtype
from rasterio.crs import CRS
from rio_cogeo import cog_validate

ATTRS = {"crs": CRS.from_epsg(32630).to_wkt(), "transform": (10.0, 0, 500000.0, 0, -10.0, 4e6)}


def _proba() -> xr.DataArray:
    rng = np.random.default_rng(0)
    values = rng.dirichlet([1, 1, 1], (200, 300)).transpose(2, 0, 1).astype(np.float32)
    values[:, :10, :] = np.nan
    attrs = {**ATTRS, "nodata": float("nan"), "band_names": ["a", "b", "c"],
             "overview_resampling": "average"}  # fmt: skip
    data = da.from_array(values, chunks=(3, 64, 128))
    return xr.DataArray(data, dims=("class", "y", "x"), attrs=attrs)


def test_values_are_rounded_to_250_steps_and_nan_becomes_255() -> None:
    proba = _proba()
    scaled = as_uint8(proba)
    values, expected = scaled.values, proba.values
    assert values.dtype == np.uint8
    assert (values[:, :10] == 255).all()
    np.testing.assert_array_equal(values[:, 10:], np.rint(expected[:, 10:] * 250))
    assert scaled.attrs["nodata"] == 255
    assert scaled.attrs["scales"] == (0.004, 0.004, 0.004)
    assert proba.attrs["nodata"] != 255  # the float map is left as it was


def test_a_uint8_map_reads_back_within_half_a_step_through_the_band_scale(tmp_path: Path) -> None:
    proba = _proba()
    path = write_geotiff(as_uint8(proba), tmp_path / "p.tif")
    assert cog_validate(str(path))[0]
    with rasterio.open(path) as src:
        assert src.dtypes == ("uint8",) * 3
        assert src.nodata == 255
        assert src.scales == (0.004,) * 3 and src.offsets == (0.0,) * 3
        assert "255 = nodata" in src.tags()[ENCODING_TAG]
        assert src.descriptions == ("a", "b", "c")
        stored = src.read(masked=True)
    restored = stored.astype(np.float64) * src.scales[0]
    assert stored.mask[:, :10].all() and not stored.mask[:, 10:].any()
    assert np.abs(restored[:, 10:] - proba.values[:, 10:]).max() <= 0.002 + 1e-9


def test_float32_is_left_as_it_is_and_other_dtypes_are_refused() -> None:
    proba = _proba()
    assert with_dtype(proba, "float32") is proba
    with pytest.raises(ValueError, match="float16"):
        with_dtype(proba, "float16")
