"""Fixtures of the engine tests: the water chip as a scene, and a random-weight model of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from bandfusion.io.scene import open_scene

from tests.helpers import random_model

S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"


@pytest.fixture(scope="module")
def scene(data_dir: Path):
    return open_scene(data_dir / S2)


@pytest.fixture(scope="module")
def model(scene):
    return random_model(scene, [1, 2, 3, 4, 8])
