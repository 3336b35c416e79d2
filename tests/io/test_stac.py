"""STAC Items and Collections of maps, read back with pystac (offline: no schema fetch)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dask.array as da
import numpy as np
import pystac
import pytest
import xarray as xr
from bandfusion.io.geotiff import write_geotiff
from bandfusion.io.stac import item_path, write_collection, write_item
from pystac.extensions.classification import ClassificationExtension
from pystac.extensions.projection import ProjectionExtension
from rasterio.crs import CRS

UTM = CRS.from_epsg(32630).to_wkt()
NAMES = {0: "water", 1: "forest"}
COLOURS = {0: (0, 0, 255, 255), 1: (0, 160, 0, 255)}


def _write_map(path: Path, left: float = 500000.0) -> Path:
    values = np.random.default_rng(0).integers(0, 2, (100, 120)).astype(np.uint8)
    attrs = {"crs": UTM, "transform": (10.0, 0, left, 0, -10.0, 4500000.0), "nodata": 255,
             "class_names": NAMES, "colormap": COLOURS}  # fmt: skip
    data = xr.DataArray(da.from_array(values, chunks=64), dims=("y", "x"), attrs=attrs)
    return write_geotiff(data, path)


def test_an_item_describes_grid_classes_and_place(tmp_path: Path) -> None:
    path = _write_map(tmp_path / "map.tif")
    when = datetime(2024, 5, 1, tzinfo=UTC)
    written = write_item(path, when=when)
    assert written == item_path(path) == tmp_path / "map.stac.json"
    item = pystac.Item.from_file(str(written))
    assert item.id == "map" and item.datetime == when
    asset = item.assets["map"]
    assert Path(asset.get_absolute_href() or "") == path
    assert asset.media_type == pystac.MediaType.COG
    projection = ProjectionExtension.ext(asset)
    assert projection.epsg == 32630
    assert projection.shape == [100, 120]
    assert projection.transform == [10.0, 0.0, 500000.0, 0.0, -10.0, 4500000.0]
    classes = ClassificationExtension.ext(asset).classes or []
    assert [(c.value, c.name, c.color_hint) for c in classes] == [
        (0, "water", "0000FF"),
        (1, "forest", "00A000"),
    ]
    west, south, east, north = item.bbox or []
    assert -3.01 < west < east < -2.98 and 40.6 < south < north < 40.7  # UTM 30N, near 3° W
    assert item.geometry == {
        "type": "Polygon",
        "coordinates": [
            [[west, south], [east, south], [east, north], [west, north], [west, south]]
        ],
    }


def test_a_collection_links_items_written_beside_their_maps(tmp_path: Path) -> None:
    maps = [_write_map(tmp_path / "a.tif"), _write_map(tmp_path / "sub" / "b.tif", 502000.0)]
    collection_file = write_collection(maps, tmp_path, collection_id="maps", description="two maps")
    collection = pystac.Collection.from_file(str(collection_file))
    items = list(collection.get_items())
    assert sorted(item.id for item in items) == ["a", "b"]
    assert all(item.collection_id == "maps" for item in items)
    east = collection.extent.spatial.bboxes[0][2]
    assert east > min(item.bbox[2] for item in items if item.bbox)  # the union of both
    doc = json.loads((tmp_path / "sub" / "b.stac.json").read_text())
    assert {"rel": "collection", "href": "../collection.json", "type": "application/json"} in doc[
        "links"
    ]


@pytest.fixture(autouse=True)
def _sub(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
