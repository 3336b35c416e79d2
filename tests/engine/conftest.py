"""Fixtures of the engine tests: a random-weight model of the water chip (`scene`, from
tests/conftest.py), and the chip with its water labels and a model quickly trained on them."""

from __future__ import annotations

from pathlib import Path

import pytest
from bandfusion.engine.train import train
from bandfusion.io.grid import Grid
from bandfusion.io.labels import read_labels
from bandfusion.io.scene import open_scene

from tests.helpers import QUICK_TRAINING, random_model

WATER = "sen1floods11_spain"


@pytest.fixture(scope="module")
def model(scene):
    return random_model(scene, [1, 2, 3, 4, 8])


@pytest.fixture(scope="module")
def water(data_dir: Path):
    scene = open_scene(data_dir / WATER / "Spain_7370579_S2Hand.tif")
    labels = read_labels(
        data_dir / WATER / "Spain_7370579_LabelHand.tif",
        Grid.of(scene),
        unlabelled=-1,
        legend=data_dir / WATER / "legend.json",
    )
    return scene, labels


@pytest.fixture(scope="module")
def trained(water):
    scene, labels = water
    return train(scene, labels, seed=3, **QUICK_TRAINING)
