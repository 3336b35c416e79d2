"""Test helpers: untrained-but-realistic models built without a training run; for the batch
tests, models and stacked rasters of the bundled On Cloud N chips, and the waits, manifest reads
and worker kills that the tests on a real cluster share."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
import xarray as xr
from bandfusion.batch.manifest import SceneRecord, file_sha256
from bandfusion.engine.predict import predict_scene
from bandfusion.io.geotiff import write_geotiff
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import TrainedModel, load_model, save_model
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.metadata import ModelMetadata
from distributed import Client

REPO = Path(__file__).resolve().parent.parent
"""The repository's root: `data/`, `docs/`, `notebooks/` and `README.md` are found from it."""

BANDFUSION = Path(sys.executable).with_name("bandfusion")
"""The `bandfusion` command of the environment the tests run in."""

QUICK_TRAINING: dict[str, Any] = {
    "epochs": 8,
    "hidden": (16, 16),
    "per_class_cap": 3000,
    "patience": 4,
    "search": False,
}
"""Settings of `bandfusion.engine.train` for a model trained in seconds on the water chip
(one fit: no search of settings by cross-validation)."""


def random_model(
    scene: xr.DataArray,
    class_ids: list[int],
    *,
    hidden: tuple[int, ...] = (32, 16, 32),
    seed: int = 0,
) -> TrainedModel:
    """A model with random weights, standardised on the scene's own statistics.

    Its maps use every class in patches, which is what window-invariance tests need.
    """
    torch.manual_seed(seed)
    net = SpectralFusionNet(len(scene["band"]), len(class_ids), hidden=hidden)
    pixels = scene.values.reshape(scene.shape[0], -1).astype(np.float64)
    net.set_standardisation(
        torch.from_numpy(pixels.mean(1)).float(), torch.from_numpy(pixels.std(1)).float()
    )
    meta = ModelMetadata(
        bands=[str(b) for b in scene["band"].values],
        class_ids=list(class_ids),
        class_names=[f"class {c}" for c in class_ids],
        class_colors=[(40 * i % 256, 90, 200 - 30 * i % 200) for i in range(len(class_ids))],
        architecture=net.config(),
    )
    return TrainedModel(net.eval(), meta)


def computed(array: xr.DataArray, workers: int | None) -> np.ndarray:
    """`array` computed on `workers` threads, or on dask's synchronous scheduler (None)."""
    if workers is None:
        return array.compute(scheduler="synchronous").values
    return array.compute(scheduler="threads", num_workers=workers).values


def run_python(code: str) -> str:
    """stdout of `code` run in a fresh interpreter, which must succeed: what a clean start loads."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


CHIPS = REPO / "data" / "oncloudn_s2"
CHIP_BANDS = ("B02", "B03", "B04", "B08")


def chip_bands(chip: str) -> list[Path]:
    """The band files of a bundled On Cloud N chip ("adwp" or "akny")."""
    return [CHIPS / chip / f"{band}.tif" for band in CHIP_BANDS]


def save_chip_model(path: Path, seed: int = 0) -> Path:
    """A small random-weight model over the chips' four bands, saved at `path`; with seed 0
    its maps of both chips hold all three classes."""
    scene = open_scene(chip_bands("adwp"))
    return save_model(random_model(scene, [1, 2, 3], hidden=(8,), seed=seed), path)


def stack_chip(chip: str, path: Path, tiles: tuple[int, int] = (1, 1)) -> Path:
    """The chip's bands as one multi-band GeoTIFF (band names kept), tiled `tiles` times."""
    data = np.tile(open_scene(chip_bands(chip)).values, (1, *tiles))
    with rasterio.open(chip_bands(chip)[0]) as src:
        profile = {**src.profile, "count": 4, "height": data.shape[1], "width": data.shape[2]}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for index, band in enumerate(CHIP_BANDS, start=1):
            dst.set_band_description(index, band)
    return path


def predict_sha256(inputs: list[Path], model_dir: Path, path: Path) -> str:
    """sha256 of the map `bandfusion predict` writes for `inputs` (written at `path`)."""
    model = load_model(model_dir)
    write_geotiff(predict_scene(open_scene(inputs), model), path)
    return file_sha256(path)


def pending_like(record: SceneRecord) -> SceneRecord:
    """The pending record a new run makes for the same output, inputs and model as `record`."""
    return SceneRecord(record.output, record.inputs, record.model_sha256)


def no_cluster() -> None:
    """A start_client for runs that must not start one."""
    raise AssertionError("a cluster was started")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll `condition` every 10 ms until it holds; TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout} s")
        time.sleep(0.01)


def manifest_scenes(out: Path) -> list[dict[str, Any]]:
    """The scene records of OUT/manifest.json; none while it does not exist yet."""
    try:
        scenes: list[dict[str, Any]] = json.loads((out / "manifest.json").read_text())["scenes"]
    except (OSError, ValueError):
        return []
    return scenes


def kill_busy_worker(client: Client) -> str:
    """SIGKILL the process of a worker that is running a task; returns the worker's address."""
    busy = [worker for worker, keys in client.processing().items() if keys]
    assert busy, "no worker is running a task"
    pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
    os.kill(pid, signal.SIGKILL)
    return str(busy[0])


def copy_model(saved: Path, directory: Path) -> Path:
    """A copy of the model directory `saved` at DIRECTORY/model, to spoil without touching it."""
    return Path(shutil.copytree(saved, directory / "model"))
