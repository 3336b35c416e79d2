"""Chunks without a pixel to score (labels cover one corner of the scene; masked or nodata
pixels) are skipped by training, evaluation and explanation, never an error."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from bandfusion.engine.evaluate import evaluate
from bandfusion.engine.explain import explain
from bandfusion.engine.train import train

from tests.helpers import QUICK_TRAINING


@pytest.fixture(scope="module")
def corner(water):
    """The water chip in 16 chunks, and its labels kept in the top-left 160 x 160 px only."""
    scene, labels = water
    kept = np.zeros_like(labels.labelled)
    kept[:160, :160] = True
    return scene.chunk({"y": 128, "x": 128}), replace(labels, labelled=labels.labelled & kept)


def test_training_on_labels_in_one_corner_keeps_its_model(corner):
    scene, labels = corner
    result = train(scene, labels, seed=1, block_size=16, **QUICK_TRAINING)
    assert result.validation is not None
    assert 0 < result.validation.n_pixels < labels.labelled.sum()


def test_evaluation_skips_chunks_without_labels(corner, trained):
    scene, labels = corner
    report = evaluate(trained.model, scene, labels)
    whole = evaluate(trained.model, scene.chunk({"y": -1, "x": -1}), labels)
    assert report.n_pixels == labels.labelled.sum()
    np.testing.assert_array_equal(report.confusion, whole.confusion)


def test_evaluation_of_labels_on_nodata_only_scores_nothing(corner, trained):
    scene, labels = corner
    nowhere = replace(labels, labelled=np.zeros_like(labels.labelled))
    assert evaluate(trained.model, scene, nowhere).n_pixels == 0


def test_explanation_on_labels_in_one_corner(corner, trained):
    scene, labels = corner
    explanation = explain(trained.model, scene, labels, n_repeats=1, per_class_cap=200)
    assert explanation.class_pixels.sum() > 0
