"""read_labels: real label rasters and polygons on scene grids; every user error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fiona
import numpy as np
import pytest
import rasterio
from affine import Affine
from bandfusion.errors import LabelError
from bandfusion.io.grid import Grid
from bandfusion.io.labels import Labels, read_labels
from bandfusion.io.legend import load_legend
from fiona.transform import transform_geom
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import array_bounds
from rasterio.warp import calculate_default_transform, reproject

LULC_TIF = "eolearn_slovenia/lulc.tif"
LULC_GPKG = "eolearn_slovenia/LULC.gpkg"
WATER = "sen1floods11_spain/Spain_7370579_LabelHand.tif"
WGS84 = CRS.from_epsg(4326)


def grid_of(path: Path) -> Grid:
    """The grid of a raster file, as a scene on it would have."""
    with rasterio.open(path) as src:
        return Grid(src.crs, src.transform, src.width, src.height)


def read_band(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def write_raster(path: Path, array: np.ndarray, grid: Grid, **profile: Any) -> Path:
    """A one-band GeoTIFF of `array` on `grid`; extra profile keys (nodata) pass through."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=grid.width,
        height=grid.height,
        count=1,
        dtype=array.dtype,
        crs=grid.crs,
        transform=grid.transform,
        **profile,
    ) as dst:
        dst.write(array, 1)
    return path


def write_geojson(path: Path, features: list[dict[str, Any]], schema: dict[str, Any]) -> Path:
    with fiona.open(path, "w", driver="GeoJSON", crs="EPSG:4326", schema=schema) as dst:
        dst.writerecords(features)
    return path


def class_counts(labels: Labels) -> dict[int, int]:
    ids, counts = np.unique(labels.values[labels.labelled], return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist(), strict=True))


@pytest.fixture(scope="module")
def lulc(data_dir: Path) -> np.ndarray:
    return read_band(data_dir / LULC_TIF)


@pytest.fixture(scope="module")
def lulc_grid(data_dir: Path) -> Grid:
    return grid_of(data_dir / LULC_TIF)


def test_polygons_rasterize_to_the_reference_raster_exactly(
    data_dir: Path, lulc: np.ndarray, lulc_grid: Grid
) -> None:
    labels = read_labels(data_dir / LULC_GPKG, lulc_grid, attribute="LULC_ID")
    np.testing.assert_array_equal(labels.labelled, lulc != 0)
    np.testing.assert_array_equal(labels.values[labels.labelled], lulc[lulc != 0])
    assert labels.values.dtype == np.int32
    assert labels.legend.ids == (1, 2, 3, 4, 8)
    # names from the LULC_NAME field, spelling of the data included
    assert labels.legend.names == (
        "cultivated land",
        "forest",
        "grassland",
        "schrubland",
        "artificial surface",
    )
    assert labels.source == str(data_dir / LULC_GPKG)


def test_label_raster_on_its_own_grid(data_dir: Path, lulc: np.ndarray, lulc_grid: Grid) -> None:
    labels = read_labels(data_dir / LULC_TIF, lulc_grid)
    assert labels.values.dtype == np.uint8
    np.testing.assert_array_equal(labels.values, lulc)
    assert class_counts(labels) == {1: 11, 2: 7601, 3: 1777, 4: 358, 8: 198}
    assert labels.legend.names[0] == "class 1"


def test_legend_file_wins_over_the_name_field(data_dir: Path, lulc_grid: Grid) -> None:
    legend = data_dir / "eolearn_slovenia/legend.json"
    labels = read_labels(data_dir / LULC_GPKG, lulc_grid, attribute="LULC_ID", legend=legend)
    assert labels.legend == load_legend(legend)
    assert labels.legend.name_of(4) == "shrubland"


@pytest.mark.parametrize(
    ("unlabelled", "expected"),
    [
        (-1, {0: 192010, 1: 70035}),
        ("auto", {-1: 99, 1: 70035}),  # no nodata set: 0 is unlabelled, -1 a class
        (None, {-1: 99, 0: 192010, 1: 70035}),
    ],
)
def test_water_labels_unlabelled_rule(
    data_dir: Path, unlabelled: str | int | None, expected: dict[int, int]
) -> None:
    labels = read_labels(data_dir / WATER, grid_of(data_dir / WATER), unlabelled=unlabelled)
    assert class_counts(labels) == expected
    assert labels.values.dtype == np.int16
    assert labels.legend.ids == tuple(expected)


def test_water_legend_names(data_dir: Path) -> None:
    labels = read_labels(
        data_dir / WATER,
        grid_of(data_dir / WATER),
        unlabelled=-1,
        legend=data_dir / "sen1floods11_spain/legend.json",
    )
    assert labels.legend.names == ("not water", "water")
    assert labels.legend.colormap()[1] == (31, 95, 191, 255)


def test_raster_in_another_crs_is_warped_onto_the_scene_grid(
    data_dir: Path, tmp_path: Path, lulc: np.ndarray, lulc_grid: Grid
) -> None:
    transform, width, height = calculate_default_transform(
        lulc_grid.crs,
        WGS84,
        lulc_grid.width,
        lulc_grid.height,
        *array_bounds(lulc_grid.height, lulc_grid.width, lulc_grid.transform),
    )
    warped = np.zeros((height, width), np.uint8)
    reproject(
        lulc,
        warped,
        src_transform=lulc_grid.transform,
        src_crs=lulc_grid.crs,
        dst_transform=transform,
        dst_crs=WGS84,
        src_nodata=0,
        dst_nodata=0,
        resampling=Resampling.nearest,
    )
    path = write_raster(tmp_path / "wgs84.tif", warped, Grid(WGS84, transform, width, height))
    labels = read_labels(path, lulc_grid)
    agree = (labels.labelled == (lulc != 0)) & (~labels.labelled | (labels.values == lulc))
    assert agree.mean() >= 0.95
    assert labels.legend.ids == (1, 2, 3, 4, 8)


def test_polygons_in_another_crs_match_the_original(
    data_dir: Path, tmp_path: Path, lulc_grid: Grid
) -> None:
    with fiona.open(data_dir / LULC_GPKG) as src:
        schema, src_crs = src.schema, src.crs_wkt
        features = [
            {
                "geometry": transform_geom(src_crs, "EPSG:4326", f.geometry),
                "properties": dict(f.properties),
            }
            for f in src
        ]
    path = write_geojson(tmp_path / "lulc.geojson", features, schema)
    reference = read_labels(data_dir / LULC_GPKG, lulc_grid, attribute="LULC_ID")
    labels = read_labels(path, lulc_grid, attribute="LULC_ID")
    np.testing.assert_array_equal(labels.labelled, reference.labelled)
    np.testing.assert_array_equal(labels.values, reference.values)
    assert labels.legend == reference.legend


def test_255_is_a_class_and_the_raster_names_and_colours_it(
    tmp_path: Path, lulc_grid: Grid
) -> None:
    array = np.zeros(lulc_grid.shape, np.uint8)
    array[:10], array[-10:] = 7, 255
    path = write_raster(tmp_path / "clouds.tif", array, lulc_grid)
    with rasterio.open(path, "r+") as dst:
        dst.write_colormap(1, {7: (10, 20, 30, 255), 255: (250, 250, 250, 255)})
        dst.update_tags(CLASS_NAMES=json.dumps({"255": "cloud"}))
    labels = read_labels(path, lulc_grid)
    assert class_counts(labels) == {7: 10 * lulc_grid.width, 255: 10 * lulc_grid.width}
    assert labels.legend.names == ("class 7", "cloud")
    assert labels.legend.colors == ((10, 20, 30), (250, 250, 250))


def test_float_labels_with_whole_numbers_become_int64(
    tmp_path: Path, lulc: np.ndarray, lulc_grid: Grid
) -> None:
    array = np.where(lulc == 0, np.nan, lulc).astype(np.float32)
    path = write_raster(tmp_path / "float.tif", array, lulc_grid, nodata=np.nan)
    labels = read_labels(path, lulc_grid)
    assert labels.values.dtype == np.int64
    np.testing.assert_array_equal(labels.values, lulc)


# --- every user mistake is a one-line LabelError naming the file --------------------------------


def _far_away(tmp_path: Path, lulc: np.ndarray, grid: Grid) -> Path:
    shifted = Grid(grid.crs, Affine.translation(1e6, 0) @ grid.transform, grid.width, grid.height)
    return write_raster(tmp_path / "far.tif", lulc, shifted)


def _all_unlabelled(tmp_path: Path, lulc: np.ndarray, grid: Grid) -> Path:
    return write_raster(tmp_path / "empty.tif", np.zeros_like(lulc), grid, nodata=0)


def _fractional(tmp_path: Path, lulc: np.ndarray, grid: Grid) -> Path:
    return write_raster(tmp_path / "ndvi.tif", lulc / np.float32(3), grid)


def _garbage(tmp_path: Path, lulc: np.ndarray, grid: Grid) -> Path:
    path = tmp_path / "broken.tif"
    path.write_bytes(b"II*\x00 this is not a TIFF")
    return path


def _truncated(tmp_path: Path, lulc: np.ndarray, grid: Grid) -> Path:
    path = write_raster(tmp_path / "cut.tif", lulc, grid, tiled=True, compress="deflate")
    path.write_bytes(path.read_bytes()[:-200])
    return path


def _no_crs(tmp_path: Path, lulc: np.ndarray, grid: Grid) -> Path:
    elsewhere = Grid(None, Affine.scale(2) @ grid.transform, grid.width, grid.height)
    return write_raster(tmp_path / "nocrs.tif", lulc, elsewhere)


def _no_features(tmp_path: Path, lulc: np.ndarray, grid: Grid) -> Path:
    schema = {"geometry": "Polygon", "properties": {"class_id": "int"}}
    return write_geojson(tmp_path / "empty.geojson", [], schema)


def _bad_tag(tmp_path: Path, lulc: np.ndarray, grid: Grid) -> Path:
    path = write_raster(tmp_path / "tagged.tif", lulc, grid, nodata=0)
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(CLASS_NAMES="{1: forest")
    return path


@pytest.mark.parametrize(
    ("make", "kwargs", "problem"),
    [
        (lambda tmp, lulc, grid: tmp / "missing.tif", {}, "no such file"),
        (_garbage, {}, "cannot read"),
        (_truncated, {}, "cannot read labels .*IReadBlock failed"),
        (_far_away, {}, "do not overlap the scene"),
        (_all_unlabelled, {}, "no labelled pixels"),
        (_fractional, {}, "must be integer class ids"),
        (_no_crs, {}, "has no CRS"),
        (_no_features, {}, "no features"),
        (_bad_tag, {}, "CLASS_NAMES"),
        (_all_unlabelled, {"attribute": "LULC_ID"}, "applies to vector labels"),
    ],
)
def test_label_errors(
    tmp_path: Path, lulc: np.ndarray, lulc_grid: Grid, make: Any, kwargs: Any, problem: str
) -> None:
    path = make(tmp_path, lulc, lulc_grid)
    with pytest.raises(LabelError, match=problem) as caught:
        read_labels(path, lulc_grid, **kwargs)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("attribute", "problem"),
    [
        (None, "cannot tell which field.*RABA_ID \\(int\\d*\\).*LULC_ID"),
        ("LULC_NAME", "'LULC_NAME' is not an integer field"),
        ("nope", "'nope' is not a field; fields: index"),
    ],
)
def test_vector_attribute_errors_list_the_fields(
    data_dir: Path, lulc_grid: Grid, attribute: str | None, problem: str
) -> None:
    with pytest.raises(LabelError, match=rf"LULC\.gpkg: {problem}"):
        read_labels(data_dir / LULC_GPKG, lulc_grid, attribute=attribute)


def test_polygons_outside_the_scene(data_dir: Path) -> None:
    with pytest.raises(LabelError, match=r"LULC\.gpkg: labels do not overlap the scene"):
        read_labels(data_dir / LULC_GPKG, grid_of(data_dir / WATER), attribute="LULC_ID")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not readable JSON"),
        ('{"classes": [{"id": 1, "name": "forest", "color": "#12345g"}]}', "hex colour"),
        ('{"classes": [{"id": 1, "name": "forest", "color": "green"}]}', "'green'"),
        ('{"classes": [{"id": 1.5, "name": "forest"}]}', "1.5 is not an integer"),
        ('{"classes": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}', "appears twice"),
        ('{"one": "forest"}', "'one' is not an integer"),
        ('[["1", "forest"]]', "expected a JSON object"),
    ],
)
def test_bad_legend_files(
    tmp_path: Path, data_dir: Path, lulc_grid: Grid, text: str, problem: str
) -> None:
    legend = tmp_path / "legend.json"
    legend.write_text(text)
    with pytest.raises(LabelError, match=problem) as caught:
        read_labels(data_dir / LULC_TIF, lulc_grid, legend=legend)
    assert str(caught.value).startswith(f"{legend}: ")
