"""Raster files → a lazy `DataArray(band, y, x)`: the one tile loader every path runs on.

The array is a dask graph with one task per block-aligned window; a task opens (or reuses) the
files in its thread and reads that window of every band. Nothing is read until asked.
"""

from __future__ import annotations

import math
import os
import re
import uuid
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from bandfusion.errors import BandfusionError, BandfusionWarning, SceneError, SettingError
from bandfusion.io.bands import canonical_band
from bandfusion.io.gdal_settings import READ_THREADS
from bandfusion.io.grid import Grid
from bandfusion.io.inputs import refuse_special
from bandfusion.io.masks import bounds, covers, data_bands, mask_bands
from bandfusion.io.nodata import nodata_coord, pixel_value
from bandfusion.io.products import BandAsset, Product, choose_bands, read_product
from bandfusion.io.radiometry import GDAL_TAGS, check_radiometry, radiometry_attrs
from bandfusion.io.reader import SceneReader, SourceFile, gdal_reason
from bandfusion.io.remote import file_stamp, is_remote, open_raster
from bandfusion.io.sources import scene_sources
from bandfusion.io.windows import DEFAULT_CHUNK_PIXELS, chunk_grid
from dask.base import tokenize
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader

PathLike = str | os.PathLike[str]
Files = Sequence[PathLike]
RESAMPLING_METHODS = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode")
MAX_SCENE_PIXELS = 2**40
"""Scenes above ~1e12 px (a continent at 10 m is ~1e11) are refused before their task graph,
which grows with the scene even though pixels are read lazily, is built."""
MAX_SCENE_SIDE = 2**23
"""Longer sides (the equator at 5 m is 8e6 px) are refused too: the pixel-centre coordinates
alone would take 16 bytes a pixel along them."""
NUMERIC_DTYPES = frozenset(
    {"uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"}
)
"""The GDAL data types a scene may hold; complex ones (complex_int16 has no numpy dtype) are not."""
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
"""What GDAL drops from metadata it writes, so no band name may hold it."""


def inspect_raster(path: PathLike) -> tuple[DatasetReader, str]:
    """Open `path` (a file, or an https:// or s3:// URL) for its metadata, turning every
    failure into a one-line SceneError."""
    name = os.fspath(path)
    if is_remote(name):
        return _open_remote(name), name
    if not name.startswith("/vsi") and not Path(name).exists():  # /vsizip/: a product's
        raise SceneError(f"{name}: no such file")
    if Path(name).is_dir():
        raise SceneError(
            f"{name}: is a directory, not a raster file or a product bandfusion reads; "
            f"to read band files in it as one scene, give the files ({name}/*.tif)"
        )
    refuse_special(name, SceneError)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # we warn about it ourselves
            dataset = rasterio.open(name)
    except (RasterioError, ValueError) as exc:  # ValueError: a CRS that is not UTF-8 or not a CRS
        raise SceneError(f"{name}: not a raster GDAL can read ({gdal_reason(exc)})") from exc
    return dataset, name


def _open_remote(url: str) -> DatasetReader:
    """Open the remote raster `url`; a failure (not found, refused, timed out, not a raster)
    is one line naming the URL and GDAL's reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return open_raster(url)
    except (RasterioError, ValueError) as exc:
        raise SceneError(f"{url}: cannot read it over the network ({gdal_reason(exc)})") from exc


def _check_readable(dataset: DatasetReader, name: str) -> None:
    """Refuse, from the header alone, rasters that are empty, absurdly large or not numeric."""
    if dataset.count == 0 or dataset.width == 0 or dataset.height == 0:
        raise SceneError(
            f"{name}: raster is empty ({dataset.count} bands, {dataset.width}x{dataset.height} px)"
        )
    if dataset.width * dataset.height > MAX_SCENE_PIXELS:
        raise SceneError(
            f"{name}: header claims {dataset.width}x{dataset.height} px, more than the "
            f"{MAX_SCENE_PIXELS:.2g} px one scene may have; split it into tiles"
        )
    if max(dataset.width, dataset.height) > MAX_SCENE_SIDE:
        raise SceneError(
            f"{name}: header claims {dataset.width}x{dataset.height} px, more than the "
            f"{MAX_SCENE_SIDE} px a side one scene may have; split it into tiles"
        )
    unsupported = sorted(set(dataset.dtypes) - NUMERIC_DTYPES)
    if unsupported:
        raise SceneError(
            f"{name}: unsupported data type {unsupported[0]} (need integer or float bands)"
        )
    if not all(math.isfinite(v) for v in dataset.transform[:6]):
        raise SceneError(f"{name}: its geotransform {tuple(dataset.transform[:6])} is not finite")


def _source_of(dataset: DatasetReader, name: str, first: int) -> SourceFile:
    indexes, dtypes = data_bands(dataset), dataset.dtypes
    values = [
        [per_band[i - 1] for i in indexes]
        for per_band in (dataset.nodatavals, dataset.scales, dataset.offsets)
    ]
    # Compared by repr, as NaN != NaN: a set of NaN nodata values would hold each of them.
    if any(len({repr(v) for v in per_band}) > 1 for per_band in values):
        raise SceneError(
            f"{name}: bands differ in nodata, scale or offset; split the file per band"
        )
    scale, offset = float(values[1][0]), float(values[2][0])
    if not (math.isfinite(scale) and math.isfinite(offset)):
        raise SceneError(f"{name}: scale {scale} or offset {offset} is not finite")
    return SourceFile(
        path=name,
        indexes=indexes,
        first=first,
        grid=Grid(dataset.crs, dataset.transform, dataset.width, dataset.height),
        nodata=values[0][0],
        scale=scale,
        offset=offset,
        dtype=str(np.result_type(*(dtypes[i - 1] for i in indexes))),
        mask_bands=mask_bands(dataset, indexes),
    )


def _unique(names: list[str]) -> list[str]:
    """Repeated names get _2, _3, ...: real stacks hold two acquisitions of the same day."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique


def _descriptions(dataset: DatasetReader, name: str) -> list[str | None]:
    """The band descriptions, or none (and a warning) where a corrupt header made them
    undecodable or put control characters in them."""
    try:
        descriptions: list[str | None] = list(dataset.descriptions)
        usable = not any(d and _CONTROL_CHARACTERS.search(d) for d in descriptions)
    except UnicodeDecodeError:  # rasterio decodes them as UTF-8
        usable = False
    if not usable:
        warnings.warn(
            f"{name}: band descriptions are corrupt (not UTF-8, or control characters); "
            "bands are named by number",
            BandfusionWarning,
            stacklevel=4,
        )
        return [None] * dataset.count
    return descriptions


def _band_names(datasets: list[tuple[DatasetReader, str]]) -> list[str]:
    """Band descriptions where the file has them, else file names (the canonical band a name
    holds, `T29UNU_20221005T115411_B02_60m` → `B02`), else b1..bn; made unique."""
    names: list[str] = []
    for dataset, name in datasets:
        indexes = data_bands(dataset)
        every = _descriptions(dataset, name)
        descriptions = [every[i - 1] for i in indexes]
        if all(descriptions):
            names.extend(str(d) for d in descriptions)
        elif len(datasets) > 1 and len(indexes) == 1:
            names.append(canonical_band(Path(name).stem))
        elif len(datasets) > 1:
            names.extend(f"{Path(name).stem}_b{i}" for i in indexes)
        else:
            names.extend(f"b{i}" for i in indexes)
    return _unique(names)


def _reference_grid(sources: list[SourceFile], resolution: float | None = None) -> Grid:
    """The finest grid among the inputs (smallest pixel area; the first one on ties), or with
    `resolution`, a source's grid at that resolution, else the finest one coarsened to it."""
    finest = min(sources, key=lambda s: abs(s.grid.transform.a * s.grid.transform.e)).grid
    if resolution is None:
        return finest
    for source in sources:
        if math.isclose(abs(source.grid.transform.a), resolution):
            return source.grid
    factor = resolution / abs(finest.transform.a)
    return Grid(
        finest.crs,
        finest.transform @ Affine.scale(factor),
        math.ceil(finest.width / factor),
        math.ceil(finest.height / factor),
    )


def _closest_source(sources: list[SourceFile], grid: Grid) -> int:
    """The index of the first source on `grid`, else of the one whose pixels are nearest in
    size to `grid`'s: its blocks set the chunks."""
    size = abs(grid.transform.a)

    def distance(i: int) -> tuple[bool, float]:
        own = sources[i].grid
        return (not own.same_as(grid), abs(abs(own.transform.a) - size))

    return min(range(len(sources)), key=distance)


def _check_compatible(sources: list[SourceFile], grid: Grid) -> None:
    for source in sources:
        if source.grid.same_as(grid):
            continue
        if (source.grid.crs is None) != (grid.crs is None) or (
            source.grid.crs is not None and source.grid.crs != grid.crs
        ):
            raise SceneError(
                f"{source.path}: CRS {source.grid.crs} differs from the scene's {grid.crs}; "
                "reproject the band files to one CRS first"
            )
        if not _overlaps(source.grid, grid):
            raise SceneError(f"{source.path}: does not overlap the other band files")


def _overlaps(a: Grid, b: Grid) -> bool:
    ax0, ay0, ax1, ay1 = bounds(a)
    bx0, by0, bx1, by1 = bounds(b)
    return ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1


def open_scene(
    paths: PathLike | Sequence[PathLike] | Product,
    *,
    band_names: Sequence[str] | None = None,
    bands: Sequence[str] | None = None,
    resolution: float | None = None,
    resampling: str = "nearest",
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
    gdal_threads: int | str = READ_THREADS,
    nodata: float | None = None,
    trust_metadata: bool = False,
) -> xr.DataArray:
    """Open a multi-band raster, several files (one per band), or a sensor product (a Sentinel-2
    SAFE folder, zip or MTD file, a Landsat C2 L2 folder or MTL, a STAC Item JSON, or a
    `Product`) as lazy `DataArray(band, y, x)`.

    Files at coarser resolutions are resampled onto the finest file's grid with `resampling`
    (default "nearest": it keeps measured values, which a per-pixel classifier wants). Chunks are
    whole internal blocks of the reference file, ~`chunk_pixels` each, all bands in every chunk.
    attrs hold "crs" (WKT, "" if none) and "transform" (6 floats); the `nodata` coordinate holds
    each band's nodata value (NaN: none), `source` its file. Each chunk is read with a bounded
    GDAL block cache and `gdal_threads` decoding threads ("ALL_CPUS" helps a single reader).

    `bands` picks bands by name (for products any of a band's names: "B4", "B04", "red"). A
    product's bands carry its own scale, offset and nodata (the files' tags are not used) and
    their canonical names; its grid is at `resolution` metres, by default the finest the bands
    asked for are held at, as `bandfusion.io.products.choose` describes. A product's mask layers
    (SCL, QA_PIXEL) are listed in attrs["mask_layers"] for `bandfusion.io.cloudmask.mask_scene`.

    `nodata` replaces every band's declared nodata value (Sentinel-2 JPEG 2000 files declare
    none; 0 is their fill). attrs "radiometry" and "radiometry_source" hold the scene's
    radiometric domain (`bandfusion.io.radiometry`); reflectance scaled by a product's metadata
    has a sample of its pixels checked against it (`check_radiometry`) unless `trust_metadata`.
    """
    if resampling not in RESAMPLING_METHODS:
        raise BandfusionError(
            f"resampling {resampling!r} is not one of {', '.join(RESAMPLING_METHODS)}"
        )
    product = paths if isinstance(paths, Product) else _product_of(paths)
    if product is not None:
        assets, resolution = choose_bands(product, bands, resolution)
        path_list: list[PathLike] = [a.href for a in assets]
    elif resolution is not None:
        raise SettingError("resolution", resolution, "applies to sensor products only")
    else:
        path_list = [paths] if isinstance(paths, str | os.PathLike) else list(cast(Files, paths))
    if not path_list:
        raise BandfusionError("open_scene needs at least one raster file")
    opened = [inspect_raster(p) for p in path_list]
    try:
        sources = _describe_sources(opened)
        names = list(band_names) if band_names is not None else _band_names(opened)
        if product is not None:
            sources, names = _product_sources(sources, assets), [a.name for a in assets]
        sources = _with_nodata(sources, nodata)
        grid = _reference_grid(sources, resolution)
        reference = opened[_closest_source(sources, grid)][0]
        block_shape = reference.block_shapes[0]
    finally:
        for dataset, _ in opened:
            dataset.close()
    scene = _scene_array(sources, names, grid, resampling, block_shape, chunk_pixels, gdal_threads)
    if not trust_metadata and any(_scaled(s) and s.origin != GDAL_TAGS for s in sources):
        check_radiometry(scene, ", ".join(dict.fromkeys(s.path for s in sources)))
    if product is not None:
        scene.attrs["mask_layers"] = _mask_layers(product, grid)
        return scene
    return scene if bands is None else _select(scene, bands)


def _mask_layers(product: Product, grid: Grid) -> list[tuple[str, str]]:
    """The product's mask layers as (kind, href), the one nearest the grid's resolution first:
    `bandfusion.io.cloudmask` reads them when the scene is masked."""
    pixel = abs(grid.transform.a)
    nearest = sorted(product.masks, key=lambda m: abs((m.resolution or pixel) - pixel))
    return [(m.kind, m.href) for m in nearest]


@dataclass(frozen=True)
class SceneOptions:
    """How a scene is opened, as one value that travels: the CLI builds it from its flags and a
    batch hands it to every worker, so every road opens scenes with `open_scene`'s arguments."""

    band_names: tuple[str, ...] | None = None
    bands: tuple[str, ...] | None = None
    resolution: float | None = None
    resampling: str = "nearest"
    nodata: float | None = None
    trust_metadata: bool = False

    def open(self, paths: PathLike | Sequence[PathLike]) -> xr.DataArray:
        """`open_scene(paths)` with these options."""
        return open_scene(
            paths,
            band_names=self.band_names,
            bands=self.bands,
            resolution=self.resolution,
            resampling=self.resampling,
            nodata=self.nodata,
            trust_metadata=self.trust_metadata,
        )


def _product_of(paths: PathLike | Sequence[PathLike]) -> Product | None:
    """The product `paths` names: one path that is a product, else None (plain raster files)."""
    if isinstance(paths, str | os.PathLike):
        return read_product(paths)
    return read_product(paths[0]) if len(paths) == 1 else None


def _product_sources(sources: list[SourceFile], assets: list[BandAsset]) -> list[SourceFile]:
    """The sources with the product's radiometry in place of whatever the files' tags say."""
    return [
        replace(s, scale=a.scale, offset=a.offset, nodata=a.nodata, origin=a.origin)
        for s, a in zip(sources, assets, strict=True)
    ]


def _select(scene: xr.DataArray, bands: Sequence[str]) -> xr.DataArray:
    """The scene's bands named in `bands`, in that order."""
    have = [str(b) for b in scene["band"].values]
    missing = [b for b in bands if b not in have]
    if missing:
        raise SettingError(
            "bands", ",".join(missing), f"not in {scene_sources(scene)} (it has {', '.join(have)})"
        )
    return scene.sel(band=list(bands))


def _with_nodata(sources: list[SourceFile], nodata: float | None) -> list[SourceFile]:
    """`sources` with `nodata` in place of what they declare, where one is given."""
    if nodata is None:
        return sources
    return [replace(s, nodata=float(nodata)) for s in sources]


def _scaled(source: SourceFile) -> bool:
    return source.scale != 1.0 or source.offset != 0.0


def _describe_sources(opened: list[tuple[DatasetReader, str]]) -> list[SourceFile]:
    sources: list[SourceFile] = []
    first = 0
    for dataset, name in opened:
        _check_readable(dataset, name)
        sources.append(_source_of(dataset, name, first))
        first = sources[-1].last
    return sources


def _scene_array(
    sources: list[SourceFile],
    names: list[str],
    grid: Grid,
    resampling: str,
    block_shape: tuple[int, int],
    chunk_pixels: int,
    gdal_threads: int | str,
) -> xr.DataArray:
    _check_compatible(sources, grid)
    sources = [_masking_what_it_misses(s, grid) for s in sources]
    n_bands = sources[-1].last
    files = ", ".join(s.path for s in sources)
    if len(names) != n_bands:
        raise BandfusionError(f"{len(names)} band names given for {n_bands} bands in {files}")
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        raise BandfusionError(f"band names must be distinct; repeated: {', '.join(repeated)}")
    if grid.crs is None:
        warnings.warn(
            f"{sources[0].path}: no CRS; outputs will carry none",
            BandfusionWarning,
            stacklevel=3,
        )
    scaled = any(_scaled(s) for s in sources)
    dtype = np.dtype(np.float32) if scaled else _common_dtype(sources)
    if any(_masks_need_nan(s) for s in sources):
        dtype = np.result_type(dtype, np.float32)
    reader = SceneReader(tuple(sources), grid, resampling, dtype, gdal_threads)
    row_chunks, col_chunks = chunk_grid(grid.height, grid.width, block_shape, chunk_pixels)
    token = tokenize(reader, _stamps(sources), row_chunks, col_chunks)
    data = da.from_array(
        reader,
        chunks=((n_bands,), row_chunks, col_chunks),
        lock=False,
        asarray=False,
        fancy=False,
        name=f"open_scene-{token}",
        meta=np.empty((0, 0, 0), dtype=dtype),
    )
    nodata = tuple(
        float("nan") if scaled and s.nodata is not None else s.nodata
        for s in sources
        for _ in s.indexes
    )
    return xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={
            "band": names,
            "source": ("band", [s.path for s in sources for _ in s.indexes]),
            "nodata": nodata_coord(nodata),
            **grid.coords(),
        },
        attrs={**grid.to_attrs(), **radiometry_attrs((_scaled(s), s.origin) for s in sources)},
        name="reflectance" if scaled else "scene",
    )


def _common_dtype(sources: list[SourceFile]) -> np.dtype[Any]:
    return np.result_type(*(s.dtype for s in sources))


def _masking_what_it_misses(source: SourceFile, grid: Grid) -> SourceFile:
    """`source`, reading a mask where it misses part of `grid` and declares no nodata to fill
    there: the warped file's alpha band says which pixels it covers."""
    if source.mask_bands or covers(source.grid, grid) or _fill_value(source) is not None:
        return source
    return replace(source, mask_bands=source.indexes[:1])


def _fill_value(source: SourceFile) -> np.generic | None:
    """The pixel that marks `source`'s masked pixels in its own dtype: its nodata, where usable."""
    return pixel_value(np.dtype(source.dtype), source.nodata)


def _masks_need_nan(source: SourceFile) -> bool:
    """Whether masked pixels of `source` need NaN: integers without a usable nodata value."""
    return bool(source.mask_bands) and source.dtype[0] in "iu" and _fill_value(source) is None


def _stamps(sources: list[SourceFile]) -> list[tuple[str, tuple[int, int] | str]]:
    """File identities for the graph's name, so an edited file never reuses a cached result;
    a remote object, whose identity would take a request, gets a name of its own each time."""
    return [(s.path, file_stamp(s.path) or uuid.uuid4().hex) for s in sources]
