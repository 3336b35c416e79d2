"""predict_scene: lazy, exact, identical whatever the tiling, nodata handled, bands aligned."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bandfusion.engine import predict as predict_module
from bandfusion.engine.predict import (
    PixelClassifier,
    class_map_encoding,
    predict_proba_scene,
    predict_scene,
)
from bandfusion.errors import BandfusionError, SceneError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import computed, random_model


@pytest.fixture(scope="module")
def reference_map(scene, model) -> np.ndarray:
    """The map computed as one chunk: the reference every other tiling must reproduce."""
    return predict_scene(scene.chunk({"y": -1, "x": -1}), model).values


def test_map_matches_the_model_applied_to_every_pixel(scene, model, reference_map):
    pixels = scene.values.reshape(13, -1).T.astype(np.float32)
    with torch.inference_mode():
        logits = model.net(torch.from_numpy(pixels))
    expected = np.array(model.meta.class_ids)[logits.argmax(1).numpy()].reshape(512, 512)
    valid = (scene.values != 0).all(axis=0)
    np.testing.assert_array_equal(reference_map[valid], expected[valid])
    assert (reference_map[~valid] == 255).all()
    assert set(np.unique(reference_map[valid])) <= {1, 2, 3, 4, 8}
    assert len(np.unique(reference_map[valid])) > 1


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.integers(min_value=40, max_value=512),
    cols=st.integers(min_value=40, max_value=512),
    batch=st.sampled_from([1, 97, 1000, 8191, 1 << 16, 1 << 20]),
    workers=st.sampled_from([1, 2, 3, None]),  # None: one thread, dask's synchronous scheduler
)
def test_any_tiling_batch_and_thread_count_gives_a_bit_identical_map(
    scene, model, reference_map, rows, cols, batch, workers
):
    tiled = scene.chunk({"y": rows, "x": cols})
    classes = predict_scene(tiled, model, batch_pixels=batch)
    np.testing.assert_array_equal(computed(classes, workers), reference_map)


def test_probabilities_agree_across_tilings_and_with_the_map(scene, model, reference_map):
    whole = predict_proba_scene(scene.chunk({"y": -1, "x": -1}), model).values
    tiled = predict_proba_scene(scene.chunk({"y": 100, "x": 77}), model, batch_pixels=999).values
    np.testing.assert_allclose(tiled, whole, atol=1e-6, equal_nan=True)
    valid = reference_map != 255
    ids = np.array(model.meta.class_ids)
    np.testing.assert_array_equal(ids[np.nanargmax(whole[:, valid], axis=0)], reference_map[valid])
    np.testing.assert_allclose(whole[:, valid].sum(0), 1.0, atol=1e-5)
    assert np.isnan(whole[:, ~valid]).all()


def test_bf16_gives_the_same_label_on_nearly_every_pixel(
    scene, model, reference_map, bf16_on_any_cpu
):
    fast = predict_scene(scene, model, precision="bf16").values
    assert (fast == 255).sum() == (reference_map == 255).sum()
    assert (fast == reference_map).mean() >= 0.999


def test_fp16_on_a_cpu_and_unknown_precisions_are_user_errors(scene, model):
    with pytest.raises(BandfusionError, match=r"^precision=fp16: needs a CUDA device"):
        predict_scene(scene, model, device="cpu", precision="fp16")
    with pytest.raises(BandfusionError, match=r"^precision=fp64: use one of") as caught:
        predict_scene(scene, model, precision="fp64")
    assert "--" not in str(caught.value)  # the engine names arguments, the CLI its flags


def test_bf16_is_refused_on_a_cpu_that_only_emulates_it(scene, model, monkeypatch):
    monkeypatch.setattr(predict_module, "cpu_runs_bf16", lambda: False)
    with pytest.raises(BandfusionError, match=r"no native bfloat16.*use fp32"):
        predict_scene(scene, model, device="cpu", precision="bf16")


def test_result_is_lazy_and_georeferenced(scene, model):
    classes = predict_scene(scene, model)
    assert classes.dims == ("y", "x")
    assert classes.chunks is not None
    assert classes.attrs["crs"] == scene.attrs["crs"]
    assert classes.attrs["transform"] == scene.attrs["transform"]
    assert classes.attrs["nodata"] == 255
    np.testing.assert_array_equal(classes["x"], scene["x"])


def test_nan_pixels_are_nodata(scene, model):
    floats = scene.astype(np.float32)
    floats = floats.assign_coords(nodata=("band", [np.nan] * 13))
    floats = floats.where(~((floats["x"] < floats["x"][10]) & (floats["y"] > floats["y"][5])))
    result = predict_scene(floats, model).values
    masked = np.zeros(result.shape, dtype=bool)
    masked[:5, :10] = True
    assert (result[masked] == 255).all()
    valid = (scene.values != 0).all(axis=0)
    assert (result[~masked & valid] != 255).all()


def test_model_picks_its_bands_by_name_from_a_wider_scene(scene):
    four = scene.sel(band=["B2", "B3", "B4", "B8"])
    model = random_model(four, [0, 1])
    from_subset = predict_scene(four, model).values
    from_all = predict_scene(scene, model).values
    np.testing.assert_array_equal(from_all, from_subset)


def test_missing_bands_are_a_scene_error_naming_the_file(scene):
    model = random_model(scene.sel(band=["B2", "B3"]), [0, 1])
    renamed = scene.sel(band=["B4", "B5"])
    with pytest.raises(SceneError, match=r"Spain_7370579_S2Hand\.tif.*missing"):
        predict_scene(renamed, model)


@pytest.mark.parametrize(
    ("ids", "dtype", "nodata"),
    [
        ([0, 1], np.uint8, 255),
        ([1, 2, 3, 4, 8], np.uint8, 255),
        ([0, 255], np.uint8, 254),
        ([1, 300], np.uint16, 65535),
        ([-1, 5], np.int16, 32767),
        (list(range(256)), np.uint16, 65535),
    ],
)
def test_class_map_encoding_keeps_ids_and_frees_a_nodata_value(ids, dtype, nodata):
    assert class_map_encoding(ids) == (np.dtype(dtype), nodata)


def test_class_id_255_survives_prediction(scene):
    model = random_model(scene, [0, 255])
    last = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.bias[1] = 1e4  # every valid pixel is class index 1, i.e. id 255
    result = predict_scene(scene, model)
    assert result.attrs["nodata"] == 254
    valid = (scene.values != 0).all(axis=0)
    assert (result.values[valid] == 255).all()
    assert (result.values[~valid] == 254).all()


@pytest.mark.gpu
def test_cuda_map_is_bit_identical_to_cpu(scene, model, reference_map):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    result = predict_scene(scene, model, device="cuda").values
    np.testing.assert_array_equal(result, reference_map)


@pytest.fixture(scope="module")
def classifier(scene) -> PixelClassifier:
    return PixelClassifier(random_model(scene, [0, 1]), torch.device("cpu"))


def test_only_valid_pixels_reach_the_kernel(scene, classifier, monkeypatch) -> None:
    block = scene.values.copy()
    block[:, :200] = 0  # nodata rows
    seen: list[int] = []
    classify = classifier.kernel.classify

    def spy(table: torch.Tensor) -> torch.Tensor:
        seen.append(len(table))
        return classify(table)

    monkeypatch.setattr(classifier.kernel, "classify", spy)
    nodata = (0.0,) * 13
    out = classifier.classify_block(block, nodata)
    valid = (block != 0).all(axis=0)
    assert seen == [int(valid.sum())]
    assert (out[~valid] == classifier.nodata).all()
    seen.clear()
    empty = classifier.classify_block(np.zeros_like(block), nodata)
    assert seen == [] and (empty == classifier.nodata).all()
