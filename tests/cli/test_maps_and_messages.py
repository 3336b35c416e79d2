"""Maps that tools read (category names, uint8 probabilities, STAC) and messages that reach
the user (ours whatever the warning filters, GDAL's only with --debug), through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from bandfusion.cli import main
from bandfusion.io.pam import aux_path
from pystac.extensions.classification import ClassificationExtension

from tests.helpers import save_chip_model, stack_chip

CHIP_BANDS_FLAG = "B02,B03,B04,B08"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_chip_model(tmp_path_factory.mktemp("m") / "model")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stack_chip("adwp", tmp_path_factory.mktemp("s") / "adwp.tif")


def bandfusion(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The `bandfusion` command in a subprocess, as a user runs it."""
    command = [sys.executable, "-m", "bandfusion.cli", *map(str, args)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def all_nodata_scene(path: Path) -> Path:
    profile = {
        "driver": "GTiff", "width": 40, "height": 40, "count": 4, "dtype": "uint16",
        "crs": "EPSG:32633", "transform": Affine(10, 0, 5e5, 0, -10, 5e6), "nodata": 0,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((4, 40, 40), np.uint16))
    return path


def garbled_tiles(scene: Path, path: Path) -> Path:
    """`scene`, DEFLATE-compressed, with bytes of its first tiles overwritten: the header still
    reads, the pixels do not."""
    rasterio.shutil.copy(scene, path, driver="GTiff", compress="deflate", tiled=True)
    data = bytearray(path.read_bytes())
    with rasterio.open(path) as src:
        offsets = [int(src.get_tag_item(f"BLOCK_OFFSET_0_{row}", "TIFF", bidx=1) or 0)
                   for row in range(2)]  # fmt: skip
    for offset in offsets:
        data[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    return path


def test_our_warning_reaches_the_user_whatever_the_warning_filters(model: Path, tmp_path: Path):
    scene = all_nodata_scene(tmp_path / "empty.tif")
    for filters in ("ignore", "error"):
        out = tmp_path / f"map-{filters}.tif"
        done = bandfusion(
            "predict", scene, "-m", model, "-o", out, "-q", "--band-names", CHIP_BANDS_FLAG,
            env={"PYTHONWARNINGS": filters},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines() == [
            f"bandfusion: warning: {scene}: every pixel is nodata; {out} holds no data"
        ]


def test_a_corrupt_tiff_gives_our_line_alone_and_gdals_with_debug(
    scene: Path, model: Path, tmp_path: Path
):
    corrupt = garbled_tiles(scene, tmp_path / "garbled.tif")
    done = bandfusion("predict", corrupt, "-m", model, "-o", tmp_path / "map.tif", "-q")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bandfusion: error: {corrupt}: "), lines
    debug = bandfusion("--debug", "predict", corrupt, "-m", model, "-o", tmp_path / "m.tif", "-q")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_gdal_log_records_show_with_debug_only(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from bandfusion.cli.messages import library_messages

    for debug in (False, True):
        with library_messages(debug):
            logging.getLogger("rasterio._env").warning("CPLE_AppDefined in TIFF: odd tag")
    assert capsys.readouterr().err == "bandfusion: gdal: CPLE_AppDefined in TIFF: odd tag\n"


def test_predict_writes_uint8_probabilities_categories_and_a_stac_item(
    scene: Path, model: Path, tmp_path: Path
):
    out, proba = tmp_path / "map.tif", tmp_path / "proba.tif"
    done = bandfusion("predict", scene, "-m", model, "-o", out, "--probabilities", proba,
                      "--probabilities-dtype", "uint8", "--stac", "-q")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"stac item: {tmp_path / 'map.stac.json'}" in done.stdout.splitlines()
    with rasterio.open(proba) as src:
        assert src.dtypes == ("uint8",) * 3 and src.nodata == 255
        assert src.scales == (0.004,) * 3
        assert src.read().max() <= 250
    assert "<Category>" in aux_path(out).read_text()
    item = pystac.Item.from_file(str(tmp_path / "map.stac.json"))
    classes = ClassificationExtension.ext(item.assets["map"]).classes or []
    assert [c.value for c in classes] == [1, 2, 3]
    assert not aux_path(proba).exists()


def test_batch_stac_writes_a_collection_of_its_maps(model: Path, tmp_path: Path) -> None:
    scenes = [stack_chip(chip, tmp_path / f"{chip}.tif") for chip in ("adwp", "akny")]
    out = tmp_path / "maps"
    args = ["batch", *map(str, scenes), "-m", str(model), "--out-dir", str(out), "--stac", "-q",
            "--workers", "1", "--threads-per-worker", "1"]  # fmt: skip
    main(args)  # returns: every scene done
    collection = json.loads((out / "collection.json").read_text())
    assert collection["type"] == "Collection"
    items = pystac.Collection.from_file(str(out / "collection.json")).get_items()
    assert sorted(item.id for item in items) == ["adwp", "akny"]
