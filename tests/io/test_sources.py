"""How a scene's files are named in messages (bandfusion.io.sources): a few in full, many by
their folder, count, first and last, so a product's error is one readable line."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from bandfusion.io.sources import scene_sources


def _scene(sources: list[str]) -> xr.DataArray:
    return xr.DataArray(
        np.zeros((len(sources), 1, 1)),
        dims=("band", "y", "x"),
        coords={"source": ("band", sources)},
    )


@pytest.mark.parametrize(
    ("sources", "named"),
    [
        (["stack.tif"] * 4, "stack.tif"),
        (["a/B02.tif", "a/B03.tif", "a/B02.tif"], "a/B02.tif, a/B03.tif"),
        (
            [f"X.SAFE/GRANULE/G/IMG_DATA/R60m/T_B{b:02d}_60m.jp2" for b in range(1, 12)],
            "X.SAFE/GRANULE/G/IMG_DATA/R60m/ (11 files: T_B01_60m.jp2 … T_B11_60m.jp2)",
        ),
        (
            [f"s3://bucket/scene/B{b}.tif" for b in range(4)] + ["s3://bucket/mask/QA.tif"],
            "s3://bucket/ (5 files: scene/B0.tif … mask/QA.tif)",
        ),
        (["/data/a.tif", "b.tif", "c/d.tif", "e.tif"], "4 files: /data/a.tif … e.tif"),
    ],
)
def test_many_files_are_named_by_folder_count_first_and_last(sources: list[str], named: str):
    assert scene_sources(_scene(sources)) == named


def test_a_scene_without_sources_is_the_scene():
    assert scene_sources(xr.DataArray(np.zeros((1, 1, 1)), dims=("band", "y", "x"))) == "the scene"
