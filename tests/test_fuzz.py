"""Fuzzing: random bytes, random TIFF headers, mutated GeoTIFFs, valid-but-odd rasters and
mutated model directories, fed to open_scene, predict_scene, `bandfusion predict` and load_model.

Only bandfusion's exceptions may escape, each one line naming the file; the CLI exits 0 or 2
(never 1, an internal error) and leaves nothing at the output path when it fails. The default
run is short and derandomized; `BANDFUSION_FUZZ_EXAMPLES=N` runs every test with N random
examples: the long pass of docs/hostile-inputs.md.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import rasterio
import torch
import xarray as xr
from affine import Affine
from bandfusion.cli import main
from bandfusion.engine.predict import class_map_encoding, predict_proba_scene, predict_scene
from bandfusion.errors import BandfusionError, BandfusionWarning, ModelFileError, SceneError
from bandfusion.io.scene import MAX_SCENE_SIDE, open_scene
from bandfusion.models.checkpoint import TrainedModel, load_model, save_model
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.metadata import ModelMetadata
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st

LONG_PASS = os.environ.get("BANDFUSION_FUZZ_EXAMPLES")


def fuzz(examples: int) -> settings:
    """`examples` derandomized examples by default; BANDFUSION_FUZZ_EXAMPLES=N: N random ones."""
    return settings(
        max_examples=int(LONG_PASS) if LONG_PASS else examples,
        derandomize=not LONG_PASS,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32",
          "float64")  # fmt: skip
COMPLEX_DTYPES = ("complex_int16", "complex64", "complex128")
MAX_FUZZ_BANDS = 2048
"""Mutated headers can claim up to 65535 bands; GDAL then retries a corrupt strip once per
band (~2 ms each), so scenes with more bands are opened but not computed."""
MAX_FUZZ_PIXELS = 1 << 20
"""Bigger (mutated) scenes are computed on a 64 x 64 corner; the CLI is not run on them."""

_names = itertools.count()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@contextlib.contextmanager
def case_dir(scratch: Path) -> Iterator[Path]:
    """A fresh directory per example (GDAL and the scene reader cache handles by path)."""
    directory = scratch / f"case{next(_names)}"
    directory.mkdir()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def check_ours(exc: BaseException, path: Path) -> None:
    """Re-raise anything but a BandfusionError; ours must be one line naming `path`."""
    if not isinstance(exc, BandfusionError):
        raise exc
    message = str(exc)
    assert "\n" not in message, message
    assert str(path) in message, message
    event(f"{type(exc).__name__}: {problem(message, path)}")


def problem(message: str, path: Path) -> str:
    """The kind of problem a message names: without the path, GDAL's reason or numbers."""
    text = message.replace(str(path), "PATH").split(" (")[0].split(", got ")[0]
    return re.sub(r"-?\d[\d,.e+-]*", "N", text)[:90]


# ---------------------------------------------------------------------------------------------
# models for any band list


_models: dict[tuple[tuple[str, ...], tuple[int, ...]], TrainedModel] = {}
_model_dirs: dict[tuple[str, ...], Path] = {}


def model_for(bands: list[str], class_ids: tuple[int, ...] = (0, 1, 2)) -> TrainedModel:
    """An untrained model taking exactly `bands` (built, not trained: any band count is cheap)."""
    key = (tuple(bands), class_ids)
    if key not in _models:
        torch.manual_seed(len(bands))
        net = SpectralFusionNet(len(bands), len(class_ids), hidden=(4,))
        meta = ModelMetadata(
            bands=list(bands),
            class_ids=list(class_ids),
            class_names=[f"class {c}" for c in class_ids],
            class_colors=[(37 * i % 256, 90, 200) for i in range(len(class_ids))],
            architecture=net.config(),
        )
        _models[key] = TrainedModel(net.eval(), meta)
    return _models[key]


def model_dir_for(bands: list[str], scratch: Path) -> Path:
    """`model_for(bands)` saved once under `scratch`, for the CLI."""
    key = tuple(bands)
    if key not in _model_dirs:
        _model_dirs[key] = save_model(model_for(bands), scratch / f"model{next(_names)}")
    return _model_dirs[key]


# ---------------------------------------------------------------------------------------------
# the scene path: open_scene → predict_scene, and the CLI


def open_and_predict(path: Path) -> xr.DataArray | None:
    """open_scene and a computed predict_scene (on a corner of big scenes); None if skipped."""
    scene = open_scene(path)
    note(f"scene {dict(scene.sizes)} {scene.dtype}")
    if scene.sizes["band"] > MAX_FUZZ_BANDS:
        event("opened; not computed: too many bands")
        return None
    if scene.sizes["y"] * scene.sizes["x"] > MAX_FUZZ_PIXELS:
        scene = scene.isel(y=slice(0, 64), x=slice(0, 64))
    model = model_for([str(b) for b in scene["band"].values])
    classes = predict_scene(scene, model, device="cpu").compute()
    assert classes.shape == scene.shape[1:]
    event("map")
    return classes


def scene_survives(path: Path) -> None:
    """open_scene + predict_scene on `path`: a map or one of our one-line errors."""
    try:
        open_and_predict(path)
    except Exception as exc:
        check_ours(exc, path)


def run_cli(args: list[str]) -> tuple[int, str]:
    """The `bandfusion` entry point in-process: (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(args)
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, err.getvalue()


DECODE_NOISE = "UnicodeDecodeError: 'utf-8' codec can't decode"


def cli_survives(path: Path, scratch: Path) -> None:
    """`bandfusion predict` on `path`: exit 0 with a readable map, or exit 2 with one line
    naming the file and nothing at the output path; never 1 (an internal error)."""
    try:
        scene = open_scene(path)
    except BandfusionError:
        bands = ["b1"]  # the CLI must refuse the file too, whatever the model
    else:
        if scene.sizes["band"] > MAX_FUZZ_BANDS or scene[0].size > MAX_FUZZ_PIXELS:
            return
        bands = [str(b) for b in scene["band"].values]
    out = path.with_name("map.tif")
    code, err = run_cli(
        ["predict", str(path), "-m", str(model_dir_for(bands, scratch)), "-o", str(out), "-q"]
    )
    note(f"exit {code}: {err}")
    event(f"exit {code}")
    # rasterio's GDAL log handler prints a UnicodeDecodeError for each GDAL message quoting
    # non-UTF-8 bytes of the file: known, see test_a_gdal_message_that_is_not_utf8_prints_...
    lines = [line for line in err.strip().splitlines() if not line.startswith(DECODE_NOISE)]
    if DECODE_NOISE in err:
        event("stderr holds rasterio's UnicodeDecodeError")
    if code == 0:
        with rasterio.open(out) as src:
            assert src.read(1).shape == (src.height, src.width)
        out.unlink()
    else:
        assert code == 2, err
        assert len(lines) == 1 and lines[0].startswith("bandfusion: error: "), err
        assert str(path) in lines[0], err
        assert not out.exists()
    assert not list(path.parent.glob(".map.tif*")), "temporary files left behind"


# ---------------------------------------------------------------------------------------------
# random bytes and random TIFF headers

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@fuzz(100)
@given(
    head=st.sampled_from((b"", *TIFF_MAGIC)),
    body=st.binary(max_size=4096),
)
def test_random_bytes(scratch: Path, head: bytes, body: bytes):
    with case_dir(scratch) as directory:
        path = directory / "x.tif"
        path.write_bytes(head + body)
        scene_survives(path)


TAG_VALUES: dict[int, list[int]] = {  # the first two: typical values; then odd ones
    256: [16, 40, 1, 2, 17, 65535, 0x7FFFFFFF, 0],  # ImageWidth
    257: [16, 33, 1, 2, 40, 65535, 0x7FFFFFFF, 0],  # ImageLength
    258: [8, 16, 32, 64, 1, 12, 24, 0, 128],  # BitsPerSample
    259: [1, 8, 5, 7, 32773, 34887, 50000, 34925, 34712, 2, 65535],  # Compression
    262: [1, 0, 2, 3, 4, 5, 6, 8, 32844],  # Photometric
    273: [],  # StripOffsets: into the payload
    277: [1, 3, 2, 4, 300, 65535, 0],  # SamplesPerPixel
    278: [0xFFFFFFFF, 40, 1, 2, 5, 16, 0],  # RowsPerStrip
    279: [1024, 256, 1, 16, 64, 1600, 0, 0xFFFFFFFF],  # StripByteCounts
    284: [1, 2, 0, 3],  # PlanarConfig
    317: [1, 2, 3, 34892, 0],  # Predictor
    322: [16, 32, 256, 0, 15],  # TileWidth
    323: [16, 32, 256, 0, 15],  # TileLength
    324: [],  # TileOffsets
    325: [256, 1024, 1, 64, 0, 0xFFFFFFFF],  # TileByteCounts
    338: [0, 1, 2],  # ExtraSamples
    339: [1, 2, 3, 4, 5, 6, 0, 7],  # SampleFormat: uint, int, float, void, cint, cfloat
    33550: [],  # ModelPixelScale
    33922: [],  # ModelTiepoint
    34264: [],  # ModelTransformation
    34735: [],  # GeoKeyDirectory
    34736: [],  # GeoDoubleParams
    34737: [],  # GeoAsciiParams
    42112: [],  # GDAL_METADATA
    42113: [],  # GDAL_NODATA
}


STRIPS = (256, 257, 258, 259, 262, 273, 277, 278, 279)
TILES = (256, 257, 258, 259, 262, 277, 322, 323, 324, 325)
OFFSET_TAGS = frozenset({273, 324, 33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113})
TIFF_TYPES = [3, 4, 12, 2, 1, 5, 11, 16, 0, 13, 99]  # SHORT, LONG, DOUBLE, ASCII, ...


@st.composite
def tiff_headers(draw: st.DrawFn) -> bytes:
    """A classic TIFF: the tags of a striped or tiled image, each perhaps dropped or odd, extra
    tags, then a random payload the offsets point into."""
    big_endian = draw(st.booleans())
    order = ">" if big_endian else "<"
    core = draw(st.sampled_from([STRIPS, TILES]))
    tags = [tag for tag in core if draw(st.integers(0, 9))]  # each dropped one time in ten
    tags += draw(st.lists(st.sampled_from(sorted(set(TAG_VALUES) - set(core))), max_size=6))
    payload = draw(st.binary(max_size=1024))
    payload_start = 8 + 2 + 12 * len(tags) + 4
    entries = []
    for tag in sorted(tags) if draw(st.integers(0, 9)) else tags:
        odd = draw(st.integers(0, 11)) == 0
        kind = draw(st.sampled_from(TIFF_TYPES if odd else [3, 4]))
        count = draw(st.sampled_from([1, 2, 3, 4, 8, 16, 0, 0xFFFFFFFF])) if odd else 1
        if tag in OFFSET_TAGS and not odd:
            value = draw(st.integers(payload_start, payload_start + len(payload)))
        elif TAG_VALUES[tag] and not odd:
            typical = draw(st.booleans())
            value = draw(st.sampled_from(TAG_VALUES[tag][: 2 if typical else None]))
        else:
            value = draw(st.integers(0, 2**32 - 1))
        if kind == 3 and count == 1:
            value &= 0xFFFF
            if big_endian:
                value <<= 16  # a SHORT sits in the first two bytes of the field
        entries.append(struct.pack(f"{order}HHII", tag, kind, count, value & 0xFFFFFFFF))
    header = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(f"{order}I", 8)
    ifd = struct.pack(f"{order}H", len(entries)) + b"".join(entries) + struct.pack(f"{order}I", 0)
    return header + ifd + payload


@fuzz(100)
@given(tiff=tiff_headers())
def test_random_tiff_headers(scratch: Path, tiff: bytes):
    with case_dir(scratch) as directory:
        path = directory / "header.tif"
        path.write_bytes(tiff)
        scene_survives(path)


# ---------------------------------------------------------------------------------------------
# mutated real GeoTIFFs

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


@pytest.fixture(scope="module")
def bases(scratch: Path) -> dict[str, bytes]:
    return {name: write_base(scratch / f"{name}.tif", o).read_bytes() for name, o in BASES.items()}


def test_bases_are_valid(scratch: Path, bases: dict[str, bytes]):
    """Unmutated, every base file gives a full map: the mutations start from good files."""
    for name, data in bases.items():
        with case_dir(scratch) as directory:
            path = directory / f"{name}.tif"
            path.write_bytes(data)
            scene = open_scene(path)
            model = model_for([str(b) for b in scene["band"].values])
            classes = predict_scene(scene, model, device="cpu").compute()
            assert (classes.values[:2, :3] == 255).all() and (classes.values[2:] != 255).all()


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


@fuzz(150)
@given(mutation=mutated_tiffs())
def test_mutated_geotiffs(scratch: Path, bases: dict[str, bytes], mutation):
    base, ops, cut = mutation
    with case_dir(scratch) as directory:
        path = directory / "mutated.tif"
        path.write_bytes(mutate(bases[base], ops, cut))
        scene_survives(path)


@fuzz(30)
@given(mutation=mutated_tiffs())
@example(  # GDAL's PackBits error quotes the file's bytes: rasterio's decode error on stderr
    mutation=("striped-packbits-int32", [("pointee", 2, 196, 128), ("entry", 0, "value", 41)], None)
)
def test_mutated_geotiffs_through_the_cli(scratch: Path, bases: dict[str, bytes], mutation):
    base, ops, cut = mutation
    with case_dir(scratch) as directory:
        path = directory / "mutated.tif"
        path.write_bytes(mutate(bases[base], ops, cut))
        cli_survives(path, scratch)


# ---------------------------------------------------------------------------------------------
# valid but odd rasters


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


def expected_valid(path: Path, raster: dict[str, Any]) -> np.ndarray:
    """The documented rule, from the file's own nodata: a pixel is nodata where any band is
    its nodata value or not finite (after scale and offset, computed in float32)."""
    with rasterio.open(path) as src:
        nodata = src.nodata
    values = raster["values"]
    missing = np.zeros(values.shape, dtype=bool) if nodata is None else values == nodata
    if raster["scale"]:
        scale, offset = (np.float32(v) for v in raster["scale"])
        with np.errstate(over="ignore", invalid="ignore"):
            values = values.astype(np.float32) * scale + offset
    finite = np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
    return (finite & ~missing).all(axis=0)


@fuzz(40)
@given(raster=odd_rasters())
@example(  # a float raster with NaN nodata: refused as 'bands differ in nodata' before the fix
    raster={
        "values": np.full((3, 2, 2), np.nan, dtype=np.float32),
        "nodata": math.nan,
        "layout": "striped",
        "compress": None,
        "crs": None,
        "described": False,
        "scale": None,
        "class_ids": (0, 1, 2),
    }
)
def test_odd_rasters_give_full_maps(scratch: Path, raster: dict[str, Any]):
    bands = raster["values"].shape[0]
    event(f"{raster['values'].dtype}, {1 if bands == 1 else '2-9' if bands < 10 else '10+'} bands")
    with case_dir(scratch) as directory:
        path = directory / "odd.tif"
        names = write_odd(path, raster)
        scene = open_scene(path)
        assert list(scene["band"].values) == names
        expected_dtype = np.float32 if raster["scale"] else raster["values"].dtype
        assert scene.dtype == expected_dtype
        model = model_for(names, raster["class_ids"])
        classes = predict_scene(scene, model, device="cpu").compute()
        dtype, nodata = class_map_encoding(list(raster["class_ids"]))
        assert classes.shape == raster["values"].shape[1:]
        assert classes.dtype == dtype and classes.attrs["nodata"] == nodata
        valid = expected_valid(path, raster)
        np.testing.assert_array_equal(classes.values != nodata, valid)
        assert np.isin(classes.values[valid], raster["class_ids"]).all()
        proba = predict_proba_scene(scene, model, device="cpu").compute()
        assert proba.shape == (len(raster["class_ids"]), *valid.shape)
        assert proba.dtype == np.float32 and np.isnan(proba.values[:, ~valid]).all()


@fuzz(10)
@given(raster=odd_rasters())
def test_odd_rasters_through_the_cli(scratch: Path, raster: dict[str, Any]):
    with case_dir(scratch) as directory:
        path = directory / "odd.tif"
        names = write_odd(path, raster)
        out = directory / "map.tif"
        model = model_dir_for(names, scratch)
        code, err = run_cli(["predict", str(path), "-m", str(model), "-o", str(out), "-q"])
        assert code == 0, err
        expected = predict_scene(open_scene(path), load_model(model), device="cpu").values
        with rasterio.open(out) as src:
            np.testing.assert_array_equal(src.read(1), expected)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 1, 17), (300, 5, 1)])
def test_complex_rasters_are_refused(tmp_path: Path, dtype: str, shape: tuple[int, int, int]):
    path = tmp_path / f"{dtype}.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        count=shape[0],
        height=shape[1],
        width=shape[2],
        dtype=dtype,
        crs="EPSG:4326",
        transform=Affine(0.1, 0, 5, 0, -0.1, 50),
    ) as dst:
        if dtype != "complex_int16":  # numpy has no such dtype; GDAL fills the file with zeros
            dst.write(np.ones(shape, dtype=dtype))
    with pytest.raises(SceneError, match=re.escape(f"{path}: unsupported data type {dtype} ")):
        open_scene(path)


# ---------------------------------------------------------------------------------------------
# regressions found by fuzzing (docs/hostile-inputs.md, "Fuzzing")


def test_a_crs_that_is_not_utf8_is_a_scene_error(tmp_path: Path):
    path = write_base(tmp_path / "base.tif", BASES["striped-raw-int16"])
    data = path.read_bytes()
    # Without its ProjectedCSTypeGeoKey (3072) the CRS is a LOCAL_CS named by the citation...
    key = struct.pack("<HHHH", 3072, 0, 1, 32633)
    data = data.replace(key, struct.pack("<HHHH", 3106, 0, 1, 32633))
    # ... which is not UTF-8 here: rasterio.open raised UnicodeDecodeError.
    data = data.replace(b"WGS 84 / UTM zone 33N", b"WGS 84 / U\xd5M zone 33N")
    path.write_bytes(data)
    with pytest.raises(SceneError, match="not a raster GDAL can read"):
        open_scene(path)


def test_a_geotransform_with_nan_is_a_scene_error(tmp_path: Path):
    path = write_base(tmp_path / "base.tif", BASES["striped-raw-int16"])
    data = bytearray(path.read_bytes())
    entries, _ = ifd_entries(data)
    pixel_scale = next(e for e in entries if struct.unpack_from("<H", data, e)[0] == 33550)
    struct.pack_into("<d", data, struct.unpack_from("<I", data, pixel_scale + 8)[0], math.nan)
    path.write_bytes(bytes(data))
    with pytest.raises(SceneError, match=r"geotransform .* is not finite"):
        open_scene(path)  # said 'does not overlap the other band files' before


@pytest.mark.parametrize("corrupt", [b">\x80B2<", b">\x01B2<"], ids=["not-utf8", "control"])
def test_corrupt_band_descriptions_name_bands_by_number(
    tmp_path: Path, scratch: Path, corrupt: bytes
):
    """rasterio raised UnicodeDecodeError for the first; GDAL drops the control character of
    the second from the map's tags, which the writer took for a failure (exit 1)."""
    path = write_base(tmp_path / "base.tif", BASES["described-scaled-int16"])
    path.write_bytes(path.read_bytes().replace(b">B02<", corrupt))
    with pytest.warns(BandfusionWarning, match="band descriptions are corrupt"):
        scene = open_scene(path)
    assert list(scene["band"].values) == ["b1", "b2", "b3"]
    model = model_dir_for(["b1", "b2", "b3"], scratch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code, err = run_cli(["predict", str(path), "-m", str(model), "-o", str(tmp_path / "m.tif")])
    assert code == 0, err


@pytest.mark.parametrize("bands", [1, 2])
def test_a_nan_scale_is_a_scene_error(tmp_path: Path, bands: int):
    path = write_base(tmp_path / "base.tif", {"count": bands, "dtype": "int16", "scale": 1e-4})
    with rasterio.open(path, "r+") as dst:
        dst.scales = (math.nan,) * bands
    with pytest.raises(SceneError, match=r"scale nan or offset -0\.1 is not finite"):
        open_scene(path)  # 1 band: an all-nodata map; 2: 'bands differ in nodata, scale ...'


@pytest.mark.parametrize("side", [MAX_SCENE_SIDE + 1, 0x7FFFFFFF])
@pytest.mark.parametrize("tag", [256, 257])
def test_a_header_with_an_enormous_side_is_refused_before_allocating(
    tmp_path: Path, tag: int, side: int
):
    path = write_base(tmp_path / "base.tif", BASES["striped-raw-int16"])
    data = bytearray(path.read_bytes())
    entries, _ = ifd_entries(data)
    entry = next(e for e in entries if struct.unpack_from("<H", data, e)[0] == tag)
    struct.pack_into("<HII", data, entry + 2, 4, 1, side)  # ImageWidth/Length as a LONG
    path.write_bytes(bytes(data))
    with pytest.raises(SceneError, match="header claims"):
        open_scene(path)  # allocated 16 GiB of pixel coordinates (MemoryError or OOM) before


def many_band_tiff(bands: int) -> bytes:
    """A 1 x 1 uncompressed TIFF of `bands` uint8 samples, built by hand: GDAL takes ~1 ms a
    band to write one."""
    tags = [(256, 1), (257, 1), (258, 8), (259, 1), (262, 1), (273, 0), (277, bands),
            (278, 1), (279, bands), (284, 1)]  # fmt: skip
    pixels_at = 8 + 2 + 12 * len(tags) + 4
    entries = b"".join(
        struct.pack("<HHII", tag, 4 if tag in (273, 279) else 3, 1, pixels_at if tag == 273 else v)
        for tag, v in tags
    )
    ifd = struct.pack("<H", len(tags)) + entries + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(bands)


def test_many_band_names_are_checked_in_linear_time(tmp_path: Path):
    path = tmp_path / "many.tif"
    path.write_bytes(many_band_tiff(20000))
    names = [f"n{i}" for i in range(20000)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene = open_scene(path, band_names=names)  # was quadratic: 4 s here, 40 s at 65535
        assert scene.sizes["band"] == 20000
        with pytest.raises(BandfusionError, match=r"repeated: n7$"):
            open_scene(path, band_names=[*names[:-1], "n7"])


def test_a_gdal_message_that_is_not_utf8_prints_no_traceback(tmp_path: Path, scratch: Path):
    path = write_base(tmp_path / "base.tif", BASES["striped-raw-int16"])
    path.write_bytes(path.read_bytes().replace(b"<GDALMetadata>", b"<GDAL \x82Metadata>"))
    model = model_dir_for(["b1"], scratch)
    command = [sys.executable, "-m", "bandfusion.cli", "predict", str(path), "-m", str(model),
               "-o", str(tmp_path / "map.tif"), "-q"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------
# model directories


@pytest.fixture(scope="module")
def saved_model(scratch: Path) -> Path:
    torch.manual_seed(0)
    net = SpectralFusionNet(4, 3, hidden=(8, 4), norm="batch")
    net.set_standardisation([100.0, 200.0, 300.0, 400.0], [10.0, 20.0, 30.0, 40.0])
    meta = ModelMetadata(
        bands=["B02", "B03", "B04", "B08"],
        class_ids=[1, 5, 9],
        class_names=["water", "crop", "forest"],
        class_colors=[(0, 0, 255), (255, 255, 0), (0, 128, 0)],
        architecture=net.config(),
        training={"epochs": 3, "seed": 0},
        metrics={"accuracy": 0.9},
    )
    return save_model(TrainedModel(net.eval(), meta), scratch / "saved-model")


PWNED = Path(tempfile.gettempdir()) / f"bandfusion-fuzz-pwned-{os.getpid()}"


class _Exploit:
    """Unpickling this creates a file: proof that loading never unpickles."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.makedirs, (self.marker,))


def _no_unpickling(*args: object, **kwargs: object) -> None:
    raise AssertionError("load_model unpickled something")


def load_survives(path: Path) -> None:
    """load_model(path): a usable model or one ModelFileError line naming `path`; never a
    call into pickle or torch.load."""
    guards = [
        mock.patch.object(pickle, name, _no_unpickling) for name in ("load", "loads", "Unpickler")
    ]
    with contextlib.ExitStack() as stack:
        for guard in guards:
            stack.enter_context(guard)
        stack.enter_context(mock.patch.object(torch, "load", _no_unpickling))
        try:
            model = load_model(path)
        except Exception as exc:
            check_ours(exc, path)
            assert isinstance(exc, ModelFileError)
            return
    event("loaded")
    assert model.net.in_bands == len(model.meta.inputs)
    assert model.net.n_classes == len(model.meta.class_ids)


def copy_model(saved: Path, directory: Path) -> Path:
    return Path(shutil.copytree(saved, directory / "model"))


@fuzz(40)
@given(
    blob=st.binary(max_size=4096)
    | st.binary(max_size=64).map(lambda tail: pickle.dumps(_Exploit(str(PWNED))) + tail),
    where=st.sampled_from(["weights", "metadata", "path"]),
)
def test_random_bytes_as_model_files(scratch: Path, saved_model: Path, blob: bytes, where: str):
    with case_dir(scratch) as directory:
        model = copy_model(saved_model, directory)
        if where == "path":  # the model path is a file, not a directory
            shutil.rmtree(model)
            model.write_bytes(blob)
        else:
            name = "weights.safetensors" if where == "weights" else "model.json"
            (model / name).write_bytes(blob)
        load_survives(model)
        assert not PWNED.exists()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers()
    | st.text(max_size=20)
    | st.sampled_from([2**31, 2**63, -(2**31) - 1, 10**30, -1, 0, 1, 1.5, "F32", "b1"]),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)

META_KEYS = [
    "format_version",
    "bands",
    "class_ids",
    "class_names",
    "class_colors",
    "architecture",
    "training",
    "metrics",
    "package_version",
    "indices",
    "band_roles",
]


@fuzz(60)
@given(
    doc=json_values
    | st.dictionaries(st.sampled_from(META_KEYS), json_values, max_size=len(META_KEYS)),
)
def test_random_model_json(scratch: Path, saved_model: Path, doc: object):
    with case_dir(scratch) as directory:
        model = copy_model(saved_model, directory)
        (model / "model.json").write_text(json.dumps(doc))  # NaN and Infinity included
        load_survives(model)


def json_paths(value: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indices) to a node of a JSON value, the root excluded."""
    paths = []
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    for key, child in children:
        paths.append((*prefix, key))
        paths.extend(json_paths(child, (*prefix, key)))
    return paths


def mutate_json(doc: Any, data: st.DataObject, edits: int) -> Any:
    """`doc` with `edits` nodes deleted, replaced by odd JSON, or duplicated."""
    doc = json.loads(json.dumps(doc))
    for _ in range(edits):
        paths = json_paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["delete", "replace", "replace", "duplicate"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = data.draw(json_values)
        elif isinstance(parent, list):
            parent.append(parent[path[-1]])
    return doc


@fuzz(80)
@given(data=st.data(), edits=st.integers(1, 4))
def test_mutated_model_json(scratch: Path, saved_model: Path, data: st.DataObject, edits: int):
    with case_dir(scratch) as directory:
        model = copy_model(saved_model, directory)
        doc = json.loads((model / "model.json").read_text())
        (model / "model.json").write_text(json.dumps(mutate_json(doc, data, edits)))
        load_survives(model)


def test_an_enormous_architecture_is_refused_before_it_is_built(tmp_path: Path, saved_model):
    """Hidden widths of 2**31: torch allocated (and initialised) 34 GB before the check."""
    model = copy_model(saved_model, tmp_path)
    doc = json.loads((model / "model.json").read_text())
    doc["architecture"]["hidden"] = [2**31, 8]
    (model / "model.json").write_text(json.dumps(doc))
    with pytest.raises(
        ModelFileError, match=r"architecture has .* parameters, the weights hold .* values"
    ):
        load_model(model)


def safetensors_parts(blob: bytes) -> tuple[dict[str, Any], bytes]:
    length = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + length]), blob[8 + length :]


@fuzz(80)
@given(
    data=st.data(),
    edits=st.integers(1, 3),
    length_delta=st.sampled_from([0, 0, 0, 1, -1, 8, 2**40]),
    body_cut=st.none() | st.integers(0, 2000),
)
def test_mutated_safetensors_headers(
    scratch: Path,
    saved_model: Path,
    data: st.DataObject,
    edits: int,
    length_delta: int,
    body_cut: int | None,
):
    with case_dir(scratch) as directory:
        model = copy_model(saved_model, directory)
        weights = model / "weights.safetensors"
        header, body = safetensors_parts(weights.read_bytes())
        text = json.dumps(mutate_json(header, data, edits)).encode()
        length = (len(text) + length_delta) % 2**64
        weights.write_bytes(length.to_bytes(8, "little") + text + body[:body_cut])
        load_survives(model)


@fuzz(60)
@given(
    flips=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8
    ),
    cut=st.none() | st.floats(0, 1, exclude_max=True),
)
def test_mutated_safetensors_bytes(
    scratch: Path, saved_model: Path, flips: list[tuple[float, int]], cut: float | None
):
    with case_dir(scratch) as directory:
        model = copy_model(saved_model, directory)
        weights = model / "weights.safetensors"
        blob = bytearray(weights.read_bytes())
        for where, value in flips:
            blob[int(where * len(blob))] = value
        weights.write_bytes(bytes(blob[: None if cut is None else int(cut * len(blob))]))
        load_survives(model)
