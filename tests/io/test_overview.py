"""The streamed 2× level of class maps: GDAL's "mode" overview, computed chunk by chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from bandfusion.io.overview import mode_2x2
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.enums import Resampling


def _gdal_mode_level(values: np.ndarray, nodata: int | None, path: Path) -> np.ndarray:
    """GDAL's own 2× "mode" overview of `values`, read back from a real GeoTIFF."""
    height, width = values.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": values.dtype.name,
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
    with rasterio.open(path, "r+") as dst:
        dst.build_overviews([2], Resampling.mode)
    with rasterio.open(path, overview_level=0) as src:
        return src.read(1)


@settings(max_examples=60, deadline=None)
@given(
    half=st.tuples(st.integers(1, 24), st.integers(1, 24)),
    classes=st.integers(1, 5),
    nodata=st.sampled_from([None, 0, 2, 255]),
    holes=st.floats(0, 1),
    dtype=st.sampled_from(["uint8", "uint16", "int16"]),
    seed=st.integers(0, 2**32 - 1),
)
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_mode_2x2_is_gdals_mode_overview(
    tmp_path_factory: pytest.TempPathFactory,
    half: tuple[int, int],
    classes: int,
    nodata: int | None,
    holes: float,
    dtype: str,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, classes, size=(2 * half[0], 2 * half[1])).astype(dtype)
    if nodata is not None:
        values[rng.random(values.shape) < holes] = nodata
    path = tmp_path_factory.mktemp("mode") / "map.tif"
    np.testing.assert_array_equal(mode_2x2(values, nodata), _gdal_mode_level(values, nodata, path))


def test_ties_go_to_the_value_that_reaches_the_count_first() -> None:
    cells = np.array([[1, 2, 1, 2, 3, 3], [2, 1, 1, 2, 4, 5]], dtype=np.uint8)
    # cells a b / b a → b (its 2nd occurrence comes first); a b / a b → a; 3 3 / 4 5 → 3
    np.testing.assert_array_equal(mode_2x2(cells, None), [[2, 1, 3]])


def test_nodata_is_not_counted_and_stays_where_a_cell_has_nothing_else() -> None:
    cells = np.array([[9, 9, 9, 9], [9, 4, 9, 9]], dtype=np.uint8)
    np.testing.assert_array_equal(mode_2x2(cells, 9), [[4, 9]])


def test_a_block_of_nodata_reduces_to_nodata_without_counting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    block = np.full((4, 6), 255, dtype=np.uint16)
    monkeypatch.setattr(np, "ones", None)  # counting starts from np.ones: it must not be reached
    reduced = mode_2x2(block, 255)
    assert reduced.dtype == np.uint16
    np.testing.assert_array_equal(reduced, np.full((2, 3), 255))


def test_odd_sides_are_refused() -> None:
    with pytest.raises(ValueError, match="even sides"):
        mode_2x2(np.zeros((3, 4), np.uint8), None)
