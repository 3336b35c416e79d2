"""Fuzzing the reader: random bytes, random TIFF headers and mutated GeoTIFFs fed to
open_scene and a computed predict_scene: a map, or one of bandfusion's one-line errors naming
the file (see tests/fuzzing.py for the rules and the long pass); and random masks, alpha bands
and band files covering part of the grid: exactly the pixels they leave are valid."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine
from bandfusion.engine.predict import predict_scene
from bandfusion.io.nodata import band_nodata, valid_mask
from bandfusion.io.scene import open_scene
from hypothesis import event, given, note
from hypothesis import strategies as st

from tests.fuzzing import MAX_FUZZ_BANDS, MAX_FUZZ_PIXELS, case_dir, check_ours, fuzz, model_for
from tests.strategies import (
    GRID,
    masked_rasters,
    mutate,
    mutated_tiffs,
    partial_coverage,
    write_masked,
    write_partial,
    write_plain,
)


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


@fuzz(150)
@given(mutation=mutated_tiffs())
def test_mutated_geotiffs(scratch: Path, bases: dict[str, bytes], mutation):
    base, ops, cut = mutation
    with case_dir(scratch) as directory:
        path = directory / "mutated.tif"
        path.write_bytes(mutate(bases[base], ops, cut))
        scene_survives(path)


# ---------------------------------------------------------------------------------------------
# what a raster says is not there (issue 18)


def scene_valid(paths: Path | list[Path]) -> np.ndarray:
    """The scene's valid pixels (y, x) by the nodata rule, read in small chunks."""
    scene = open_scene(paths, chunk_pixels=16 * 16)
    return valid_mask(scene.values, band_nodata(scene))


@fuzz(60)
@given(raster=masked_rasters(), coarse=st.booleans())
def test_masks_and_alpha_bands_are_the_valid_pixels(scratch: Path, raster, coarse: bool):
    """An internal mask, an alpha band or per-band masks: the scene's valid pixels are the
    mask's, read as they are or warped onto a grid twice as fine (beside a band file on it)."""
    event(raster["kind"] + (" warped" if coarse else ""))
    with case_dir(scratch) as directory:
        if not coarse:
            np.testing.assert_array_equal(
                scene_valid(write_masked(directory, raster)), raster["valid"]
            )
            return
        masked = write_masked(directory, raster, GRID @ Affine.scale(2))
        height, width = raster["valid"].shape
        fine = write_plain(directory / "fine.tif", np.ones((1, 2 * height, 2 * width), "uint16"))
        expected = np.kron(raster["valid"], np.ones((2, 2), dtype=bool))
        np.testing.assert_array_equal(scene_valid([fine, masked]), expected)


@fuzz(60)
@given(coverage=partial_coverage())
def test_band_files_covering_part_of_the_grid_are_nodata_elsewhere(scratch: Path, coverage):
    """Band files without nodata covering random windows (some twice as coarse): the grid a
    file misses is nodata, the rest valid."""
    with case_dir(scratch) as directory:
        paths = write_partial(directory, coverage)
        np.testing.assert_array_equal(scene_valid(paths), coverage["valid"])
