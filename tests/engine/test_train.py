"""Training on real labels (bandfusion.engine.train): it learns water on held-out blocks,
repeats with its seed, records what a rerun needs, and recomputes declared indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from bandfusion.engine.evaluate import evaluate
from bandfusion.engine.predict import predict_scene
from bandfusion.engine.sampling import spatial_block_split
from bandfusion.engine.train import held_out_blocks, train
from bandfusion.errors import BandfusionWarning, LabelError, SceneError
from bandfusion.io.bands import canonical_band
from bandfusion.io.grid import Grid
from bandfusion.io.labels import read_labels
from bandfusion.io.legend import Legend
from bandfusion.io.scene import open_scene
from bandfusion.models import SpectralFusionClassifier, load_model, save_model
from bandfusion.progress import Step

from tests.helpers import QUICK_TRAINING


def test_training_learns_water_from_the_held_out_blocks(trained):
    report = trained.validation
    assert report is not None
    assert report.class_names == ["not water", "water"]
    water_iou = report.iou[report.class_ids.index(1)]
    assert report.overall_accuracy > 0.9
    assert water_iou > 0.7  # the NDWI > 0 rule reaches 0.676
    assert trained.model.meta.metrics["validation"]["overall_accuracy"] == report.overall_accuracy


def test_validation_is_measured_on_blocks_training_never_saw(water, trained):
    scene, labels = water
    settings = trained.model.meta.training
    val = spatial_block_split(
        labels, block_size=settings["block_size"], val_fraction=settings["val_fraction"], seed=3
    )
    assert 0 < (val & labels.labelled).sum() < labels.labelled.sum()
    np.testing.assert_array_equal(held_out_blocks(trained.model, labels), val)
    again = evaluate(trained.model, scene, labels, where=val)
    np.testing.assert_array_equal(again.confusion, trained.validation.confusion)
    assert again.n_pixels == (val & labels.labelled).sum()


def test_same_seed_same_model_other_seed_other_model(water, trained):
    scene, labels = water
    twin = train(scene, labels, seed=3, **QUICK_TRAINING)
    mine, theirs = twin.model.net.state_dict(), trained.model.net.state_dict()
    for name, tensor in mine.items():
        assert torch.equal(tensor, theirs[name]), name
    other = train(scene, labels, seed=4, **QUICK_TRAINING)
    first = other.model.net.first_layer_weights()
    assert not torch.equal(first, trained.model.net.first_layer_weights())


def test_model_metadata_records_what_a_rerun_needs(trained):
    meta = trained.model.meta
    assert meta.bands[:3] == ["B01", "B02", "B03"] and len(meta.bands) == 13  # canonical
    assert meta.class_ids == [0, 1]
    assert meta.architecture["hidden"] == [16, 16]
    assert meta.training["seed"] == 3
    assert meta.training["samples"]["train"] > 0
    assert meta.training["labels"].endswith("Spain_7370579_LabelHand.tif")


@pytest.mark.parametrize("balanced", [True, False], ids=["balanced", "each pixel the same"])
def test_class_weights_balance_or_undo_the_per_class_cap(water, balanced: bool):
    """Balanced weights make each class count the same; without them each labelled pixel of
    the training blocks counts the same, however thinly the cap drew its class."""
    scene, labels = water
    settings = {**QUICK_TRAINING, "per_class_cap": 2000, "class_weight": balanced}
    model = train(scene, labels, seed=3, **settings).model
    ids = model.meta.class_ids
    weights = np.array([model.meta.training["class_weights"][str(c)] for c in ids])
    sampled = np.full(len(weights), 2000)  # both classes of the chip hold more than the cap
    training = labels.labelled & ~held_out_blocks(model, labels)
    population = np.array([np.count_nonzero(training & (labels.values == c)) for c in ids])
    counted = sampled * weights
    if balanced:
        np.testing.assert_allclose(counted, counted.mean(), rtol=0.02)
    else:
        shares = population / population.sum()
        np.testing.assert_allclose(counted / counted.sum(), shares, rtol=0.02)


def test_non_contiguous_class_ids_are_kept(data_dir: Path):
    scene = open_scene(data_dir / "eolearn_slovenia/ndvi_stack.tif")
    labels = read_labels(data_dir / "eolearn_slovenia/lulc.tif", Grid.of(scene))
    result = train(scene, labels, seed=0, block_size=16, **QUICK_TRAINING)
    assert set(result.model.meta.class_ids) <= {1, 2, 3, 4, 8}
    assert {2, 3} <= set(result.model.meta.class_ids)
    values = np.unique(predict_scene(scene, result.model).values)
    assert set(values) <= {*result.model.meta.class_ids, 255}


def test_a_single_class_cannot_be_trained(water):
    scene, labels = water
    labels.values  # noqa: B018 - the fixture is shared; work on a copy
    one_class = type(labels)(
        labels.values, labels.labelled & (labels.values == 1), labels.legend, labels.source
    )
    with pytest.raises(LabelError, match="two classes"):
        train(scene, one_class, seed=0, **QUICK_TRAINING)


def test_a_class_with_no_valid_pixel_is_named_and_left_out(water):
    """A class whose every labelled pixel is nodata (as a cloud class is under a product's
    cloud mask) cannot be learnt: training names it in one warning, the model and its
    validation report leave it out instead of a row of zeros."""
    scene, labels = water
    hidden = np.zeros(labels.values.shape, dtype=bool)
    hidden[:96, :96] = True  # nodata in the scene, and labelled with a class of its own
    values = np.where(hidden & labels.labelled, 7, labels.values)
    ids = (*labels.legend.ids, 7)
    legend = Legend(ids, (*labels.legend.names, "cloud"), (*labels.legend.colors, (255, 255, 255)))
    clouded = type(labels)(values, labels.labelled, legend, labels.source)
    masked = scene.where(~xr.DataArray(hidden, dims=("y", "x")))
    with pytest.warns(
        BandfusionWarning,
        match=r"LabelHand\.tif: .*no valid pixel to train on.*left out: 7 \(cloud\)$",
    ):
        result = train(masked, clouded, seed=0, **QUICK_TRAINING)
    assert 7 not in result.model.meta.class_ids
    assert result.validation is not None
    assert result.validation.class_ids == result.model.meta.class_ids


def test_training_and_evaluation_report_their_progress_as_steps(water, trained):
    scene, labels = water
    epochs: list[Step] = []
    result = train(scene, labels, seed=3, progress=epochs.append, **QUICK_TRAINING)
    assert [(s.stage, s.done, s.total, s.unit) for s in epochs] == [
        ("train", 1, QUICK_TRAINING["epochs"], "epoch")
    ] * len(result.history)
    assert [s.info for s in epochs] == [
        {"loss": row["loss"], "val_f1": row["val_macro_f1"]} for row in result.history
    ]
    tasks: list[Step] = []
    evaluate(trained.model, scene.chunk({"y": 256, "x": 256}), labels, progress=tasks.append)
    assert {(s.stage, s.unit) for s in tasks} == {("evaluate", "task")}
    assert sum(s.done for s in tasks) == tasks[-1].total > 4  # every task of the graph


def test_declared_indices_are_recomputed_by_every_prediction_path(water, tmp_path: Path):
    scene, labels = water
    result = train(scene, labels, seed=3, indices=("NDWI", "MNDWI"), **QUICK_TRAINING)
    path = save_model(result.model, tmp_path / "indices-model")
    model = load_model(path)
    # model.json names the bands, and the roles, canonically: the file's B3 is B03.
    assert model.meta.bands == [canonical_band(str(b)) for b in scene["band"].values]
    assert model.meta.indices == ["NDWI", "MNDWI"]
    assert model.meta.band_roles == {"green": "B03", "nir": "B08", "swir1": "B11"}
    assert model.net.in_bands == len(model.meta.bands) + 2
    # The scene path (kernel over chunks) and the estimator (indices appended to rows of
    # bands) give the same labels: both recompute the indices from the raw bands.
    window = scene.isel(y=slice(0, 64), x=slice(0, 64))
    mapped = predict_scene(window, model, device="cpu").values.ravel()
    rows = window.values.reshape(len(scene["band"]), -1).T.astype(np.float32)
    estimated = SpectralFusionClassifier.from_model(model).predict(rows)
    assert (mapped == estimated).mean() > 0.999
    # The report train prints is evaluate's over the same blocks, indices recomputed.
    again = evaluate(model, scene, labels, where=held_out_blocks(model, labels), device="cpu")
    assert result.validation is not None
    np.testing.assert_array_equal(again.confusion, result.validation.confusion)


def test_indices_need_bands_for_their_roles(water):
    scene, labels = water
    with pytest.raises(SceneError, match="no band for role 'nir'"):
        train(scene, labels, indices=("NDVI",), band_roles={"nir": "B99"}, **QUICK_TRAINING)


def test_by_default_settings_are_chosen_by_cv_over_training_blocks(water):
    scene, labels = water
    result = train(scene, labels, seed=3, **{**QUICK_TRAINING, "search": True})
    assert result.selection is not None
    record = result.model.meta.training["selection"]
    assert record == result.selection.to_dict()
    assert record["protocol"] == "spatial blocks" and record["folds"] == 3
    assert record["cv_macro_f1"][record["chosen"]] == max(record["cv_macro_f1"].values())
    assert result.model.meta.architecture == result.model.net.config()
    assert result.model.meta.training["hidden"] == list(result.selection.settings.hidden)


def test_a_blend_averages_the_two_best_candidates_and_every_path_predicts_it(water, tmp_path: Path):
    scene, labels = water
    result = train(scene, labels, seed=3, **{**QUICK_TRAINING, "search": True, "blend": 2})
    assert result.selection is not None
    record = result.model.meta.training["selection"]
    scores = record["cv_macro_f1"]
    assert record["blended"] == sorted(scores, key=lambda name: -scores[name])[:2]
    assert result.model.meta.training["blend"] == 2
    loaded = load_model(save_model(result.model, tmp_path / "m"))
    assert loaded.net.hidden == result.model.net.hidden  # the blend, one plain network
    window = scene[:, :64, :64]
    mapped = predict_scene(window, loaded)
    pixels = window.values.reshape(len(window.band), -1).T.astype(np.float32)
    labelled = SpectralFusionClassifier.from_model(loaded).predict(pixels)
    valid = (window.values != 0).all(0).ravel()  # the chip's nodata is 0 in every band
    assert (labelled[valid] == mapped.values.ravel()[valid]).mean() > 0.999
