"""Spectral indices (bandfusion.models.indices): each formula on known values, band roles from
Sentinel-2 names or given explicitly, and the columns appended to a pixel table."""

from __future__ import annotations

import numpy as np
import pytest
from bandfusion.models import append_indices
from bandfusion.models.indices import INDICES, SENTINEL2_ROLES, resolve_roles
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

SENTINEL2 = ["B2", "B3", "B4", "B8", "B11", "B12"]
REFLECTANCE = np.array([[500, 900, 700, 3000, 1800, 1200]], dtype=np.uint16)
"""One pixel of vegetation-like reflectance, in the order of SENTINEL2."""


def test_indices_are_normalised_differences_of_the_named_roles() -> None:
    x = np.array([[100.0, 300.0, 50.0], [0.0, 0.0, 7.0]], dtype=np.float32)
    bands = ["green", "nir", "swir"]
    roles = resolve_roles(
        ("NDWI", "MNDWI"), bands, {"green": "green", "nir": "nir", "swir1": "swir"}
    )
    out = append_indices(x, bands, ("NDWI", "MNDWI"), roles)
    assert out.dtype == np.float32 and out.shape == (2, 5)
    np.testing.assert_allclose(out[0, 3:], [(100 - 300) / 400, (100 - 50) / 150], rtol=1e-6)
    np.testing.assert_array_equal(out[1, 3:], [0.0, -1.0])  # 0/0 → 0


def test_indices_need_their_bands() -> None:
    with pytest.raises(ValueError, match="role 'swir1'"):
        resolve_roles(("MNDWI",), ["B3", "B8"])
    with pytest.raises(ValueError, match="unknown spectral index 'EVI'"):
        resolve_roles(("EVI",), ["B3", "B8"])


@pytest.mark.parametrize(
    ("index", "a", "b"),
    [("NDVI", 3000, 700), ("NDWI", 900, 3000), ("MNDWI", 900, 1800), ("NDBI", 1800, 3000)],
)
def test_each_index_on_sentinel2_names_is_its_normalised_difference(
    index: str, a: int, b: int
) -> None:
    roles = resolve_roles((index,), SENTINEL2)
    out = append_indices(REFLECTANCE, SENTINEL2, (index,), roles)
    np.testing.assert_array_equal(out[:, :6], REFLECTANCE.astype(np.float32))
    assert out[0, 6] == np.float32((a - b) / (a + b))


def test_every_index_is_tested_and_every_role_has_sentinel2_names() -> None:
    assert set(INDICES) == {"NDVI", "NDWI", "MNDWI", "NDBI"}
    assert {role for pair in INDICES.values() for role in pair} <= set(SENTINEL2_ROLES)


def test_roles_come_from_sentinel2_names_in_either_spelling_unless_given() -> None:
    assert resolve_roles(("NDVI",), ["B04", "B08", "B02"]) == {"nir": "B08", "red": "B04"}
    given_roles = {"nir": "near infrared", "red": "B8"}
    bands = ["B4", "B8", "near infrared"]
    assert resolve_roles(("NDVI",), bands, given_roles) == given_roles
    assert resolve_roles(("NDWI",), ["B3", "B8"], {"red": "nowhere"}) == {
        "green": "B3",
        "nir": "B8",
    }


def test_a_role_given_a_missing_band_is_not_looked_up_by_sentinel2_name() -> None:
    with pytest.raises(ValueError, match=r"no band for role 'nir' \(tried NIR\)"):
        resolve_roles(("NDVI",), ["B4", "B8"], {"nir": "NIR"})


def test_the_missing_role_error_shows_at_most_six_bands() -> None:
    bands = [f"band{i}" for i in range(10)]
    with pytest.raises(ValueError, match=r"among band0, .*, band5, \.\.\. \(10 bands\)"):
        resolve_roles(("NDVI",), bands)


def test_indices_are_appended_in_the_order_asked() -> None:
    roles = resolve_roles(("NDBI", "NDVI"), SENTINEL2)
    both = append_indices(REFLECTANCE, SENTINEL2, ("NDBI", "NDVI"), roles)
    ndbi = append_indices(REFLECTANCE, SENTINEL2, ("NDBI",), roles)
    ndvi = append_indices(REFLECTANCE, SENTINEL2, ("NDVI",), roles)
    np.testing.assert_array_equal(both[:, 6:], np.column_stack([ndbi[:, 6], ndvi[:, 6]]))
    assert append_indices(REFLECTANCE, SENTINEL2, (), {}).shape == (1, 6)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(pixels=arrays(np.uint16, st.tuples(st.integers(0, 20), st.just(2))))
def test_indices_of_reflectance_lie_in_minus_one_to_one_and_swap_sign_with_the_bands(
    pixels: np.ndarray,
) -> None:
    bands = ["B3", "B8"]
    ndwi = append_indices(pixels, bands, ("NDWI",), {"green": "B3", "nir": "B8"})[:, 2]
    swapped = append_indices(pixels, bands, ("NDWI",), {"green": "B8", "nir": "B3"})[:, 2]
    assert ndwi.dtype == np.float32 and ndwi.shape == (len(pixels),)
    assert ((ndwi >= -1) & (ndwi <= 1)).all()
    np.testing.assert_array_equal(swapped, -ndwi)
