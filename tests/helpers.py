"""Test helpers: untrained-but-realistic models built without a training run."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr
from bandfusion.models.checkpoint import ModelMetadata, TrainedModel
from bandfusion.models.fusion import SpectralFusionNet


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
