"""Label rasters and vector polygons, aligned onto a scene's grid, with their legend."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from bandfusion.errors import LabelError
from bandfusion.io.grid import Grid
from bandfusion.io.inputs import refuse_special
from bandfusion.io.legend import (
    Legend,
    PartialLegend,
    legend_from_raster,
    read_legend_file,
    resolve_legend,
)
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError, RasterioError, RasterioIOError
from rasterio.features import rasterize
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT

Unlabelled = Literal["auto"] | int | None


@dataclass
class Labels:
    """Class ids on a scene grid: `values` count only where `labelled` is True."""

    values: np.ndarray  # (H, W): the label raster's dtype; int32 for vectors, int64 for floats
    labelled: np.ndarray  # (H, W) bool: True where a class is given
    legend: Legend  # exactly the class ids present, sorted
    source: str  # the path the labels came from, for messages


def read_labels(
    path: str | os.PathLike[str],
    grid: Grid,
    *,
    attribute: str | None = None,
    unlabelled: Unlabelled = "auto",
    legend: str | os.PathLike[str] | Legend | None = None,
) -> Labels:
    """Read a label raster or vector file onto `grid`, the scene's grid.

    Rasters (band 1) are read directly when they share the scene grid, else warped onto it with
    nearest-neighbour; pixels outside the raster are unlabelled. Within it, `unlabelled` names
    the value that means "no class": "auto" is the raster's nodata value, or 0 without one; an
    int is that value; None makes every value a class. Float rasters must hold whole numbers.

    Vector files (anything fiona opens; first layer) are reprojected to the scene CRS and
    rasterized by pixel centre with the integer field `attribute` (default: the one integer
    field named like *id or *class); later features win where polygons overlap. Uncovered
    pixels are unlabelled, as are features whose value is `unlabelled` ("auto": 0; None: no
    value). Names come from the matching *_NAME text field when there is one. Without a CRS on
    the scene or the file, coordinates are taken as they are.

    The legend holds the ids present: names and colours from `legend` (a JSON file or a
    Legend) first, then the raster's colour map and CLASS_NAMES tag or the vector's name field,
    then defaults. The labels are read whole onto the scene grid: one (H, W) array of values
    and one of flags, which bounds memory by the scene's size, not the label file's.

    Raises LabelError, naming the file, for every problem with the user's input.
    """
    source = str(path)
    if isinstance(unlabelled, str) and unlabelled != "auto":
        raise ValueError(f'unlabelled must be "auto", an int or None, not {unlabelled!r}')
    if not source.startswith("/vsi") and not Path(source).exists():
        raise LabelError(f"{source}: no such file")
    refuse_special(source, LabelError)
    overrides = _legend_overrides(legend)
    raster = _open_raster(source)
    if raster is None:
        values, labelled, hints = _read_vector(source, grid, attribute, unlabelled)
    else:
        with raster:
            if attribute is not None:
                raise LabelError(f"{source}: is a raster; an attribute applies to vector labels")
            values, labelled, hints = _read_raster(raster, grid, unlabelled)
    ids = np.unique(values[labelled]).tolist()
    return Labels(values, labelled, resolve_legend(ids, hints, overrides), source)


def _legend_overrides(legend: str | os.PathLike[str] | Legend | None) -> PartialLegend:
    """What the user's legend says, to override everything the labels say themselves."""
    if legend is None:
        return PartialLegend()
    if isinstance(legend, Legend):
        return legend.partial()
    return read_legend_file(legend)


def _open_raster(source: str) -> DatasetReader | None:
    """The file opened as a raster, or None when GDAL does not read it as one."""
    try:
        return rasterio.open(source)
    except RasterioIOError:
        return None


def _read_raster(
    src: DatasetReader, grid: Grid, unlabelled: Unlabelled
) -> tuple[np.ndarray, np.ndarray, PartialLegend]:
    """Band 1 on the scene grid, its labelled mask, and the raster's own names and colours."""
    try:
        values, covered = _band_on_grid(src, grid)
        hints = legend_from_raster(src)
    except RasterioError as exc:
        reason = exc.__cause__ or exc  # rasterio's own message points to GDAL's, its cause
        raise LabelError(f"{src.name}: cannot read labels ({reason})") from None
    marker = (0 if src.nodata is None else src.nodata) if unlabelled == "auto" else unlabelled
    labelled = _labelled(src.name, values, covered, marker)
    return _whole_numbers(src.name, values, labelled), labelled, hints


def _band_on_grid(src: DatasetReader, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Band 1 read directly on a shared grid, or warped (nearest) with its coverage."""
    if Grid(src.crs, src.transform, src.width, src.height).same_as(grid):
        return src.read(1), np.ones(grid.shape, dtype=bool)
    if src.crs is None or grid.crs is None:
        side = "labels" if src.crs is None else "scene"
        raise LabelError(f"{src.name}: labels are not on the scene grid and the {side} has no CRS")
    with WarpedVRT(
        src,
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        resampling=Resampling.nearest,
        src_nodata=None,  # keep nodata values as values: `unlabelled` decides what they mean
        nodata=None,
        add_alpha=True,
    ) as vrt:
        values, alpha = vrt.read((1, vrt.count))
    return values, alpha > 0


def _labelled(
    source: str, values: np.ndarray, covered: np.ndarray, marker: float | None
) -> np.ndarray:
    """Covered pixels whose value is a class (not `marker`, not NaN); LabelError if none."""
    if not covered.any():
        raise LabelError(f"{source}: labels do not overlap the scene")
    labelled = covered if marker is None else covered & (values != marker)
    if values.dtype.kind == "f":
        labelled &= np.isfinite(values)
    if not labelled.any():
        raise LabelError(f"{source}: labels hold no labelled pixels within the scene")
    return labelled


def _whole_numbers(source: str, values: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """Integer values as they are; float values as int64 if every labelled one is whole."""
    if values.dtype.kind in "iub":
        return values
    if values.dtype.kind != "f" or np.any(values[labelled] % 1 != 0):
        raise LabelError(f"{source}: labels must be integer class ids, found {values.dtype} values")
    return np.where(labelled, values, 0).astype(np.int64)


def _read_vector(
    source: str, grid: Grid, attribute: str | None, unlabelled: Unlabelled
) -> tuple[np.ndarray, np.ndarray, PartialLegend]:
    """Features rasterized on the scene grid, their labelled mask, and names from a name field.

    fiona is imported here, on first use: it loads a second copy of GDAL (its own RSS) that
    prediction, which reads no vectors, should not carry.
    """
    import fiona
    from fiona.errors import FionaError

    try:
        with fiona.open(source) as collection:
            fields = dict(collection.schema["properties"])
            records = list(collection)
            crs_wkt = collection.crs_wkt
        if not records:
            raise LabelError(f"{source}: holds no features")
        field = _label_field(source, fields, attribute)
        name_field = _name_field(fields, field)
        features = [
            f for f in records if f.geometry is not None and f.properties[field] is not None
        ]
        if not features:
            raise LabelError(f"{source}: holds no features with a geometry and a {field} value")
        geometries = _to_scene_crs([f.geometry for f in features], crs_wkt, grid.crs)
    except (FionaError, CRSError) as exc:
        raise LabelError(f"{source}: cannot read as raster or vector labels ({exc})") from None
    index = _rasterize_index(source, geometries, grid)
    ids = [int(f.properties[field]) for f in features]
    values = _lookup(source, ids)[index]
    labelled = _labelled(source, values, index > 0, 0 if unlabelled == "auto" else unlabelled)
    names: dict[int, str] = {}
    if name_field is not None:
        for class_id, feature in zip(ids, features, strict=True):
            names.setdefault(class_id, feature.properties[name_field])
    return values, labelled, PartialLegend(names={k: v for k, v in names.items() if v})


def _label_field(source: str, fields: Mapping[str, str], attribute: str | None) -> str:
    """The integer field holding class ids: `attribute`, or the single *id / *class one."""
    integer = [name for name, kind in fields.items() if kind.startswith("int")]
    listing = ", ".join(f"{name} ({kind})" for name, kind in fields.items()) or "none"
    if attribute is not None and attribute not in integer:
        problem = "is not an integer field" if attribute in fields else "is not a field"
        raise LabelError(f"{source}: {attribute!r} {problem}; fields: {listing}")
    if attribute is not None:
        return attribute
    candidates = [name for name in integer if name.lower().endswith(("id", "class"))]
    if len(candidates) != 1:
        raise LabelError(
            f"{source}: cannot tell which field holds the class ids; "
            f"name one as the attribute; fields: {listing}"
        )
    return candidates[0]


def _name_field(fields: Mapping[str, str], field: str) -> str | None:
    """The text field named like `field` with NAME for ID (LULC_ID -> LULC_NAME), if any."""
    if not field.lower().endswith("id"):
        return None
    wanted = field[:-2].lower() + "name"
    matches = (n for n, kind in fields.items() if n.lower() == wanted and kind.startswith("str"))
    return next(matches, None)


def _to_scene_crs(geometries: list[Any], crs_wkt: str, scene_crs: CRS | None) -> list[Any]:
    """Geometries reprojected to the scene CRS (left as they are if either side lacks a CRS)."""
    if not crs_wkt or scene_crs is None or CRS.from_wkt(crs_wkt) == scene_crs:
        return geometries
    from fiona.transform import transform_geom

    return list(transform_geom(crs_wkt, scene_crs.to_wkt(), geometries))


def _rasterize_index(source: str, geometries: list[Any], grid: Grid) -> np.ndarray:
    """Per pixel, 1 + the index of the last feature covering its centre, 0 where none does."""
    try:
        return rasterize(
            ((geometry, k + 1) for k, geometry in enumerate(geometries)),
            out_shape=grid.shape,
            transform=grid.transform,
            fill=0,
            dtype="int32",
        )
    except ValueError as exc:  # rasterio's answer to geometries it cannot burn
        raise LabelError(f"{source}: cannot rasterize the features ({exc})") from None


def _lookup(source: str, ids: list[int]) -> np.ndarray:
    """Class id per feature index + 1 (0 for no feature), as int32."""
    table = np.array([0, *ids], dtype=np.int64)
    info = np.iinfo(np.int32)
    if table.min() < info.min or table.max() > info.max:
        raise LabelError(f"{source}: class ids must fit in int32")
    return table.astype(np.int32)
