"""Class names where GDAL and QGIS look: category names and an attribute table GDAL reads back."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import dask.array as da
import numpy as np
import rasterio
import rasterio.shutil
import xarray as xr
from affine import Affine
from bandfusion.io.geotiff import write_geotiff
from bandfusion.io.pam import aux_path
from rasterio.crs import CRS
from rio_cogeo import cog_validate

ATTRS = {"crs": CRS.from_epsg(32630).to_wkt(), "transform": (10.0, 0, 500000.0, 0, -10.0, 4e6)}
NAMES = {0: "water", 1: "forest", 3: "urban"}
COLOURS = {0: (0, 0, 255, 255), 1: (0, 160, 0, 255), 3: (200, 0, 0, 255)}


def _class_map() -> xr.DataArray:
    values = np.random.default_rng(0).choice([0, 1, 3, 255], (300, 400)).astype(np.uint8)
    data = da.from_array(values, chunks=128)
    attrs = {**ATTRS, "nodata": 255, "class_names": NAMES, "colormap": COLOURS}
    return xr.DataArray(data, dims=("y", "x"), attrs=attrs)


def _as_gdal_reads_it(path: Path, tmp_path: Path) -> ElementTree.Element:
    """Band 1 as GDAL describes it with side files on (as gdalinfo and QGIS open maps)."""
    vrt = tmp_path / "described.vrt"
    with rasterio.Env(GDAL_PAM_ENABLED="YES"):
        rasterio.shutil.copy(path, vrt, driver="VRT")
    band = ElementTree.parse(vrt).getroot().find("VRTRasterBand")
    assert band is not None
    return band


def test_gdal_reads_the_class_names_as_categories_and_an_attribute_table(tmp_path: Path) -> None:
    path = write_geotiff(_class_map(), tmp_path / "map.tif")
    band = _as_gdal_reads_it(path, tmp_path)
    categories = [c.text or "" for c in band.iterfind("CategoryNames/Category")]
    assert categories == ["water", "forest", "", "urban"]
    table = band.find("GDALRasterAttributeTable")
    assert table is not None
    rows = [[f.text for f in row.iterfind("F")] for row in table.iterfind("Row")]
    assert rows == [
        ["0", "water", "0", "0", "255", "255"],
        ["1", "forest", "0", "160", "0", "255"],
        ["3", "urban", "200", "0", "0", "255"],
    ]
    assert band.find("ColorTable") is not None  # the colour table is still there
    assert cog_validate(str(path))[0]


def test_a_map_without_classes_removes_a_stale_side_file(tmp_path: Path) -> None:
    path = write_geotiff(_class_map(), tmp_path / "map.tif")
    assert aux_path(path).exists()
    plain = _class_map().astype(np.float32)
    plain.attrs = {**ATTRS, "nodata": float("nan")}
    write_geotiff(plain, path)
    assert not aux_path(path).exists()
    assert _as_gdal_reads_it(path, tmp_path).find("CategoryNames") is None


def test_the_side_file_is_replaced_atomically(tmp_path: Path) -> None:
    path = write_geotiff(_class_map(), tmp_path / "map.tif")
    renamed = _class_map().assign_attrs(class_names={0: "sea", 1: "wood", 3: "town"})
    write_geotiff(renamed, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tif", "map.tif.aux.xml"]
    band = _as_gdal_reads_it(path, tmp_path)
    assert next(band.iterfind("CategoryNames/Category")).text == "sea"


def test_probabilities_get_no_categories(tmp_path: Path) -> None:
    data = da.from_array(np.full((2, 40, 40), 0.5, np.float32), chunks=(2, 20, 20))
    attrs = {**ATTRS, "nodata": float("nan"), "class_names": NAMES}
    write_geotiff(xr.DataArray(data, dims=("class", "y", "x"), attrs=attrs), tmp_path / "p.tif")
    assert not aux_path(tmp_path / "p.tif").exists()


def test_with_side_files_on_gdal_reads_the_same_grid_and_nodata(tmp_path: Path) -> None:
    path = write_geotiff(_class_map(), tmp_path / "map.tif")
    with rasterio.Env(GDAL_PAM_ENABLED="YES"), rasterio.open(path) as src:
        assert src.transform == Affine(*ATTRS["transform"])
        assert src.nodata == 255
