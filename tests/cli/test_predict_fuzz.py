"""Fuzzing `bandfusion predict`: mutated GeoTIFFs exit 0 with a readable map or 2 with one
line naming the file, never 1, and leave nothing behind; valid odd rasters give the engine's map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from bandfusion.engine.predict import predict_scene
from bandfusion.errors import BandfusionError
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import load_model
from hypothesis import event, example, given, note

from tests.fuzzing import (
    MAX_FUZZ_BANDS,
    MAX_FUZZ_PIXELS,
    case_dir,
    fuzz,
    model_dir_for,
    run_cli,
)
from tests.strategies import mutate, mutated_tiffs, odd_rasters, write_odd

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
