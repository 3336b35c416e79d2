"""Sensor products on the command line: `info` on every form of one, `predict` on a SAFE at a
chosen grid with bands by name, `batch` on a folder of products, their errors; and the same
pixels by every road (SAFE, plain band files, STAC item) giving bit-identical maps."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model
from distributed import Client

from tests.cli.test_hostile import cli as run
from tests.helpers import manifest_scenes, random_model
from tests.io.products.builders import (
    LANDSAT_ID,
    MTD,
    SAFE,
    band_file,
    landsat_product,
    stac_item,
    zipped_safe,
)

BANDS = ["B02", "B04", "B8A"]


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled SAFE zipped, a Landsat C2 L2 product and a STAC Item of the SAFE's files."""
    root = tmp_path_factory.mktemp("products")
    return {
        "zip": zipped_safe(root),
        "landsat": landsat_product(root / "landsat", forms=("txt",)),
        "stac": stac_item(root / "stac", bands=tuple(BANDS)),
    }


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random model of B02, B04, B8A standardised on the product's valid pixels."""
    scene = open_scene(SAFE, bands=BANDS)
    directory = tmp_path_factory.mktemp("model") / "model"
    return save_model(random_model(scene.fillna(0.0), [1, 2, 3]), directory)


S2_ROW = "scale=0.0001 offset=-0.1 from MTD_MSIL2A.xml"
LANDSAT_ROW = "scale=2.75e-05 offset=-0.2 from MTL"


@pytest.mark.parametrize(
    ("form", "sensor", "row"),
    [
        ("folder", "sentinel-2a", S2_ROW),
        ("zip", "sentinel-2a", S2_ROW),
        ("mtd", "sentinel-2a", S2_ROW),
        ("subdataset", "sentinel-2a", S2_ROW),
        ("landsat", "landsat-8", LANDSAT_ROW),
        ("mtl", "landsat-8", LANDSAT_ROW),
        ("stac", "sentinel-2a", "scale=0.0001 offset=-0.1 from raster:bands"),
    ],
)
def test_info_describes_every_form_of_a_product(
    form: str, sensor: str, row: str, products: dict[str, Path], capsys
):
    given = {
        "folder": SAFE,
        "zip": products["zip"],
        "mtd": MTD,
        "subdataset": f"SENTINEL2_L2A:{MTD}:60m:EPSG_32629",
        "landsat": products["landsat"],
        "mtl": products["landsat"] / f"{LANDSAT_ID}_MTL.txt",
        "stac": products["stac"],
    }[form]
    code, out, err = run(["info", str(given)], capsys)
    assert (code, err) == (0, "")
    assert f"product:     {given}\nsensor:      {sensor}\n" in out
    band_rows = out.split("bands:\n")[1].split("masks")[0].splitlines()
    assert band_rows and all(_words(row) <= _words(line) for line in band_rows), band_rows
    mask = "landsat_qa_pixel" if sensor.startswith("landsat") else "s2_scl"
    assert f"masks:\n  {mask}" in out


def _words(text: str) -> set[str]:
    return set(text.split())


def test_info_shows_each_band_at_its_resolution(capsys):
    code, out, _ = run(["info", str(SAFE)], capsys)
    assert code == 0
    rows = out.split("bands:\n")[1].split("masks")[0].splitlines()
    assert [r.split()[0] for r in rows] == [
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12"
    ]  # fmt: skip
    assert all("60 m" in r and "nodata=0" in r for r in rows)


def test_predict_a_safe_on_the_grid_and_bands_asked_for(tmp_path: Path, model: Path, capsys):
    maps = {}
    for resolution, mask in ((60, "none"), (20, "none"), (20, "auto")):
        out = tmp_path / f"map{resolution}{mask}.tif"
        args = ["predict", str(SAFE), "--bands", "blue,B4,nir08", "--resolution", str(resolution)]
        args += ["--mask", mask]
        code, _, err = run([*args, "-m", str(model), "-o", str(out), "-q"], capsys)
        assert code == 0, err
        with rasterio.open(out) as src:
            assert src.res == (resolution, resolution)
            maps[resolution, mask] = src.read(1)
    assert maps[60, "none"].shape == (384, 384)
    # nearest onto the nested 20 m grid repeats each 60 m pixel: the same classes, 3 x 3 each
    coarse = maps[60, "none"]
    np.testing.assert_array_equal(maps[20, "none"], np.kron(coarse, np.ones((3, 3), coarse.dtype)))
    # on the 20 m grid clouds are masked by the product's 20 m SCL, not the 60 m one
    with rasterio.open(band_file("SCL", 20)) as src:
        scl = src.read(1)
    cloudy = np.isin(scl, (8, 9)) & (maps[20, "none"] != 255)
    np.testing.assert_array_equal(maps[20, "auto"] == 254, cloudy)


def test_benchmark_masks_a_products_clouds_as_train_does(tmp_path: Path, capsys):
    """SCL labels on their own SAFE: under the default --mask the cloud and shadow classes
    have no pixel to train or score, and one warning says so; --mask none compares them."""
    scl = str(band_file("SCL", 60))
    args = ["benchmark", str(SAFE), "--bands", "blue,B4,nir08", "--resolution", "60", "--labels",
            scl, "--runs", "1", "--methods", "logistic", "--block-size", "32", "-q"]  # fmt: skip
    ious = {}
    for mask in ("auto", "none"):
        code, _, err = run([*args, "--mask", mask, "-o", str(tmp_path / mask)], capsys)
        assert code == 0, err
        lost = re.findall(r"left out: ([\d, ]+)$", err, re.MULTILINE)
        assert lost == (["3, 8, 9, 10"] if mask == "auto" else []), err
        summary = json.loads((tmp_path / mask / "benchmark.json").read_text())["summary"]
        ious[mask] = summary["logistic"]["iou"]
    assert ious["auto"]["8"] is None and ious["auto"]["4"] is not None
    assert ious["none"]["8"] is not None


def test_the_same_pixels_by_every_road_give_bit_identical_maps(
    tmp_path: Path, model: Path, products: dict[str, Path], capsys
):
    """The SAFE; its bands as plain GeoTIFFs declaring nodata 0 and the offset (GDAL scale and
    offset tags) with its SCL as --mask-layer; a STAC Item of its files: the same scene, and
    byte for byte the same map, clouds masked alike. Only the scenes' provenance differs:
    where the scale and offset were read, and which mask layers a product lists."""
    files = [_plain_band_file(tmp_path / f"{band}.tif", band) for band in BANDS]
    roads = {
        "safe": [str(SAFE), "--bands", ",".join(BANDS)],
        "files": [*map(str, files), "--mask-layer", str(band_file("SCL"))],
        "stac": [str(products["stac"])],
    }
    safe = open_scene(SAFE, bands=BANDS)
    assert int(np.isnan(safe.values).sum()) > 0  # the product's fill is in the sample
    for scene in (open_scene(files), open_scene(products["stac"])):
        assert list(scene["band"].values) == BANDS
        assert _without_provenance(scene.attrs) == _without_provenance(safe.attrs)
        np.testing.assert_array_equal(scene.values, safe.values)
    maps = {}
    for road, given in roads.items():
        out = tmp_path / f"{road}.tif"
        code, _, err = run(["predict", *given, "-m", str(model), "-o", str(out), "-q"], capsys)
        assert code == 0, err
        maps[road] = out.read_bytes()
    assert maps["files"] == maps["safe"] and maps["stac"] == maps["safe"]
    with rasterio.open(tmp_path / "safe.tif") as src, rasterio.open(band_file("SCL")) as layer:
        classes, nodata, scl = src.read(1), src.nodata, layer.read(1)
    # nodata: the bands' fill, and where the SCL itself has no data (its own fill, class 0)
    np.testing.assert_array_equal(classes == nodata, np.isnan(safe.values).any(axis=0) | (scl == 0))
    assert (classes >= 248).sum() - (classes == nodata).sum() > 0  # clouds masked, not mapped


def _without_provenance(attrs: dict) -> dict:
    return {k: v for k, v in attrs.items() if k not in ("radiometry_source", "mask_layers")}


def _plain_band_file(path: Path, band: str) -> Path:
    """The product's band file as a GeoTIFF saying nodata 0, scale 1e-4 and offset -0.1."""
    with rasterio.open(band_file(band)) as src:
        profile = {**src.profile, "driver": "GTiff", "nodata": 0, "tiled": True}
        data = src.read(1)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.scales, dst.offsets = (1e-4,), (-0.1,)
        dst.set_band_description(1, band)
    return path


def test_batch_takes_each_product_in_a_folder_as_one_scene(
    tmp_path: Path, model: Path, products: dict[str, Path], client: Client, capsys
):
    folder = tmp_path / "in"
    folder.mkdir()
    safe = Path(shutil.copytree(SAFE, folder / SAFE.name.replace("T29UNU", "T29UNV")))
    landsat = Path(shutil.copytree(products["landsat"], folder / products["landsat"].name))
    out = tmp_path / "out"
    args = ["batch", str(folder), "--bands", "blue,red,nir08", "-m", str(model),
            "--out-dir", str(out), "--scheduler", client.scheduler.address, "-q"]  # fmt: skip
    code, _, err = run(args, capsys)
    scenes = {tuple(s["inputs"][i]["path"] for i in range(len(s["inputs"]))): s
              for s in manifest_scenes(out)}  # fmt: skip
    assert set(scenes) == {(str(safe),), (str(landsat),)}  # one scene each, not one per file
    assert scenes[(str(safe),)]["status"] == "done"
    assert (out / scenes[(str(safe),)]["output"]).is_file()
    # a Landsat scene's blue, red, nir08 are SR_B2, SR_B4, SR_B5: not this model's bands
    failed = scenes[(str(landsat),)]
    assert failed["status"] == "failed" and "do not match the model's" in failed["error"]
    assert code == 2 and "1 of 2 scenes failed" in err


def _broken_safe(tmp_path: Path) -> Path:
    safe = Path(shutil.copytree(SAFE, tmp_path / SAFE.name))
    text = (safe / "MTD_MSIL2A.xml").read_text()
    (safe / "MTD_MSIL2A.xml").write_text(text[: len(text) // 2])
    return safe


@pytest.mark.parametrize(
    ("case", "extra", "message"),
    [
        ("broken-mtd", [], r"MTD_MSIL2A\.xml: not valid XML \(.*\)"),
        ("resolution", ["--resolution", "30"], r"--resolution 30: .* holds 10, 20, 60 m"),
        ("band", ["--bands", "B02,B08"], r"--bands B08: .* holds no such band; it holds B01, "),
    ],
)
def test_product_errors_are_one_line_and_exit_2(
    case: str, extra: list[str], message: str, tmp_path: Path, model: Path, capsys
):
    safe = _broken_safe(tmp_path) if case == "broken-mtd" else SAFE
    out = tmp_path / "map.tif"
    for command in (["info", str(safe)], ["predict", str(safe), "-m", str(model), "-o", str(out)]):
        if command[0] == "info" and extra:
            continue
        code, _, err = run([*command, *extra], capsys)
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bandfusion: error: "), err
        assert str(safe) in lines[0]
        assert re.search(message, lines[0]), lines[0]
    assert not out.exists()
