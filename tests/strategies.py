"""Hypothesis strategies for hostile rasters, and the files they are written as: mutations of
real GeoTIFFs (`BASES`, `mutate`), valid rasters with odd dtypes, values and layouts
(`odd_rasters`, `write_odd`), and rasters with random masks, alpha bands or band files covering
part of the grid (`masked_rasters`, `partial_coverage`). Shared by the fuzz tests of the
reader, the engine and the CLI."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from hypothesis import strategies as st
from rasterio.enums import ColorInterp

DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32",
          "float64")  # fmt: skip

BASES: dict[str, dict[str, Any]] = {
    "tiled-deflate-uint16": {"count": 3, "dtype": "uint16", "tiled": True, "compress": "deflate"},
    "striped-lzw-float32": {"count": 2, "dtype": "float32", "blockysize": 5, "compress": "lzw"},
    "striped-raw-int16": {"count": 1, "dtype": "int16", "blockysize": 5},
    "tiled-band-uint8": {"count": 4, "dtype": "uint8", "tiled": True, "interleave": "band"},
    "striped-packbits-int32": {"count": 3, "dtype": "int32", "compress": "packbits"},
    "tiled-zstd-float64": {
        "count": 2,
        "dtype": "float64",
        "tiled": True,
        "compress": "zstd",
        "predictor": 3,
    },
    "bigtiff-lzw-uint16": {"count": 2, "dtype": "uint16", "compress": "lzw", "bigtiff": "YES"},
    "described-scaled-int16": {
        "count": 3,
        "dtype": "int16",
        "compress": "deflate",
        "descriptions": ("B02", "B03", "B04"),
        "scale": 1e-4,
    },
}


def write_base(path: Path, options: dict[str, Any]) -> Path:
    """A 40 x 33 GeoTIFF with nodata 0 (the top-left 2 x 3 pixels), a CRS and `options`."""
    options = dict(options)
    descriptions = options.pop("descriptions", None)
    scale = options.pop("scale", None)
    if options.pop("tiled", False):
        options.update(tiled=True, blockxsize=16, blockysize=16)
    count, dtype = options["count"], options["dtype"]
    values = (np.arange(count * 33 * 40).reshape(count, 33, 40) * 7919 % 200 + 1).astype(dtype)
    values[:, :2, :3] = 0
    profile = {
        "driver": "GTiff",
        "width": 40,
        "height": 33,
        "crs": "EPSG:32633",
        "nodata": 0,
        "transform": Affine(10, 0, 500000, 0, -10, 5000000),
        **options,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
        if descriptions:
            for bidx, name in enumerate(descriptions, start=1):
                dst.set_band_description(bidx, name)
        if scale:
            dst.scales = (scale,) * count
            dst.offsets = (-0.1,) * count
        dst.update_tags(SENSOR="fuzz")
    return path


def ifd_entries(data: bytes | bytearray) -> tuple[list[int], int]:
    """Offsets of the first IFD's entries of a little-endian TIFF or BigTIFF, and entry size."""
    if data[:4] == b"II+\x00":
        start = int.from_bytes(data[8:16], "little")
        count = int.from_bytes(data[start : start + 8], "little")
        first, size = start + 8, 20
    else:
        start = int.from_bytes(data[4:8], "little")
        count = int.from_bytes(data[start : start + 2], "little")
        first, size = start + 2, 12
    return list(range(first, min(first + size * count, len(data) - size + 1), size)), size


INTERESTING = [0, 1, 2, 3, 7, 8, 15, 16, 17, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 40000]  # fmt: skip
SPECIAL_DOUBLES = [0.0, -0.0, math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 1.0, -1.0]

mutations = st.one_of(
    st.tuples(
        st.just("entry"),
        st.integers(0, 99),
        st.sampled_from(["type", "count", "value"]),
        st.sampled_from(INTERESTING) | st.integers(0, 2**32 - 1),
    ),
    st.tuples(st.just("pointee"), st.integers(0, 99), st.integers(0, 255), st.integers(0, 255)),
    st.tuples(
        st.just("double"), st.integers(0, 99), st.integers(0, 15), st.sampled_from(SPECIAL_DOUBLES)
    ),
    st.tuples(st.just("head"), st.integers(0, 511), st.integers(0, 255)),
    st.tuples(st.just("byte"), st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
)


def mutate(data: bytes, ops: list[tuple[Any, ...]], cut: float | None) -> bytes:
    """Apply `ops` to a GeoTIFF's bytes: IFD entry fields, the data entries point to, doubles
    of the georeferencing, header bytes, any byte; then cut it at `cut` (a fraction) if given."""
    out = bytearray(data)
    for op in ops:
        entries, size = ifd_entries(out)
        wide = size == 20  # BigTIFF: 8-byte counts and values
        if op[0] in ("entry", "pointee", "double") and entries:
            entry = entries[op[1] % len(entries)]
            kind, count, value = struct.unpack_from("<HQQ" if wide else "<HII", out, entry + 2)
            if op[0] == "entry":
                field, new = op[2], op[3]
                if field == "type":
                    struct.pack_into("<H", out, entry + 2, new % 20)
                else:
                    at = entry + (4 if field == "count" else (12 if wide else 8))
                    struct.pack_into("<Q" if wide else "<I", out, at, new)
            elif op[0] == "pointee" and value + op[2] < len(out):
                out[value + op[2]] = op[3]
            elif op[0] == "double" and kind == 12:
                at = value + 8 * (op[2] % max(count, 1))
                if at + 8 <= len(out):
                    struct.pack_into("<d", out, at, op[3])
        elif op[0] == "head":
            out[op[1] % len(out)] = op[2]
        elif op[0] == "byte":
            out[int(op[1] * len(out))] = op[2]
    if cut is not None:
        del out[int(cut * len(out)) :]
    return bytes(out)


@st.composite
def mutated_tiffs(draw: st.DrawFn) -> tuple[str, list[tuple[Any, ...]], float | None]:
    base = draw(st.sampled_from(sorted(BASES)))
    ops = draw(st.lists(mutations, min_size=0, max_size=6))
    cut = draw(st.none() | st.floats(0, 1, exclude_max=True))
    return base, ops, cut


def special_values(dtype: np.dtype[Any]) -> list[float]:
    """The values of `dtype` at its edges: extremes, zero, and NaN/±inf/subnormals for floats."""
    if dtype.kind == "f":
        info = np.finfo(dtype)
        return [math.nan, math.inf, -math.inf, 0.0, -0.0, float(info.max), float(info.min),
                float(info.smallest_subnormal), float(info.tiny), -1.0]  # fmt: skip
    iinfo = np.iinfo(dtype)
    return [int(iinfo.min), int(iinfo.max), 0, 1] + ([-1] if iinfo.min < 0 else [])


def nodata_choices(dtype: np.dtype[Any]) -> list[float]:
    """Nodata values rasterio writes and reads back for `dtype`.

    Not uint64's or int64's maximum (rasterio refuses them) nor int64's minimum (rasterio
    1.4.4 writes it as '-9.2233720368547758e+18', which GDAL reads back as -9).
    """
    choices = [v for v in special_values(dtype) if not (dtype.kind == "f" and v == 0.0)]
    if dtype.itemsize == 8 and dtype.kind in "iu":
        iinfo = np.iinfo(dtype)
        choices = [v for v in choices if v not in (iinfo.min, iinfo.max)]
    return [0, *choices]


class_id_lists = st.sampled_from([(0, 1, 2), (255, 0, 7), (-5, 1000, 70000), (3,)]) | st.lists(
    st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=4, unique=True
).map(tuple)


@st.composite
def odd_rasters(draw: st.DrawFn) -> dict[str, Any]:
    """A valid raster of any dtype GDAL writes, 1..400 bands, 1..40 px a side, odd values."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    bands = draw(st.integers(1, 6) | st.integers(1, 400) | st.sampled_from([300, 400]))
    height = draw(st.sampled_from([1, 40]) | st.integers(1, 40))
    width = draw(st.sampled_from([1, 40]) | st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.kind == "f":
        spread = draw(st.sampled_from([1.0, 1e4, 1e30]))
        values = (rng.standard_normal((bands, height, width)) * spread).astype(dtype)
    else:
        iinfo = np.iinfo(dtype)
        low, high = draw(st.sampled_from([(iinfo.min, iinfo.max), (0, 3), (0, 10000)]))
        low, high = max(low, iinfo.min), min(high, iinfo.max)
        values = rng.integers(low, high, size=(bands, height, width), dtype=dtype, endpoint=True)
    specials = draw(
        st.lists(
            st.tuples(
                st.integers(0, bands - 1),
                st.integers(0, height - 1),
                st.integers(0, width - 1),
                st.sampled_from(special_values(dtype)),
            ),
            max_size=8,
        )
    )
    for band, row, col, value in specials:
        values[band, row, col] = value
    nodata = draw(st.none() | st.sampled_from(nodata_choices(dtype)) | st.just("pixel"))
    if nodata == "pixel":  # a value the raster holds, so some pixels are nodata
        nodata = values.flat[0].item() if math.isfinite(values.flat[0]) else None
        if dtype.itemsize == 8 and dtype.kind in "iu" and nodata is not None:
            nodata = None if abs(nodata) >= 2**53 else nodata  # nodata is a float in rasterio
    return {
        "values": values,
        "nodata": nodata,
        "layout": draw(st.sampled_from(["striped", "tiled", "band"])),
        "compress": draw(st.sampled_from([None, "deflate", "lzw"])),
        "crs": draw(st.sampled_from(["EPSG:32633", None])),
        "described": draw(st.booleans()),
        "scale": draw(st.sampled_from([None, None, (1e-4, -0.1), (2.5, 1000.0)])),
        "class_ids": draw(class_id_lists),
    }


def write_odd(path: Path, raster: dict[str, Any]) -> list[str]:
    """Write `raster` as a GeoTIFF; returns the band names open_scene must give."""
    values = raster["values"]
    bands, height, width = values.shape
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": bands,
        "dtype": values.dtype.name,
        "nodata": raster["nodata"],
        "crs": raster["crs"],
        "transform": Affine(20, 0, 300000, 0, -20, 4000000),
    }
    if raster["layout"] == "tiled":
        profile.update(tiled=True, blockxsize=16, blockysize=16)
    elif raster["layout"] == "band":
        profile.update(interleave="band")
    if raster["compress"]:
        profile["compress"] = raster["compress"]
    names = [f"band {i} ✓" for i in range(1, bands + 1)]
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
        if raster["described"]:
            for bidx, name in enumerate(names, start=1):
                dst.set_band_description(bidx, name)
        if raster["scale"]:
            dst.scales = (raster["scale"][0],) * bands
            dst.offsets = (raster["scale"][1],) * bands
    return names if raster["described"] else [f"b{i}" for i in range(1, bands + 1)]


# ---------------------------------------------------------------------------------------------
# what a raster says is not there: masks, alpha bands, band files covering part of the grid

MASK_DTYPES = ("uint8", "uint16", "int16", "float32")
MASK_KINDS = ("internal", "alpha", "per-band")
GRID = Affine(10, 0, 500000, 0, -10, 5000000)
"""The scene grid of the mask and coverage strategies: 10 m pixels, EPSG:32633."""


@st.composite
def masked_rasters(draw: st.DrawFn) -> dict[str, Any]:
    """Random pixels with a random mask: a GDAL per-dataset (internal) mask, an alpha band, or
    a mask of each band's own (a VRT); `valid` is what the mask leaves, (y, x)."""
    kind = draw(st.sampled_from(MASK_KINDS))
    bands = draw(st.integers(1, 4))
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = np.dtype(draw(st.sampled_from(MASK_DTYPES)))
    values = rng.integers(1, 120, (bands, height, width)).astype(dtype)
    share = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
    layers = 1 if kind != "per-band" else bands
    masks = rng.random((layers, height, width)) >= share  # True: valid
    return {"kind": kind, "values": values, "masks": masks, "valid": masks.all(axis=0)}


def write_masked(folder: Path, raster: dict[str, Any], transform: Affine = GRID) -> Path:
    """Write `masked_rasters`' raster in `folder` as its kind says; returns the path to open."""
    values, masks, kind = raster["values"], raster["masks"], raster["kind"]
    if kind == "per-band":
        data = write_plain(folder / "data.tif", values, transform)
        mask_file = write_plain(folder / "masks.tif", masks.astype(np.uint8) * 255, transform)
        return write_per_band_vrt(folder / "per-band.vrt", data, mask_file)
    if kind == "alpha":
        top = np.iinfo(values.dtype).max if values.dtype.kind in "iu" else 255
        alpha = np.where(masks[0], top, 0).astype(values.dtype)[None]
        path = write_plain(folder / "alpha.tif", np.concatenate([values, alpha]), transform)
        with rasterio.open(path, "r+") as dst:
            dst.colorinterp = [ColorInterp.gray] * len(values) + [ColorInterp.alpha]
        return path
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        path = write_plain(folder / "masked.tif", values, transform, mask=masks[0])
    return path


def write_plain(
    path: Path, values: np.ndarray, transform: Affine = GRID, mask: np.ndarray | None = None
) -> Path:
    """A tiled GeoTIFF of `values` (band, y, x) in EPSG:32633, no nodata; `mask`, if given,
    written as its GDAL mask."""
    bands, height, width = values.shape
    # MINISBLACK: GDAL would make band 4 of a uint8 file an alpha band, which is no data band
    profile = {"driver": "GTiff", "count": bands, "height": height, "width": width,
               "dtype": values.dtype.name, "crs": "EPSG:32633", "transform": transform,
               "tiled": True, "blockxsize": 16, "blockysize": 16,
               "photometric": "MINISBLACK"}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
        if mask is not None:
            dst.write_mask(mask)
    return path


def write_per_band_vrt(path: Path, data: Path, masks: Path) -> Path:
    """A VRT of `data` whose band k has band k of `masks` as its own mask band."""
    with rasterio.open(data) as src:
        width, height, count = src.width, src.height, src.count
        kind = {"uint8": "Byte"}.get(src.dtypes[0], src.dtypes[0].capitalize())
        geotransform = ",".join(str(v) for v in src.transform.to_gdal())

    def source(name: str, band: int) -> str:
        return (
            f'<SimpleSource><SourceFilename relativeToVRT="0">{name}</SourceFilename>'
            f"<SourceBand>{band}</SourceBand></SimpleSource>"
        )

    body = "".join(
        f'<VRTRasterBand dataType="{kind}" band="{k}">{source(str(data), k)}'
        f'<MaskBand><VRTRasterBand dataType="Byte">{source(str(masks), k)}</VRTRasterBand>'
        "</MaskBand></VRTRasterBand>"
        for k in range(1, count + 1)
    )
    path.write_text(
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>EPSG:32633</SRS>'
        f"<GeoTransform>{geotransform}</GeoTransform>{body}</VRTDataset>"
    )
    return path


@st.composite
def partial_coverage(draw: st.DrawFn) -> dict[str, Any]:
    """A grid of 4..40 px a side, one band file covering it all, then 1..3 band files covering
    random sub-windows of it, at its resolution or twice as coarse, of one random data type,
    declaring no nodata;
    `valid` (y, x) is where every file has pixels."""
    scale = draw(st.sampled_from([1, 2]))
    height, width = draw(st.integers(2, 20)) * scale, draw(st.integers(2, 20)) * scale
    valid = np.ones((height, width), dtype=bool)
    windows = []
    for _ in range(draw(st.integers(1, 3))):
        rows, cols = height // scale, width // scale
        top, left = draw(st.integers(0, rows - 1)), draw(st.integers(0, cols - 1))
        bottom, right = draw(st.integers(top + 1, rows)), draw(st.integers(left + 1, cols))
        windows.append((scale, top, left, bottom - top, right - left))
        covered = np.zeros_like(valid)
        covered[top * scale : bottom * scale, left * scale : right * scale] = True
        valid &= covered
        scale = draw(st.sampled_from([1, 2])) if height % 2 == 0 == width % 2 else 1
    dtype = draw(st.sampled_from(MASK_DTYPES))
    return {"shape": (height, width), "windows": windows, "valid": valid, "dtype": dtype}


def write_partial(folder: Path, coverage: dict[str, Any]) -> list[Path]:
    """`partial_coverage`'s band files (B01.tif covering the grid, then one a window)."""
    rng = np.random.default_rng(0)
    height, width = coverage["shape"]
    dtype = coverage["dtype"]
    paths = [write_plain(folder / "B01.tif", rng.integers(1, 99, (1, height, width)).astype(dtype))]
    for number, (scale, top, left, rows, cols) in enumerate(coverage["windows"], start=2):
        transform = GRID @ Affine.translation(left * scale, top * scale) @ Affine.scale(scale)
        values = rng.integers(1, 99, (1, rows, cols)).astype(dtype)
        paths.append(write_plain(folder / f"B{number:02d}.tif", values, transform))
    return paths
