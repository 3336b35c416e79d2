"""PNG quicklooks of class maps: a decimated view with a legend of class names and colours.

The view is read at most `max_size` pixels on a side (GDAL uses the COG's overviews), so memory
does not grow with the scene. Figures are built on matplotlib's Agg canvas directly, leaving
pyplot and the global backend alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from bandfusion.io.atomic import atomic_output
from bandfusion.io.gdal_settings import gdal_env
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from rasterio.enums import Resampling

NODATA_GREY = (0.75, 0.75, 0.75)
"""Shown behind the map, where nodata pixels are transparent."""

_UNKNOWN_RGBA = (0, 0, 0, 255)
_DPI = 100
_MIN_MAP_INCHES = 4.0
_LEGEND_INCHES = 2.5
_MARGIN_INCHES = 1.0


@dataclass(frozen=True)
class MapView:
    """A decimated class map with where it lies: `extent` is (left, right, bottom, top)."""

    classes: np.ndarray
    extent: tuple[float, float, float, float]
    axis_labels: tuple[str, str]


def write_preview(
    geotiff_path: str | Path,
    png_path: str | Path,
    *,
    legend_names: Mapping[int, str],
    colors: Mapping[int, tuple[int, int, int]],
    nodata: int | None,
    title: str | None = None,
    max_size: int = 1024,
) -> Path:
    """Write a PNG quicklook of band 1 of a class-map GeoTIFF, with a legend; returns its path."""
    with atomic_output(png_path) as tmp:
        view = read_view(geotiff_path, max_size)
        figure = preview_figure(
            view,
            legend_names=legend_names,
            colors=colors,
            nodata=nodata,
            title=title or Path(geotiff_path).name,
            max_size=max_size,
        )
        figure.savefig(tmp, format="png", bbox_inches="tight")
    return Path(png_path)


def read_view(path: str | Path, max_size: int) -> MapView:
    """Band 1 reduced by its most common class to at most `max_size` pixels on a side."""
    with gdal_env(), rasterio.open(path) as src:
        scale = min(1.0, max_size / max(src.height, src.width))
        shape = (max(1, round(src.height * scale)), max(1, round(src.width * scale)))
        classes = src.read(1, out_shape=shape, resampling=Resampling.mode)
        return MapView(classes, *_placement(src))


def _placement(
    src: rasterio.io.DatasetReader,
) -> tuple[tuple[float, float, float, float], tuple[str, str]]:
    """Extent and axis labels: map coordinates for an unrotated georeferenced map, else pixels."""
    if src.crs is None or not src.transform.is_rectilinear:
        return (0.0, src.width, src.height, 0.0), ("column", "row")
    left, bottom, right, top = src.bounds
    if src.crs.is_geographic:
        return (left, right, bottom, top), ("longitude", "latitude")
    unit = src.crs.linear_units
    return (left, right, bottom, top), (f"easting ({unit})", f"northing ({unit})")


def preview_figure(
    view: MapView,
    *,
    legend_names: Mapping[int, str],
    colors: Mapping[int, tuple[int, int, int]],
    nodata: int | None,
    title: str,
    max_size: int = 1024,
) -> Figure:
    """The quicklook figure: the map (longest side about `max_size` pixels) and its legend."""
    figure = Figure(figsize=_figsize(view.classes.shape, max_size), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_facecolor(NODATA_GREY)
    axes.imshow(class_rgba(view.classes, colors, nodata), extent=view.extent, interpolation="none")
    axes.set_title(title)
    axes.set_xlabel(view.axis_labels[0])
    axes.set_ylabel(view.axis_labels[1])
    axes.ticklabel_format(style="plain", useOffset=False)
    figure.legend(handles=_legend_handles(legend_names, colors, nodata), loc="outside right upper")
    return figure


def class_rgba(
    classes: np.ndarray, colors: Mapping[int, tuple[int, int, int]], nodata: int | None
) -> np.ndarray:
    """RGBA uint8 image of a class array: nodata transparent, classes without a colour black."""
    values, inverse = np.unique(classes, return_inverse=True)
    palette = np.array([_rgba(int(value), colors, nodata) for value in values], dtype=np.uint8)
    return palette[inverse.reshape(classes.shape)]


def _rgba(
    value: int, colors: Mapping[int, tuple[int, int, int]], nodata: int | None
) -> tuple[int, int, int, int]:
    """The RGBA colour one class value is drawn in."""
    if value == nodata:
        return (0, 0, 0, 0)
    if value in colors:
        return (*colors[value], 255)
    return _UNKNOWN_RGBA


def _legend_handles(
    legend_names: Mapping[int, str], colors: Mapping[int, tuple[int, int, int]], nodata: int | None
) -> list[Patch]:
    """One patch per class, in class order, then 'no data' when the map has a nodata value."""
    handles = [
        Patch(facecolor=_unit(_rgba(key, colors, None)), edgecolor="black", label=legend_names[key])
        for key in sorted(legend_names)
    ]
    if nodata is not None:
        handles.append(Patch(facecolor=NODATA_GREY, edgecolor="black", label="no data"))
    return handles


def _unit(rgba: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    """An 8-bit RGBA colour as matplotlib's 0-1 floats."""
    red, green, blue, alpha = rgba
    return (red / 255, green / 255, blue / 255, alpha / 255)


def _figsize(shape: tuple[int, ...], max_size: int) -> tuple[float, float]:
    """Figure inches giving the map's longest side `max_size` pixels (at least a few inches)."""
    height, width = shape
    longest = max(max_size / _DPI, _MIN_MAP_INCHES)
    scale = longest / max(height, width)
    return (width * scale + _LEGEND_INCHES, height * scale + _MARGIN_INCHES)
