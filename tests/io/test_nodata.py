"""The nodata rule: compared in the band's dtype, it marks exactly what float64 would."""

from __future__ import annotations

import numpy as np
from bandfusion.io.nodata import valid_mask
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = ["uint8", "uint16", "int16", "int32", "float32", "float64"]
NODATA = st.one_of(
    st.none(),
    st.sampled_from([0.0, 255.0, 65535.0, -9999.0, 0.5, 1e10, float("nan"), -32768.0]),
    st.integers(-70000, 70000).map(float),
)


def float64_rule(block: np.ndarray, nodata: list[float | None]) -> np.ndarray:
    """The rule spelled out: a pixel is invalid where any band equals its nodata as a float64
    number, or is NaN or infinite."""
    valid = np.ones(block.shape[1:], dtype=bool)
    for band, value in zip(block.astype(np.float64), nodata, strict=True):
        if value is not None and not np.isnan(value):
            valid &= band != value
        valid &= np.isfinite(band)
    return valid


@given(data=st.data(), dtype=st.sampled_from(DTYPES))
def test_valid_mask_matches_the_float64_rule(data: st.DataObject, dtype: str) -> None:
    block = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=3, max_dims=3, max_side=6)))
    nodata = data.draw(st.lists(NODATA, min_size=len(block), max_size=len(block)))
    first = nodata[0] if len(block) else None
    if first is not None and abs(first) < 1e5 and data.draw(st.booleans()):
        # A first band wholly nodata (where its dtype can hold the value) takes the early exit.
        with np.errstate(invalid="ignore"):
            block[0] = np.array(first).astype(dtype)
    np.testing.assert_array_equal(valid_mask(block, nodata), float64_rule(block, nodata))
