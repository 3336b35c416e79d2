"""Test helpers: untrained-but-realistic models built without a training run, and the waits,
manifest reads and worker kills that the batch tests on a real cluster share."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from bandfusion.models.checkpoint import TrainedModel
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.metadata import ModelMetadata
from distributed import Client

REPO = Path(__file__).resolve().parent.parent
"""The repository's root: `data/`, `docs/`, `notebooks/` and `README.md` are found from it."""

BANDFUSION = Path(sys.executable).with_name("bandfusion")
"""The `bandfusion` command of the environment the tests run in."""


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
