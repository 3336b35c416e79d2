"""PNG quicklooks of real class-map GeoTIFFs: size, legend, axes, decimation and atomicity."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from bandfusion.display.preview import class_rgba, preview_figure, read_view, write_preview
from bandfusion.errors import OutputError
from bandfusion.io.geotiff import write_geotiff
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.text import Text
from rasterio.crs import CRS

NAMES = {0: "open water", 1: "broadleaf forest", 2: "cropland"}
COLORS = {0: (0, 90, 200), 1: (20, 120, 40), 2: (230, 200, 60)}


def _class_map_tif(directory: Path, shape: tuple[int, int] = (530, 700), crs: str = "") -> Path:
    """A COG class map (classes 0-2, a strip of nodata 255) written by bandfusion's writer."""
    values = np.random.default_rng(0).integers(0, 3, shape).astype(np.uint8)
    values[:20] = 255
    attrs = {"crs": crs, "transform": tuple(Affine(20.0, 0.0, 300000.0, 0.0, -20.0, 4100000.0))}
    data = xr.DataArray(da.from_array(values, chunks=256), dims=("y", "x"), attrs=attrs)
    return write_geotiff(data, directory / "map.tif", nodata=255, overview_resampling="mode")


def _texts(figure: Figure) -> set[str]:
    return {text.get_text() for text in figure.findobj(Text) if isinstance(text, Text)}


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_preview_is_a_png_of_bounded_size(tmp_path: Path) -> None:
    tif = _class_map_tif(tmp_path)
    png = write_preview(
        tif, tmp_path / "map.png", legend_names=NAMES, colors=COLORS, nodata=255, max_size=512
    )
    assert png == tmp_path / "map.png"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    height, width = imread(png).shape[:2]
    assert 512 <= width <= 512 + 400
    assert 300 <= height <= 512
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["map.png", "map.tif"]


def test_legend_lists_every_class_and_no_data(tmp_path: Path) -> None:
    view = read_view(_class_map_tif(tmp_path, crs=CRS.from_epsg(32630).to_wkt()), 256)
    figure = preview_figure(view, legend_names=NAMES, colors=COLORS, nodata=255, title="Scene 7")
    (legend,) = figure.legends
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == ["open water", "broadleaf forest", "cropland", "no data"]
    patch_colours = [tuple(patch.get_facecolor()) for patch in legend.get_patches()][:3]
    assert patch_colours == [(r / 255, g / 255, b / 255, 1.0) for r, g, b in COLORS.values()]
    assert {"Scene 7", "easting (metre)", "northing (metre)"} <= _texts(figure)


def test_legend_has_no_no_data_entry_without_nodata(tmp_path: Path) -> None:
    view = read_view(_class_map_tif(tmp_path, crs=CRS.from_epsg(32630).to_wkt()), 256)
    figure = preview_figure(view, legend_names=NAMES, colors=COLORS, nodata=None, title="t")
    assert "no data" not in [text.get_text() for text in figure.legends[0].get_texts()]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_map_without_crs_is_drawn_in_pixel_coordinates(tmp_path: Path) -> None:
    view = read_view(_class_map_tif(tmp_path), 256)
    assert view.axis_labels == ("column", "row")
    assert view.extent == (0.0, 700, 530, 0.0)
    figure = preview_figure(view, legend_names=NAMES, colors=COLORS, nodata=255, title="t")
    assert {"column", "row"} <= _texts(figure)


def test_a_geographic_map_is_drawn_in_degrees(tmp_path: Path) -> None:
    view = read_view(_class_map_tif(tmp_path, crs=CRS.from_epsg(4326).to_wkt()), 256)
    assert view.axis_labels == ("longitude", "latitude")


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_the_view_is_decimated_to_max_size_by_the_most_common_class(tmp_path: Path) -> None:
    view = read_view(_class_map_tif(tmp_path, shape=(1500, 2000)), 256)
    assert view.classes.shape == (192, 256)
    assert set(np.unique(view.classes)) <= {0, 1, 2, 255}


def test_class_colours_nodata_transparent_and_unknown_black() -> None:
    rgba = class_rgba(np.array([[0, 2], [255, 9]], dtype=np.uint8), COLORS, nodata=255)
    expected = [[(0, 90, 200, 255), (230, 200, 60, 255)], [(0, 0, 0, 0), (0, 0, 0, 255)]]
    np.testing.assert_array_equal(rgba, np.array(expected, dtype=np.uint8))


def test_an_unwritable_png_path_fails_before_reading(tmp_path: Path) -> None:
    png = tmp_path / "missing" / "map.png"
    with pytest.raises(OutputError, match="does not exist"):
        write_preview(tmp_path / "no-such.tif", png, legend_names=NAMES, colors=COLORS, nodata=255)


def test_a_failed_render_leaves_no_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tif = _class_map_tif(tmp_path, crs=CRS.from_epsg(32630).to_wkt())

    def fail(self: Figure, path: Path, **kwargs: object) -> None:
        path.write_bytes(b"half a PNG")
        raise RuntimeError("render failed")

    monkeypatch.setattr(Figure, "savefig", fail)
    with pytest.raises(RuntimeError, match="render failed"):
        write_preview(tif, tmp_path / "map.png", legend_names=NAMES, colors=COLORS, nodata=255)
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["map.tif"]
