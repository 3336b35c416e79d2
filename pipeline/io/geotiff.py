"""The map writer: streams a lazy DataArray into a tiled GeoTIFF or a COG, atomically.

Chunks are computed by dask and written window by window under one lock, so memory holds a
few chunks plus GDAL's block cache, never the scene. Everything is written to temporary files
beside the output and renamed onto it only once complete and checked (see `atomic`), so a
crash, an interrupt or a full disk never leaves a partial file at the output path. Overviews
and the COG conversion come after the pixels (see `cog`).

A map from `predict_scene` carries in its attrs what makes it a class map (nodata, colour
table, class names, the model's bands, the overview resampling), so `write_geotiff(map, path)`
writes the same file as `bandfusion predict`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from bandfusion.errors import BandfusionWarning
from bandfusion.io import cog as cog_steps
from bandfusion.io import pam
from bandfusion.io.atomic import atomic_output
from bandfusion.io.gdal_settings import GDAL_CACHE_MB, gdal_env
from bandfusion.io.grid import Grid
from bandfusion.io.map_metadata import Colormap, MapMetadata
from bandfusion.io.memory import release_freed_memory
from bandfusion.io.nodata import valid_mask
from bandfusion.io.overview import mode_2x2
from bandfusion.progress import Count
from dask.base import named_schedulers
from dask.typing import SchedulerGetCallable
from rasterio.enums import Resampling
from rasterio.windows import Window


def write_geotiff(
    array: xr.DataArray,
    path: str | Path,
    *,
    nodata: float | None = None,
    colormap: Colormap | None = None,
    class_names: Mapping[int, str] | None = None,
    band_names: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    overview_resampling: str | None = None,
    cog: bool = True,
    blocksize: int = 512,
    scheduler: str | None = None,
    progress: Count | None = None,
    cache_mb: int = GDAL_CACHE_MB,
) -> Path:
    """Stream a map (y, x) or (band, y, x) into a compressed tiled GeoTIFF, by default a COG.

    The grid (CRS, transform, size) and dtype are kept. Each of `nodata`, `colormap` (a colour
    table, for a single uint8 or uint16 band), `class_names` (stored as the CLASS_NAMES tag and,
    for a single integer band, as GDAL category names and an attribute table in PATH.aux.xml),
    `band_names`, `tags` and `overview_resampling` left at None is taken from `array.attrs`
    under the same name, where `predict_scene` and `predict_proba_scene` put them; the
    resampling is otherwise "nearest" ("mode" suits class maps, "average" probabilities).
    `scheduler` names a local dask scheduler; None means "threads", as the chunks must reach
    the file open in this process. `progress` receives the number of pixels of each chunk
    written. Memory holds a few chunks and `cache_mb` of GDAL cache. Band scales are taken from
    `attrs["scales"]` (see `probabilities.as_uint8`).
    """
    attrs = array.attrs
    nodata = attrs.get("nodata") if nodata is None else nodata
    resampling_name = overview_resampling or attrs.get("overview_resampling") or "nearest"
    _check_options(blocksize, resampling_name)
    get = _local_scheduler(scheduler or "threads")
    data = _band_stack(array)
    grid = Grid.of(array)
    profile = _gtiff_profile(grid, data, nodata, blocksize)
    metadata = MapMetadata.build(
        data,
        nodata,
        colormap=attrs.get("colormap") if colormap is None else colormap,
        class_names=attrs.get("class_names") if class_names is None else class_names,
        band_names=attrs.get("band_names") if band_names is None else band_names,
        tags=attrs.get("tags") if tags is None else tags,
        scales=attrs.get("scales"),
    )
    resampling = Resampling[resampling_name.lower()]
    factors = cog_steps.overview_factors(grid.width, grid.height, blocksize) if cog else []
    with atomic_output(path) as tmp, gdal_env(cache_mb):
        tiled = tmp.with_name(f"{tmp.stem}.gtiff.tif") if cog else tmp
        levels = cog_steps.streamed_levels(tiled, data, resampling, factors)
        streamed = cog_steps.intermediate_profile(profile) if cog else profile
        if not _stream(data, tiled, streamed, metadata, levels, get, progress):
            source = attrs.get("source") or "the input"
            warnings.warn(
                BandfusionWarning(f"{source}: every pixel is nodata; {path} holds no data"),
                stacklevel=2,
            )
        coarsest = levels[-1] if levels else tiled
        remaining = [f >> len(levels) for f in factors[len(levels) :]]
        cog_steps.build_overviews(coarsest, remaining, resampling)
        if cog:
            cog_steps.to_cog(tiled, tmp, profile["predictor"], blocksize)
        cog_steps.check_tiles_inside(tmp)
        metadata.check(tmp, path)
    if metadata.categories:
        pam.write_categories(path, metadata.categories, metadata.colormap)
    else:
        pam.remove_categories(path)
    return Path(path)


def _check_options(blocksize: int, overview_resampling: str) -> None:
    """Reject bad options before any compute: GDAL would only fail after the map is written."""
    if blocksize <= 0 or blocksize % 16:
        raise ValueError(f"blocksize must be a positive multiple of 16, got {blocksize}")
    if overview_resampling.lower() not in cog_steps.OVERVIEW_RESAMPLINGS:
        raise ValueError(
            f"overview_resampling must be one of {sorted(cog_steps.OVERVIEW_RESAMPLINGS)}, "
            f"got {overview_resampling!r}"
        )


def _local_scheduler(name: str) -> SchedulerGetCallable:
    """dask's function for the local scheduler `name` ("threads", "synchronous", ...).

    Handed to dask as a function, not a name: to resolve a name, dask first imports
    dask.distributed to look for a client on every map written, and the chunks must reach
    the file open in this process, so no client could be used anyway.
    """
    try:
        return named_schedulers[name]
    except KeyError:
        raise ValueError(
            f"scheduler must be one of {sorted(named_schedulers)}, got {name!r}"
        ) from None


def _band_stack(array: xr.DataArray) -> da.Array:
    """The map as a dask (band, y, x) array with all bands in one chunk, so chunks are pixels."""
    if array.ndim not in (2, 3) or array.dims[-2:] != ("y", "x"):
        raise ValueError(f"expected a map with dims (y, x) or (band, y, x), got {array.dims}")
    data = da.asarray(array.data)
    if data.ndim == 2:
        data = data[np.newaxis]
    return data.rechunk({0: -1})


def _gtiff_profile(
    grid: Grid, data: da.Array, nodata: float | None, blocksize: int
) -> dict[str, Any]:
    """Creation options of the tiled, DEFLATE-compressed GeoTIFF the chunks are streamed into.

    Band-interleaved, so that GDAL builds overviews band by band (see the module docstring).
    """
    return {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": cog_steps.tile_size(blocksize, grid.width),
        "blockysize": cog_steps.tile_size(blocksize, grid.height),
        "interleave": "band",
        "compress": "DEFLATE",
        "predictor": 3 if data.dtype.kind == "f" else 2,
        "bigtiff": "IF_SAFER",
        "num_threads": "ALL_CPUS",
    }


def _stream(
    data: da.Array,
    path: Path,
    profile: dict[str, Any],
    metadata: MapMetadata,
    levels: list[Path],
    get: SchedulerGetCallable,
    progress: Count | None,
) -> bool:
    """Create the tiled GeoTIFF (and its streamed overview levels) and write the chunks into it
    as dask computes them.

    Returns whether any pixel was valid (not nodata, NaN or infinite).
    """
    with ExitStack() as files:
        dst = files.enter_context(rasterio.open(path, "w", **profile))
        metadata.apply(dst)
        level_files = []
        level_profile = profile
        for level in levels:
            level_profile = cog_steps.halved(level_profile)
            level_files.append(files.enter_context(rasterio.open(level, "w", **level_profile)))
        writer = files.enter_context(_WindowWriter(dst, metadata.nodata, progress, level_files))
        # dask types targets as arrays; any object with __setitem__ is one. The writer locks
        # around its own writes, so that chunks are reduced to the overview levels in parallel.
        target = cast(Any, writer)
        da.store(data, target, lock=False, compute=True, scheduler=get)
    return writer.saw_valid


class _WindowWriter:
    """A `dask.array.store` target writing each (band, y, x) chunk into its window of a file,
    and its 2 × 2 modes, level after level, into the streamed overview files.

    Chunks are checked and reduced on dask's threads; only the writes hold the lock.
    """

    def __init__(
        self,
        dst: rasterio.io.DatasetWriter,
        nodata: float | None,
        progress: Count | None,
        levels: Sequence[rasterio.io.DatasetWriter] = (),
    ) -> None:
        self.lock = threading.Lock()
        self.saw_valid = False
        self._dst = dst
        self._nodata = nodata
        self._progress = progress
        self._levels = levels
        self._open = True

    def __enter__(self) -> _WindowWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Refuse later writes: dask's threads finish running chunks after it has raised."""
        with self.lock:
            self._open = False

    def __setitem__(self, key: tuple[slice, slice, slice], value: np.ndarray) -> None:
        """Write one computed chunk (all bands) into its window and report its pixels."""
        valid = self.saw_valid or bool(valid_mask(value, (self._nodata,) * len(value)).any())
        reduced = [value[0]]
        for _ in self._levels:
            reduced.append(mode_2x2(reduced[-1], self._nodata))
        rows, cols = key[1], key[2]
        with self.lock:
            if not self._open:
                raise RuntimeError("chunk arrived after the map writer was closed")
            self._dst.write(value, window=Window.from_slices(rows, cols))
            for halvings, (level, pixels) in enumerate(
                zip(self._levels, reduced[1:], strict=True), start=1
            ):
                top, left = rows.start >> halvings, cols.start >> halvings
                level.write(pixels, window=Window(left, top, *pixels.shape[::-1]), indexes=1)
            self.saw_valid = self.saw_valid or valid
            if self._progress is not None:
                self._progress(value.shape[1] * value.shape[2])
        release_freed_memory()  # the chunks written before this one: see pipeline/memory.py
