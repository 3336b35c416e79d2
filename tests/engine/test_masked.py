"""A scene with a mask through the engine: masked pixels get their own named, coloured map
values whatever the tiling, probabilities are NaN there, sampling, evaluation and explanation
never use them, and the tally counts them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from bandfusion.batch.tally import PixelTally
from bandfusion.colours import MASK_COLOURS
from bandfusion.display.tables import masked_summary
from bandfusion.engine.evaluate import evaluate
from bandfusion.engine.explain import explain
from bandfusion.engine.masked import MASKED_VALUES
from bandfusion.engine.predict import predict_proba_scene, predict_scene
from bandfusion.engine.sampling import sample_pixels
from bandfusion.errors import BandfusionError
from bandfusion.io.cloudmask import MASK_NODATA, MaskPolicy, attach_mask
from bandfusion.io.geotiff import write_geotiff
from bandfusion.io.pam import aux_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import computed, random_model

VALUES = {"cloud": 254, "cirrus": 253, "shadow": 252, "saturated": 249}  # docs/engine.md
CODES = {"cloud": 1, "cirrus": 2, "shadow": 3, "saturated": 6}  # the mask's codes of them


@pytest.fixture(scope="module")
def scl(scene, tmp_path_factory) -> Path:
    """An SCL-like layer on the water chip's grid: 16 x 16 px patches of classes 0..11."""
    rng = np.random.default_rng(5)
    patches = rng.integers(0, 12, size=(32, 32), dtype=np.uint8)
    values = np.repeat(np.repeat(patches, 16, axis=0), 16, axis=1)
    path = tmp_path_factory.mktemp("scl") / "T00XXX_SCL_10m.tif"
    profile = {"driver": "GTiff", "width": 512, "height": 512, "count": 1, "dtype": "uint8"}
    with rasterio.open(
        path, "w", **profile, crs=scene.attrs["crs"], transform=tuple(scene.attrs["transform"])
    ) as dst:
        dst.write(values, 1)
    return path


@pytest.fixture(scope="module")
def masked(scene, scl):
    return attach_mask(scene, scl, "s2_scl", MaskPolicy())


@pytest.fixture(scope="module")
def codes(masked) -> np.ndarray:
    return masked["mask"].values


@pytest.fixture(scope="module")
def plain_map(scene, model) -> np.ndarray:
    return predict_scene(scene, model).values


def test_masked_pixels_get_their_values_and_the_rest_is_the_plain_map(
    masked, model, codes, plain_map
):
    classes = predict_scene(masked, model)
    result = classes.values
    clear = codes == 0
    np.testing.assert_array_equal(result[clear], plain_map[clear])
    assert (result[codes == MASK_NODATA] == 255).all()
    for reason, value in VALUES.items():
        assert (result[codes == CODES[reason]] == value).all()
        assert classes.attrs["class_names"][value] == f"masked: {reason}"
        assert classes.attrs["colormap"][value] == (*MASK_COLOURS[reason], 255)
    assert classes.attrs["masked"] == {v: r for r, v in VALUES.items()}
    assert classes.attrs["nodata"] == 255 and classes.dtype == np.uint8
    assert len(set(np.unique(result[clear])) & {1, 2, 3, 4, 8}) > 1


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.integers(min_value=40, max_value=512),
    cols=st.integers(min_value=40, max_value=512),
    batch=st.sampled_from([1, 97, 8191, 1 << 20]),
    workers=st.sampled_from([1, 3, None]),
)
def test_any_tiling_of_a_masked_scene_gives_a_bit_identical_map(
    scene, scl, model, rows, cols, batch, workers
):
    reference = predict_scene(attach_mask(scene, scl, "s2_scl", MaskPolicy()), model).values
    tiled = attach_mask(scene.chunk({"y": rows, "x": cols}), scl, "s2_scl", MaskPolicy())
    rechunked = attach_mask(scene, scl, "s2_scl", MaskPolicy()).chunk({"y": cols, "x": rows})
    for masked_scene in (tiled, rechunked):
        classes = predict_scene(masked_scene, model, batch_pixels=batch)
        np.testing.assert_array_equal(computed(classes, workers), reference)


def test_probabilities_are_nan_where_masked(masked, model, codes):
    proba = predict_proba_scene(masked.chunk({"y": 100, "x": 77}), model).values
    assert np.isnan(proba[:, codes != 0]).all()
    valid = (masked.values != 0).all(axis=0) & (codes == 0)
    np.testing.assert_allclose(proba[:, valid].sum(0), 1.0, atol=1e-5)


def test_a_model_using_masked_values_is_refused_on_masked_scenes(scene, masked):
    model = random_model(scene, [1, 250])
    predict_scene(scene, model)  # fine without a mask
    with pytest.raises(BandfusionError, match=r"class ids \[250\] are the map values"):
        predict_scene(masked, model)


def test_masked_map_files_name_and_count_masked_pixels(masked, model, codes, tmp_path):
    tally = PixelTally()
    path = tmp_path / "map.tif"
    write_geotiff(tally.counted(predict_scene(masked, model)), path)
    pixels = tally.pixels()
    for reason, code in CODES.items():
        assert pixels[f"masked: {reason}"] == int((codes == code).sum()) > 0
    assert sum(pixels.values()) == 512 * 512
    categories = aux_path(path).read_text()
    assert "<Category>masked: cloud</Category>" in categories
    with rasterio.open(path) as src:
        assert src.colormap(1)[254] == (255, 255, 255, 255)
    summary = masked_summary([pixels, {"masked: cloud": 1, "1": 5}])
    assert summary is not None and summary.startswith("masked pixels: cloud ")
    assert f"cloud {pixels['masked: cloud'] + 1:,}" in summary
    assert masked_summary([{"1": 3, "nodata": 2}]) is None


def test_masked_pixels_are_never_sampled_scored_or_explained(water, scl):
    scene, labels = water
    masked = attach_mask(scene, scl, "s2_scl", MaskPolicy())
    clear = masked["mask"].values == 0
    valid = (scene.values != 0).all(axis=0)
    x, y = sample_pixels(masked, labels, per_class_cap=None)
    assert len(y) == int((labels.labelled & valid & clear).sum())
    x_all, _ = sample_pixels(scene, labels, per_class_cap=None)
    assert len(x_all) > len(x)
    model = random_model(scene, [0, 1])
    report = evaluate(model, masked, labels)
    assert report.n_pixels == int((labels.labelled & valid & clear).sum())
    assert evaluate(model, scene, labels).n_pixels > report.n_pixels
    explanation = explain(model, masked, labels, n_repeats=1, per_class_cap=None)
    assert int(explanation.class_pixels.sum()) == len(y)


def test_masked_values_sit_below_nodata():
    assert MASKED_VALUES == (254, 253, 252, 251, 250, 249, 248)
