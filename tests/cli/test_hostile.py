"""Hostile inputs and faults: one line naming the file and the problem, the right exit code, and
nothing left at the output path. Each row here is a row of docs/hostile-inputs.md."""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from bandfusion.cli import INTERRUPT_EXIT, main
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model

from tests.cli.test_hostile_fuzz import command_with, make_special
from tests.helpers import REPO, random_model

WATER = "sen1floods11_spain"
S2 = f"{WATER}/Spain_7370579_S2Hand.tif"
LABELS = f"{WATER}/Spain_7370579_LabelHand.tif"
S2_BANDS = "B1,B2,B3,B4,B5,B6,B7,B8,B8A,B9,B10,B11,B12"
CUT = "cannot read its pixels; the file is truncated or corrupt"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    scene = open_scene(data_dir / S2)
    return save_model(random_model(scene, [0, 1]), tmp_path_factory.mktemp("m") / "model")


@dataclass(frozen=True)
class Case:
    """A hostile input: how to make it, what the command is, what it must answer."""

    make: Callable[[Path, Path, Path], list[str]]  # (tmp, data, model) → CLI arguments
    exit_code: int
    fragment: str


def write_raster(path: Path, array: np.ndarray, **profile: object) -> Path:
    base = {
        "driver": "GTiff",
        "width": array.shape[2],
        "height": array.shape[1],
        "count": array.shape[0],
        "dtype": array.dtype,
        "crs": "EPSG:32633",
        "transform": Affine(10, 0, 500000, 0, -10, 5000000),
    }
    with rasterio.open(path, "w", **{**base, **profile}) as dst:
        dst.write(array)
    return path


def truncated(fraction: float) -> Callable[[Path, Path, Path], list[str]]:
    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        whole = (data / S2).read_bytes()
        path = tmp / f"cut{int(fraction * 100)}.tif"
        path.write_bytes(whole[: int(len(whole) * fraction)])
        return ["predict", str(path), "-m", str(model)]

    return make


def garbled_tiles(tmp: Path, data: Path, model: Path) -> list[str]:
    """The S2 scene with the first bytes of its first band's first tile overwritten."""
    whole = bytearray((data / S2).read_bytes())
    with rasterio.open(data / S2) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1) or 0)
    whole[offset : offset + 64] = b"\xff" * 64
    path = tmp / "garbled.tif"
    path.write_bytes(bytes(whole))
    return ["predict", str(path), "-m", str(model)]


def missing_file(tmp: Path, data: Path, model: Path) -> list[str]:
    return ["predict", str(tmp / "no.tif"), "-m", str(model)]


def directory_as_raster(tmp: Path, data: Path, model: Path) -> list[str]:
    return ["predict", str(tmp), "-m", str(model)]


def missing_model(tmp: Path, data: Path, model: Path) -> list[str]:
    return ["predict", str(data / S2), "-m", str(tmp / "none")]


def text_as_tif(tmp: Path, data: Path, model: Path) -> list[str]:
    (tmp / "notes.tif").write_text("field notes, not a raster\n")
    return ["predict", str(tmp / "notes.tif"), "-m", str(model)]


def zero_size(tmp: Path, data: Path, model: Path) -> list[str]:
    (tmp / "empty.tif").write_bytes(b"")
    return ["predict", str(tmp / "empty.tif"), "-m", str(model)]


def vrt_header(
    name: str, width: int, height: int, bands: int
) -> Callable[[Path, Path, Path], list]:
    """A VRT whose header claims `width` x `height` px and `bands` bands, and nothing more."""

    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        vrt = tmp / name
        band = '<VRTRasterBand dataType="UInt16" band="{}"/>'
        body = "".join(band.format(k + 1) for k in range(bands))
        vrt.write_text(
            f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">{body}</VRTDataset>'
        )
        return ["predict", str(vrt), "-m", str(model)]

    return make


def complex_dtype(tmp: Path, data: Path, model: Path) -> list[str]:
    path = write_raster(tmp / "complex.tif", np.ones((13, 16, 16), dtype=np.complex64))
    return ["predict", str(path), "-m", str(model), "--band-names", S2_BANDS]


def other_crs_band_files(tmp: Path, data: Path, model: Path) -> list[str]:
    first = data / "oncloudn_s2/adwp/B02.tif"
    with rasterio.open(first) as src:
        profile, pixels = src.profile, src.read()
    moved = write_raster(tmp / "B03.tif", pixels, **{**profile, "crs": "EPSG:4326"})
    return ["predict", str(first), str(moved), "-m", str(model)]


def disjoint_band_files(tmp: Path, data: Path, model: Path) -> list[str]:
    first = data / "oncloudn_s2/adwp/B02.tif"
    with rasterio.open(first) as src:
        profile, pixels = src.profile, src.read()
    far = profile["transform"] @ Affine.translation(100_000, 0)
    moved = write_raster(tmp / "B03.tif", pixels, **{**profile, "transform": far})
    return ["predict", str(first), str(moved), "-m", str(model)]


def fewer_bands(tmp: Path, data: Path, model: Path) -> list[str]:
    return ["predict", str(data / "landsat7_rgb/RGB.byte.tif"), "-m", str(model)]


def renamed_bands(tmp: Path, data: Path, model: Path) -> list[str]:
    names = S2_BANDS.replace("B8A", "B8X")  # B8a would be B8A: one band (io/bands.py)
    return ["predict", str(data / S2), "-m", str(model), "--band-names", names]


def pickle_model(tmp: Path, data: Path, model: Path) -> list[str]:
    marker = tmp / "pwned"
    payload = pickle.dumps(_Exploit(str(marker)))
    (tmp / "model.pkl").write_bytes(payload)
    return ["predict", str(data / S2), "-m", str(tmp / "model.pkl")]


class _Exploit:
    """Unpickling this would create a file: proof that loading never unpickles."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (os.makedirs, (self.marker, "0o755"))


def edited_model(change: Callable[[dict], None], name: str) -> Callable[[Path, Path, Path], list]:
    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        copy = tmp / name
        shutil.copytree(model, copy)
        meta = json.loads((copy / "model.json").read_text())
        change(meta)
        (copy / "model.json").write_text(json.dumps(meta))
        return ["predict", str(data / S2), "-m", str(copy)]

    return make


def _drop_band(meta: dict) -> None:
    meta["bands"] = meta["bands"][:12]
    meta["architecture"]["in_bands"] = 12


def _extra_class(meta: dict) -> None:
    meta["class_ids"].append(7)
    meta["class_names"].append("seven")
    meta["class_colors"].append([1, 2, 3])
    meta["architecture"]["n_classes"] += 1


def _newer(meta: dict) -> None:
    meta["format_version"] = 99


def _unknown_index(meta: dict) -> None:
    meta["indices"] = ["EVI"]
    meta["architecture"]["in_bands"] += 1


def labels_elsewhere(tmp: Path, data: Path, model: Path) -> list[str]:
    return [
        "evaluate", "-m", str(model), str(data / S2),
        "--labels", str(data / "eolearn_slovenia/lulc.tif"),
    ]  # fmt: skip


def train_on_slovenia(labels: str, *options: str) -> Callable[[Path, Path, Path], list]:
    """`bandfusion train` on the Slovenia NDVI stack with `labels` and `options`."""

    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        stack, labelled = (
            data / "eolearn_slovenia/ndvi_stack.tif",
            data / "eolearn_slovenia" / labels,
        )
        return ["train", str(stack), "--labels", str(labelled), *options, "-o", str(tmp / "m")]

    return make


def vector_labels_elsewhere(tmp: Path, data: Path, model: Path) -> list[str]:
    return [
        "train", str(data / S2), "--labels", str(data / "eolearn_slovenia/LULC.gpkg"),
        "--attribute", "LULC_ID", "-o", str(tmp / "m"),
    ]  # fmt: skip


def output_is_directory(tmp: Path, data: Path, model: Path) -> list[str]:
    (tmp / "out.tif").mkdir()
    return ["predict", str(data / S2), "-m", str(model)]


def _copy_scene(tmp: Path, data: Path, name: str = "scene.tif") -> Path:
    shutil.copyfile(data / S2, tmp / name)
    return tmp / name


def output_is_the_scene(tmp: Path, data: Path, model: Path) -> list[str]:
    return ["predict", str(_copy_scene(tmp, data, "out.tif")), "-m", str(model)]


def linked_output(link: Callable[[Path, Path], None]) -> Callable[[Path, Path, Path], list]:
    """`-o out.tif` where out.tif is a link (symbolic or hard) to the scene."""

    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        scene = _copy_scene(tmp, data)
        link(scene, tmp / "out.tif")
        return ["predict", str(scene), "-m", str(model)]

    return make


def fifo_as(role: str) -> Callable[[Path, Path, Path], list]:
    """A FIFO given as the scene, the labels or the legend: refused before it is opened."""

    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        fifo = tmp / f"{role}.fifo"
        os.mkfifo(fifo)
        if role == "scene":
            return ["predict", str(fifo), "-m", str(model)]
        option = "--labels" if role == "labels" else "--legend"
        labels = str(fifo) if role == "labels" else str(data / LABELS)
        args = ["train", str(data / S2), "--labels", labels, "-o", str(tmp / "m")]
        return args if role == "labels" else [*args, option, str(fifo)]

    return make


def fifo_scene_list(tmp: Path, data: Path, model: Path) -> list[str]:
    """A FIFO named as a CSV scene list: refused before it is opened (reading it would wait)."""
    os.mkfifo(tmp / "scenes.csv")
    return ["batch", str(tmp / "scenes.csv"), "-m", str(model), "--out-dir", str(tmp / "maps")]


def special_as(kind: str, role: str) -> Callable[[Path, Path, Path], list]:
    """A special file (tests/cli/test_hostile_fuzz.py's kinds) as the scene, labels, model or
    scene list."""

    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        path = tmp / {"model": "model", "scene list": "scenes.csv"}.get(role, f"{role}.tif")
        make_special(kind, path)
        return command_with(role, path, tmp, data / S2, model)

    return make


def scheduler(make_address: Callable[[Path], str]) -> Callable[[Path, Path, Path], list]:
    """`batch --scheduler ADDRESS`, ADDRESS made from the test's folder."""

    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        return ["batch", str(data / S2), "-m", str(model), "--out-dir", str(tmp / "maps"),
                "--scheduler", make_address(tmp)]  # fmt: skip

    return make


def _closed_port(_tmp: Path) -> str:
    """tcp://127.0.0.1:PORT where nothing listens (a port just bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def _symlink(target: Path, link: Path) -> None:
    link.symlink_to(target)


def _hard_link(target: Path, link: Path) -> None:
    os.link(target, link)


def preview_onto_the_scene(tmp: Path, data: Path, model: Path) -> list[str]:
    scene = _copy_scene(tmp, data)
    return ["predict", str(scene), "-m", str(model), "--preview", str(scene)]


def second_output_onto_the_map(option: str) -> Callable[[Path, Path, Path], list]:
    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        return ["predict", str(data / S2), "-m", str(model), option, str(tmp / "out.tif")]

    return make


def train_water(*options: str) -> Callable[[Path, Path, Path], list]:
    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        return ["train", str(data / S2), "--labels", str(data / LABELS), "--unlabelled", "-1",
                *options, "-o", str(tmp / "m")]  # fmt: skip

    return make


def existing_map(tmp: Path, data: Path, model: Path) -> list[str]:
    (tmp / "out.tif").write_bytes(b"yesterday's map")
    return ["predict", str(data / S2), "-m", str(model)]


def existing_side_file(tmp: Path, data: Path, model: Path) -> list[str]:
    (tmp / "out.tif.aux.xml").write_text("<PAMDataset/>")
    return ["predict", str(data / S2), "-m", str(model)]


def existing_model(tmp: Path, data: Path, model: Path) -> list[str]:
    shutil.copytree(model, tmp / "trained")
    return [
        "train", str(data / S2), "--labels", str(data / LABELS), "--unlabelled", "-1",
        "-o", str(tmp / "trained"),
    ]  # fmt: skip


def json_onto(input_file: str) -> Callable[[Path, Path, Path], list]:
    """`evaluate --json` onto one of its inputs: the model's model.json or the labels."""

    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        copy = tmp / "model"
        shutil.copytree(model, copy)
        labels = tmp / "labels.tif"
        shutil.copyfile(data / LABELS, labels)
        target = copy / "model.json" if input_file == "model.json" else labels
        return [
            "evaluate", "-m", str(copy), str(data / S2), "--labels", str(labels),
            "--unlabelled", "-1", "--json", str(target),
        ]  # fmt: skip

    return make


def batch_into_its_inputs(tmp: Path, data: Path, model: Path) -> list[str]:
    (tmp / "tiles").mkdir()
    _copy_scene(tmp / "tiles", data, "a.tif")
    return ["batch", str(tmp / "tiles"), "-m", str(model), "--out-dir", str(tmp / "tiles")]


def batch_into_its_product(tmp: Path, data: Path, model: Path) -> list[str]:
    safe = next((data / "s2_l2a_safe").glob("*.SAFE"))
    product = Path(shutil.copytree(safe, tmp / safe.name))
    return ["batch", str(product), "-m", str(model), "--out-dir", str(product / "maps")]


def batch_to_a_web_server(tmp: Path, data: Path, model: Path) -> list[str]:
    scene = _copy_scene(tmp, data)
    return ["batch", str(scene), "-m", str(model), "--out-dir", "https://example.invalid/maps"]


def batch_onto_a_stranger(tmp: Path, data: Path, model: Path) -> list[str]:
    (tmp / "maps").mkdir()
    (tmp / "maps" / "scene.tif").write_bytes(b"someone's map")
    scene = _copy_scene(tmp, data)
    return ["batch", str(scene), "-m", str(model), "--out-dir", str(tmp / "maps")]


_HELD_LOCKS: list[int] = []
"""Lock files this test process holds, as a running batch would (closed at exit)."""


def batch_into_a_locked_dir(tmp: Path, data: Path, model: Path) -> list[str]:
    (tmp / "maps").mkdir()
    descriptor = os.open(tmp / "maps" / ".bandfusion.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    _HELD_LOCKS.append(descriptor)
    return ["batch", str(data / S2), "-m", str(model), "--out-dir", str(tmp / "maps")]


def named_map(option: str, name: str) -> Callable[[Path, Path, Path], list]:
    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        return ["predict", str(data / S2), "-m", str(model), option, str(tmp / name)]

    return make


def with_option(command: str, option: str, value: str) -> Callable[[Path, Path, Path], list]:
    """`command` on the water scene with one numeric option out of its range."""

    def make(tmp: Path, data: Path, model: Path) -> list[str]:
        scene, labels = str(data / S2), ["--labels", str(data / LABELS)]
        args = {
            "train": ["train", scene, *labels, "-o", str(tmp / "m")],
            "explain": ["explain", "-m", str(model), scene, *labels, "-o", str(tmp / "x")],
            "benchmark": ["benchmark", scene, *labels, "-o", str(tmp / "b")],
            "predict": ["predict", scene, "-m", str(model)],
            "batch": ["batch", scene, "-m", str(model), "--out-dir", str(tmp / "maps")],
            "info": ["info", scene],
        }[command]
        return [*args, option, value]

    return make


RANGES = {
    ("train", "--batch-size", "0"), ("train", "--lr", "nan"), ("train", "--lr", "inf"),
    ("train", "--lr", "0"), ("train", "--val-fraction", "1.0"), ("train", "--block-size", "0"),
    ("train", "--dropout", "1.5"), ("train", "--per-class-cap", "-5"), ("train", "--epochs", "0"),
    ("train", "--hidden", "0"), ("train", "--patience", "0"), ("train", "--seed", "-1"),
    ("explain", "--repeats", "0"), ("explain", "--per-class-cap", "-1"),
    ("benchmark", "--runs", "0"), ("benchmark", "--threads", "0"),
    ("benchmark", "--test-fraction", "0"), ("benchmark", "--fraction", "1"),
    ("benchmark", "--per-class", "0"), ("benchmark", "--block-size", "-3"),
    ("benchmark", "--epochs", "0"), ("benchmark", "--dropout", "nan"),
    ("benchmark", "--lr", "-1"), ("benchmark", "--validation-fraction", "1"),
    ("benchmark", "--per-class-cap", "-1"), ("predict", "--batch-pixels", "0"),
    ("batch", "--workers", "0"), ("batch", "--threads-per-worker", "0"),
    ("batch", "--batch-pixels", "0"), ("info", "--nodata", "nan"),
}  # fmt: skip
"""Every numeric option of every command, each with a value out of its range."""

RANGE_CASES = {
    f"{command} {option} {value}": Case(
        with_option(command, option, value), 2, f"Invalid value for '{option}'"
    )
    for command, option, value in sorted(RANGES)
}

OUTPUT_CASES: dict[str, Case] = {
    "output is the scene": Case(output_is_the_scene, 2, "is the input"),
    "output is a symlink to the scene": Case(linked_output(_symlink), 2, "is the input"),
    "output is a hard link to the scene": Case(linked_output(_hard_link), 2, "is the input"),
    "--preview onto the scene": Case(preview_onto_the_scene, 2, "is the input"),
    "--probabilities onto the map": Case(
        second_output_onto_the_map("--probabilities"), 2, "is also the output"
    ),
    "--preview onto the map": Case(
        second_output_onto_the_map("--preview"), 2, "is also the output"
    ),
    "existing map without --overwrite": Case(existing_map, 2, "exists; use --overwrite"),
    "an existing `MAP.tif.aux.xml` without the map": Case(
        existing_side_file, 2, "out.tif.aux.xml: exists; use --overwrite"
    ),
    "existing model without --overwrite": Case(existing_model, 2, "exists; use --overwrite"),
    "evaluate --json onto model.json": Case(json_onto("model.json"), 2, "is the input"),
    "evaluate --json onto the labels": Case(json_onto("labels"), 2, "is the input"),
    "batch --out-dir holding its inputs": Case(batch_into_its_inputs, 2, "is the input"),
    "batch --out-dir inside its input product": Case(
        batch_into_its_product, 2, "is inside the input product"
    ),
    "batch --out-dir at an https:// URL": Case(
        batch_to_a_web_server, 2, "maps are written to a local folder or an s3:// prefix"
    ),
    "batch onto a file the manifest does not record": Case(
        batch_onto_a_stranger, 2, "does not record it; not replacing it (--overwrite)"
    ),
    "a second batch into one --out-dir": Case(
        batch_into_a_locked_dir, 2, "another bandfusion batch is writing into it"
    ),
    "map named .png": Case(named_map("-o", "map.png"), 2, "PNG is not a GeoTIFF"),
    "probabilities named .png": Case(
        named_map("--probabilities", "p.png"), 2, "PNG is not a GeoTIFF"
    ),
    "map named without a suffix": Case(named_map("-o", "map"), 2, "is not a GeoTIFF"),
    **RANGE_CASES,
}
"""Issue 18: outputs never replace inputs or each other, nor an existing file unless told;
one batch per out-dir; maps named as what they are; every number in range."""

CASES: dict[str, Case] = {
    "missing file": Case(missing_file, 2, "no such file"),
    "directory as raster": Case(directory_as_raster, 2, "is a directory"),
    "text file named .tif": Case(text_as_tif, 2, "not a raster GDAL can read"),
    "zero-size file": Case(zero_size, 2, "not a raster GDAL can read"),
    "TIFF cut at 1 %": Case(truncated(0.01), 2, f"cut1.tif: {CUT}"),
    "TIFF cut at 50 %": Case(truncated(0.5), 2, f"cut50.tif: {CUT}"),
    "TIFF cut at 90 %": Case(truncated(0.9), 2, f"cut90.tif: {CUT}"),
    "raster with 0 bands": Case(vrt_header("bandless.vrt", 16, 16, 0), 2, "bandless.vrt"),
    "raster with 0 pixels": Case(
        vrt_header("pixelless.vrt", 0, 16, 1), 2, "Invalid dataset dimensions : 0 x 16"
    ),
    "complex data type": Case(complex_dtype, 2, "unsupported data type complex64"),
    "header claiming 2e6 x 2e6 px": Case(
        vrt_header("enormous.vrt", 2_000_000, 2_000_000, 1), 2, "header claims 2000000x2000000 px"
    ),
    "band files in two CRSs": Case(other_crs_band_files, 2, "CRS"),
    "band files that do not overlap": Case(disjoint_band_files, 2, "does not overlap"),
    "fewer bands than the model": Case(fewer_bands, 2, "do not match the model"),
    "band names differ from the model": Case(renamed_bands, 2, "missing ['B8A']"),
    "model is a pickle": Case(pickle_model, 2, "never unpickles"),
    "model.json drops a band": Case(edited_model(_drop_band, "dropped"), 2, "weights"),
    "model.json adds a class": Case(edited_model(_extra_class, "extra"), 2, "weights"),
    "model from a newer format": Case(edited_model(_newer, "newer"), 2, "newer bandfusion"),
    "model.json names an unknown index": Case(
        edited_model(_unknown_index, "evi"), 2, "unknown spectral index 'EVI'"
    ),
    "indices the scene has no bands for": Case(
        train_on_slovenia("lulc.tif", "--indices", "NDWI"), 2, "no band for role 'green'"
    ),
    "missing model": Case(missing_model, 2, "no such model"),
    "labels that do not overlap": Case(labels_elsewhere, 2, "do not overlap"),
    "vector labels without the attribute": Case(
        train_on_slovenia("LULC.gpkg", "--attribute", "CROP_ID"), 2, "CROP_ID"
    ),
    "vector labels elsewhere": Case(vector_labels_elsewhere, 2, "LULC.gpkg"),
    "output path is a directory": Case(output_is_directory, 2, "is a directory"),
    "TIFF with garbled tiles": Case(garbled_tiles, 2, f"garbled.tif: {CUT}"),
    **OUTPUT_CASES,
    "a FIFO as the scene": Case(fifo_as("scene"), 2, "scene.fifo: is a FIFO"),
    "a FIFO as the labels": Case(fifo_as("labels"), 2, "labels.fifo: is a FIFO"),
    "a FIFO as the legend": Case(fifo_as("legend"), 2, "legend.fifo: is a FIFO"),
    "a network over the memory budget": Case(
        train_water("--hidden", "1000000000"), 2, "--hidden 1000000000: a network of"
    ),
    "a FIFO as the batch scene list": Case(fifo_scene_list, 2, "scenes.csv: is a FIFO"),
    "batch --scheduler a text file (/etc/passwd)": Case(
        scheduler(lambda _tmp: "/etc/passwd"), 2, "/etc/passwd: not a scheduler file (not JSON)"
    ),
    "batch --scheduler notaurl::://": Case(
        scheduler(lambda _tmp: "notaurl::://"), 2, "unknown address scheme 'notaurl::'"
    ),
    "batch --scheduler a closed port": Case(
        scheduler(_closed_port), 2, "cannot connect to a scheduler (OSError: Timed out"
    ),
    "/dev/null as the scene": Case(special_as("/dev/null", "scene"), 2, "is a character device"),
    "/dev/null as the model": Case(
        special_as("/dev/null", "model"), 2, "model: not a bandfusion model directory"
    ),
    "a directory as the labels": Case(
        special_as("directory", "labels"), 2, "labels.tif: cannot read as raster or vector labels"
    ),
    "a directory as the batch scene list": Case(
        special_as("directory", "scene list"), 2, "scenes.csv: directory holds no raster files"
    ),
    "a dangling symlink as the scene": Case(
        special_as("dangling symlink", "scene"), 2, "scene.tif: no such file"
    ),
    "a dangling symlink as the batch scene list": Case(
        special_as("dangling symlink", "scene list"), 2, "scenes.csv: cannot read scene list"
    ),
    "binned bands under a layer norm": Case(
        train_water("--bins", "4", "--norm", "layer", "--quick"), 2,
        "--norm layer: a layer norm would mix binned bands",
    ),
    "too many bins for the memory budget": Case(
        train_water("--bins", "10000000"), 2, "--bins 10000000: a network of",
    ),
    "a learning rate that diverges": Case(
        train_water("--lr", "1e30", "--epochs", "2"), 2, "--lr 1e+30: training diverged"
    ),
}  # fmt: skip


def test_every_case_is_a_row_of_the_docs_table() -> None:
    doc = (REPO / "docs" / "hostile-inputs.md").read_text()
    rows = {line.split("|")[1].strip() for line in doc.splitlines() if line.startswith("| ")}
    assert sorted(set(CASES) - rows) == []


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the `bandfusion` entry point in-process; returns (exit code, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input(
    name: str, tmp_path: Path, data_dir: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
):
    case = CASES[name]
    args = case.make(tmp_path, data_dir, model_dir)
    out = tmp_path / "out.tif"
    if args[0] == "predict" and "-o" not in args:
        args += ["-o", str(out)]
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    code, _, err = cli([*args, "-q"], capsys)
    lines = err.strip().splitlines()
    assert code == case.exit_code, err
    assert len(lines) == 1 and lines[0].startswith("bandfusion: error: "), err
    assert case.fragment in lines[0]
    assert "Traceback" not in err
    assert out.is_dir() or not out.exists() or out in before
    after = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before, "a file was written or changed"
    assert not list(tmp_path.glob(".out.tif*")), "temporary files left behind"
    assert not (tmp_path / "pwned").exists()


def test_nan_and_inf_pixels_become_nodata(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
):
    values = np.random.default_rng(0).uniform(100, 3000, (13, 32, 32)).astype(np.float32)
    values[0, 0, :4], values[5, 1, :4], values[12, 2, :4] = np.nan, np.inf, -np.inf
    path = write_raster(tmp_path / "odd.tif", values)
    out = tmp_path / "map.tif"
    code, _, err = cli(["predict", str(path), "-m", str(model_dir), "-o", str(out), "-q",
                        "--band-names", S2_BANDS], capsys)  # fmt: skip
    assert code == 0, err
    with rasterio.open(out) as src:
        classes = src.read(1)
    assert (classes[:3, :4] == 255).all()
    assert (classes[3:] != 255).all() and (classes[:3, 4:] != 255).all()


@pytest.mark.parametrize("probabilities", [False, True], ids=["classes", "probabilities"])
def test_an_all_nodata_scene_gives_an_all_nodata_map_and_a_warning(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str], probabilities: bool
):
    values = np.zeros((13, 40, 40), dtype=np.uint16)
    path = write_raster(tmp_path / "empty-swath.tif", values, nodata=0)
    out, proba = tmp_path / "map.tif", tmp_path / "proba.tif"
    extra = ["--probabilities", str(proba)] if probabilities else []
    code, _, err = cli(["predict", str(path), "-m", str(model_dir), "-o", str(out), "-q",
                        "--band-names", S2_BANDS, *extra], capsys)  # fmt: skip
    assert code == 0, err
    warnings = err.strip().splitlines()
    assert warnings[0] == (
        f"bandfusion: warning: {path}: every pixel is nodata; {out} holds no data"
    )
    assert len(warnings) == (2 if probabilities else 1)
    with rasterio.open(out) as src:
        assert (src.read(1) == src.nodata).all()
    if probabilities:
        with rasterio.open(proba) as src:
            assert np.isnan(src.read()).all()


def test_labels_in_another_crs_are_reprojected(
    tmp_path: Path, data_dir: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
):
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    with rasterio.open(data_dir / LABELS) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:3857", src.width, src.height, *src.bounds
        )
        moved = np.full((1, height, width), -1, dtype=np.int16)
        reproject(
            src.read(), moved, src_transform=src.transform, src_crs=src.crs,
            dst_transform=transform, dst_crs="EPSG:3857", resampling=Resampling.nearest,
        )  # fmt: skip
    labels = write_raster(tmp_path / "labels3857.tif", moved, crs="EPSG:3857", transform=transform)
    args = ["evaluate", "-m", str(model_dir), str(data_dir / S2), "--labels", str(labels),
            "--unlabelled", "-1", "-q"]  # fmt: skip
    code, out, err = cli(args, capsys)
    assert code == 0, err
    assert "overall accuracy" in out


def test_labels_with_classes_the_model_never_saw_count_as_errors(
    tmp_path: Path, data_dir: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
):
    with rasterio.open(data_dir / LABELS) as src:
        labels = src.read()
        profile = src.profile
    labels[labels == 1] = 5  # water relabelled as a class the model does not know
    path = write_raster(tmp_path / "relabelled.tif", labels, **profile)
    code, out, err = cli(["evaluate", "-m", str(model_dir), str(data_dir / S2), "--labels",
                          str(path), "--unlabelled", "-1", "-q"], capsys)  # fmt: skip
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.strip().startswith("class 5"))
    assert row.split()[3] == "0.000"  # recall of the unknown class


def _run_predict(data_dir: Path, model: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bandfusion.cli", "predict", str(data_dir / S2),
               "-m", str(model), "-o", str(out), "-q", *extra]  # fmt: skip
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_while_writing_leaves_nothing(
    signum: int, tmp_path: Path, data_dir: Path, model_dir: Path
):
    out = tmp_path / "map.tif"
    process = _run_predict(data_dir, model_dir, out)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".map.tif*")) and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    if process.returncode == 0:  # finished before the signal landed: complete and valid
        with rasterio.open(out) as src:
            assert src.read(1).shape == (512, 512)
        return
    assert process.returncode == INTERRUPT_EXIT[signal.Signals(signum)], err
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob(".map.tif*"))


def test_two_processes_writing_one_output_leave_one_complete_map(
    tmp_path: Path, data_dir: Path, model_dir: Path
):
    out = tmp_path / "map.tif"
    # --overwrite: whichever starts second may find the first's map already there
    first, second = (_run_predict(data_dir, model_dir, out, "--overwrite") for _ in range(2))
    codes = [p.wait(timeout=120) for p in (first, second)]
    assert codes == [0, 0]
    with rasterio.open(out) as src:
        written = src.read(1)
    reference = tmp_path / "reference.tif"
    assert _run_predict(data_dir, model_dir, reference).wait(timeout=120) == 0
    with rasterio.open(reference) as src:
        np.testing.assert_array_equal(written, src.read(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "map.tif",
        "map.tif.aux.xml",  # the category names: see bandfusion.io.pam
        "reference.tif",
        "reference.tif.aux.xml",
    ]
