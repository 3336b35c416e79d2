"""The map writer: streams a lazy DataArray into a tiled GeoTIFF or a COG, atomically.

Chunks are computed by dask and written window by window under one lock, so memory holds a
few chunks plus GDAL's block cache, never the scene. Everything is written to temporary files
beside the output and renamed onto it only once complete and checked, so a crash, an
interrupt or a full disk never leaves a partial file at the output path.

For a COG, overviews are built in the band-interleaved intermediate file and the COG driver
copies them: left to itself, the driver computes overviews of a multi-band (pixel-interleaved)
raster over many full-width rows of all bands at once: for four float32 bands of 4096 x 8192
on 2 CPUs, 160 MB over the baseline and 44 s, against 55 MB and 18 s this way. The COG driver
keeps nodata, the colour table, dataset tags and band descriptions, so nothing is re-applied
after the conversion (GDAL refuses to update a COG in place unless told to break its layout);
the result is checked. The intermediate is written uncompressed when small enough (see
RAW_INTERMEDIATE_BYTES), as its tiles are decoded and re-encoded anyway. A class map's
first "mode" levels, GDAL's slowest, are instead reduced from each chunk as it streams (see
`overview`), each into the external overview file of the one before (FILE.ovr, FILE.ovr.ovr):
GDAL and its COG driver read such a chain as successive levels, and GDAL builds the coarser
levels from the last one.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import dask.array as da
import numpy as np
import rasterio
import rasterio.shutil
import xarray as xr
from affine import Affine
from bandfusion.errors import BandfusionWarning, OutputError
from bandfusion.io.gdal_settings import GDAL_CACHE_MB, gdal_env
from bandfusion.io.grid import Grid
from bandfusion.io.memory import release_freed_memory
from bandfusion.io.nodata import valid_mask
from bandfusion.io.overview import mode_2x2
from bandfusion.progress import Count
from dask.base import named_schedulers
from dask.typing import SchedulerGetCallable
from rasterio._err import CPLE_BaseError
from rasterio.enums import Resampling
from rasterio.windows import Window

OVERVIEW_RESAMPLINGS = frozenset(
    {"nearest", "mode", "average", "rms", "bilinear", "gauss", "cubic", "cubicspline", "lanczos"}
)
"""Resampling methods GDAL's overview builder accepts."""

RAW_INTERMEDIATE_BYTES = 1 << 30
"""Largest COG intermediate left uncompressed (a class map of up to ~32k × 32k uint8 pixels).

The COG driver decodes and re-encodes every tile, so compressing the intermediate is work done
twice: on a Sentinel-2 class map the writer took 3.2-3.9 CPU s this way against 4.6-5.6.
Larger intermediates (probability stacks, mosaics) stay compressed to bound the disk they take.
"""

_FULL_ERRNOS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}
# GDAL reports a full disk as a bare write error (no errno); with less free space than a few
# tiles, that error is the full disk.
_NEARLY_FULL_BYTES = 16 * 2**20
_COLORMAP_DTYPES = frozenset({"uint8", "uint16"})

Colormap = Mapping[int, tuple[int, int, int, int]]


def check_writable(path: str | Path) -> Path:
    """Raise OutputError unless a file can be created at `path`; called before any compute."""
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise OutputError(f"{target}: output directory {parent} does not exist")
    if target.is_dir():
        raise OutputError(f"{target}: is a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{target}: directory {parent} is not writable")
    return target


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`, renamed onto `path` only if the block succeeds.

    Every file whose name starts with the temporary path's stem (the yielded path, scratch files
    derived from it, GDAL's side files) is removed afterwards, whatever happened.
    """
    target = check_writable(path)
    prefix = f".{target.name}.{secrets.token_hex(6)}."
    tmp = target.with_name(f"{prefix}tmp{target.suffix}")
    try:
        yield tmp
        tmp.replace(target)
    except Exception as exc:
        problem = _disk_problem(exc, target.parent)
        if problem:
            raise OutputError(f"{target}: {problem}") from exc
        raise
    finally:
        for leftover in target.parent.iterdir():
            if leftover.name.startswith(prefix):
                leftover.unlink(missing_ok=True)


def write_geotiff(
    array: xr.DataArray,
    path: str | Path,
    *,
    nodata: float | None,
    colormap: Colormap | None = None,
    class_names: Mapping[int, str] | None = None,
    band_names: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    cog: bool = True,
    overview_resampling: str = "nearest",
    blocksize: int = 512,
    scheduler: str | None = None,
    progress: Count | None = None,
    cache_mb: int = GDAL_CACHE_MB,
) -> Path:
    """Stream a map (y, x) or (band, y, x) into a compressed tiled GeoTIFF, by default a COG.

    The grid (CRS, transform, size) and dtype are kept. `overview_resampling` is "mode" for
    class maps, "average" for probabilities. `scheduler` names a local dask scheduler; None
    means "threads", as the chunks must reach the file open in this process. `progress`
    receives the number of pixels of each chunk written. Memory holds a few chunks and
    `cache_mb` of GDAL cache.
    """
    _check_options(blocksize, overview_resampling)
    get = _local_scheduler(scheduler or "threads")
    data = _band_stack(array)
    grid = Grid.of(array)
    profile = _gtiff_profile(grid, data, nodata, blocksize)
    metadata = _Metadata.build(
        data, nodata, colormap=colormap, class_names=class_names, band_names=band_names, tags=tags
    )
    resampling = Resampling[overview_resampling.lower()]
    factors = _overview_factors(grid.width, grid.height, blocksize) if cog else []
    with atomic_output(path) as tmp, gdal_env(cache_mb):
        tiled = tmp.with_name(f"{tmp.stem}.gtiff.tif") if cog else tmp
        levels = _streamed_levels(tiled, data, resampling, factors)
        streamed = _intermediate_profile(profile) if cog else profile
        if not _stream(data, tiled, streamed, metadata, levels, get, progress):
            source = array.attrs.get("source") or "the input"
            warnings.warn(
                BandfusionWarning(f"{source}: every pixel is nodata; {path} holds no data"),
                stacklevel=2,
            )
        coarsest = levels[-1] if levels else tiled
        _build_overviews(coarsest, [f >> len(levels) for f in factors[len(levels) :]], resampling)
        if cog:
            _to_cog(tiled, tmp, profile["predictor"], blocksize)
        _check_tiles_inside(tmp)
        _check_metadata(tmp, metadata, path)
    return Path(path)


def _check_options(blocksize: int, overview_resampling: str) -> None:
    """Reject bad options before any compute: GDAL would only fail after the map is written."""
    if blocksize <= 0 or blocksize % 16:
        raise ValueError(f"blocksize must be a positive multiple of 16, got {blocksize}")
    if overview_resampling.lower() not in OVERVIEW_RESAMPLINGS:
        raise ValueError(
            f"overview_resampling must be one of {sorted(OVERVIEW_RESAMPLINGS)}, "
            f"got {overview_resampling!r}"
        )


def _local_scheduler(name: str) -> SchedulerGetCallable:
    """dask's function for the local scheduler `name` ("threads", "synchronous", ...).

    Handed to dask as a function, not a name: to resolve a name, dask first imports
    dask.distributed to look for a client (about 100 modules and 0.2 s on every map written),
    and the chunks must reach the file open in this process, so no client could be used anyway.
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
        "blockxsize": _tile_size(blocksize, grid.width),
        "blockysize": _tile_size(blocksize, grid.height),
        "interleave": "band",
        "compress": "DEFLATE",
        "predictor": 3 if data.dtype.kind == "f" else 2,
        "bigtiff": "IF_SAFER",
        "num_threads": "ALL_CPUS",
    }


def _intermediate_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile of the file a COG is copied from: uncompressed up to RAW_INTERMEDIATE_BYTES."""
    itemsize = np.dtype(profile["dtype"]).itemsize
    if profile["width"] * profile["height"] * profile["count"] * itemsize > RAW_INTERMEDIATE_BYTES:
        return profile
    raw = {key: value for key, value in profile.items() if key != "predictor"}
    return {**raw, "compress": "NONE"}


def _tile_size(blocksize: int, extent: int) -> int:
    """`blocksize`, shrunk for small rasters to the extent rounded up to GDAL's multiple of 16."""
    return min(blocksize, -(-extent // 16) * 16)


def _streamed_levels(
    tiled: Path, data: da.Array, resampling: Resampling, factors: list[int]
) -> list[Path]:
    """The overview levels the writer reduces itself, coarsest last, each the external overview
    of the one before (FILE.ovr, FILE.ovr.ovr, ...); none leaves every level to GDAL.

    Only for a single-band integer map with "mode" overviews, and only the levels at which every
    2 × 2 cell lies inside one chunk: chunk sides divisible by the level's factor, so that GDAL
    cuts the cells where the chunks do (on a Sentinel-2 map of 1024² chunks, the 2× and 4×).
    """
    if resampling != Resampling.mode or data.shape[0] != 1 or data.dtype.kind not in "iu":
        return []
    sides = {size for sizes in data.chunks[1:] for size in sizes}
    levels = [tiled]
    for factor in factors:
        if any(side % factor for side in sides):
            break
        levels.append(levels[-1].with_name(f"{levels[-1].name}.ovr"))
    return levels[1:]


def _stream(
    data: da.Array,
    path: Path,
    profile: dict[str, Any],
    metadata: _Metadata,
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
            level_profile = _halved(level_profile)
            level_files.append(files.enter_context(rasterio.open(level, "w", **level_profile)))
        writer = files.enter_context(_WindowWriter(dst, metadata.nodata, progress, level_files))
        # dask types targets as arrays; any object with __setitem__ is one. The writer locks
        # around its own writes, so that chunks are reduced to the overview levels in parallel.
        target = cast(Any, writer)
        da.store(data, target, lock=False, compute=True, scheduler=get)
    return writer.saw_valid


def _halved(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile of the next overview level: half the size (rounded up, as GDAL), twice the
    pixel."""
    width, height = -(-profile["width"] // 2), -(-profile["height"] // 2)
    return {
        **profile,
        "width": width,
        "height": height,
        "transform": profile["transform"] @ Affine.scale(2),
        "blockxsize": _tile_size(profile["blockxsize"], width),
        "blockysize": _tile_size(profile["blockysize"], height),
    }


def _build_overviews(path: Path, factors: list[int], resampling: Resampling) -> None:
    """Add internal overviews at `factors`, band by band (see the module docstring).

    On all cores: GDAL splits the work by tiles, so the overviews are the same as on one (all
    levels of a Sentinel-2 class map took 0.8 s on 2 cores instead of 1.4 s, before its 2×
    level was streamed).
    """
    if not factors:
        return
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(path, "r+") as dst:
        dst.build_overviews(factors, resampling)


def _overview_factors(width: int, height: int, blocksize: int) -> list[int]:
    """Factors 2, 4, ... until a level fits in one tile: the levels GDAL's COG driver picks."""
    factors: list[int] = []
    factor = 1
    while max(width, height) // factor > blocksize:
        factor *= 2
        factors.append(factor)
    return factors


def _to_cog(src: Path, dst: Path, predictor: int, blocksize: int) -> None:
    """Convert the tiled GeoTIFF to a Cloud-Optimized GeoTIFF, copying its overviews."""
    rasterio.shutil.copy(
        src,
        dst,
        driver="COG",
        COMPRESS="DEFLATE",
        PREDICTOR=str(predictor),
        BLOCKSIZE=blocksize,
        OVERVIEWS="FORCE_USE_EXISTING",
        NUM_THREADS="ALL_CPUS",
        BIGTIFF="IF_SAFER",
    )


def _disk_problem(exc: Exception, directory: Path) -> str | None:
    """'disk full' (or quota) when `exc` is an I/O failure caused by a full disk, else None."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return _FULL_ERRNOS[exc.errno]
    # rasterio raises SystemError ("Unknown GDAL Error") when GDAL fails without a message.
    io_failure = isinstance(exc, OSError | CPLE_BaseError | SystemError)
    if io_failure and shutil.disk_usage(directory).free < _NEARLY_FULL_BYTES:
        return _FULL_ERRNOS[errno.ENOSPC]
    return None


def _check_tiles_inside(path: Path) -> None:
    """Raise OSError if a full-resolution tile ends past the end of the file.

    On a full disk GDAL's COG driver can report success after a failed write, leaving a
    truncated file. Full-resolution tiles come last in both layouts, so a truncated file always
    has some beyond its end.
    """
    size = path.stat().st_size
    with rasterio.open(path) as src:
        for bidx in src.indexes:
            for (row, col), _ in src.block_windows(bidx):
                offset = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=bidx)
                length = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=bidx)
                if offset and length and int(offset) + int(length) > size:
                    raise OSError(errno.EIO, "tiles end past the end of the file", str(path))


def _check_metadata(written: Path, metadata: _Metadata, path: str | Path) -> None:
    """Raise RuntimeError if GDAL dropped any of the metadata the writer attached."""
    with rasterio.open(written) as src:
        lost = metadata.lost_in(src)
    if lost:
        raise RuntimeError(f"{path}: GDAL did not keep the {', '.join(lost)}")


@dataclass(frozen=True)
class _Metadata:
    """What the writer attaches besides pixels, kept together to apply it and then check it."""

    nodata: float | None
    colormap: Colormap | None
    tags: dict[str, str]
    descriptions: tuple[str, ...] | None

    @classmethod
    def build(
        cls,
        data: da.Array,
        nodata: float | None,
        *,
        colormap: Colormap | None,
        class_names: Mapping[int, str] | None,
        band_names: Sequence[str] | None,
        tags: Mapping[str, str] | None,
    ) -> _Metadata:
        """Validate the writer's metadata arguments against the (band, y, x) data."""
        if band_names is not None and len(band_names) != data.shape[0]:
            raise ValueError(f"{len(band_names)} band names for {data.shape[0]} bands")
        if colormap is not None and (data.shape[0] != 1 or data.dtype.name not in _COLORMAP_DTYPES):
            warnings.warn(
                BandfusionWarning(
                    f"no colour map written: GeoTIFF keeps one only for a single uint8 or uint16 "
                    f"band, not {data.shape[0]} band(s) of {data.dtype.name}"
                ),
                stacklevel=3,
            )
            colormap = None
        all_tags = dict(tags or {})
        if class_names is not None:
            names = {str(key): name for key, name in sorted(class_names.items())}
            all_tags["CLASS_NAMES"] = json.dumps(names)
        return cls(nodata, colormap, all_tags, tuple(band_names) if band_names else None)

    def apply(self, dst: rasterio.io.DatasetWriter) -> None:
        """Write colour map, tags and band descriptions (nodata is a creation option)."""
        if self.colormap:
            dst.write_colormap(1, self.colormap)
        dst.update_tags(**self.tags)
        for bidx, name in enumerate(self.descriptions or (), start=1):
            dst.set_band_description(bidx, name)

    def lost_in(self, src: rasterio.io.DatasetReader) -> list[str]:
        """Names of the parts of this metadata that `src` does not hold."""
        checks = {
            "nodata": _same_nodata(src.nodata, self.nodata),
            "colour map": not self.colormap or _has_colormap(src, self.colormap),
            "tags": self.tags.items() <= src.tags().items(),
            "band descriptions": self.descriptions is None or src.descriptions == self.descriptions,
        }
        return [name for name, kept in checks.items() if not kept]


def _same_nodata(found: float | None, expected: float | None) -> bool:
    """Nodata equality where NaN equals NaN."""
    if found is None or expected is None:
        return found is expected
    return found == expected or (np.isnan(found) and np.isnan(expected))


def _has_colormap(src: rasterio.io.DatasetReader, colormap: Colormap) -> bool:
    """True when band 1's colour table holds every entry of `colormap`."""
    try:
        table = src.colormap(1)
    except ValueError:  # rasterio's answer for a band without a colour table
        return False
    return all(table.get(key) == tuple(rgba) for key, rgba in colormap.items())


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
