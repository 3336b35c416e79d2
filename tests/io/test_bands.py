"""Canonical band names: the parser on the names real files and products carry, its
properties on any text, and matching a model's bands to a scene's."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from bandfusion.io.bands import (
    COMMON_NAMES,
    SENTINEL2,
    canonical_band,
    canonical_bands,
    match_bands,
    pick_bands,
    same_band,
    sensor_band,
)
from hypothesis import given
from hypothesis import strategies as st

S2 = list(COMMON_NAMES[SENTINEL2])


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("B1", "B01"),
        ("B01", "B01"),
        ("b01", "B01"),
        ("b8a", "B8A"),
        ("B8", "B08"),
        ("B12", "B12"),
        ("T29UNU_20221005T115411_B02_60m", "B02"),
        ("T29UNU_20221005T115411_B8A_20m.jp2", "B8A"),
        ("S2B_MSIL2A_x_B02_10m.jp2", "B02"),
        ("LC08_L2SP_001070_20200101_20200113_02_T1_SR_B1", "SR_B1"),
        ("LC09_L2SP_001070_20220101_20220103_02_T1_SR_B7.TIF", "SR_B7"),
        ("LC08_L2SP_001070_20200101_20200113_02_T1_ST_B10.TIF", "ST_B10"),
        ("sr_b4", "SR_B4"),
        ("Red", "red"),
        ("SWIR16", "swir16"),
        # left as they are: positions, other sensors, no band, several bands
        ("b1", "b1"),
        ("B13", "B13"),
        (
            "LC08_L1TP_001070_20200101_20200113_02_T1_B1.TIF",
            "LC08_L1TP_001070_20200101_20200113_02_T1_B1.TIF",
        ),
        (
            "LC08_L2SP_001070_20200101_20200113_02_T1_QA_PIXEL",
            "LC08_L2SP_001070_20200101_20200113_02_T1_QA_PIXEL",
        ),
        ("NDVI_2017-01-01", "NDVI_2017-01-01"),
        ("B02_B03", "B02_B03"),
        ("band 1 ✓", "band 1 ✓"),
        ("VV", "VV"),
    ],
)
def test_canonical_names_of_real_file_and_band_names(name: str, canonical: str) -> None:
    assert canonical_band(name) == canonical


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("B1", "B01", True),
        ("red", "B04", True),
        ("B4", "Red", True),
        ("nir", "B08", True),
        ("nir08", "B8A", True),
        ("rededge1", "B05", True),
        ("rededge071", "B05", True),
        ("rededge071", "rededge1", True),
        ("coastal", "SR_B1", True),
        ("blue", "SR_B2", True),
        ("swir22", "LC08_L2SP_x_SR_B7.TIF", True),
        ("rededge", "B05", False),  # three bands on Sentinel-2: none of them
        ("B04", "SR_B4", False),  # another sensor's red
        ("B08", "B8A", False),
        ("nir", "B8A", False),
        ("b1", "B01", False),
        ("red", "green", False),
    ],
)
def test_same_band(a: str, b: str, same: bool) -> None:
    assert same_band(a, b) is same
    assert same_band(b, a) is same


def test_landsat_4_to_7_names_need_the_sensor() -> None:
    assert same_band("SR_B1", "coastal") and not same_band("SR_B1", "blue")
    assert same_band("SR_B1", "blue", sensor="landsat-7")
    assert not same_band("SR_B1", "coastal", sensor="landsat-5")


S2_SPELLINGS = st.sampled_from(S2).flatmap(
    lambda band: st.sampled_from(
        [band, band.lower(), band.replace("B0", "B") if band.startswith("B0") else band]
    ).map(lambda spelled, band=band: (spelled, band))
)
TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)
SEPARATOR = st.sampled_from(["_", "-", ".", " "])


@given(TEXT)
def test_canonical_is_idempotent_and_never_raises(name: str) -> None:
    once = canonical_band(name)
    assert canonical_band(once) == once
    assert same_band(name, name)


@given(
    S2_SPELLINGS,
    TEXT.filter(lambda t: "B" not in t.upper()),
    SEPARATOR,
    TEXT.filter(lambda t: "B" not in t.upper()),
    SEPARATOR,
)
def test_a_band_inside_a_file_name_is_found(
    spelled: tuple[str, str], prefix: str, left: str, suffix: str, right: str
) -> None:
    text, band = spelled
    if text.startswith("b") and not text[1:].startswith("0") and len(text) == 2:
        return  # b1..b9: positions
    stem = f"T29UNU{left}{prefix}{left}{text}{right}{suffix}"
    assert canonical_band(stem) == band
    assert same_band(stem, band)


@given(st.sampled_from(S2))
def test_every_sentinel2_band_matches_its_common_name(band: str) -> None:
    common = COMMON_NAMES[SENTINEL2][band]
    assert same_band(common, band) and same_band(band.upper(), common.upper())
    others = [b for b in S2 if b != band]
    assert not any(same_band(common, other) for other in others)


def test_match_prefers_identical_names_and_refuses_ambiguity() -> None:
    assert match_bands(["B1", "B2", "B8"], ["B01", "blue", "nir", "B03"]) == [0, 1, 2, None]
    assert match_bands(["B02", "blue"], ["blue"]) == [1]
    assert match_bands(["B02", "b02"], ["B2"]) == [None]  # two bands it could be


def test_canonical_bands_keep_names_that_would_collide() -> None:
    assert canonical_bands(["B1", "B8A", "x"]) == ["B01", "B8A", "x"]
    assert canonical_bands(["B1", "B01"]) == ["B1", "B01"]


def test_pick_bands_orders_and_renames_as_asked() -> None:
    scene = xr.DataArray(
        np.arange(3 * 2 * 2).reshape(3, 2, 2),
        dims=("band", "y", "x"),
        coords={"band": ["B1", "B4", "B8"], "nodata": ("band", [0.0, 1.0, 2.0])},
    )
    picked, missing = pick_bands(scene, ["nir", "B01"])
    assert missing == []
    assert list(picked["band"].values) == ["nir", "B01"]
    assert list(picked["nodata"].values) == [2.0, 0.0]
    np.testing.assert_array_equal(picked.values, scene.values[[2, 0]])
    assert pick_bands(scene, ["B02", "B04"])[1] == ["B02"]


@pytest.mark.parametrize(
    ("name", "sensor", "band"),
    [
        ("red", "sentinel-2a", "B04"),
        ("B4", "sentinel-2b", "B04"),
        ("nir08", "sentinel-2a", "B8A"),
        ("rededge071", "sentinel-2a", "B05"),
        ("red", "landsat-8", "SR_B4"),
        ("B4", "landsat-9", "SR_B4"),
        ("sr_b5", "landsat-8", "SR_B5"),
        ("red", "landsat-7", "SR_B3"),
        ("B6", "landsat-7", "B6"),  # no SR_B6 on Landsat 4-7: kept as it is
        ("red", "planetscope", "red"),  # a sensor with no table: common names stay
    ],
)
def test_a_product_band_is_found_by_any_of_its_names(name: str, sensor: str, band: str) -> None:
    assert sensor_band(name, sensor) == band
