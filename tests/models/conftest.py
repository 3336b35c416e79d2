"""Fixtures of the model tests: the water chip's pixels and a network briefly trained on them
(for the kernels' tests), and a saved model directory that the checkpoint tests and fuzzers
copy and spoil."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import TrainedModel, save_model
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.metadata import ModelMetadata

from tests.helpers import random_model

S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"
LABELS = "sen1floods11_spain/Spain_7370579_LabelHand.tif"


@pytest.fixture(scope="module")
def water_pixels(data_dir: Path) -> torch.Tensor:
    """The water chip's valid pixels as a (pixels, 13) uint16 view, as the engine passes them."""
    values = open_scene(data_dir / S2).values.reshape(13, -1)
    return torch.from_numpy(np.ascontiguousarray(values[:, (values != 0).all(axis=0)])).T


@pytest.fixture(scope="module")
def water_net(data_dir: Path) -> SpectralFusionNet:
    """A 13→64→64→2 net briefly trained on the chip's water labels, batch norm and all.

    Trained, because only a trained model's logits have realistic margins between classes.
    """
    scene = open_scene(data_dir / S2)
    labels = open_scene(data_dir / LABELS).values.ravel()
    pixels = torch.from_numpy(scene.values.reshape(13, -1).T[labels >= 0].astype(np.float32))
    targets = torch.from_numpy(labels[labels >= 0].astype(np.int64))
    net = random_model(scene, [0, 1], hidden=(64, 64)).net.train()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        batch = torch.randint(0, len(pixels), (2048,), generator=generator)
        loss = torch.nn.functional.cross_entropy(net(pixels[batch]), targets[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return net.eval()


@pytest.fixture(scope="module")
def saved_model(scratch: Path) -> Path:
    """A small batch-norm model over four bands and three classes, saved once per module."""
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
