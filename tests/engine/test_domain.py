"""A model maps scenes of the domain it was trained in; models and scenes that record none are
not checked; Sentinel-2 band files read with nodata 0 never get a class on their fill."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bandfusion.engine.predict import align_bands, predict_scene
from bandfusion.errors import SceneError
from bandfusion.io.scene import open_scene

from tests.helpers import random_model
from tests.io.test_radiometry import R60, crop_bands

pytestmark = pytest.mark.skipif(not R60, reason="the real SAFE sample is not on this machine")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    base = tmp_path_factory.mktemp("domain")
    (base / "dn").mkdir()
    (base / "reflectance").mkdir()
    return {
        "dn": crop_bands(base / "dn"),
        "reflectance": crop_bands(base / "reflectance", 1e-4, -0.1),
    }


def test_a_scene_of_another_domain_is_refused_in_one_line(files) -> None:
    reflectance = open_scene(files["reflectance"], nodata=0)
    dn = open_scene(files["dn"], nodata=0)
    model = random_model(dn, [1, 2])
    model.meta.radiometry = {"domain": "reflectance", "source": "scale/offset from GDAL tags"}
    with pytest.raises(SceneError) as caught:
        predict_scene(dn, model)
    message = str(caught.value)
    first = files["dn"][0]  # named by its folder and its own name among many band files
    assert "\n" not in message and str(first.parent) in message and first.name in message
    assert "the scene is in dn, the model was trained in reflectance (scale/offset" in message
    align_bands(reflectance, model)  # its own domain


def test_a_model_or_scene_without_a_domain_is_not_checked(files) -> None:
    dn = open_scene(files["dn"], nodata=0)
    model = random_model(dn, [1, 2])
    assert model.meta.radiometry == {}  # as model.json before format 3
    model.meta.bands = [f"B{b[1:].lstrip('0')}" if b[1] == "0" else b for b in model.meta.bands]
    assert align_bands(open_scene(files["reflectance"], nodata=0), model) is not None
    model.meta.radiometry = {"domain": "reflectance", "source": ""}
    built = dn.copy()
    built.attrs.pop("radiometry")
    align_bands(built, model)


def test_nodata_zero_is_never_classified(files) -> None:
    scene = open_scene(files["dn"], nodata=0)
    model = random_model(scene, [1, 2, 3])
    classes = predict_scene(scene, model).values
    fill = (open_scene(files["dn"]).values == 0).any(axis=0)
    assert fill.any() and (~fill).any()
    assert (classes[fill] == 255).all() and (classes[~fill] != 255).all()
    without = predict_scene(open_scene(files["dn"]), model).values
    assert (without[fill] != 255).all()  # what the issue found: the fill got classes
    assert np.array_equal(classes[~fill], without[~fill])
